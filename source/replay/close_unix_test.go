//go:build unix

package replay

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCloseUnblocksNext reads from a FIFO that has a writer but no data,
// so Next blocks; Close from another goroutine must unblock it.
func TestCloseUnblocksNext(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	w, err := os.OpenFile(p, os.O_RDWR, 0) // a writer, so opening for reading does not block
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := Open([]string{p})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := r.Next()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let Next block; the assertion does not depend on it
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Next after Close = %v, want os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
}
