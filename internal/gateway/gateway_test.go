package gateway_test

// These tests run warden as it runs in production: a compiled config behind
// a real listening socket on 127.0.0.1, a real upstream that records what
// reaches it, and a real folder on disk. Requests are sent by net/http
// clients and, where the exact bytes matter, written raw over TCP.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/identity"
)

const (
	adminKey = "test-admin-key"
	userKey  = "test-user-key"
)

// upstream is a real HTTP server that records the request target of every
// request that reaches it, exactly as it came on the wire.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits []string
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.hits = append(u.hits, r.RequestURI)
		u.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			// Longer than the handler's timeout; give up when the gateway
			// hangs up so the server closes quickly.
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "upstream saw %s", r.RequestURI)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.hits)
}

func (u *upstream) last() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.hits) == 0 {
		return ""
	}
	return u.hits[len(u.hits)-1]
}

// syncBuffer collects the decision log; the server writes it from many
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// entry returns the decision log entry of a request id.
func (b *syncBuffer) entry(t *testing.T, id string) map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, line := range strings.Split(b.buf.String(), "\n") {
		if !strings.Contains(line, id) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, line)
		}
		if m["request_id"] == id {
			return m
		}
	}
	t.Fatalf("no decision log entry for request %s in:\n%s", id, b.buf.String())
	return nil
}

type gw struct {
	base string // http://127.0.0.1:port
	addr string
	srv  *gateway.Server
	log  *syncBuffer
}

// startGateway writes src as dir/warden.yaml (so relative roots resolve
// against dir), compiles it the way `warden serve` does and serves it on a
// free loopback port until the test ends.
func startGateway(t *testing.T, dir, src string) *gw {
	t.Helper()
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	srv, rt := gatewaytest.Build(t, cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	return serve(t, srv, &cfg.Limits, logs, rt)
}

func serve(t *testing.T, srv *gateway.Server, limits *config.Limits, logs *syncBuffer, rt *gateway.Runtime) *gw {
	t.Helper()
	in := gatewaytest.Serve(t, srv, rt, limits, nil)
	return &gw{base: in.URL(), addr: in.Addr, srv: srv, log: logs}
}

// fixture is the site most tests share: a folder, an upstream, an upstream
// that never answers in time and one that is down.
type fixture struct {
	*gw
	up  *upstream
	dir string
}

const fixtureYAML = `
trusted_proxies: [127.0.0.2]
ip_lists:
  blocked: { cidrs: [203.0.113.0/24] }
identity:
  api_keys:
    header: X-API-Key
    keys:
      - { id: admin, sha256: "{{ADMIN}}", roles: [admin, user] }
      - { id: user, sha256: "{{USER}}", roles: [user] }
rules:
  - name: blocked
    when: { ip_list: blocked }
    action: deny
  - name: office-only
    when: { path: { prefix: /office/ }, not_ip: [198.51.100.0/24] }
    action: deny
  - name: no-backups
    when: { extensions: [bak] }
    action: deny
  - name: hide-internal
    when: { path: { prefix: /internal/ } }
    action: conceal
  - name: admin-area
    when: { path: { prefix: /admin/ } }
    require: { roles_any: [admin] }
    action: allow
  - name: xss
    when: { path: { exact: /xss } }
    action: deny
    reason: "<script>alert('x')</script> & <img src=http://evil/>"
handle:
  - path: /files/
    root: site
    listing_on: [/files/pub/]
  - path: /slow/
    upstream: {{UPSTREAM}}
    timeout: 300ms
  - path: /down/
    upstream: http://{{CLOSED}}
  - path: /
    upstream: {{UPSTREAM}}
`

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	site := filepath.Join(dir, "site", "files")
	writeFile(t, filepath.Join(site, "index.html"), "files home", 0o644)
	writeFile(t, filepath.Join(site, "pub", "a.txt"), "public a", 0o644)
	writeFile(t, filepath.Join(site, "private", "report.txt"), "report", 0o644)
	writeFile(t, filepath.Join(site, "locked.txt"), "secret", 0o000)
	writeFile(t, filepath.Join(site, ".env"), "KEY=1", 0o644)
	up := newUpstream(t)
	src := strings.NewReplacer(
		"{{ADMIN}}", identity.HashKey(adminKey),
		"{{USER}}", identity.HashKey(userKey),
		"{{UPSTREAM}}", up.srv.URL,
		"{{CLOSED}}", closedAddr(t),
	).Replace(fixtureYAML)
	return &fixture{gw: startGateway(t, dir, src), up: up, dir: dir}
}

type response struct {
	status int
	header http.Header
	body   string
}

var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// do sends a request with the given headers ("Name: value").
func do(t *testing.T, client *http.Client, method, url string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, string(body)}
}

func (g *gw) get(t *testing.T, path string, headers ...string) response {
	t.Helper()
	return do(t, noRedirect, "GET", g.base+path, headers...)
}

