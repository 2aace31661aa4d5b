package loadtest

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/identity"
)

// TestPasswordFloodEndsInABan: issue 10's flood of wrong passwords, with a
// ban on invalid_credentials. The flooding address is banned after the
// configured count (give or take the requests already in flight), its
// further attempts cost no hashing at all, and another client is served
// throughout.
func TestPasswordFloodEndsInABan(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("the right password"), 10)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(dir, "site")
	os.MkdirAll(filepath.Join(site, "private"), 0o755)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("public\n"), 0o644)
	os.WriteFile(filepath.Join(site, "private", "index.html"), []byte("private\n"), 0o644)
	const after = 10
	cfg, err := config.Parse("floodban.yaml", []byte(fmt.Sprintf(`
identity:
  htpasswd: { file: %q }
bans:
  - { name: brute-force, count: [invalid_credentials], after: %d, within: 1m, ban_for: 10m }
rules:
  - name: private
    when: { path: { prefix: [/private/] } }
    require: { authenticated: true }
    action: allow
handle:
  - path: /
    root: %q
    index: [index.html]
`, users, after, site)))
	if err != nil {
		t.Fatal(err)
	}
	in := gatewaytest.Start(t, cfg, slog.New(slog.DiscardHandler), func(hs *http.Server) { hs.ErrorLog = nil })
	var ht *identity.Htpasswd
	for _, a := range in.Runtime.Policy.Identity() {
		if h, ok := a.(*identity.Htpasswd); ok {
			ht = h
		}
	}
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 8}}
	}
	flooder := from("127.0.0.9")
	const conns, perConn = 8, 40
	var statuses sync.Map
	var wg sync.WaitGroup
	var seq atomic.Int64
	computed0, _ := ht.HashStats()
	for range conns {
		wg.Go(func() {
			for range perConn {
				req, _ := http.NewRequest("GET", in.URL()+"/private/", nil)
				req.SetBasicAuth("alice", fmt.Sprintf("guess-%d", seq.Add(1))) // a fresh wrong password each time
				resp, err := flooder.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n, _ := statuses.LoadOrStore(resp.StatusCode, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		})
	}
	// Meanwhile another client reads the public page.
	other := from("127.0.0.1")
	for range 20 {
		resp, err := other.Get(in.URL() + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("another client got %d during the flood", resp.StatusCode)
		}
	}
	wg.Wait()
	count := func(s int) int64 {
		if n, ok := statuses.Load(s); ok {
			return n.(*atomic.Int64).Load()
		}
		return 0
	}
	refused401, banned, unavailable := count(401), count(403), count(503)
	computed1, _ := ht.HashStats()
	t.Logf("flood of %d: %d answered 401, %d banned (403), %d 503; %d hashes computed", conns*perConn, refused401, banned, unavailable, computed1-computed0)
	// The ban takes effect once `after` refusals are counted; requests
	// already past the ban check when it was earned still get their 401.
	// (Attempts beyond the hashing bound were answered 503 at once: they
	// cost nothing and, not being wrong passwords, are no strikes.)
	if refused401 < after || refused401 > after+conns || banned == 0 {
		t.Errorf("the flood was not cut off by the ban: %d 401, %d 503, %d banned", refused401, unavailable, banned)
	}
	// From now on the flooding address is refused before any hashing.
	before, _ := ht.HashStats()
	for i := range 20 {
		req, _ := http.NewRequest("GET", in.URL()+"/private/", nil)
		req.SetBasicAuth("alice", fmt.Sprintf("later-%d", i))
		resp, err := flooder.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("attempt %d after the ban: %d", i, resp.StatusCode)
		}
	}
	if later, _ := ht.HashStats(); later != before {
		t.Errorf("a banned address cost %d password hashes", later-before)
	}
	if hashes := computed1 - computed0; hashes > after+conns {
		t.Errorf("%d password hashes for a banned flood; the ban should stop them at about %d", hashes, after)
	}
	// The right password from the banned address is refused too; from
	// elsewhere it works.
	req, _ := http.NewRequest("GET", in.URL()+"/private/", nil)
	req.SetBasicAuth("alice", "the right password")
	if resp, err := flooder.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("banned address with the right password: %v %v", resp, err)
	}
	req, _ = http.NewRequest("GET", in.URL()+"/private/", nil)
	req.SetBasicAuth("alice", "the right password")
	if resp, err := other.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("another client with the right password: %v %v", resp, err)
	}
}
