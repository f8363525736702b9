package replay_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/procwall/procwall/source/replay"
)

func ExampleOpen() {
	r, err := replay.Open([]string{"testdata/example.jsonl"}, replay.WithLenient(false))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err) // "file:line: cause"
			return
		}
		fmt.Println(ev.Time.Format(time.TimeOnly), ev.Kind, ev.PID, ev.Origin)
	}
	st := r.Stats()
	fmt.Println(st.Events, "events from", st.Lines, "lines, format", st.Inputs[0].Format)
	// Output:
	// 10:00:00 fork 100 testdata/example.jsonl:2
	// 10:00:00 exec 100 testdata/example.jsonl:3
	// 10:00:01 connect 100 testdata/example.jsonl:4
	// 10:05:00 risk 231 testdata/example.jsonl:5
	// 4 events from 5 lines, format native
}

func ExampleBuilder() {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	b := replay.NewBuilder(t0)
	b.Fork(100, 1).Exec(100, "/usr/sbin/nginx", "nginx", "-g", "daemon off;").
		Connect(100, "tcp", "198.51.100.7:443").
		After(5*time.Minute).Risk(231, "high", "reverse shell").
		Assess(100, true, "clean")
	if err := b.Err(); err != nil {
		fmt.Println(err)
		return
	}
	// b.Source() is a source.Source over the events, for a Protector in a
	// test; here they are written as a native trace.
	if _, err := b.WriteTo(os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"ts":"2026-11-22T10:00:00Z","type":"fork","pid":100,"ppid":1}
	// {"ts":"2026-11-22T10:00:00.001Z","type":"exec","pid":100,"exe":"/usr/sbin/nginx","argv":["nginx","-g","daemon off;"]}
	// {"ts":"2026-11-22T10:00:00.002Z","type":"connect","pid":100,"proto":"tcp","dst":"198.51.100.7:443"}
	// {"ts":"2026-11-22T10:05:00.002Z","type":"risk","pid":231,"level":"high","reason":"reverse shell"}
	// {"ts":"2026-11-22T10:05:00.003Z","type":"assess","pid":100,"reason":"clean","safe":true}
}

func ExampleBuilder_error() {
	b := replay.NewBuilder(time.Unix(0, 0)).Fork(100, 1).Connect(100, "tcp", "198.51.100.7")
	fmt.Println(b.Err())
	fmt.Println(len(b.Events()), "event")
	// Output:
	// builder:2: connect: field dst: "198.51.100.7" is not "ip:port" or "[v6]:port"
	// 1 event
}