// raw writes one request line and headers as they are, bypassing every
// client-side normalization, and reads the answer.
func raw(t *testing.T, addr, requestLine string, headers ...string) response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	b.WriteString(requestLine + "\r\nHost: x\r\nConnection: close\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: read response: %v", requestLine, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(body)}
}

// problem is the problem+json body.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	RequestID string `json:"request_id"`
	Error     string `json:"error"`
	Reason    string `json:"reason"`
	// Advice is what the client can do about this cause (refusal.AdviceFor).
	Advice string `json:"advice"`
}

// wantProblem checks a problem+json refusal: status, code, the request id
// of the body equal to the header's, and the RFC 9457 members filled in.
func wantProblem(t *testing.T, r response, status int, code string) problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, r.body)
	}
	var p problem
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("body is not the problem shape: %v\n%s", err, r.body)
	}
	id := r.header.Get("X-Request-Id")
	if id == "" || p.RequestID != id {
		t.Fatalf("request_id %q, X-Request-Id %q", p.RequestID, id)
	}
	if p.Code != code || p.Status != status || p.Type != "urn:warden:reason:"+code ||
		p.Title != http.StatusText(status) || p.Detail == "" || p.Reason != p.Detail || p.Error == "" {
		t.Fatalf("problem %+v, want code %s status %d", p, code, status)
	}
	if (status == 401) != (r.header.Get("WWW-Authenticate") != "") {
		t.Fatalf("status %d with WWW-Authenticate %q", status, r.header.Get("WWW-Authenticate"))
	}
	return p
}

const jsonAccept = "Accept: application/json"

// TestEveryReasonCode: each code of the gateway core, produced by the real
// thing that causes it, through a listening server.
func TestEveryReasonCode(t *testing.T) {
	f := newFixture(t)
	trusted := clientFrom(t, "127.0.0.2")
	cases := []struct {
		name    string
		send    func() response
		status  int
		code    string
		reason  string // "" → not checked
		errWord string
	}{
		{"ip_blocked via a trusted proxy", func() response {
			return do(t, trusted, "GET", f.base+"/", jsonAccept, "X-Forwarded-For: 203.0.113.7")
		}, 403, "ip_blocked", "your IP address is blocked", "forbidden"},
		{"ip_not_allowed", func() response { return f.get(t, "/office/plan", jsonAccept) },
			403, "ip_not_allowed", "your IP address is not on the allow list for this resource", "forbidden"},
		{"path_forbidden by a rule", func() response { return f.get(t, "/db/dump.bak", jsonAccept) },
			403, "path_forbidden", "access to this path is forbidden", "forbidden"},
		{"path_forbidden for a dotfile", func() response { return f.get(t, "/files/.env", jsonAccept) },
			403, "path_forbidden", "", "forbidden"},
		{"not_found by conceal", func() response { return f.get(t, "/internal/", jsonAccept) },
			404, "not_found", "not found", "not_found"},
		{"not_found for a missing file", func() response { return f.get(t, "/files/nope.txt", jsonAccept) },
			404, "not_found", "not found", "not_found"},
		{"directory_listing_disabled", func() response { return f.get(t, "/files/private/", jsonAccept) },
			403, "directory_listing_disabled", "", "forbidden"},
		{"file_not_readable", func() response { return f.get(t, "/files/locked.txt", jsonAccept) },
			403, "file_not_readable", "the file is not readable by the server", "forbidden"},
		{"bad_request", func() response { return raw(t, f.addr, "GET /x/%2e%2e/%2e%2e/etc/passwd HTTP/1.1", jsonAccept) },
			400, "bad_request", "", "bad_request"},
		{"bad_request for garbage from a trusted proxy", func() response {
			return do(t, trusted, "GET", f.base+"/", jsonAccept, "X-Forwarded-For: not-an-address")
		}, 400, "bad_request", "", "bad_request"},
		{"unauthenticated", func() response { return f.get(t, "/admin/", jsonAccept) },
			401, "unauthenticated", "sign in to access this resource", "unauthorized"},
		{"invalid_credentials", func() response { return f.get(t, "/admin/", jsonAccept, "X-API-Key: wrong") },
			401, "invalid_credentials", "the credentials given are not valid", "unauthorized"},
		{"role_required", func() response { return f.get(t, "/admin/", jsonAccept, "X-API-Key: "+userKey) },
			403, "role_required", "account lacks role: admin", "forbidden"},
		{"upstream_error", func() response { return f.get(t, "/down/x", jsonAccept) },
			502, "upstream_error", "the upstream server failed to answer", "bad_gateway"},
		{"upstream_timeout", func() response { return f.get(t, "/slow/x", jsonAccept) },
			504, "upstream_timeout", "the upstream server did not answer in time", "gateway_timeout"},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.up.count()
			start := time.Now()
			r := c.send()
			p := wantProblem(t, r, c.status, c.code)
			if c.reason != "" && p.Reason != c.reason {
				t.Errorf("reason %q, want %q", p.Reason, c.reason)
			}
			if p.Error != c.errWord {
				t.Errorf("error %q, want %q", p.Error, c.errWord)
			}
			// Only the timeout case may touch the upstream (and is
			// refused because it did not answer).
			if hits := f.up.count() - before; hits != 0 && c.code != "upstream_timeout" {
				t.Errorf("a refused request reached the upstream %d times: %s", hits, f.up.last())
			}
			if c.code == "upstream_timeout" {
				if el := time.Since(start); el > 5*time.Second {
					t.Errorf("timeout of 300ms took %v", el)
				}
			}
			// The decision log has the operator's side of it.
			e := f.log.entry(t, p.RequestID)
			if e["code"] != c.code {
				t.Errorf("log entry %v, want code %s", e, c.code)
			}
			seen[c.code] = true
		})
	}
	for _, code := range []string{"ip_blocked", "ip_not_allowed", "path_forbidden", "not_found",
		"directory_listing_disabled", "file_not_readable", "bad_request", "unauthenticated",
		"invalid_credentials", "role_required", "upstream_error", "upstream_timeout"} {
		if !seen[code] {
			t.Errorf("code %s not produced", code)
		}
	}
}

