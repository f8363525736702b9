package procfs_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/procwall/procwall/source/procfs"
)

// Reading one process and turning it into an event that seeds a tree.
func ExampleFS_Process() {
	fs, err := procfs.NewFS("testdata/proc")
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := fs.Process(100)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d %q parent %d start %d exe %s argv %q\n", p.PID, p.Comm, p.PPID, p.Start, p.Exe, p.Argv)
	ev := p.Event(time.Unix(0, 0))
	fmt.Println(ev.Kind, ev.ID(), ev.Reason)

	_, err = fs.Process(104) // exited while it was read
	fmt.Println(errors.Is(err, procfs.ErrGone), errors.Is(err, os.ErrNotExist))
	// Output:
	// 100 "a (b) c" parent 1 start 25000000000 exe /usr/bin/dash argv ["sh" "-c" "sleep 1; echo (x)"]
	// exec 100@25000000000 cgroup=/user.slice/user-1000.slice/session-1.scope
	// true true
}

// Seeding from a snapshot: parents come before their children.
func ExampleNewSnapshotSource() {
	fs, err := procfs.NewFS("testdata/proc")
	if err != nil {
		fmt.Println(err)
		return
	}
	src := procfs.NewSnapshotSource(fs)
	defer src.Close()
	for {
		ev, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("skipped:", err)
			continue
		}
		fmt.Println(ev.PID, "parent", ev.PPID)
	}
	// Output:
	// skipped: read stat testdata/proc/102/stat: malformed proc file: stat: no (comm)
	// 1 parent 0
	// 100 parent 1
	// 101 parent 100
	// 105 parent 100
	// 2 parent 0
}
