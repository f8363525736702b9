// Command customenforcer shows how to write a procwall enforcer of your
// own: one that blocks addresses through a (pretend) cloud firewall's HTTP
// API instead of the local packet filter. The enforcer keeps the
// interception configuration (enforce.Config) for the refcounting, checks
// the protected set, and sends the API only the addresses that start or
// stop being denied. Its test runs procwall's conformance suite
// (enforce/enforcetest) against it.
//
// Run it with no arguments: it starts a fake firewall API on loopback,
// blocks and releases a few documentation addresses through it and prints
// what the API holds after each step.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/procwall/procwall/enforce"
)

// CloudFW is an enforce.Enforcer over a firewall HTTP API with two
// endpoints:
//
//	GET  /v1/deny                          -> {"addrs": [...]}
//	POST /v1/deny {"add": [...], "remove": [...]} -> {"addrs": [...]}
//
// It is safe for concurrent use.
type CloudFW struct {
	base   string
	client *http.Client
	prot   *enforce.Protected

	mu     sync.Mutex
	cfg    *enforce.Config
	closed bool
}

// NewCloudFW returns an enforcer talking to the API at base (such as
// "http://127.0.0.1:8080").
func NewCloudFW(base string, client *http.Client) *CloudFW {
	return &CloudFW{base: base, client: client, prot: enforce.DefaultProtected(), cfg: enforce.NewConfig()}
}

// Name implements enforce.Enforcer.
func (c *CloudFW) Name() string { return "cloudfw" }

func (c *CloudFW) fail(op, id string, err error) error {
	return &enforce.OpError{Backend: c.Name(), Op: op, ID: id, Err: err}
}

// Block implements enforce.Enforcer.
func (c *CloudFW) Block(ctx context.Context, b enforce.Block) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.fail("block", b.ID, os.ErrClosed)
	}
	if err := c.prot.Check(b.Addrs); err != nil {
		return c.fail("block", b.ID, err)
	}
	added, err := c.cfg.Add(b)
	if err != nil {
		return c.fail("block", b.ID, err)
	}
	if err := c.post(ctx, added, nil); err != nil {
		_, _, _ = c.cfg.Remove(b.ID)
		return c.fail("block", b.ID, err)
	}
	return nil
}

// Release implements enforce.Enforcer.
func (c *CloudFW) Release(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.fail("release", id, os.ErrClosed)
	}
	removed, old, err := c.cfg.Remove(id)
	if err != nil {
		return c.fail("release", id, err)
	}
	if err := c.post(ctx, nil, removed); err != nil {
		_, _ = c.cfg.Add(old)
		return c.fail("release", id, err)
	}
	return nil
}

// Blocks implements enforce.Enforcer.
func (c *CloudFW) Blocks(ctx context.Context) ([]enforce.Block, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, c.fail("blocks", "", os.ErrClosed)
	}
	return c.cfg.Blocks(), nil
}

// Close implements enforce.Enforcer; the API keeps its deny list.
func (c *CloudFW) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

type denyChange struct {
	Add    []netip.Addr `json:"add,omitempty"`
	Remove []netip.Addr `json:"remove,omitempty"`
}

type denyList struct {
	Addrs []netip.Addr `json:"addrs"`
}

func (c *CloudFW) post(ctx context.Context, add, remove []netip.Addr) error {
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	body, _ := json.Marshal(denyChange{Add: add, Remove: remove})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/deny", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("firewall API: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Denied asks the API which addresses it denies now.
func (c *CloudFW) Denied(ctx context.Context) ([]netip.Addr, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/deny", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var l denyList
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return nil, fmt.Errorf("firewall API: %w", err)
	}
	return l.Addrs, nil
}

// FakeAPI is an in-memory firewall API, for the demo and the tests.
type FakeAPI struct {
	mu   sync.Mutex
	deny map[netip.Addr]bool
}

// ServeHTTP implements http.Handler.
func (f *FakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/deny" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deny == nil {
		f.deny = map[netip.Addr]bool{}
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost:
		var ch denyChange
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ch); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		for _, a := range ch.Remove {
			if !f.deny[a] {
				http.Error(w, "not denied: "+a.String(), http.StatusConflict)
				return
			}
		}
		for _, a := range ch.Add {
			if f.deny[a] {
				http.Error(w, "already denied: "+a.String(), http.StatusConflict)
				return
			}
		}
		for _, a := range ch.Remove {
			delete(f.deny, a)
		}
		for _, a := range ch.Add {
			f.deny[a] = true
		}
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	l := denyList{Addrs: []netip.Addr{}}
	for a := range f.deny {
		l.Addrs = append(l.Addrs, a)
	}
	slices.SortFunc(l.Addrs, netip.Addr.Compare)
	_ = json.NewEncoder(w).Encode(l)
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: &FakeAPI{}, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	ctx := context.Background()
	e := NewCloudFW("http://"+ln.Addr().String(), &http.Client{Timeout: 5 * time.Second})
	defer e.Close()
	show := func(step string) {
		d, err := e.Denied(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-28s API denies %v\n", step+":", d)
	}
	a, b := netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("203.0.113.9")
	if err := e.Block(ctx, enforce.Block{ID: "r1", Addrs: []netip.Addr{a, b}, Reason: "demo"}); err != nil {
		log.Fatal(err)
	}
	show("block r1")
	if err := e.Block(ctx, enforce.Block{ID: "r2", Addrs: []netip.Addr{a}, Reason: "demo"}); err != nil {
		log.Fatal(err)
	}
	show("block r2 (shares an addr)")
	if err := e.Release(ctx, "r1"); err != nil {
		log.Fatal(err)
	}
	show("release r1")
	err = e.Block(ctx, enforce.Block{ID: "lo", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	fmt.Println("block loopback:", err)
}
