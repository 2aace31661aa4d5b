package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/state/redistest"
)

// bansPolicy denies /.env (path_forbidden) and bans a client after three
// such probes in a minute; the admin listener is on adminAddr.
func bansPolicy(adminAddr, tokenFile string) string {
	return `admin:
  listen: ` + adminAddr + `
  token_file: ` + tokenFile + `
rules:
  - name: no-dotfiles
    when: { path: { prefix: [/.env] } }
    action: deny
    code: path_forbidden
handle:
  - path: /
    root: .
bans:
  - name: probes
    count: [path_forbidden]
    after: 3
    within: 1m
    ban_for: 1h
`
}

var gatewayLineRe = regexp.MustCompile(`serving \S+ on (http://127\.0\.0\.1:\d+)`)

type bansServe struct {
	base, admin, tokenFile, dir string
	p                           *servedProcess
}

func startBansServe(t *testing.T, adminAddr string) *bansServe {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("home"), 0o644); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte("bans-test-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if adminAddr == "" {
		adminAddr = freeAddr(t)
	}
	cfg := filepath.Join(dir, "w.yaml")
	if err := os.WriteFile(cfg, []byte(bansPolicy(adminAddr, tokenFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, "--config", cfg)
	// startServe takes the first address printed, the admin listener's;
	// the gateway's line follows it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := gatewayLineRe.FindStringSubmatch(p.stderr.String()); m != nil {
			return &bansServe{base: m[1], admin: adminAddr, tokenFile: tokenFile, dir: dir, p: p}
		}
		if time.Now().After(deadline) {
			t.Fatalf("warden serve printed no gateway address:\n%s", p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get sends GET path from the loopback address peer and returns the status
// and the refusal's code (problem+json).
func (s *bansServe) get(t *testing.T, peer, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.base+path, nil)
	req.Header.Set("Accept", "application/json")
	res, err := clientFromPeer(peer).Do(req)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, peer, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var p struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(b, &p)
	return res.StatusCode, p.Code
}

// bans runs `warden bans args...` in process against s.
func (s *bansServe) bans(args ...string) result {
	var out, errb bytes.Buffer
	code := runBans(append(args, "--admin", s.admin, "--token-file", s.tokenFile), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestBansCLIAgainstARunningWarden(t *testing.T) {
	s := startBansServe(t, "")

	// Earn a ban from 127.0.0.2: three probes, then even / is refused.
	for i := range 3 {
		if code, reason := s.get(t, "127.0.0.2", "/.env"); code != 403 || reason != "path_forbidden" {
			t.Fatalf("probe %d: %d %s", i, code, reason)
		}
	}
	if code, reason := s.get(t, "127.0.0.2", "/"); code != 403 || reason != "banned" {
		t.Fatalf("after three probes: %d %s, want 403 banned", code, reason)
	}
	if code, _ := s.get(t, "127.0.0.3", "/"); code != 200 {
		t.Fatalf("another client must not be banned: %d", code)
	}

	// list shows it, as a table and as JSON.
	r := s.bans("list")
	if r.code != 0 || !strings.Contains(r.stdout, "ip:127.0.0.2") || !strings.Contains(r.stdout, "KEY") {
		t.Fatalf("bans list: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = s.bans("list", "--json")
	var list []struct {
		Key   string    `json:"key"`
		Until time.Time `json:"until"`
		Level int       `json:"level"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list) != 1 || list[0].Key != "ip:127.0.0.2" {
		t.Fatalf("bans list --json: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if left := time.Until(list[0].Until); left < 55*time.Minute || left > 61*time.Minute {
		t.Errorf("the ban should last about ban_for (1h); ends in %s", left)
	}

	// remove lifts it: the next request passes.
	r = s.bans("remove", "127.0.0.2")
	if r.code != 0 || !strings.Contains(r.stdout, "lifted the ban on ip:127.0.0.2") {
		t.Fatalf("bans remove: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if code, _ := s.get(t, "127.0.0.2", "/"); code != 200 {
		t.Fatalf("after bans remove: %d, want 200", code)
	}
	if r = s.bans("remove", "127.0.0.2"); r.code != 0 || !strings.Contains(r.stdout, "was not banned") {
		t.Errorf("removing twice: %d %q", r.code, r.stdout)
	}

	// add a CIDR: a client inside it is refused 403 banned at once, one
	// outside is not.
	r = s.bans("add", "127.0.1.0/24", "--for", "10m", "--reason", "test")
	if r.code != 0 || !strings.Contains(r.stdout, "banned net:127.0.1.0/24") {
		t.Fatalf("bans add: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if code, reason := s.get(t, "127.0.1.9", "/"); code != 403 || reason != "banned" {
		t.Fatalf("a client in a banned CIDR: %d %s, want 403 banned", code, reason)
	}
	if code, _ := s.get(t, "127.0.0.16", "/"); code != 200 {
		t.Fatalf("a client outside the banned CIDR: %d", code)
	}
	if r = s.bans("list"); !strings.Contains(r.stdout, "net:127.0.1.0/24") || !strings.Contains(r.stdout, "test") {
		t.Errorf("the added ban is not listed with its reason:\n%s", r.stdout)
	}
}

func TestBansCLIRefusals(t *testing.T) {
	s := startBansServe(t, "")

	// A wrong token is refused by the listener, and the CLI says so.
	bad := filepath.Join(s.dir, "bad.token")
	os.WriteFile(bad, []byte("not-the-token-at-all-xxxx"), 0o600)
	var out, errb bytes.Buffer
	code := runBans([]string{"list", "--admin", s.admin, "--token-file", bad}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "token is wrong or missing") {
		t.Fatalf("wrong token: exit %d, stderr %q", code, errb.String())
	}
	// No token at all: the same refusal (the env var is empty here).
	t.Setenv("WARDEN_ADMIN_TOKEN", "")
	errb.Reset()
	if code := runBans([]string{"add", "127.0.0.5", "--for", "1h", "--admin", s.admin}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "WARDEN_ADMIN_TOKEN") {
		t.Fatalf("no token: exit %d, stderr %q", code, errb.String())
	}
	// The env var works in place of the file.
	t.Setenv("WARDEN_ADMIN_TOKEN", "bans-test-token-0123456789")
	errb.Reset()
	out.Reset()
	if code := runBans([]string{"list", "--admin", s.admin}, &out, &errb); code != 0 || !strings.Contains(out.String(), "no bans in force") {
		t.Fatalf("token from the env: exit %d, %q %q", code, out.String(), errb.String())
	}

	// Malformed targets and durations are named, with what is accepted.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "not-an-address", "--for", "1h"}, "want an address, a CIDR or a key"},
		{[]string{"add", "999.1.1.1/8", "--for", "1h"}, "want an address, a CIDR or a key"},
		{[]string{"remove", "mac:00:11"}, "unknown kind"},
		{[]string{"add", "127.0.0.5", "--for", "soon"}, "want a positive duration such as 30m, 1h or 7d"},
		{[]string{"add", "127.0.0.5"}, "want a positive duration"},
		{[]string{"frobnicate"}, "unknown subcommand"},
	} {
		r := s.bans(c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("bans %v: exit %d, stderr %q, want it to say %q", c.args, r.code, r.stderr, c.want)
		}
	}

	// Nothing listening: the address is named, with how to enable it.
	closed := freeAddr(t)
	errb.Reset()
	if code := runBans([]string{"list", "--admin", closed}, &out, &errb); code == 0 ||
		!strings.Contains(errb.String(), closed) || !strings.Contains(errb.String(), "admin.listen") {
		t.Fatalf("connection refused: exit %d, stderr %q", code, errb.String())
	}
}

// TestBansCLIOverAUnixSocket: admin.listen unix:/path serves the ban API on
// a socket only its owner may open.
func TestBansCLIOverAUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	s := startBansServe(t, "unix:"+sock)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v %v", fi, err)
	}
	if r := s.bans("add", "127.0.0.7", "--for", "1h"); r.code != 0 {
		t.Fatalf("bans add over the socket: %d %s", r.code, r.stderr)
	}
	if code, reason := s.get(t, "127.0.0.7", "/"); code != 403 || reason != "banned" {
		t.Fatalf("banned over the socket: %d %s", code, reason)
	}
}

// TestExplainShowsTheSharedCount: with the counters in Redis, `warden
// explain` reads the count that a running warden's traffic left there (it
// peeks; it does not charge).
func TestExplainShowsTheSharedCount(t *testing.T) {
	rs := redistest.Start(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("home"), 0o644)
	cfg := filepath.Join(dir, "w.yaml")
	os.WriteFile(cfg, []byte(`state:
  store: redis
  redis: { addr: "`+rs.Addr+`" }
rules:
  - name: per-ip
    rate_limit: { requests: 10, per: 1m }
handle:
  - path: /
    root: .
`), 0o644)
	p := startServe(t, "--config", cfg)
	left := func() string {
		t.Helper()
		r := warden(t, dir, "explain", "--config", cfg, "GET", "http://x/", "--ip", "127.0.0.4")
		m := regexp.MustCompile(`rate limit per-ip: key (\S+), (\d+) left`).FindStringSubmatch(r.stdout)
		if r.code != 0 || m == nil || m[1] != "per-ip|ip:127.0.0.4" {
			t.Fatalf("explain: %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		return m[2]
	}
	if got := left(); got != "10" {
		t.Fatalf("before any request: %s left, want 10", got)
	}
	for range 4 {
		req, _ := http.NewRequest("GET", p.base+"/", nil)
		res, err := clientFromPeer("127.0.0.4").Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("request: %v %v", res, err)
		}
		res.Body.Close()
	}
	// Four charged by the gateway; explain itself charges nothing.
	if got := left(); got != "6" {
		t.Fatalf("after four requests: %s left, want 6", got)
	}
	if got := left(); got != "6" {
		t.Fatalf("explain charged the limit: %s left, want 6", got)
	}
}
