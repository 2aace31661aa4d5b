package forwardauth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/authz/authztest"
	"github.com/warden-gateway/warden/internal/authz/forwardauth"
	"github.com/warden-gateway/warden/internal/engine"
)

type reply struct {
	status int
	header http.Header
	body   string
	code   string
	reason string
}

// ask sends one sub-request to the service from 127.0.0.1.
func ask(t *testing.T, addr, path string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	if hs := req.Header.Get("Host"); hs != "" {
		req.Host = hs
		req.Header.Del("Host")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
	var p struct{ Code, Reason string }
	if json.Unmarshal(b, &p) == nil {
		r.code, r.reason = p.Code, p.Reason
	}
	return r
}

func start(t *testing.T, peers string) (*authztest.Policy, *engine.Engine, string, *authztest.RecordLog) {
	t.Helper()
	p := authztest.WritePolicy(t, peers)
	var log authztest.RecordLog
	eng := authztest.Engine(t, p.Config(t), log.Logger())
	return p, eng, authztest.ForwardAuth(t, eng, "127.0.0.1:0"), &log
}

var traefik = []string{"X-Forwarded-Method: GET", "X-Forwarded-Proto: https", "X-Forwarded-Host: site.example", "X-Forwarded-For: 192.0.2.7"}

func TestOnlyPeersAreBelieved(t *testing.T) {
	// 127.0.0.1 asks, but only 10.0.0.0/8 may.
	_, _, addr, log := start(t, "10.0.0.0/8")
	r := ask(t, addr, "/auth", append(traefik, "X-Forwarded-Uri: /pub/hello.txt")...)
	if r.status != http.StatusForbidden || r.code != "policy_denied" || !strings.Contains(r.reason, "forward_auth.peers") {
		t.Fatalf("a sub-request from a peer not listed: %d %s %q, want 403 policy_denied naming forward_auth.peers", r.status, r.code, r.reason)
	}
	if r.header.Get("X-Warden-User") != "" || r.header["X-Warden-User"] != nil {
		t.Errorf("a refused sub-request carries identity headers")
	}
	recs := log.ByID(t)
	rec, ok := recs[r.header.Get("X-Request-Id")]
	if !ok || len(rec) != 1 || rec[0].Front != forwardauth.Front || !strings.Contains(rec[0].Detail, "127.0.0.1") {
		t.Errorf("the refusal is not logged with the peer: %+v", rec)
	}
}

func TestDescriptions(t *testing.T) {
	_, _, addr, _ := start(t, "")
	cases := []struct {
		name    string
		headers []string
		status  int
		code    string
		reason  string // part of it
	}{
		{"no description", []string{"X-Forwarded-For: 192.0.2.7"}, 400, "bad_request", "X-Forwarded-Uri (Traefik, Caddy) or X-Original-URI (nginx) is missing"},
		{"both conventions", append(traefik, "X-Forwarded-Uri: /pub/hello.txt", "X-Original-URI: /admin/x"), 400, "bad_request", "described twice"},
		{"nginx URI, client's X-Forwarded-Method", []string{"X-Original-URI: /pub/", "X-Forwarded-Method: GET", "X-Forwarded-For: 192.0.2.7"}, 400, "bad_request", "the client sent the other"},
		{"no method", []string{"X-Original-URI: /pub/", "X-Forwarded-For: 192.0.2.7"}, 400, "bad_request", "X-Original-Method"},
		{"two URIs", append(traefik, "X-Forwarded-Uri: /pub/", "X-Forwarded-Uri: /admin/"), 400, "bad_request", "more than once"},
		{"no client", []string{"X-Forwarded-Uri: /pub/", "X-Forwarded-Method: GET"}, 400, "bad_request", "who the client is"},
		{"client not an address", []string{"X-Forwarded-Uri: /pub/", "X-Forwarded-Method: GET", "X-Forwarded-For: 192.0.2.7, unknown"}, 400, "bad_request", "not an IP address"},
		{"nginx with X-Real-IP", []string{"X-Original-URI: /pub/hello.txt", "X-Original-Method: GET", "X-Real-IP: 192.0.2.7", "Host: site.example"}, 200, "", ""},
		{"lower-case method", append([]string{"X-Forwarded-Uri: /pub/"}, "X-Forwarded-Method: delete", "X-Forwarded-For: 192.0.2.7"), 400, "bad_request", "not upper-case"},
		{"the method is judged", []string{"X-Forwarded-Uri: /pub/hello.txt", "X-Forwarded-Method: DELETE", "X-Forwarded-For: 192.0.2.7"}, 403, "path_forbidden", ""},
		{"the reported client is judged", []string{"X-Forwarded-Uri: /pub/hello.txt", "X-Forwarded-Method: GET", "X-Forwarded-For: 192.0.2.7, " + authztest.Blocked}, 403, "ip_blocked", ""},
		{"a client's chain is not believed from an untrusted hop", []string{"X-Forwarded-Uri: /pub/hello.txt", "X-Forwarded-Method: GET", "X-Forwarded-For: " + authztest.Blocked + ", 192.0.2.7"}, 200, "", ""},
		{"a client's chain is believed through a trusted hop", []string{"X-Forwarded-Uri: /pub/hello.txt", "X-Forwarded-Method: GET", "X-Forwarded-For: " + authztest.Blocked + ", " + authztest.Trusted}, 403, "ip_blocked", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ask(t, addr, "/auth", c.headers...)
			if r.status != c.status || r.code != c.code || !strings.Contains(r.reason, c.reason) {
				t.Errorf("%d %s %q, want %d %s %q", r.status, r.code, r.reason, c.status, c.code, c.reason)
			}
		})
	}
}

