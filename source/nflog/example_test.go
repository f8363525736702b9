package nflog_test

import (
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/nflog"
)

// Follow new outbound flows; a loss is reported once and reading goes on.
func ExampleOpen() {
	s, err := nflog.Open(nflog.WithGroup(3140))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close() // also deletes the table inet procwall_nflog
	for {
		ev, err := s.Next()
		switch {
		case errors.Is(err, source.ErrLost):
			log.Printf("lost: %v (%+v)", err, s.Stats())
			continue
		case errors.Is(err, os.ErrClosed):
			return
		case err != nil:
			log.Fatal(err)
		}
		fmt.Println(ev.Kind, ev.PID, ev.Proto, ev.Src, "->", ev.Dst)
	}
}
