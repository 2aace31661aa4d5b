package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/match/ipmatch"
)

// testTimeout bounds every wait, so a broken proxy fails a test instead of
// hanging it.
const testTimeout = 5 * time.Second

// seen is what an upstream observed of one request.
type seen struct {
	RequestURI string
	Path       string
	Host       string
	ProtoMajor int
	Header     http.Header
}

// recordingUpstream answers 200 "upstream" and reports each request it saw.
func recordingUpstream(t *testing.T) (*httptest.Server, <-chan seen) {
	t.Helper()
	got := make(chan seen, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{RequestURI: r.RequestURI, Path: r.URL.Path, Host: r.Host, ProtoMajor: r.ProtoMajor, Header: r.Header.Clone()}
		io.WriteString(w, "upstream")
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func receive(t *testing.T, ch <-chan seen) seen {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(testTimeout):
		t.Fatal("upstream never received the request")
		return seen{}
	}
}

// refusal is one call of the ErrorFunc.
type refusal struct {
	code decision.ReasonCode
	err  error
}

// harness is a frontend server that builds a canonical request the way the
// gateway would and hands it to a Proxy.
type harness struct {
	proxy *Proxy
	front *httptest.Server
	// refusals receives every onError call.
	refusals chan refusal
	// served receives a value each time Serve has returned, while it has
	// room; tests that wait on it make few requests.
	served chan struct{}
}

type harnessOptions struct {
	canon func(r *http.Request) *canonical.Request
	user  string
	roles []string
	// wrap lets a test change the request before Serve (e.g. a deadline).
	wrap func(r *http.Request) *http.Request
}

func newHarness(t *testing.T, cfg Config, opts harnessOptions) *harness {
	t.Helper()
	h := &harness{refusals: make(chan refusal, 16), served: make(chan struct{}, 64)}
	if cfg.ErrorLog == nil {
		cfg.ErrorLog = log.New(testWriter{t}, "", 0)
	}
	p, err := New(cfg, func(w http.ResponseWriter, r *http.Request, code decision.ReasonCode, err error) {
		h.refusals <- refusal{code, err}
		w.WriteHeader(code.Status())
		io.WriteString(w, string(code))
	})
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(p.Close)
	canon := opts.canon
	if canon == nil {
		canon = directCanon
	}
	h.proxy = p
	h.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			select {
			case h.served <- struct{}{}:
			default: // nobody is counting; don't block the handler
			}
		}()
		if opts.wrap != nil {
			r = opts.wrap(r)
		}
		if opts.user != "" || opts.roles != nil {
			p.ServeAs(w, r, canon(r), opts.user, opts.roles)
			return
		}
		p.Serve(w, r, canon(r))
	}))
	t.Cleanup(h.front.Close)
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// directCanon is the canonical request of a client connected directly: the
// peer is the client, the path is the request's own.
func directCanon(r *http.Request) *canonical.Request {
	peer := netip.MustParseAddrPort(r.RemoteAddr).Addr()
	return &canonical.Request{
		Method:      r.Method,
		Host:        r.Host,
		Path:        r.URL.Path,
		LowerPath:   strings.ToLower(r.URL.Path),
		EscapedPath: r.URL.EscapedPath(),
		RawQuery:    r.URL.RawQuery,
		ClientIP:    peer,
		PeerIP:      peer,
		Header:      r.Header,
	}
}

