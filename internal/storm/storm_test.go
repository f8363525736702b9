package storm

import (
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	start := time.Now()
	pids, err := Run(2000, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range pids {
		if p <= 0 {
			t.Fatalf("pid %d", p)
		}
		seen[p] = true
	}
	t.Logf("2000 forks in %v (%d distinct pids)", time.Since(start), len(seen))
	start = time.Now()
	pids, err = Parallel(4000, 0, 0, 2)
	if err != nil || len(pids) != 4000 {
		t.Fatal(len(pids), err)
	}
	t.Logf("4000 forks on 2 workers in %v", time.Since(start))
}