// TestInternalError: a panic inside the pipeline becomes a 500 refusal in
// the usual format, never an allow and never a dropped connection.
func TestInternalError(t *testing.T) {
	f := newFixture(t)
	var explode atomic.Bool
	f.srv.Now = func() time.Time {
		if explode.Load() {
			panic("clock on fire")
		}
		return time.Now()
	}
	explode.Store(true)
	r := f.get(t, "/admin/", jsonAccept, "X-API-Key: "+adminKey)
	p := wantProblem(t, r, 500, "internal_error")
	if strings.Contains(r.body, "clock on fire") || strings.Contains(r.body, "goroutine") {
		t.Errorf("the panic leaked to the client: %s", r.body)
	}
	if f.up.count() != 0 {
		t.Errorf("upstream reached during a panic: %s", f.up.last())
	}
	if e := f.log.entry(t, p.RequestID); !strings.Contains(fmt.Sprint(e["detail"]), "clock on fire") {
		t.Errorf("the log must keep the cause: %v", e)
	}
	explode.Store(false)
	if r := f.get(t, "/admin/", "X-API-Key: "+adminKey); r.status != 200 {
		t.Errorf("after the panic: %d %s", r.status, r.body)
	}
}

// TestNoPolicyLoaded: a server with no runtime refuses with 503, it does
// not pass requests through.
func TestNoPolicyLoaded(t *testing.T) {
	srv := gateway.NewServer(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	g := serve(t, srv, &config.Limits{}, nil, nil)
	wantProblem(t, g.get(t, "/", jsonAccept), 503, "unavailable")
}

// Test401Versus403: 401 (with WWW-Authenticate) while the caller is not
// known; 403 (without) once it is known and lacks the role.
func Test401Versus403(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name   string
		header string
		status int
		code   string
	}{
		{"no key", "", 401, "unauthenticated"},
		{"unknown key", "X-API-Key: nope", 401, "invalid_credentials"},
		{"unknown key as bearer", "Authorization: Bearer nope", 401, "invalid_credentials"},
		{"user key", "X-API-Key: " + userKey, 403, "role_required"},
		{"user key as bearer", "Authorization: Bearer " + userKey, 403, "role_required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hs := []string{jsonAccept}
			if c.header != "" {
				hs = append(hs, c.header)
			}
			r := f.get(t, "/admin/panel", hs...)
			p := wantProblem(t, r, c.status, c.code)
			if c.status == 401 {
				if ch := r.header.Get("WWW-Authenticate"); ch != `ApiKey realm="warden", header="X-API-Key"` {
					t.Errorf("WWW-Authenticate %q", ch)
				}
				if p.Error != "unauthorized" {
					t.Errorf("error %q", p.Error)
				}
				return
			}
			// The shape APIs have long used for this refusal.
			var fields map[string]any
			if err := json.Unmarshal([]byte(r.body), &fields); err != nil {
				t.Fatal(err)
			}
			if fields["error"] != "forbidden" || fields["reason"] != "account lacks role: admin" {
				t.Errorf("error/reason fields: %v", fields)
			}
		})
	}
	if f.up.count() != 0 {
		t.Fatalf("refusals reached the upstream: %s", f.up.last())
	}
	r := f.get(t, "/admin/panel", "X-API-Key: "+adminKey)
	if r.status != 200 || r.body != "upstream saw /admin/panel" {
		t.Fatalf("admin: %d %q", r.status, r.body)
	}
}