func (h *harness) get(t *testing.T, target string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.front.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, body, err := fetch(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// fetch is do for goroutines other than the test's, which must not call
// t.Fatal.
func fetch(req *http.Request) (*http.Response, string, error) {
	client := &http.Client{Timeout: testTimeout}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("reading body of %s: %w", req.URL, err)
	}
	return resp, string(body), nil
}

func (h *harness) expectRefusal(t *testing.T, want decision.ReasonCode) refusal {
	t.Helper()
	select {
	case r := <-h.refusals:
		if r.code != want {
			t.Fatalf("onError code = %q (err %v), want %q", r.code, r.err, want)
		}
		if r.err == nil {
			t.Fatalf("onError(%q) got a nil error", r.code)
		}
		return r
	case <-time.After(testTimeout):
		t.Fatalf("onError was never called, want %q", want)
		return refusal{}
	}
}

func (h *harness) expectNoRefusal(t *testing.T) {
	t.Helper()
	select {
	case r := <-h.refusals:
		t.Fatalf("unexpected onError(%q, %v)", r.code, r.err)
	default:
	}
}

func TestNewRejectsBadUpstreams(t *testing.T) {
	bad := []struct {
		cfg  Config
		want string
	}{
		{Config{Upstream: ""}, "empty"},
		{Config{Upstream: "127.0.0.1:9000"}, "no scheme"},
		{Config{Upstream: "localhost:9000"}, "no scheme"},
		{Config{Upstream: "ftp://example.com"}, "scheme must be http or https"},
		{Config{Upstream: "http://"}, "no host"},
		{Config{Upstream: "http://:8080"}, "no host"},
		{Config{Upstream: "http:///path"}, "no host"},
		{Config{Upstream: "http://u:p@example.com"}, "credentials"},
		{Config{Upstream: "http://example.com/?a=1"}, "query"},
		{Config{Upstream: "http://example.com/#x"}, "fragment"},
		{Config{Upstream: "http://exa mple.com"}, "not a valid URL"},
		{Config{Upstream: "http://example.com/api%2F"}, "ambiguous"},
		{Config{Upstream: "http://example.com", DialTimeout: -time.Second}, "dial timeout must not be negative"},
		{Config{Upstream: "http://example.com", ResponseHeaderTimeout: -1}, "response header timeout"},
		{Config{Upstream: "http://example.com", MaxIdleConnsPerHost: -1}, "max idle connections"},
	}
	for _, tc := range bad {
		p, err := New(tc.cfg, nil)
		if err == nil {
			t.Errorf("New(%+v) = %v, want an error mentioning %q", tc.cfg, p, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) error %q does not mention %q", tc.cfg, err, tc.want)
		}
	}
	for _, good := range []string{"http://127.0.0.1:9000", "HTTPS://example.com/api/", "http://[::1]:80/a%20b"} {
		if _, err := New(Config{Upstream: good}, nil); err != nil {
			t.Errorf("New(%q): %v", good, err)
		}
	}
}

func TestTransportIsTuned(t *testing.T) {
	p, err := New(Config{Upstream: "https://example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := p.transport
	if tr == http.DefaultTransport {
		t.Fatal("the proxy uses the shared default transport")
	}
	if tr.Proxy != nil {
		t.Error("transport takes a proxy from the environment")
	}
	if !tr.ForceAttemptHTTP2 {
		t.Error("https upstream without ForceAttemptHTTP2")
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS config %+v, want MinVersion TLS 1.2", tr.TLSClientConfig)
	}
	if tr.MaxIdleConnsPerHost != DefaultMaxIdleConnsPerHost || tr.MaxIdleConns < tr.MaxIdleConnsPerHost {
		t.Errorf("idle pool %d per host, %d total; want %d", tr.MaxIdleConnsPerHost, tr.MaxIdleConns, DefaultMaxIdleConnsPerHost)
	}
	if tr.ResponseHeaderTimeout != DefaultResponseHeaderTimeout || tr.IdleConnTimeout != DefaultIdleConnTimeout {
		t.Errorf("timeouts: header %v idle %v", tr.ResponseHeaderTimeout, tr.IdleConnTimeout)
	}
	if !tr.DisableCompression {
		t.Error("transport would add its own Accept-Encoding and decompress responses")
	}

	plain, err := New(Config{Upstream: "http://example.com", MaxIdleConnsPerHost: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plain.transport.ForceAttemptHTTP2 {
		t.Error("plain http upstream forces HTTP/2")
	}
	if plain.transport.MaxIdleConnsPerHost != 7 {
		t.Errorf("MaxIdleConnsPerHost = %d, want 7", plain.transport.MaxIdleConnsPerHost)
	}
	if plain.transport == p.transport {
		t.Error("two proxies share one transport")
	}
}

func TestForwardsTheCanonicalPathAndQueryExactly(t *testing.T) {
	cases := []struct {
		name             string
		path, escaped    string
		rawQuery         string
		wantURI          string
		wantUpstreamPath string
	}{
		{"encoded space and percent", "/a b/%x", "/a%20b/%25x", "q=1", "/a%20b/%25x?q=1", "/a b/%x"},
		// Go would write ";" unescaped; the canonical encoding wins.
		{"escaped sub-delim kept", "/a;b", "/a%3Bb", "", "/a%3Bb", "/a;b"},
		{"sub-delims left bare", "/x:y@z!$&'()*+,;=", "/x:y@z!$&'()*+,;=", "", "/x:y@z!$&'()*+,;=", "/x:y@z!$&'()*+,;="},
		// ReverseProxy on its own would drop the unparsable parameters.
		{"query forwarded verbatim", "/s", "/s", "a=1;b=2&c=%zz&&d", "/s?a=1;b=2&c=%zz&&d", "/s"},
		{"unicode", "/café", "/caf%C3%A9", "", "/caf%C3%A9", "/café"},
	}
	up, got := recordingUpstream(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{canon: func(r *http.Request) *canonical.Request {
				c := directCanon(r)
				c.Path, c.EscapedPath, c.RawQuery = tc.path, tc.escaped, tc.rawQuery
				return c
			}})
			// The raw request differs from the canonical one: only the
			// canonical one may reach the upstream.
			resp, body := h.get(t, "/raw/../ignored//path?raw=1", nil)
			if resp.StatusCode != 200 || body != "upstream" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			s := receive(t, got)
			if s.RequestURI != tc.wantURI {
				t.Errorf("upstream request-target %q, want %q", s.RequestURI, tc.wantURI)
			}
			if s.Path != tc.wantUpstreamPath {
				t.Errorf("upstream decoded path %q, want %q", s.Path, tc.wantUpstreamPath)
			}
		})
	}
}

func TestUpstreamPathPrefixIsPrepended(t *testing.T) {
	up, got := recordingUpstream(t)
	for _, prefix := range []string{"/api", "/api/", "/api//"} {
		h := newHarness(t, Config{Upstream: up.URL + prefix}, harnessOptions{})
		h.get(t, "/users/7?x=1", nil)
		if s := receive(t, got); s.RequestURI != "/api/users/7?x=1" {
			t.Errorf("upstream %q: request-target %q, want /api/users/7?x=1", prefix, s.RequestURI)
		}
	}
	h := newHarness(t, Config{Upstream: up.URL + "/my%20api"}, harnessOptions{})
	h.get(t, "/a%2Fb", nil)
	if s := receive(t, got); s.RequestURI != "/my%20api/a%2Fb" || s.Path != "/my api/a/b" {
		t.Errorf("escaped prefix: request-target %q path %q, want /my%%20api/a%%2Fb and /my api/a/b", s.RequestURI, s.Path)
	}
	h = newHarness(t, Config{Upstream: up.URL + "/"}, harnessOptions{})
	h.get(t, "/", nil)
	if s := receive(t, got); s.RequestURI != "/" {
		t.Errorf("root prefix: request-target %q, want /", s.RequestURI)
	}
}

func TestDisagreeingCanonicalPathsFailClosed(t *testing.T) {
	up, got := recordingUpstream(t)
	for _, c := range []struct{ path, escaped string }{
		{"/a", "/b"},
		{"/a b", "/a b"}, // not a valid encoding: net/url would re-encode it
		{"", ""},
		{"relative", "relative"},
	} {
		h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{canon: func(r *http.Request) *canonical.Request {
			cr := directCanon(r)
			cr.Path, cr.EscapedPath = c.path, c.escaped
			return cr
		}})
		resp, _ := h.get(t, "/a", nil)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("path %q escaped %q: status %d, want 500", c.path, c.escaped, resp.StatusCode)
		}
		h.expectRefusal(t, decision.InternalError)
	}
	select {
	case s := <-got:
		t.Fatalf("upstream reached with %q", s.RequestURI)
	default:
	}
}

