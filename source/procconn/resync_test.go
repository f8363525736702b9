package procconn

import (
	"slices"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
	"github.com/procwall/procwall/source/procfs"
)

func TestResync(t *testing.T) {
	snap := []procfs.Process{
		{PID: 1, Start: 10},
		{PID: 50, PPID: 40, Start: 500}, // added; its parent 40 is added too
		{PID: 40, PPID: 1, Start: 400},  // added
		{PID: 7, PPID: 1, Start: 70},    // known, same start
		{PID: 8, PPID: 1, Start: 999},   // pid 8 reused: old one vanished, this one added
		{PID: 9, PPID: 1, Start: 90},    // known without start: matches
		{PID: 11, PPID: 1, State: 'Z'},  // zombie: known, counts as exited
	}
	known := []source.ProcID{{PID: 1, Start: 10}, {PID: 7, Start: 70}, {PID: 8, Start: 80}, {PID: 9}, {PID: 11}, {PID: 12, Start: 120}}
	d := Resync(slices.Values(known), snap)
	var added []int
	for _, p := range d.Added {
		added = append(added, p.PID)
	}
	if !slices.Equal(added, []int{8, 40, 50}) {
		t.Errorf("added %v, want [8 40 50] (parents first)", added)
	}
	want := []source.ProcID{{PID: 8, Start: 80}, {PID: 11}, {PID: 12, Start: 120}}
	if !slices.Equal(d.Vanished, want) {
		t.Errorf("vanished %v, want %v", d.Vanished, want)
	}
	evs := d.Events(time.Unix(1, 0))
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind.String()+" "+e.ID().String())
		if err := e.Validate(); err != nil {
			t.Errorf("invalid event %+v: %v", e, err)
		}
	}
	wantKinds := []string{"exit 8@80", "exit 11", "exit 12@120", "exec 8@999", "exec 40@400", "exec 50@500"}
	if !slices.Equal(kinds, wantKinds) {
		t.Errorf("events %v, want %v", kinds, wantKinds)
	}
	if d.Empty() {
		t.Error("Empty")
	}
	if d := Resync(slices.Values(known[:2]), snap[:1]); len(d.Vanished) != 1 || len(d.Added) != 0 {
		t.Errorf("small diff %+v", d)
	}
}
