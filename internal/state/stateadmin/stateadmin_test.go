package stateadmin

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/state"
)

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.9":           "ip:203.0.113.9",
		"::ffff:203.0.113.9":    "ip:203.0.113.9",
		"ip:2001:db8::1":        "ip:2001:db8::1",
		"198.51.100.7/24":       "net:198.51.100.0/24",
		"net:2001:db8:1:2::/64": "net:2001:db8:1:2::/64",
		"user:alice":            "user:alice",
		"hdr:x-tenant=acme":     "hdr:x-tenant=acme",
	} {
		got, err := ParseTarget(in)
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "example.com", "ip:nope", "user:", "user:a b", "cookie:x", "net:1.2.3.4/33"} {
		if got, err := ParseTarget(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}

func serve(t *testing.T, store state.Store) *httptest.Server {
	srv := httptest.NewServer(Handler(store, func() time.Time { return t0 }))
	t.Cleanup(srv.Close)
	return srv
}

func TestAddListRemoveOverTCPAndUnixSocket(t *testing.T) {
	store := state.NewMemory(state.MemoryOptions{})
	h := Handler(store, func() time.Time { return t0 })
	tcp := httptest.NewServer(h)
	defer tcp.Close()
	sock := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	us := &http.Server{Handler: h}
	go us.Serve(l)
	defer us.Close()

	ctx := context.Background()
	viaTCP, err := NewClient(strings.TrimPrefix(tcp.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	viaUnix, err := NewClient("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	b, err := viaTCP.Add(ctx, AddRequest{Target: "203.0.113.9", For: "2h", Reason: "abuse report"})
	if err != nil || b.Key != "ip:203.0.113.9" || !b.Until.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("Add: %+v %v", b, err)
	}
	if _, err := viaUnix.Add(ctx, AddRequest{Target: "198.51.100.0/24", Until: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// The store really holds them: the engine's check sees the ban.
	if _, banned, _ := store.Banned(ctx, "ip:203.0.113.9", t0); !banned {
		t.Fatal("a ban added through the API is not in the store")
	}
	bans, err := viaUnix.List(ctx)
	if err != nil || len(bans) != 2 || bans[0].Key != "ip:203.0.113.9" || bans[0].Reason != "abuse report" || bans[1].Reason != "set by hand" {
		t.Fatalf("List: %+v %v", bans, err)
	}
	if lifted, err := viaUnix.Remove(ctx, "ip:203.0.113.9"); err != nil || !lifted {
		t.Fatalf("Remove: %v %v", lifted, err)
	}
	if lifted, _ := viaTCP.Remove(ctx, "203.0.113.9"); lifted {
		t.Fatal("Remove of a lifted ban reported a ban")
	}
	if _, banned, _ := store.Banned(ctx, "ip:203.0.113.9", t0); banned {
		t.Fatal("still banned after Remove")
	}
	for _, bad := range []AddRequest{{Target: "x"}, {Target: "1.2.3.4"}, {Target: "1.2.3.4", For: "-1h"}, {Target: "1.2.3.4", Until: t0.Add(-time.Hour)}} {
		if _, err := viaTCP.Add(ctx, bad); err == nil {
			t.Errorf("Add %+v succeeded", bad)
		}
	}
}

func TestRefusesBrowsersAndRebinding(t *testing.T) {
	srv := serve(t, state.NewMemory(state.MemoryOptions{}))
	cases := []struct {
		name string
		mod  func(*http.Request)
		want int
	}{
		{"plain", func(*http.Request) {}, http.StatusOK},
		{"origin", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, http.StatusForbidden},
		{"fetch metadata", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }, http.StatusForbidden},
		{"rebinding host", func(r *http.Request) { r.Host = "evil.example:9901" }, http.StatusForbidden},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/bans", nil)
		c.mod(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
	// A form post (what a page can send without preflight) is refused.
	resp, err := http.Post(srv.URL+"/v1/bans", "text/plain", strings.NewReader(`{"target":"1.2.3.4","for":"1h"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain POST: %d", resp.StatusCode)
	}
	if _, err := NewClient("10.0.0.1:9901"); err == nil {
		t.Error("a client for a non-loopback admin address was made")
	}
}
