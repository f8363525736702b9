package main

import (
	"strings"
	"testing"
	"time"

	"github.com/procwall/procwall/source"
)

func TestToProcwall(t *testing.T) {
	now := time.Now()
	ev, err := toProcwall(agentEvent{When: now, What: "conn", PID: 5, Remote: "198.51.100.1:443"})
	if err != nil || ev.Kind != source.KindConnect || ev.Dst.String() != "198.51.100.1:443" {
		t.Fatalf("conn: %+v %v", ev, err)
	}
	if _, err := toProcwall(agentEvent{When: now, What: "conn", PID: 5, Remote: "nowhere"}); err == nil {
		t.Fatal("bad remote accepted")
	}
	if _, err := toProcwall(agentEvent{When: now, What: "teleport", PID: 5}); err == nil || !strings.Contains(err.Error(), "teleport") {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := toProcwall(agentEvent{When: now, What: "spawn", PID: 0}); err == nil {
		t.Fatal("pid 0 accepted")
	}
}