func TestAllowCarriesTheCaller(t *testing.T) {
	p, _, addr, _ := start(t, "")
	tok := p.Token(t, "rita", "admin", "a,b")
	r := ask(t, addr, "/auth", append(traefik, "X-Forwarded-Uri: /admin/x", "Authorization: Bearer "+tok)...)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if u, roles := r.header.Get("X-Warden-User"), r.header.Get("X-Warden-Roles"); u != "rita" || roles != "admin,a%2Cb" {
		t.Errorf("X-Warden-User %q, X-Warden-Roles %q; want rita and admin,a%%2Cb (a comma in a role encoded, as the gateway does)", u, roles)
	}
	if id := r.header.Get("X-Request-Id"); len(id) != 16 {
		t.Errorf("X-Request-Id %q", id)
	}
	// No caller: both present and empty, so a proxy copying them clears a
	// client's own.
	r = ask(t, addr, "/auth", append(traefik, "X-Forwarded-Uri: /pub/hello.txt", "X-Warden-User: root")...)
	if r.status != 200 || len(r.header["X-Warden-User"]) != 1 || r.header.Get("X-Warden-User") != "" {
		t.Errorf("anonymous allow: %d, X-Warden-User %q", r.status, r.header["X-Warden-User"])
	}
}

func TestNginxRefusalIsKeptForItsErrorPage(t *testing.T) {
	_, _, addr, log := start(t, "")
	nginx := []string{"X-Original-URI: /internal/secret", "X-Original-Method: GET", "X-Forwarded-For: 192.0.2.7", "Host: site.example"}
	first := ask(t, addr, "/auth", nginx...)
	if first.status != http.StatusForbidden || first.header.Get(forwardauth.StatusHeader) != "404" {
		t.Fatalf("auth_request got %d (X-Warden-Status %q); want 403 naming 404", first.status, first.header.Get(forwardauth.StatusHeader))
	}
	id := first.header.Get("X-Request-Id")
	again := ask(t, addr, forwardauth.RefusalPath, append(nginx, forwardauth.RefusalIDHeader+": "+id)...)
	if again.status != 404 || again.code != "not_found" || again.header.Get("X-Request-Id") != id {
		t.Errorf("the error page got %d %s id %s; want the kept 404 not_found of %s", again.status, again.code, again.header.Get("X-Request-Id"), id)
	}
	// An id warden does not hold: judged again, from the same description.
	other := ask(t, addr, forwardauth.RefusalPath, append(nginx, forwardauth.RefusalIDHeader+": 0000000000000000")...)
	if other.status != 404 || other.code != "not_found" || other.header.Get("X-Request-Id") == id {
		t.Errorf("an unknown id got %d %s; want a fresh 404 not_found", other.status, other.code)
	}
	recs := log.ByID(t)
	if len(recs[id]) != 1 {
		t.Errorf("the first refusal is logged %d times, want once", len(recs[id]))
	}
	if len(recs) != 2 {
		t.Errorf("%d records, want 2 (the judgement, and the judgement again for the unknown id)", len(recs))
	}
}

func TestReloadSwapsThePeers(t *testing.T) {
	p, eng, addr, _ := start(t, "")
	desc := append(traefik, "X-Forwarded-Uri: /pub/hello.txt")
	if r := ask(t, addr, "/auth", desc...); r.status != 200 {
		t.Fatalf("before the reload: %d", r.status)
	}
	cfg := p.Config(t)
	cfg.ForwardAuth.Peers = cfg.ForwardAuth.Peers[:0]
	cfg.ForwardAuth.Peers = append(cfg.ForwardAuth.Peers, cfg.TrustedProxies[0]) // 127.0.0.10 only
	rt, err := engine.Build(cfg, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := eng.Swap(rt)
	defer func() { eng.Swap(old); rt.Close() }()
	if r := ask(t, addr, "/auth", desc...); r.status != 403 || r.code != "policy_denied" {
		t.Errorf("after a reload that drops 127.0.0.1 from the peers: %d %s, want 403 policy_denied", r.status, r.code)
	}
}