func TestHostHeader(t *testing.T) {
	up, got := recordingUpstream(t)
	upHost := strings.TrimPrefix(up.URL, "http://")
	for _, preserve := range []bool{false, true} {
		h := newHarness(t, Config{Upstream: up.URL, PreserveHost: preserve}, harnessOptions{})
		req, _ := http.NewRequest(http.MethodGet, h.front.URL+"/", nil)
		req.Host = "site.example:8443"
		do(t, req)
		s := receive(t, got)
		want := upHost
		if preserve {
			want = "site.example:8443"
		}
		if s.Host != want {
			t.Errorf("PreserveHost=%v: upstream Host %q, want %q", preserve, s.Host, want)
		}
		if xfh := s.Header.Get("X-Forwarded-Host"); xfh != "site.example:8443" {
			t.Errorf("PreserveHost=%v: X-Forwarded-Host %q, want the client's Host", preserve, xfh)
		}
	}
}

func TestForwardingHeadersFromAnUntrustedPeer(t *testing.T) {
	up, got := recordingUpstream(t)
	h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{canon: func(r *http.Request) *canonical.Request {
		c := directCanon(r)
		c.ClientIP = netip.MustParseAddr("203.0.113.7")
		return c
	}})
	req, _ := http.NewRequest(http.MethodGet, h.front.URL+"/", nil)
	req.Host = "site.example"
	req.Header.Add("X-Forwarded-For", "6.6.6.6")
	req.Header.Add("X-Forwarded-For", "7.7.7.7")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Forwarded", "for=6.6.6.6;proto=https")
	req.Header.Set("X-Real-IP", "6.6.6.6")
	do(t, req)
	s := receive(t, got)
	want := map[string][]string{
		"X-Forwarded-For":   {"203.0.113.7"},
		"X-Forwarded-Host":  {"site.example"},
		"X-Forwarded-Proto": {"http"},
		"X-Real-Ip":         {"203.0.113.7"},
		"Forwarded":         {`for=203.0.113.7;host="site.example";proto=http`},
	}
	for name, values := range want {
		if fmt.Sprint(s.Header[name]) != fmt.Sprint(values) {
			t.Errorf("%s = %q, want %q", name, s.Header[name], values)
		}
	}
}

