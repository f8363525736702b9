package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/procwall/procwall/internal/privtest"
)

func TestTreeShowsProcessesAndAddresses(t *testing.T) {
	privtest.Require(t) // socket owners: /proc/<pid>/fd of every process
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	me := os.Getpid()
	code, out, errs := runCLI(t, "tree", "-pid", fmt.Sprint(me))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	want := fmt.Sprintf("(%d)", me)
	first := strings.SplitN(out, "\n", 2)[0]
	if !strings.Contains(first, want) || !strings.Contains(first, fmt.Sprintf("tcp/127.0.0.1:%d", port)) {
		t.Fatalf("tree -pid %d first line %q lacks the process or its connection to :%d\n%s", me, first, port, out)
	}
	code, out, errs = runCLI(t, "tree", "-pid", fmt.Sprint(me), "-o", "json")
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, errs)
	}
	var root struct {
		ID struct {
			PID int `json:"pid"`
		} `json:"id"`
		Addrs []string `json:"addrs"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &root); err != nil || root.ID.PID != me {
		t.Fatalf("json root %+v: %v\n%s", root, err, out)
	}
	if code, _, errs := runCLI(t, "tree", "-pid", "999999999"); code != 1 || !strings.Contains(errs, "no process 999999999") {
		t.Fatalf("unknown pid: exit %d %q", code, errs)
	}
}
