package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/procwall/procwall/enforce"
	"github.com/procwall/procwall/enforce/enforcetest"
)

func TestConformance(t *testing.T) {
	enforcetest.RunWith(t, func(t *testing.T) enforce.Enforcer {
		srv := httptest.NewServer(&FakeAPI{}) // listens on loopback
		t.Cleanup(srv.Close)
		return NewCloudFW(srv.URL, srv.Client())
	}, enforcetest.Options{
		// What the API holds, asked over HTTP: the real effect.
		Dropped: func(e enforce.Enforcer) ([]netip.Addr, error) {
			return e.(*CloudFW).Denied(context.Background())
		},
	})
}

func TestAPIFailureRollsBack(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "quota exceeded", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	e := NewCloudFW(srv.URL, srv.Client())
	err := e.Block(context.Background(), enforce.Block{ID: "x", Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.2")}})
	var oe *enforce.OpError
	if !errors.As(err, &oe) || oe.Op != "block" {
		t.Fatalf("err = %v, want an *enforce.OpError for block", err)
	}
	if bs, _ := e.Blocks(context.Background()); len(bs) != 0 {
		t.Fatalf("failed block was kept: %v", bs)
	}
}