func TestForwardingHeadersFromATrustedProxy(t *testing.T) {
	up, got := recordingUpstream(t)
	h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{canon: func(r *http.Request) *canonical.Request {
		c := directCanon(r)
		c.PeerTrusted = true
		c.ClientIP = netip.MustParseAddr("198.51.100.1")
		return c
	}})
	req, _ := http.NewRequest(http.MethodGet, h.front.URL+"/", nil)
	req.Host = "lb.internal"
	req.Header.Add("X-Forwarded-For", "198.51.100.1, 10.0.0.2")
	req.Header.Add("X-Forwarded-For", "10.0.0.3")
	req.Header.Set("X-Forwarded-Host", "www.example")
	req.Header.Set("X-Forwarded-Proto", "HTTPS")
	req.Header.Set("Forwarded", "for=198.51.100.1")
	do(t, req)
	s := receive(t, got)
	if xff := s.Header.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != "198.51.100.1" {
		t.Errorf("X-Forwarded-For = %q, want only the judged client", xff)
	}
	if v := s.Header.Get("X-Forwarded-Host"); v != "www.example" {
		t.Errorf("X-Forwarded-Host = %q, want the trusted proxy's www.example", v)
	}
	if v := s.Header.Get("X-Forwarded-Proto"); v != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want the trusted proxy's https", v)
	}
	if v := s.Header.Get("X-Real-Ip"); v != "198.51.100.1" {
		t.Errorf("X-Real-Ip = %q, want the judged client 198.51.100.1", v)
	}
	if f := s.Header.Values("Forwarded"); len(f) != 1 || f[0] != `for=198.51.100.1;host="www.example";proto=https` {
		t.Errorf("Forwarded = %q, want warden's own element for the judged client", f)
	}

	// A trusted proxy that sent no chain and a TLS connection of our own.
	h2 := newHarness(t, Config{Upstream: up.URL}, harnessOptions{canon: func(r *http.Request) *canonical.Request {
		c := directCanon(r)
		c.PeerTrusted = true
		c.TLS = true
		return c
	}})
	h2.get(t, "/", http.Header{"X-Forwarded-Proto": {"gopher"}})
	s = receive(t, got)
	if xff := s.Header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want 127.0.0.1", xff)
	}
	if v := s.Header.Get("X-Forwarded-Proto"); v != "https" {
		t.Errorf("X-Forwarded-Proto = %q, want https (an invalid value is not kept)", v)
	}
}

func TestClientCannotInjectIdentityHeaders(t *testing.T) {
	up, got := recordingUpstream(t)
	forged := http.Header{
		"X-Warden-User":  {"admin"},
		"X-Warden-Roles": {"admin,root"},
		"X-Warden-Debug": {"1"},
		"x-warden-raw":   {"1"}, // sent as-is; the server canonicalizes it
		"X-Wardenish":    {"kept"},
	}
	h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{})
	h.get(t, "/", forged)
	s := receive(t, got)
	for name := range s.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-warden-") {
			t.Errorf("client header %s reached the upstream: %q", name, s.Header[name])
		}
	}
	if s.Header.Get("X-Wardenish") != "kept" {
		t.Error("an unrelated header that merely starts with X-Warden was dropped")
	}

	h = newHarness(t, Config{Upstream: up.URL}, harnessOptions{user: "alice", roles: []string{"editor", "", "a,b"}})
	h.get(t, "/", forged)
	s = receive(t, got)
	if v := s.Header.Values("X-Warden-User"); len(v) != 1 || v[0] != "alice" {
		t.Errorf("X-Warden-User = %q, want [alice]", v)
	}
	if v := s.Header.Values("X-Warden-Roles"); len(v) != 1 || v[0] != "editor,a%2Cb" {
		t.Errorf("X-Warden-Roles = %q, want [editor,a%%2Cb]", v)
	}
	if _, ok := s.Header["X-Warden-Debug"]; ok {
		t.Error("X-Warden-Debug from the client reached the upstream next to the real identity")
	}
}