var requestIDRe = regexp.MustCompile(`[0-9a-f]{16}`)

// TestConcealIsAnOrdinary404: the 404 of a concealed path and the 404 of a
// file that does not exist are the same bytes, headers and status, in every
// format, apart from the request id.
func TestConcealIsAnOrdinary404(t *testing.T) {
	f := newFixture(t)
	for _, accept := range [][]string{
		{jsonAccept},
		{"Accept: text/html"},
		{"Accept: */*", "User-Agent: curl/8.5.0"},
	} {
		hidden := f.get(t, "/internal/secret.txt", accept...)
		missing := f.get(t, "/files/no-such-file.txt", accept...)
		if hidden.status != 404 || missing.status != 404 {
			t.Fatalf("%v: statuses %d and %d", accept, hidden.status, missing.status)
		}
		hid, mid := hidden.header.Get("X-Request-Id"), missing.header.Get("X-Request-Id")
		if hid == "" || mid == "" || hid == mid {
			t.Fatalf("request ids %q %q", hid, mid)
		}
		if !strings.Contains(hidden.body, hid) || !strings.Contains(missing.body, mid) {
			t.Fatalf("%v: request id not in the body", accept)
		}
		hb := strings.ReplaceAll(hidden.body, hid, "ID")
		mb := strings.ReplaceAll(missing.body, mid, "ID")
		if hb != mb {
			t.Errorf("%v: bodies differ:\nconcealed: %s\n  missing: %s", accept, hb, mb)
		}
		for _, h := range []http.Header{hidden.header, missing.header} {
			h.Del("Date")
			h.Del("X-Request-Id")
		}
		if fmt.Sprint(hidden.header) != fmt.Sprint(missing.header) {
			t.Errorf("%v: headers differ:\nconcealed: %v\n  missing: %v", accept, hidden.header, missing.header)
		}
		if strings.Contains(hb, "hide-internal") || strings.Contains(hb, "internal") {
			t.Errorf("concealed body names the rule or path: %s", hb)
		}
	}
	if f.up.count() != 0 {
		t.Fatalf("concealed path reached the upstream: %s", f.up.last())
	}
}

// TestBodyFormats: problem+json for programs, a self-contained HTML page
// for browsers, text for terminals, each with the request id.
func TestBodyFormats(t *testing.T) {
	f := newFixture(t)

	// JSON: valid, complete, same id as the header.
	r := f.get(t, "/admin/", "Accept: application/json", "X-API-Key: "+userKey)
	p := wantProblem(t, r, 403, "role_required")
	if p.Error != "forbidden" || p.Reason != "account lacks role: admin" {
		t.Errorf("problem %+v", p)
	}
	// application/problem+json asked for by name, and a browser-ish Accept
	// list where JSON wins on q.
	for _, a := range []string{"Accept: application/problem+json", "Accept: text/html;q=0.5, application/json"} {
		wantProblem(t, f.get(t, "/admin/", a, "X-API-Key: "+userKey), 403, "role_required")
	}

	// HTML: for a browser.
	const browserAccept = "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	r = f.get(t, "/admin/", browserAccept, "User-Agent: Mozilla/5.0 (X11; Linux x86_64)", "X-API-Key: "+userKey)
	id := r.header.Get("X-Request-Id")
	if r.status != 403 || r.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("HTML: %d %q", r.status, r.header.Get("Content-Type"))
	}
	for _, must := range []string{id, "role_required", "account lacks role: admin", "Signing in again will not help"} {
		if !strings.Contains(r.body, must) {
			t.Errorf("HTML page lacks %q:\n%s", must, r.body)
		}
	}
	checkSelfContained(t, r.body)

	// HTML escapes what a rule author wrote.
	r = f.get(t, "/xss", "Accept: text/html")
	if r.status != 403 {
		t.Fatalf("xss: %d", r.status)
	}
	if !strings.Contains(r.body, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;img src=http://evil/&gt;") {
		t.Errorf("reason not escaped:\n%s", r.body)
	}
	checkSelfContained(t, r.body)

	// Text: for curl, which sends Accept: */*.
	r = f.get(t, "/admin/", "Accept: */*", "User-Agent: curl/8.5.0", "X-API-Key: "+userKey)
	id = r.header.Get("X-Request-Id")
	if r.status != 403 || r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("text: %d %q", r.status, r.header.Get("Content-Type"))
	}
	wantText := "403 Forbidden: account lacks role: admin\ncode: role_required\n"
	if !strings.HasPrefix(r.body, wantText) || !strings.HasSuffix(r.body, "request id: "+id+"\n") {
		t.Errorf("text body:\n%s", r.body)
	}

	// Go's own client sends no Accept: a program, so JSON.
	wantProblem(t, f.get(t, "/admin/", "X-API-Key: "+userKey), 403, "role_required")

	// HEAD: the status and headers, no body.
	r = do(t, noRedirect, "HEAD", f.base+"/admin/", "X-API-Key: "+userKey)
	if r.status != 403 || r.body != "" || r.header.Get("X-Request-Id") == "" {
		t.Errorf("HEAD: %d %q %v", r.status, r.body, r.header)
	}
}

