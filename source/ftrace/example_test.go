package ftrace_test

import (
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/ftrace"
)

// Open a source, print connect events, and handle loss and Close.
func Example() {
	s, err := ftrace.Open()
	if errors.Is(err, source.ErrNotSupported) {
		log.Printf("no tracefs here: %v", err)
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close() // removes the tracefs instance; call it from any goroutine to stop Next
	fmt.Println("mode:", s.Mode())
	for {
		ev, err := s.Next()
		switch {
		case errors.Is(err, source.ErrLost):
			log.Printf("%v (total %d): resync from /proc", err, s.Lost())
			continue
		case errors.Is(err, os.ErrClosed):
			return
		case err != nil:
			log.Fatal(err)
		}
		if ev.Kind == source.KindConnect {
			fmt.Println(ev.PID, ev.Proto, ev.Dst)
		}
	}
}

// Ask whether kprobes can be used, three ways.
func ExampleProbe() {
	switch err := ftrace.Probe("", ftrace.FeatureKprobes); {
	case err == nil:
		fmt.Println("kprobes: TCP and UDP connects and UDP sends")
	case errors.Is(err, source.ErrNotSupported):
		fmt.Println("tracepoints: TCP connects, UDP sends from route lookups")
	default:
		fmt.Println("cannot tell:", err)
	}
}