func TestSetIdentityHeaders(t *testing.T) {
	h := http.Header{"X-Warden-User": {"mallory"}, "X-Warden-Roles": {"admin"}}
	SetIdentityHeaders(h, "", nil)
	if len(h) != 0 {
		t.Errorf("empty identity left %v", h)
	}
	SetIdentityHeaders(h, "josé\r\nX-Evil: 1 50%", []string{"r1", "ro,le"})
	if v := h.Get(UserHeader); v != "jos%C3%A9%0D%0AX-Evil: 1 50%25" {
		t.Errorf("user header %q", v)
	}
	if v := h.Get(RolesHeader); v != "r1,ro%2Cle" {
		t.Errorf("roles header %q", v)
	}
	SetIdentityHeaders(h, "bob@example.com", nil)
	if v := h.Get(UserHeader); v != "bob@example.com" {
		t.Errorf("plain user changed to %q", v)
	}
	if _, ok := h[RolesHeader]; ok {
		t.Error("roles header survived an identity without roles")
	}
}

func TestConnectionListedHeadersAreRemoved(t *testing.T) {
	var upstreamHeader http.Header
	var mu sync.Mutex
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamHeader = r.Header.Clone()
		mu.Unlock()
		w.Header().Set("Connection", "X-Up-Secret")
		w.Header().Set("X-Up-Secret", "hop")
		w.Header().Set("X-Up-Kept", "end-to-end")
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{})
	resp, _ := h.get(t, "/", http.Header{
		"Connection":          {"X-Secret, X-Other"},
		"X-Secret":            {"hop"},
		"X-Other":             {"hop"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authorization": {"Basic Zm9vOmJhcg=="},
		"X-Kept":              {"end-to-end"},
	})
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"X-Secret", "X-Other", "Keep-Alive", "Proxy-Authorization"} {
		if v, ok := upstreamHeader[name]; ok {
			t.Errorf("hop-by-hop %s reached the upstream: %q", name, v)
		}
	}
	if upstreamHeader.Get("X-Kept") != "end-to-end" {
		t.Error("end-to-end request header lost")
	}
	if v, ok := resp.Header["X-Up-Secret"]; ok {
		t.Errorf("upstream's Connection-listed X-Up-Secret reached the client: %q", v)
	}
	if resp.Header.Get("X-Up-Kept") != "end-to-end" {
		t.Error("end-to-end response header lost")
	}
}

// echoUpgradeUpstream accepts an Upgrade to websocket on /ws, hijacks the
// connection and echoes every byte back.
func echoUpgradeUpstream(t *testing.T, gotPath chan<- string) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath <- r.RequestURI
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("upstream hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		if err := brw.Flush(); err != nil {
			return
		}
		buf := make([]byte, 1024)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				if _, werr := conn.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	return up
}

func TestWebSocketUpgradeEchoes(t *testing.T) {
	gotPath := make(chan string, 1)
	up := echoUpgradeUpstream(t, gotPath)
	h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{})

	conn, err := net.DialTimeout("tcp", h.front.Listener.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testTimeout))
	fmt.Fprintf(conn, "GET /ws?room=1 HTTP/1.1\r\nHost: site.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("upgrade answered %d %v, want 101 websocket", resp.StatusCode, resp.Header)
	}
	if p := <-gotPath; p != "/ws?room=1" {
		t.Errorf("upstream saw %q, want /ws?room=1", p)
	}
	for _, msg := range []string{"hello", "second frame, both ways"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		echo := make([]byte, len(msg))
		if _, err := io.ReadFull(br, echo); err != nil {
			t.Fatalf("reading echo of %q: %v", msg, err)
		}
		if string(echo) != msg {
			t.Errorf("echo %q, want %q", echo, msg)
		}
	}
	h.expectNoRefusal(t)
}

func TestResponsesStreamPartByPart(t *testing.T) {
	for _, tc := range []struct{ name, contentType, first, rest string }{
		{"event-stream", "text/event-stream", "data: one\n\n", "data: two\n\n"},
		{"chunked", "application/octet-stream", "first part|", "second part"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				io.WriteString(w, tc.first)
				http.NewResponseController(w).Flush()
				// The upstream is not finished until the client proves it
				// has the first part.
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, tc.rest)
			}))
			defer up.Close()
			h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{})

			client := &http.Client{Timeout: testTimeout}
			resp, err := client.Get(h.front.URL + "/stream")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ContentLength != -1 {
				t.Errorf("response has a length %d; want a streamed body", resp.ContentLength)
			}
			first := make([]byte, len(tc.first))
			if _, err := io.ReadFull(resp.Body, first); err != nil {
				close(release)
				t.Fatalf("first part did not arrive before the upstream finished: %v", err)
			}
			close(release)
			rest, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(first) != tc.first || string(rest) != tc.rest {
				t.Errorf("got %q then %q", first, rest)
			}
		})
	}
}

