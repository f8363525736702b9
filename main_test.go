package procwall_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/procwall/procwall/internal/leakcheck"
)

// TestMain fails the package's tests if they leak goroutines or file
// descriptors: every Protector, source and report socket a test starts
// must be gone when it ends.
//
// With PROCWALL_TEST_REPORT_PEER set to a socket path, the test binary is
// instead a report-socket peer (run under another uid by the tests): it
// sends one risk report and prints the reply, or the dial error.
func TestMain(m *testing.M) {
	if path := os.Getenv("PROCWALL_TEST_REPORT_PEER"); path != "" {
		os.Exit(reportPeer(path))
	}
	os.Exit(leakcheck.Main(m))
}

func reportPeer(path string) int {
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Println("dial:", err)
		return 3
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintln(c, `{"ts":"2026-11-22T10:05:00Z","type":"risk","pid":231,"level":"high","reason":"peer test"}`)
	b, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		fmt.Println("read:", err)
		return 4
	}
	os.Stdout.Write(b)
	return 0
}
