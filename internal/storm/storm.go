package storm

import (
	"fmt"
	"sync"
	"time"
)

// Parallel is Run split over workers goroutines (each forking n/workers
// children at rate/workers per second); the pids come back unordered.
func Parallel(n, rate, code, workers int) ([]int, error) {
	if workers <= 1 {
		return Run(n, rate, code)
	}
	var mu sync.Mutex
	var all []int
	var first error
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		k := n / workers
		if w < n%workers {
			k++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pids, err := Run(k, rate/workers, code)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, pids...)
			if err != nil && first == nil {
				first = err
			}
		}()
	}
	wg.Wait()
	return all, first
}

// Run forks n children at about rate per second (0: as fast as possible),
// each exiting at once with code, reaps each one, and returns their pids in
// order. It is bounded by n; it stops early and returns what it did on the
// first error.
func Run(n, rate, code int) ([]int, error) {
	pids := make([]int, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		if rate > 0 && i%64 == 0 {
			due := start.Add(time.Duration(int64(i) * int64(time.Second) / int64(rate)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		pid, err := ForkExit(code)
		if err != nil {
			return pids, fmt.Errorf("storm: fork %d of %d: %w", i+1, n, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