func TestRequestBodyIsStreamed(t *testing.T) {
	gotFirst := make(chan string, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, first); err != nil {
			t.Errorf("upstream reading the first part: %v", err)
			return
		}
		gotFirst <- string(first)
		rest, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s%s", first, rest)
	}))
	defer up.Close()
	h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{})

	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, h.front.URL+"/upload", pr)
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Timeout: testTimeout}).Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{string(b), err}
	}()
	io.WriteString(pw, "part1")
	select {
	case f := <-gotFirst:
		if f != "part1" {
			t.Errorf("upstream first read %q", f)
		}
	case <-time.After(testTimeout):
		t.Fatal("the upstream did not get the first part while the client was still sending: the body is buffered")
	}
	io.WriteString(pw, "-part2")
	pw.Close()
	r := <-done
	if r.err != nil || r.body != "part1-part2" {
		t.Errorf("round trip: %q, %v", r.body, r.err)
	}
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestRefusedConnectionIsUpstreamError(t *testing.T) {
	h := newHarness(t, Config{Upstream: "http://" + closedPort(t)}, harnessOptions{})
	resp, body := h.get(t, "/", nil)
	if resp.StatusCode != http.StatusBadGateway || body != string(decision.UpstreamError) {
		t.Errorf("status %d body %q, want 502 upstream_error", resp.StatusCode, body)
	}
	r := h.expectRefusal(t, decision.UpstreamError)
	if !errors.Is(r.err, syscall.ECONNREFUSED) {
		t.Errorf("error %v does not wrap ECONNREFUSED", r.err)
	}
}

func TestDefaultErrorRendererAnswersWithTheStatus(t *testing.T) {
	p, err := New(Config{Upstream: "http://" + closedPort(t), ErrorLog: log.New(testWriter{t}, "", 0)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Serve(w, r, directCanon(r))
	}))
	defer front.Close()
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "upstream_error") {
		t.Errorf("status %d body %q, want 502 upstream_error", resp.StatusCode, body)
	}
}

func TestSlowUpstreamIsUpstreamTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(testTimeout):
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	h := newHarness(t, Config{Upstream: up.URL, ResponseHeaderTimeout: 200 * time.Millisecond}, harnessOptions{})
	start := time.Now()
	resp, body := h.get(t, "/slow", nil)
	if resp.StatusCode != http.StatusGatewayTimeout || body != string(decision.UpstreamTimeout) {
		t.Errorf("status %d body %q, want 504 upstream_timeout", resp.StatusCode, body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("timed out after %v, want about 200ms", took)
	}
	h.expectRefusal(t, decision.UpstreamTimeout)
}

func TestRequestDeadlineIsUpstreamTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(testTimeout):
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{wrap: func(r *http.Request) *http.Request {
		ctx, cancel := context.WithTimeout(r.Context(), 200*time.Millisecond)
		// The timer fires on its own; cancel only frees it once Serve is
		// long done.
		time.AfterFunc(testTimeout, cancel)
		return r.WithContext(ctx)
	}})
	resp, _ := h.get(t, "/slow", nil)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504", resp.StatusCode)
	}
	h.expectRefusal(t, decision.UpstreamTimeout)
}

// rawUpstream accepts connections and hands each to serve.
func rawUpstream(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(testTimeout))
				serve(conn)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// readRequestHead consumes the request line and headers.
func readRequestHead(conn net.Conn) {
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil || line == "\r\n" {
			return
		}
	}
}

func TestBrokenUpstreamsAreUpstreamErrors(t *testing.T) {
	cases := map[string]func(net.Conn){
		"garbage response": func(c net.Conn) {
			readRequestHead(c)
			io.WriteString(c, "this is not HTTP at all\r\n\r\n")
		},
		"connection reset": func(c net.Conn) {
			readRequestHead(c)
			c.(*net.TCPConn).SetLinger(0) // close with RST
		},
		"closed before answering": func(c net.Conn) {
			readRequestHead(c)
		},
		"truncated headers": func(c net.Conn) {
			readRequestHead(c)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/pl")
		},
	}
	for name, serve := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Config{Upstream: rawUpstream(t, serve)}, harnessOptions{})
			resp, body := h.get(t, "/", nil)
			if resp.StatusCode != http.StatusBadGateway || body != string(decision.UpstreamError) {
				t.Errorf("status %d body %q, want 502 upstream_error", resp.StatusCode, body)
			}
			h.expectRefusal(t, decision.UpstreamError)
		})
	}
}

func TestClientGoingAwayIsNotAnUpstreamError(t *testing.T) {
	upstreamSawCancel := make(chan struct{})
	arrived := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-r.Context().Done():
			close(upstreamSawCancel)
		case <-time.After(testTimeout):
		}
	}))
	defer up.Close()
	h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{})

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.front.URL+"/slow", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-arrived:
	case <-time.After(testTimeout):
		t.Fatal("request never reached the upstream")
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client error %v, want context.Canceled", err)
	}
	select {
	case <-h.served:
	case <-time.After(testTimeout):
		t.Fatal("Serve did not return after the client went away")
	}
	select {
	case <-upstreamSawCancel:
	case <-time.After(testTimeout):
		t.Error("the upstream request was not cancelled with the client's")
	}
	h.expectNoRefusal(t)
}

