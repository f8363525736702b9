package leakcheck

import (
	"os"
	"testing"
	"time"
)

func TestDetectsGoroutinesAndFDs(t *testing.T) {
	g0, f0 := goroutines(), openFDs()
	stop := make(chan struct{})
	go func() { <-stop }()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(goroutines(), g0); len(d) != 1 {
		t.Fatalf("goroutine leak not seen: %v", d)
	}
	if d := diff(openFDs(), f0); len(d) != 1 {
		t.Fatalf("fd leak not seen: %v", d)
	}
	close(stop)
	f.Close()
	time.Sleep(20 * time.Millisecond)
	if d := diff(goroutines(), g0); len(d) != 0 {
		t.Fatalf("finished goroutine still counted: %v", d)
	}
	if d := diff(openFDs(), f0); len(d) != 0 {
		t.Fatalf("closed fd still counted: %v", d)
	}
}