var (
	htmlTagRe   = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9]*)([^>]*)>`)
	eventAttrRe = regexp.MustCompile(`\bon[a-z]+\s*=`)
)

// checkSelfContained fails when an HTML page loads anything from elsewhere
// or carries active content: it looks at the real tags of the page, so
// escaped text that merely mentions them is fine.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	for _, m := range htmlTagRe.FindAllStringSubmatch(page, -1) {
		tag, attrs := strings.ToLower(m[1]), strings.ToLower(m[2])
		switch tag {
		case "script", "link", "img", "iframe", "object", "embed", "base", "form":
			t.Errorf("HTML page has a <%s> tag: %s", tag, m[0])
		}
		if strings.Contains(attrs, "src=") || strings.Contains(attrs, "href=") || eventAttrRe.MatchString(attrs) {
			t.Errorf("HTML tag loads or runs something: %s", m[0])
		}
	}
	for _, bad := range []string{"@import", "url(", "<script", "<link"} {
		if strings.Contains(strings.ToLower(page), bad) {
			t.Errorf("HTML page holds %q", bad)
		}
	}
}

// TestRequestIDOnEveryResponse: allowed answers carry it too, from files
// and from the upstream, and each request gets its own.
func TestRequestIDOnEveryResponse(t *testing.T) {
	f := newFixture(t)
	ids := map[string]bool{}
	for _, path := range []string{"/", "/files/", "/files/pub/a.txt", "/files/pub/", "/admin/", "/internal/", "/nope"} {
		r := f.get(t, path)
		id := r.header.Get("X-Request-Id")
		if !requestIDRe.MatchString(id) {
			t.Errorf("%s: X-Request-Id %q", path, id)
		}
		if ids[id] {
			t.Errorf("%s: request id %s reused", path, id)
		}
		ids[id] = true
	}
	if r := f.get(t, "/files/pub/a.txt"); r.status != 200 || r.body != "public a" {
		t.Errorf("file: %d %q", r.status, r.body)
	}
	if r := f.get(t, "/files/"); r.status != 200 || r.body != "files home" {
		t.Errorf("index: %d %q", r.status, r.body)
	}
	if r := f.get(t, "/files/pub/"); r.status != 200 || !strings.Contains(r.body, "a.txt") {
		t.Errorf("listing: %d %q", r.status, r.body)
	}
}

// clientFrom is an HTTP client whose connections leave from a given
// loopback address, so the gateway sees that address as the TCP peer.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestForwardedForTrust: client-address headers count only from
// trusted_proxies; from anyone else they are ignored both ways (a spoofed
// blocked address is not blocked, a spoofed allowed address is not let in).
func TestForwardedForTrust(t *testing.T) {
	f := newFixture(t)
	untrusted := clientFrom(t, "127.0.0.1")
	other := clientFrom(t, "127.0.0.3")
	trusted := clientFrom(t, "127.0.0.2")
	cases := []struct {
		name   string
		client *http.Client
		path   string
		hdr    string
		status int
		code   string
		wantIP string // the client_ip the decision log must show
	}{
		{"untrusted peer claims a blocked address: ignored", untrusted, "/", "X-Forwarded-For: 203.0.113.9", 200, "", "127.0.0.1"},
		{"untrusted peer claims it in Forwarded: ignored", untrusted, "/", "Forwarded: for=203.0.113.9", 200, "", "127.0.0.1"},
		{"untrusted peer claims it in X-Real-IP: ignored", other, "/", "X-Real-IP: 203.0.113.9", 200, "", "127.0.0.3"},
		{"untrusted peer claims an allowed address: still refused", untrusted, "/office/", "X-Forwarded-For: 198.51.100.5", 403, "ip_not_allowed", "127.0.0.1"},
		{"untrusted peer: garbage is ignored, not an error", other, "/", "X-Forwarded-For: <script>", 200, "", "127.0.0.3"},
		{"trusted proxy reports a blocked client", trusted, "/", "X-Forwarded-For: 203.0.113.9", 403, "ip_blocked", "203.0.113.9"},
		{"trusted proxy reports an allowed client", trusted, "/office/", "X-Forwarded-For: 198.51.100.5", 200, "", "198.51.100.5"},
		{"trusted proxy: rightmost untrusted address", trusted, "/", "X-Forwarded-For: 198.51.100.5, 203.0.113.9, 127.0.0.2", 403, "ip_blocked", "203.0.113.9"},
		{"trusted proxy: spoofed left part ignored", trusted, "/office/", "X-Forwarded-For: 198.51.100.5, 192.0.2.50", 403, "ip_not_allowed", "192.0.2.50"},
		{"trusted proxy: Forwarded", trusted, "/", `Forwarded: for="203.0.113.9:1234"`, 403, "ip_blocked", "203.0.113.9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.up.count()
			r := do(t, c.client, "GET", f.base+c.path, jsonAccept, c.hdr)
			id := r.header.Get("X-Request-Id")
			if c.code == "" {
				if r.status != c.status || f.up.count() != before+1 {
					t.Fatalf("want it through: %d %s", r.status, r.body)
				}
				return
			}
			wantProblem(t, r, c.status, c.code)
			if f.up.count() != before {
				t.Fatalf("refused request reached the upstream")
			}
			if e := f.log.entry(t, id); e["client_ip"] != c.wantIP {
				t.Errorf("decision log client_ip %v, want %s", e["client_ip"], c.wantIP)
			}
		})
	}
}

// TestUpstreamGetsTheCanonicalPath: what reaches the upstream is exactly
// the path the rules judged, re-encoded one way, and the query untouched.
func TestUpstreamGetsTheCanonicalPath(t *testing.T) {
	f := newFixture(t)
	admin := "X-API-Key: " + adminKey
	for _, c := range []struct {
		target, upstream string
		headers          []string
	}{
		{"/", "/", nil},
		{"/public/a.txt", "/public/a.txt", nil},
		{"/%70ublic/a.txt", "/public/a.txt", nil},
		{"//public///a.txt", "/public/a.txt", nil},
		{"/x/../public/./a.txt", "/public/a.txt", nil},
		{"/public/%2e%2e/other", "/other", nil},
		{"/caf%c3%a9/men%C3%BC", "/caf%C3%A9/men%C3%BC", nil},
		{"/a%20b/c%21d", "/a%20b/c!d", nil}, // an encoded '?' or '#' is refused (internal/bypass)
		{"/100%25", "/100%25", nil},
		{"/p?q=%2F..%2F&x=%00", "/p?q=%2F..%2F&x=%00", nil},
		{"/%61dmin/x/../panel", "/admin/panel", []string{admin}},
		{"/ADMIN/", "/ADMIN/", []string{admin}},
		{"http://x/%61dmin/", "/admin/", []string{admin}},
	} {
		before := f.up.count()
		r := raw(t, f.addr, "GET "+c.target+" HTTP/1.1", c.headers...)
		if r.status != 200 || f.up.count() != before+1 {
			t.Errorf("%s: %d %q, upstream hits %d", c.target, r.status, r.body, f.up.count()-before)
			continue
		}
		if got := f.up.last(); got != c.upstream {
			t.Errorf("%s: upstream saw %q, want %q", c.target, got, c.upstream)
		}
	}
}

// normalizationAttempts are spellings of /admin/ (guarded by a require on
// the prefix /admin/) that some server somewhere reads as /admin/. Each must
// be refused by the rule (401: the rule saw /admin/) or rejected (400: no
// single safe meaning), and must never reach the upstream.
var normalizationAttempts = []struct {
	line   string // request line
	status int
}{
	// the plain forms
	{"GET /admin/ HTTP/1.1", 401},
	{"GET /admin HTTP/1.1", 401},
	{"GET /admin/panel?x=1 HTTP/1.1", 401},
	{"GET /admin? HTTP/1.1", 401},
	// percent-encoded letters: decoded once
	{"GET /%61dmin/ HTTP/1.1", 401},
	{"GET /%61%64%6d%69%6e/ HTTP/1.1", 401},
	{"GET /adm%69n/ HTTP/1.1", 401},
	{"GET /%41DMIN/ HTTP/1.1", 401},
	// double encoding: a second decoder would see /admin/
	{"GET /%2561dmin/ HTTP/1.1", 400},
	{"GET /%252561dmin/ HTTP/1.1", 400},
	{"GET /%25%36%31dmin/ HTTP/1.1", 400},
	{"GET /x/%252e%252e/admin/ HTTP/1.1", 400},
	// doubled slashes and dot segments
	{"GET //admin/ HTTP/1.1", 401},
	{"GET ///admin//panel HTTP/1.1", 401},
	{"GET /./admin/ HTTP/1.1", 401},
	{"GET /%2e/admin/ HTTP/1.1", 401},
	{"GET /x/../admin/ HTTP/1.1", 401},
	{"GET /public/../admin/ HTTP/1.1", 401},
	{"GET /x/%2e%2e/admin/ HTTP/1.1", 401},
	{"GET /x/%2E%2E/admin/ HTTP/1.1", 401},
	{"GET /x/.%2e/admin/ HTTP/1.1", 401},
	{"GET /admin/./ HTTP/1.1", 401},
	{"GET /admin/. HTTP/1.1", 401},
	{"GET /admin/x/.. HTTP/1.1", 401},
	{"GET /admin/x/%2e%2e HTTP/1.1", 401},
	{"GET /../admin/ HTTP/1.1", 400},
	{"GET /%2e%2e/admin/ HTTP/1.1", 400},
	// Tomcat/Jetty path parameters
	{"GET /x/..;/admin/ HTTP/1.1", 400},
	{"GET /admin;/ HTTP/1.1", 400},
	{"GET /admin;jsessionid=1/ HTTP/1.1", 400},
	{"GET /;/admin/ HTTP/1.1", 400},
	{"GET /admin%3b/ HTTP/1.1", 400},
	// case: the require rule matches without regard to case
	{"GET /ADMIN/ HTTP/1.1", 401},
	{"GET /Admin/ HTTP/1.1", 401},
	{"GET /aDmIn/panel HTTP/1.1", 401},
	{"GET /%41dmin/ HTTP/1.1", 401},
	// backslashes (IIS and some frameworks read them as separators)
	{`GET /x\..\admin\ HTTP/1.1`, 400},
	{`GET \admin\ HTTP/1.1`, 400},
	{"GET /x/%5c../admin/ HTTP/1.1", 400},
	{"GET /admin%5c HTTP/1.1", 400},
	{"GET /x%5C..%5Cadmin HTTP/1.1", 400},
	// encoded slashes
	{"GET /admin%2fpanel HTTP/1.1", 400},
	{"GET /%2fadmin/ HTTP/1.1", 400},
	{"GET /x/..%2fadmin/ HTTP/1.1", 400},
	{"GET /x%2F..%2Fadmin%2F HTTP/1.1", 400},
	// NUL and other control characters
	{"GET /admin%00/ HTTP/1.1", 400},
	{"GET /admin/%00 HTTP/1.1", 400},
	{"GET /admin%00.html HTTP/1.1", 400},
	{"GET /admin%09/ HTTP/1.1", 400},
	{"GET /admin%0d%0a/ HTTP/1.1", 400},
	// overlong and invalid UTF-8 (old decoders read %c0%ae as '.')
	{"GET /%c0%ae%c0%ae/admin/ HTTP/1.1", 400},
	{"GET /x/%c0%ae%c0%ae/admin/ HTTP/1.1", 400},
	{"GET /%c0%afadmin/ HTTP/1.1", 400},
	{"GET /x/%e0%80%ae%e0%80%ae/admin/ HTTP/1.1", 400},
	{"GET /admin/%ff HTTP/1.1", 400},
	{"GET /%u0061dmin/ HTTP/1.1", 400},
	// fragments are never sent by a browser; a raw one is refused
	{"GET /admin/#x HTTP/1.1", 400},
	{"GET /#/../admin/ HTTP/1.1", 400},
	// absolute-form request targets
	{"GET http://x/admin/ HTTP/1.1", 401},
	{"GET http://x//admin/ HTTP/1.1", 401},
	{"GET http://x/%61dmin/ HTTP/1.1", 401},
	{"GET https://x/x/../admin/ HTTP/1.1", 401},
	{"GET http://x/admin%2f HTTP/1.1", 400},
	// trailing dots and spaces (Windows drops them from names)
	{"GET /admin./ HTTP/1.1", 400},
	{"GET /admin../ HTTP/1.1", 400},
	{"GET /admin%2e/ HTTP/1.1", 400},
	{"GET /admin%20/ HTTP/1.1", 400},
	{"GET /admin%20%20/panel HTTP/1.1", 400},
	// the method in another case (frameworks that upper-case it would
	// route it as GET)
	{"get /admin/ HTTP/1.1", 400},
	{"Get /admin/ HTTP/1.1", 400},
	// request lines net/http itself rejects
	{"GET admin/ HTTP/1.1", 400},
	{"GET /admin/ panel HTTP/1.1", 400},
}

func TestPathNormalizationAttempts(t *testing.T) {
	f := newFixture(t)
	if n := len(normalizationAttempts); n < 40 {
		t.Fatalf("only %d attempts", n)
	}
	for _, a := range normalizationAttempts {
		before := f.up.count()
		r := raw(t, f.addr, a.line, jsonAccept)
		if r.status != a.status {
			t.Errorf("%-45q → %d, want %d: %s", a.line, r.status, a.status, r.body)
		}
		if r.status != 400 && r.status != 401 && r.status != 403 && r.status != 404 {
			t.Errorf("%q was not refused: %d", a.line, r.status)
		}
		if hits := f.up.count() - before; hits != 0 {
			t.Errorf("%q REACHED THE UPSTREAM as %q", a.line, f.up.last())
		}
		// warden's own refusals carry a code; a request line net/http
		// cannot parse is turned away before warden sees it.
		if id := r.header.Get("X-Request-Id"); id != "" {
			want := map[int]string{400: "bad_request", 401: "unauthenticated"}[a.status]
			if !strings.Contains(r.body, `"code":"`+want+`"`) {
				t.Errorf("%q: body %s, want code %s", a.line, r.body, want)
			}
		} else if a.status != 400 {
			t.Errorf("%q: refusal without X-Request-Id", a.line)
		}
	}
	// The same spellings with the admin key: whatever is let through
	// reaches the upstream as /admin/..., never as another path.
	for _, a := range normalizationAttempts {
		if a.status != 401 {
			continue
		}
		r := raw(t, f.addr, a.line, "X-API-Key: "+adminKey)
		if r.status != 200 {
			t.Errorf("%q with the admin key: %d %s", a.line, r.status, r.body)
			continue
		}
		if got := strings.ToLower(f.up.last()); !strings.HasPrefix(got, "/admin") {
			t.Errorf("%q with the admin key reached the upstream as %q", a.line, f.up.last())
		}
	}
}

// TestPathNormalizationControls: paths that only look like /admin/ pass.
func TestPathNormalizationControls(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ line, upstream string }{
		{"GET / HTTP/1.1", "/"},
		{"GET /public/a.txt HTTP/1.1", "/public/a.txt"},
		// "/admin/" is a prefix of neither: they are other resources.
		{"GET /administrator HTTP/1.1", "/administrator"},
		{"GET /adminx HTTP/1.1", "/adminx"},
		{"GET /admin-panel/ HTTP/1.1", "/admin-panel/"},
		{"GET /x/admin/ HTTP/1.1", "/x/admin/"},
		{"GET /public/admin HTTP/1.1", "/public/admin"},
		{"GET /%2561 HTTP/1.1", ""}, // double encoding is refused anywhere
		{"GET /public/a.txt?next=/admin/ HTTP/1.1", "/public/a.txt?next=/admin/"},
		{"GET http://x/public/ HTTP/1.1", "/public/"},
	} {
		before := f.up.count()
		r := raw(t, f.addr, c.line)
		if c.upstream == "" {
			if r.status != 400 || f.up.count() != before {
				t.Errorf("%q: %d", c.line, r.status)
			}
			continue
		}
		if r.status != 200 || f.up.count() != before+1 || f.up.last() != c.upstream {
			t.Errorf("%q: %d %q; upstream saw %q, want %q", c.line, r.status, r.body, f.up.last(), c.upstream)
		}
	}
}

// TestDecisionLogKeepsTheTraceFromTheClient: the operator gets the rule and
// the trace; the anonymous client gets neither.
func TestDecisionLogKeepsTheTraceFromTheClient(t *testing.T) {
	f := newFixture(t)
	r := f.get(t, "/admin/", jsonAccept, "X-API-Key: "+userKey)
	id := r.header.Get("X-Request-Id")
	e := f.log.entry(t, id)
	if e["rule"] != "admin-area" || e["path"] != "/admin/" || e["status"] != 403.0 || e["trace"] == nil {
		t.Errorf("log entry %v", e)
	}
	if !strings.HasSuffix(fmt.Sprint(e["rule_at"]), "warden.yaml:24") {
		t.Errorf("rule_at %v", e["rule_at"])
	}
	for _, secret := range []string{"admin-area", "trace", "blocked", "warden.yaml"} {
		if strings.Contains(r.body, secret) {
			t.Errorf("client body reveals %q: %s", secret, r.body)
		}
	}
}

// TestPermissionFixIsTheOperatorsToSee: file_not_readable tells the
// operator what to run; the client only learns that the file is unreadable.
func TestFileNotReadableDetailStaysInTheLog(t *testing.T) {
	f := newFixture(t)
	r := f.get(t, "/files/locked.txt", jsonAccept)
	p := wantProblem(t, r, 403, "file_not_readable")
	if strings.Contains(r.body, f.dir) || strings.Contains(r.body, "chmod") {
		t.Errorf("body leaks the disk path or the fix: %s", r.body)
	}
	e := f.log.entry(t, p.RequestID)
	if d := fmt.Sprint(e["detail"]); !strings.Contains(d, "locked.txt") || !strings.Contains(d, "chmod") {
		t.Errorf("log detail %q does not tell the operator the fix", d)
	}
}

// TestSlowClientCannotHoldTheGateway: a request that never finishes its
// headers is cut off (slowloris) per limits.read_header_timeout.
func TestSlowHeadersAreCutOff(t *testing.T) {
	dir := t.TempDir()
	up := newUpstream(t)
	g := startGateway(t, dir, "limits: { read_header_timeout: 200ms }\nhandle:\n  - path: /\n    upstream: "+up.srv.URL+"\n")
	conn, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn)
	if el := time.Since(start); err != nil || el > 3*time.Second {
		t.Fatalf("connection held for %v (err %v)", el, err)
	}
	if up.count() != 0 {
		t.Fatal("half a request reached the upstream")
	}
}