func TestKeepAliveConnectionsAreReused(t *testing.T) {
	const workers = 16
	var newConns atomic.Int32
	var mu sync.Mutex
	var inFlight int
	var release chan struct{} // closed when a wave of workers is in flight
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wave" {
			// Hold every request of a wave until all are in flight, so the
			// wave needs exactly `workers` connections at once.
			mu.Lock()
			wait := release
			if inFlight++; inFlight == workers {
				close(release)
			}
			mu.Unlock()
			select {
			case <-wait:
			case <-time.After(testTimeout):
				t.Error("a wave never had all its requests in flight")
			}
		}
		io.WriteString(w, "ok")
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{})

	// Sequential requests share one connection. (The transport gives up a
	// connection whose request write it cannot confirm within 50ms, which a
	// very loaded machine may cause; hence a little slack.)
	for range 20 {
		if resp, body := h.get(t, "/", nil); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
	}
	if n := newConns.Load(); n > 3 {
		t.Errorf("20 sequential requests opened %d upstream connections, want 1", n)
	}

	wave := func() int32 {
		mu.Lock()
		inFlight, release = 0, make(chan struct{})
		mu.Unlock()
		before := newConns.Load()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, h.front.URL+"/wave", nil)
				if resp, body, err := fetch(req); err != nil {
					t.Error(err)
				} else if resp.StatusCode != 200 || body != "ok" {
					t.Errorf("status %d body %q", resp.StatusCode, body)
				}
			})
		}
		wg.Wait()
		return newConns.Load() - before
	}
	if opened := wave(); opened < workers-3 {
		t.Fatalf("a wave of %d concurrent requests opened only %d connections; the test does not test concurrency", workers, opened)
	}
	// The pool kept all of them: the next wave opens none. (Go's default of
	// 2 idle connections per host would make it open 14.)
	if opened := wave(); opened > 1 {
		t.Errorf("second wave of %d concurrent requests opened %d new upstream connections; idle ones were not kept", workers, opened)
	}
}

func TestHTTPSUpstreamSpeaksHTTP2(t *testing.T) {
	got := make(chan seen, 1)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{RequestURI: r.RequestURI, ProtoMajor: r.ProtoMajor, Header: r.Header.Clone()}
		io.WriteString(w, "secure")
	}))
	up.EnableHTTP2 = true
	up.Config.ErrorLog = log.New(testWriter{t}, "", 0) // the untrusting client's handshake failure
	up.StartTLS()
	defer up.Close()
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())

	h := newHarness(t, Config{Upstream: up.URL + "/base", RootCAs: roots}, harnessOptions{})
	resp, body := h.get(t, "/a%20b?x=1", nil)
	if resp.StatusCode != 200 || body != "secure" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	s := receive(t, got)
	if s.ProtoMajor != 2 {
		t.Errorf("upstream spoke HTTP/%d, want HTTP/2", s.ProtoMajor)
	}
	if s.RequestURI != "/base/a%20b?x=1" {
		t.Errorf("request-target %q", s.RequestURI)
	}

	// Without the test CA the certificate is not trusted.
	untrusting := newHarness(t, Config{Upstream: up.URL}, harnessOptions{})
	if resp, _ := untrusting.get(t, "/", nil); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("untrusted certificate: status %d, want 502", resp.StatusCode)
	}
	untrusting.expectRefusal(t, decision.UpstreamError)
}

func TestInvalidUpgradeProtocolIsBadRequest(t *testing.T) {
	up, got := recordingUpstream(t)
	h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{})
	resp, _ := h.get(t, "/", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"web\x80socket"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	h.expectRefusal(t, decision.BadRequest)
	select {
	case s := <-got:
		t.Errorf("upstream reached: %q", s.RequestURI)
	default:
	}
}

