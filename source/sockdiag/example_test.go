package sockdiag_test

import (
	"fmt"
	"log"
	"time"

	"github.com/procwall/procwall/netassoc"
	"github.com/procwall/procwall/source/sockdiag"
)

// At start-up, record the associations of sockets that already exist.
func ExampleConn_Snapshot() {
	c, err := sockdiag.Dial()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	evs, err := c.Snapshot()
	if err != nil {
		log.Fatal(err)
	}
	x := netassoc.New()
	for i := range evs {
		x.RecordEvent(&evs[i])
	}
	fmt.Printf("%d associations, %+v\n", x.Stats().Associations, c.Stats())
}

// As a fallback source, poll every 5 seconds; each socket is reported once.
func ExampleNewSource() {
	s, err := sockdiag.NewSource(5 * time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	for {
		ev, err := s.Next()
		if err != nil {
			return // closed
		}
		fmt.Println(ev.Kind, ev.PID, ev.Proto, ev.Dst)
	}
}
