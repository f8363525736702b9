//go:build linux

// Package flowtest holds what the network sources' privileged tests share:
// a client program (the test binary itself, re-executed) that opens TCP and
// UDP flows inside a test namespace and holds them, listeners for those
// flows, and a namespace with documentation addresses on its loopback.
package flowtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/procwall/procwall/internal/leakcheck"
	"github.com/procwall/procwall/internal/privtest"
)

// Main is a test package's TestMain: the test binary doubles as the
// client program. With the environment variable env set to "1" it opens
// the flows named by its arguments, prints each flow's local end, prints
// "ready", and holds the sockets until its stdin closes; otherwise it runs
// the tests.
func Main(m *testing.M, env string) {
	if os.Getenv(env) == "1" {
		os.Exit(runHelper(os.Args[1:]))
	}
	os.Exit(leakcheck.Main(m))
}

// runHelper opens flows given as "tcp=ADDR:PORT" (connect), "udpc=ADDR:PORT"
// (connected UDP, one datagram), "udps=ADDR:PORT" (unconnected UDP, one
// sendto) and "rawicmp" (a raw ICMP socket, no traffic).
func runHelper(args []string) int {
	var keep []any
	for _, a := range args {
		kind, addr, _ := strings.Cut(a, "=")
		var local string
		switch kind {
		case "tcp":
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				fmt.Println("error", err)
				return 1
			}
			keep = append(keep, c)
			local = c.LocalAddr().String()
		case "udpc":
			c, err := net.Dial("udp", addr)
			if err != nil {
				fmt.Println("error", err)
				return 1
			}
			if _, err := c.Write([]byte("hello")); err != nil {
				fmt.Println("error", err)
				return 1
			}
			keep = append(keep, c)
			local = c.LocalAddr().String()
		case "udps":
			ap := netip.MustParseAddrPort(addr)
			network := "udp4"
			if ap.Addr().Is6() {
				network = "udp6"
			}
			c, err := net.ListenUDP(network, nil)
			if err != nil {
				fmt.Println("error", err)
				return 1
			}
			if _, err := c.WriteToUDPAddrPort([]byte("hello"), ap); err != nil {
				fmt.Println("error", err)
				return 1
			}
			keep = append(keep, c)
			local = c.LocalAddr().String()
		case "rawicmp":
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
			if err != nil {
				fmt.Println("error", err)
				return 1
			}
			keep = append(keep, fd)
			local = "raw"
		default:
			fmt.Println("error unknown flow", a)
			return 1
		}
		fmt.Println(a, local)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = keep
	return 0
}

// Helper is a running client process.
type Helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// Local maps each flow spec to the local end of its socket.
	Local map[string]netip.AddrPort
}

// Start runs the client (this test binary with env=1) inside ns and waits
// until its flows are open. Flows are "tcp=ADDR:PORT" (connect),
// "udpc=ADDR:PORT" (connected UDP, one datagram), "udps=ADDR:PORT"
// (unconnected UDP, one sendto) and "rawicmp" (a raw ICMP socket).
func Start(t *testing.T, ns *privtest.NetNS, env string, flows ...string) *Helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := ns.Command(ctx, append([]string{exe}, flows...)...)
	cmd.Env = append(os.Environ(), env+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &Helper{cmd: cmd, stdin: stdin, Local: map[string]netip.AddrPort{}}
	t.Cleanup(func() {
		h.Stop()
		cancel()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return h
		}
		spec, local, _ := strings.Cut(line, " ")
		if spec == "error" {
			t.Fatalf("helper: %s", line)
		}
		if local != "raw" {
			h.Local[spec] = netip.MustParseAddrPort(local)
		}
	}
	t.Fatalf("helper ended before ready: %v", sc.Err())
	return nil
}

// Pid is the client's process id.
func (h *Helper) Pid() int { return h.cmd.Process.Pid }

// Stop closes the client's stdin and waits for it to exit.
func (h *Helper) Stop() {
	if h.stdin != nil {
		h.stdin.Close()
		h.stdin = nil
		_ = h.cmd.Wait()
	}
}

// acceptedConns counts connections the test listeners accepted.
var acceptedConns atomic.Int64

// Accepted returns how many connections the listeners accepted so far.
func Accepted() int64 { return acceptedConns.Load() }

// WaitAccepted waits (bounded) until the listeners accepted n connections
// in all, so that the accepted ends have file descriptors.
func WaitAccepted(t *testing.T, n int64) {
	t.Helper()
	for range 500 {
		if acceptedConns.Load() >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("listeners accepted %d connections, want %d", acceptedConns.Load(), n)
}

// Listeners opens TCP and UDP listeners inside ns on each address, accepts
// and holds TCP connections until the test ends, and returns the ports by
// "tcp/ADDR" and "udp/ADDR".
func Listeners(t *testing.T, ns *privtest.NetNS, addrs ...string) map[string]uint16 {
	t.Helper()
	ports := map[string]uint16{}
	err := ns.Do(func() error {
		for _, a := range addrs {
			l, err := net.Listen("tcp", net.JoinHostPort(a, "0"))
			if err != nil {
				return err
			}
			t.Cleanup(func() { l.Close() })
			port := uint16(l.Addr().(*net.TCPAddr).Port)
			ports["tcp/"+a] = port
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					t.Cleanup(func() { c.Close() })
					acceptedConns.Add(1)
				}
			}()
			u, err := net.ListenPacket("udp", net.JoinHostPort(a, "0"))
			if err != nil {
				return err
			}
			t.Cleanup(func() { u.Close() })
			ports["udp/"+a] = uint16(u.LocalAddr().(*net.UDPAddr).Port)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// NS makes a namespace with 198.51.100.1 and 2001:db8::1 on its loopback.
func NS(t *testing.T) *privtest.NetNS {
	t.Helper()
	privtest.Require(t, privtest.Command("ip"), privtest.Path("/proc/self/fd"))
	ns := privtest.NewNetNS(t)
	ns.AddAddr("lo", "198.51.100.1/32")
	ns.AddAddr("lo", "2001:db8::1/128")
	return ns
}