func TestClassify(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		ctx    context.Context
		err    error
		code   decision.ReasonCode
		render bool
	}{
		{cancelled, context.Canceled, decision.None, false},
		{cancelled, errors.New("read: connection reset by peer"), decision.None, false},
		{live, context.DeadlineExceeded, decision.UpstreamTimeout, true},
		{live, fmt.Errorf("wrapped: %w", &net.OpError{Op: "dial", Err: timeoutErr{}}), decision.UpstreamTimeout, true},
		{live, &net.OpError{Op: "dial", Err: errors.New("connection refused")}, decision.UpstreamError, true},
		{live, context.Canceled, decision.UpstreamError, true}, // not the client's: render
	}
	for _, c := range cases {
		code, render := classify(c.ctx, c.err)
		if code != c.code || render != c.render {
			t.Errorf("classify(ctx err %v, %v) = %q, %v; want %q, %v", c.ctx.Err(), c.err, code, render, c.code, c.render)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestUpstreamIsToldTheJudgedClient: whichever header a trusted proxy named
// the client in (Forwarded, X-Real-IP, X-Forwarded-For, or several that
// disagree), the upstream's X-Forwarded-For, X-Real-IP and Forwarded all
// name the one address the rules judged, and nothing else.
func TestUpstreamIsToldTheJudgedClient(t *testing.T) {
	trusted := &ipmatch.Set{}
	for _, c := range []string{"127.0.0.1/32", "10.0.0.0/8"} {
		p, err := ipmatch.ParsePrefix(c)
		if err != nil {
			t.Fatal(err)
		}
		trusted.Add(p)
	}
	opt := &canonical.Options{TrustedProxies: trusted}
	up, got := recordingUpstream(t)
	var judged netip.Addr
	h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{canon: func(r *http.Request) *canonical.Request {
		req, err := canonical.From(r, opt)
		if err != nil {
			t.Errorf("From: %v", err)
			return directCanon(r)
		}
		judged = req.ClientIP
		return req
	}})
	for _, c := range []struct {
		name    string
		headers http.Header
		want    string
		fwdFor  string
	}{
		{"X-Real-IP only", http.Header{"X-Real-Ip": {"198.51.100.7"}}, "198.51.100.7", "198.51.100.7"},
		{"Forwarded only", http.Header{"Forwarded": {"for=198.51.100.8;proto=https"}}, "198.51.100.8", "198.51.100.8"},
		{"Forwarded IPv6", http.Header{"Forwarded": {`for="[2001:db8::9]:4711"`}}, "2001:db8::9", `"[2001:db8::9]"`},
		{"spoofed left of the chain", http.Header{"X-Forwarded-For": {"1.2.3.4, 198.51.100.10, 10.0.0.2"}}, "198.51.100.10", "198.51.100.10"},
		{"Forwarded beats a spoofed X-Forwarded-For", http.Header{"Forwarded": {"for=198.51.100.11"}, "X-Forwarded-For": {"6.6.6.6"}, "X-Real-Ip": {"7.7.7.7"}}, "198.51.100.11", "198.51.100.11"},
		{"no chain: the proxy is the client", http.Header{}, "127.0.0.1", "127.0.0.1"},
	} {
		h.get(t, "/", c.headers)
		s := receive(t, got)
		if judged.String() != c.want {
			t.Errorf("%s: rules judged %v, want %s", c.name, judged, c.want)
		}
		if v := s.Header.Values("X-Forwarded-For"); len(v) != 1 || v[0] != c.want {
			t.Errorf("%s: X-Forwarded-For = %q, want %q", c.name, v, c.want)
		}
		if v := s.Header.Values("X-Real-Ip"); len(v) != 1 || v[0] != c.want {
			t.Errorf("%s: X-Real-IP = %q, want %q", c.name, v, c.want)
		}
		if v := s.Header.Values("Forwarded"); len(v) != 1 || !strings.HasPrefix(v[0], "for="+c.fwdFor+";") {
			t.Errorf("%s: Forwarded = %q, want for=%s", c.name, v, c.fwdFor)
		}
	}
}

// TestOverrideHeadersNeverReachTheUpstream: even a caller that skipped
// canonical.FillFrom does not pass a client's path or host override on; a
// trusted proxy's forward-auth headers pass.
func TestOverrideHeadersNeverReachTheUpstream(t *testing.T) {
	up, got := recordingUpstream(t)
	for _, trusted := range []bool{false, true} {
		h := newHarness(t, Config{Upstream: up.URL}, harnessOptions{canon: func(r *http.Request) *canonical.Request {
			c := directCanon(r)
			c.PeerTrusted = trusted
			return c
		}})
		hd := http.Header{}
		for _, o := range canonical.OverrideHeaders() {
			hd[o.Name] = []string{"/admin/"}
		}
		h.get(t, "/", hd)
		s := receive(t, got)
		for _, o := range canonical.OverrideHeaders() {
			v := s.Header.Get(o.Name)
			switch o.Name {
			case "X-Forwarded-Host", "X-Forwarded-Proto":
				// Replaced by warden's own value (a trusted proxy's host is
				// believed).
				if !trusted && v == "/admin/" {
					t.Errorf("the client's %s reached the upstream", o.Name)
				}
			default:
				if passes := trusted && o.FromTrustedProxy; passes != (v != "") {
					t.Errorf("trusted=%v: %s upstream = %q", trusted, o.Name, v)
				}
			}
		}
	}
}
