package gateway_test

// Limits and the checks that run before any rule, through a real listening
// server built the way `warden serve` builds it (WrapListener +
// NewHTTPServer). Where the bytes matter they are written raw over TCP.

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/tlsconf/tlstest"
)

// limUpstream records every request that reaches it with its body.
type limUpstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string // "METHOD URI body"
}

func newLimUpstream(t *testing.T) *limUpstream {
	t.Helper()
	u := &limUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, fmt.Sprintf("%s %s %s", r.Method, r.RequestURI, body))
		u.mu.Unlock()
		if err != nil {
			http.Error(w, "body: "+err.Error(), 400)
			return
		}
		fmt.Fprintf(w, "upstream got %s %s %d", r.Method, r.RequestURI, len(body))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *limUpstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// startLimited serves a config the way cmd/warden does, on a free port.
func startLimited(t *testing.T, yaml string) (addr string, logs *strings.Builder) {
	t.Helper()
	cfg, err := config.Parse("limits.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return gatewaytest.Start(t, cfg, slog.New(slog.NewJSONHandler(&lockedLog{}, nil)), nil).Addr, nil
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

type limResponse struct {
	status int
	header http.Header
	body   string
	close  bool // the server said Connection: close
}

// exchange writes raw bytes on a fresh connection and reads every response
// until the server closes the connection or stops answering.
func exchange(t *testing.T, addr, raw string) []limResponse {
	t.Helper()
	return exchangeOn(t, func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }, raw)
}

// exchangeOn is exchange over a connection dial makes (TLS, say).
func exchangeOn(t *testing.T, dial func() (net.Conn, error), raw string) []limResponse {
	t.Helper()
	conn, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var out []limResponse
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, limResponse{resp.StatusCode, resp.Header, string(body), resp.Close})
		if resp.Close {
			return out
		}
		// Give pipelined answers a moment; an idle server is done.
		_ = conn.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	}
}

// front is a gateway as a client reaches it: over plain HTTP or HTTPS.
type front struct {
	name string
	dial func() (net.Conn, error)
}

// startFronts serves one policy twice, as `warden serve` does without and
// with a tls section, and dials each with HTTP/1.1 (over TLS through ALPN).
func startFronts(t *testing.T, policy string) []front {
	t.Helper()
	cfg, err := config.Parse("limits.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(&lockedLog{}, nil))
	plain := gatewaytest.Start(t, cfg, logger, nil)
	ca := tlstest.NewCA(t, "framing CA")
	leaf := ca.Issue(t, tlstest.Spec{CN: "x", DNS: []string{"x"}})
	secure := gatewaytest.Start(t, cfg, logger, func(hs *http.Server) {
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, NextProtos: []string{"h2", "http/1.1"}}
	})
	return []front{
		{"http", func() (net.Conn, error) { return net.DialTimeout("tcp", plain.Addr, 5*time.Second) }},
		{"https", func() (net.Conn, error) {
			return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", secure.Addr,
				&tls.Config{RootCAs: ca.Pool(), ServerName: "x", NextProtos: []string{"http/1.1"}})
		}},
	}
}

type limProblem struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Error     string `json:"error"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id"`
}

func limWantProblem(t *testing.T, what string, r limResponse, status int, code, errWord string) limProblem {
	t.Helper()
	var p limProblem
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: Content-Type %q: %s", what, ct, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), &p); err != nil {
		t.Fatalf("%s: %v: %s", what, err, r.body)
	}
	if p.Code != code || p.Error != errWord || p.Status != status || p.RequestID == "" || p.RequestID != r.header.Get("X-Request-Id") {
		t.Fatalf("%s: problem %+v, want code %s error %s", what, p, code, errWord)
	}
	return p
}

const limPolicy = `
rules:
  - name: everything-open
    when: { path: { prefix: / } }
    action: allow
handle:
  - path: /
    upstream: %s
`

// smuggle is appended to every ambiguous request: if any framing lets it
// through, the upstream sees GET /smuggled.
const smuggle = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

// TestSmugglingShapesAreRefused: framings that two HTTP parsers can read
// two ways are refused before any rule runs, and nothing behind them on the
// connection reaches the upstream. warden answers 400 bad_request in its
// own format where net/http hands the request over; the shapes net/http
// rejects itself get its plain 400 (or the 501 RFC 9112 prescribes for an
// unknown transfer coding), also before any rule.
//
// The same holds over HTTPS: a CDN or load balancer that talks HTTP/1.1
// over TLS to warden can disagree with net/http as well, so the framer
// reads the plaintext there too.
func TestSmugglingShapesAreRefused(t *testing.T) {
	up := newLimUpstream(t)
	fronts := startFronts(t, fmt.Sprintf(limPolicy, up.srv.URL))
	const h = "Host: x\r\nAccept: application/json\r\n"
	cases := []struct {
		name string
		raw  string
		// own: warden's refusal (problem+json); else net/http's plain one.
		own    bool
		status int
	}{
		{"CL.TE", "POST / HTTP/1.1\r\n" + h + "Content-Length: 45\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggle, true, 400},
		{"TE.CL", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n2c\r\n" + smuggle + "\r\n0\r\n\r\n", true, 400},
		{"duplicate CL, same value", "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc" + smuggle, true, 400},
		{"duplicate CL, different values", "POST / HTTP/1.1\r\n" + h + "Content-Length: 3\r\nContent-Length: 40\r\n\r\nabc" + smuggle, false, 400},
		{"CL list", "POST / HTTP/1.1\r\n" + h + "Content-Length: 3, 3\r\n\r\nabc" + smuggle, false, 400},
		{"CL with sign", "POST / HTTP/1.1\r\n" + h + "Content-Length: +3\r\n\r\nabc" + smuggle, false, 400},
		{"obs-fold (space)", "GET / HTTP/1.1\r\n" + h + "X-A: b\r\n c\r\n\r\n" + smuggle, true, 400},
		{"obs-fold (tab)", "GET / HTTP/1.1\r\n" + h + "X-A: b\r\n\tTransfer-Encoding: chunked\r\n\r\n" + smuggle, true, 400},
		{"obs-fold of Transfer-Encoding", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\nabc" + smuggle, true, 400},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\n" + h + "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggle, true, 400},
		{"TE identity", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc" + smuggle, false, 501},
		{"TE chunked, identity", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggle, false, 501},
		{"TE gzip, chunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggle, false, 501},
		{"TE twice", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggle, false, 501},
		{"TE xchunked", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggle, false, 501},
		{"space before colon", "POST / HTTP/1.1\r\n" + h + "Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc" + smuggle, false, 400},
		{"bare LF line ends", "GET / HTTP/1.1\n" + strings.ReplaceAll(h, "\r\n", "\n") + "\n" + smuggle, true, 400},
		{"bare LF in one header line", "GET / HTTP/1.1\r\n" + h + "X-A: b\nContent-Length: 0\r\n\r\n" + smuggle, true, 400},
		{"bare CR", "GET / HTTP/1.1\r\n" + h + "X-A: b\rTransfer-Encoding: chunked\r\n\r\n" + smuggle, false, 400},
		{"NUL in a header", "GET / HTTP/1.1\r\n" + h + "X-A: b\x00c\r\n\r\n" + smuggle, false, 400},
		{"empty line before the request line", "\r\nGET / HTTP/1.1\r\n" + h + "\r\n" + smuggle, false, 400},
		{"HTTP/0.9", "GET /\r\n\r\n" + smuggle, false, 400},
	}
	for _, f := range fronts {
		for _, c := range cases {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				before := len(up.requests())
				rs := exchangeOn(t, f.dial, c.raw)
				if len(rs) == 0 {
					t.Fatalf("no answer at all")
				}
				if c.own {
					p := limWantProblem(t, c.name, rs[0], c.status, "bad_request", "bad_request")
					if !strings.Contains(p.Reason, "framing") {
						t.Errorf("reason %q does not say what was wrong", p.Reason)
					}
					if !rs[0].headerClose() {
						t.Errorf("the connection must close after an ambiguous request")
					}
				} else if rs[0].status != c.status {
					t.Fatalf("status %d, want %d: %s", rs[0].status, c.status, rs[0].body)
				}
				if len(rs) > 1 {
					t.Errorf("%d more answers on the connection after the refusal: %+v", len(rs)-1, rs[1:])
				}
				if got := up.requests()[before:]; len(got) > 0 {
					t.Errorf("reached the upstream: %q", got)
				}
			})
		}
	}
}

func (r limResponse) headerClose() bool { return r.close }

// TestFramingControls: ordinary framings, keep-alive and pipelining pass,
// with every body intact, so the framing check costs no false refusals.
func TestFramingControls(t *testing.T) {
	up := newLimUpstream(t)
	fronts := startFronts(t, fmt.Sprintf(limPolicy, up.srv.URL))
	cases := []struct {
		name string
		raw  string
		want []string // what the upstream must see, in order
	}{
		{"pipelined GETs", "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			[]string{"GET /a ", "GET /b ", "GET /c "}},
		{"Content-Length body then a GET", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			[]string{"POST /p hello", "GET /q "}},
		{"chunked with extension and trailer", "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n3;name=v\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			[]string{"POST /c abcde", "GET /after "}},
		{"HTTP/1.0 keep-alive", "GET /old HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\nGET /old2 HTTP/1.0\r\nHost: x\r\n\r\n",
			[]string{"GET /old ", "GET /old2 "}},
		{"HTTP/1.0 without Host", "GET /nohost HTTP/1.0\r\n\r\n", []string{"GET /nohost "}},
		{"OPTIONS * then GET", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\nGET /after-star HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			[]string{"GET /after-star "}},
		{"refused upgrade then GET", "GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			[]string{"GET /up ", "GET /next "}},
		{"tab in header value, Content-Length: 0", "POST /z HTTP/1.1\r\nHost: x\r\nX-A:\tb\tc\r\nContent-Length:\t0\r\nConnection: close\r\n\r\n", []string{"POST /z "}},
	}
	for _, f := range fronts {
		for _, c := range cases {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				before := len(up.requests())
				rs := exchangeOn(t, f.dial, c.raw)
				got := up.requests()[before:]
				if len(got) != len(c.want) {
					t.Fatalf("upstream saw %q, want %q (answers %+v)", got, c.want, rs)
				}
				for i := range got {
					if got[i] != c.want[i] {
						t.Errorf("request %d: upstream saw %q, want %q", i, got[i], c.want[i])
					}
				}
				for _, r := range rs {
					if r.status >= 400 {
						t.Errorf("refused: %d %s", r.status, r.body)
					}
				}
			})
		}
	}
}

// TestAmbiguousChunkStopsTheConnection: a chunk-size line net/http reads
// leniently ("3 " with trailing whitespace) may be served, but nothing after
// it on the connection is: a front proxy could have read those bytes as part
// of the body.
func TestAmbiguousChunkStopsTheConnection(t *testing.T) {
	up := newLimUpstream(t)
	for _, f := range startFronts(t, fmt.Sprintf(limPolicy, up.srv.URL)) {
		for _, chunk := range []string{"3 \r\nabc\r\n0\r\n\r\n", "3\r\nabcX\r\n0\r\n\r\n", "0x3\r\nabc\r\n0\r\n\r\n", "3\nabc\n0\n\n"} {
			before := len(up.requests())
			exchangeOn(t, f.dial, "POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+chunk+smuggle)
			for _, s := range up.requests()[before:] {
				if strings.Contains(s, "smuggled") {
					t.Errorf("%s, chunk %q: the request after it reached the upstream: %q", f.name, chunk, s)
				}
			}
		}
	}
}

// TestOverrideHeadersAreRefused: headers that make frameworks route on
// another path or method than the one judged are refused from anyone.
func TestOverrideHeadersAreRefused(t *testing.T) {
	up := newLimUpstream(t)
	addr, _ := startLimited(t, fmt.Sprintf(limPolicy, up.srv.URL))
	for _, hd := range []string{
		"X-Original-URL: /admin/", "X-Rewrite-URL: /admin/", "x-original-url: /admin/",
		"X-HTTP-Method-Override: DELETE", "X-HTTP-Method: PUT", "X-Method-Override: PATCH",
		"X-Middleware-Subrequest: middleware:middleware:middleware:middleware:middleware",
	} {
		rs := exchange(t, addr, "GET /public HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n"+hd+"\r\n\r\n")
		if len(rs) != 1 {
			t.Fatalf("%s: %d answers", hd, len(rs))
		}
		p := limWantProblem(t, hd, rs[0], 400, "bad_request", "bad_request")
		name, _, _ := strings.Cut(hd, ":")
		if !strings.Contains(strings.ToLower(p.Reason), strings.ToLower(name)) {
			t.Errorf("%s: reason %q does not name the header", hd, p.Reason)
		}
	}
	if got := up.requests(); len(got) != 0 {
		t.Errorf("reached the upstream: %q", got)
	}
}

// TestBodyLimit: a declared body over max_body_bytes is refused with 413
// before it is read; a chunked one is cut off at the limit and never
// reaches the upstream whole; one under the limit passes intact.
func TestBodyLimit(t *testing.T) {
	up := newLimUpstream(t)
	addr, _ := startLimited(t, "limits: { max_body_bytes: 1000 }\n"+fmt.Sprintf(limPolicy, up.srv.URL))
	big := strings.Repeat("x", 2000)
	rs := exchange(t, addr, "POST /big HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nContent-Length: 2000\r\n\r\n"+big+smuggle)
	if len(rs) != 1 {
		t.Fatalf("%d answers: %+v", len(rs), rs)
	}
	p := limWantProblem(t, "declared", rs[0], 413, "bad_request", "payload_too_large")
	if p.Reason != "request body too large" || !rs[0].headerClose() {
		t.Errorf("reason %q, connection closed: %v", p.Reason, rs[0].close)
	}
	// Chunked: the size is learnt while reading.
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big)
	rs = exchange(t, addr, "POST /bigchunked HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+chunked)
	t.Logf("chunked over the limit: %+v", rs)
	if len(rs) != 1 || rs[0].status < 400 {
		t.Fatalf("chunked body over the limit: %+v", rs)
	}
	for _, s := range up.requests() {
		if strings.Contains(s, big) || strings.HasPrefix(s, "POST /big ") {
			t.Errorf("an oversized body reached the upstream whole: %.60q", s)
		}
	}
	small := strings.Repeat("y", 1000)
	rs = exchange(t, addr, "POST /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n"+small)
	if len(rs) != 1 || rs[0].status != 200 {
		t.Fatalf("body at the limit: %+v", rs)
	}
	if got := up.requests(); got[len(got)-1] != "POST /ok "+small {
		t.Errorf("upstream saw %.60q", got[len(got)-1])
	}
}

// TestHeaderLimit: a header block over max_header_bytes is refused (431)
// before any rule.
func TestHeaderLimit(t *testing.T) {
	up := newLimUpstream(t)
	addr, _ := startLimited(t, "limits: { max_header_bytes: 1024 }\n"+fmt.Sprintf(limPolicy, up.srv.URL))
	rs := exchange(t, addr, "GET /h HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 8000)+"\r\n\r\n")
	if len(rs) != 1 || rs[0].status != 431 {
		t.Fatalf("%+v", rs)
	}
	if got := up.requests(); len(got) != 0 {
		t.Errorf("reached the upstream: %q", got)
	}
	rs = exchange(t, addr, "GET /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Small: "+strings.Repeat("a", 500)+"\r\n\r\n")
	if len(rs) != 1 || rs[0].status != 200 {
		t.Fatalf("a header under the limit: %+v", rs)
	}
}

// TestMaxConnections: over the limit a new connection waits for a slot;
// an idle keep-alive connection gives its slot up at once; a slowloris
// connection holds one at most read_header_timeout.
func TestMaxConnections(t *testing.T) {
	up := newLimUpstream(t)
	addr, _ := startLimited(t, "limits: { max_connections: 3, read_header_timeout: 600ms }\n"+fmt.Sprintf(limPolicy, up.srv.URL))
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, br *bufio.Reader, path string, within time.Duration) (int, error) {
		_ = c.SetDeadline(time.Now().Add(within))
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// Three keep-alive connections, each idle after one request.
	for i := 0; i < 3; i++ {
		c, br := dial()
		if code, err := get(c, br, "/idle", 2*time.Second); err != nil || code != 200 {
			t.Fatalf("idle conn %d: %d %v", i, code, err)
		}
	}
	// A fourth is served: one idle connection is closed to make room.
	c4, br4 := dial()
	if code, err := get(c4, br4, "/fourth", 2*time.Second); err != nil || code != 200 {
		t.Fatalf("fourth connection at the limit with idle ones: %d %v", code, err)
	}
	c4.Close()

	// Three slowloris connections (half a header block each) hold every
	// slot; they are not idle, so a new client waits...
	for i := 0; i < 3; i++ {
		c, _ := dial()
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n")
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	c5, br5 := dial() // the kernel completes the handshake; warden has not accepted
	code, err := get(c5, br5, "/waited", 5*time.Second)
	waited := time.Since(start)
	if err != nil || code != 200 {
		t.Fatalf("after the slowloris connections timed out: %d %v", code, err)
	}
	// ...until read_header_timeout cuts the slow ones off.
	if waited < 300*time.Millisecond || waited > 3*time.Second {
		t.Errorf("waited %v for a slot; want about read_header_timeout (600ms)", waited)
	}
}

// TestDefaultLimits: unset limits take the safe defaults; negative ones
// turn a limit off.
func TestDefaultLimits(t *testing.T) {
	var zero config.Limits
	if got := engine.MaxBodyBytes(&zero); got != engine.DefaultMaxBodyBytes {
		t.Errorf("default body limit %d", got)
	}
	if got := gateway.MaxConnections(&zero); got != gateway.DefaultMaxConnections {
		t.Errorf("default connection limit %d", got)
	}
	off := config.Limits{MaxBodyBytes: -1, MaxConnections: -1}
	if engine.MaxBodyBytes(&off) != 0 || gateway.MaxConnections(&off) != 0 {
		t.Errorf("negative limits must mean none")
	}
	hs := gateway.NewHTTPServer("x", http.NotFoundHandler(), &zero)
	if hs.ReadHeaderTimeout != gateway.DefaultReadHeaderTimeout || hs.MaxHeaderBytes != gateway.DefaultMaxHeaderBytes ||
		hs.IdleTimeout != gateway.DefaultIdleTimeout || hs.ReadTimeout != gateway.DefaultReadTimeout {
		t.Errorf("defaults not applied: %+v", hs)
	}
}

// TestUnderscoreHeadersAreDropped: a header name with '_' never reaches the
// upstream, which might read it as the '-' header warden controls.
func TestUnderscoreHeadersAreDropped(t *testing.T) {
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	defer up.Close()
	addr, _ := startLimited(t, fmt.Sprintf(limPolicy, up.URL))
	rs := exchange(t, addr, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX_Real_IP: 10.0.0.1\r\nX_Original_URL: /admin/\r\nX-Plain: kept\r\n\r\n")
	if len(rs) != 1 || rs[0].status != 200 {
		t.Fatalf("%+v", rs)
	}
	h := <-got
	for name := range h {
		if strings.Contains(name, "_") {
			t.Errorf("upstream got %s: %q", name, h[name])
		}
	}
	if h.Get("X-Plain") != "kept" || h.Get("X-Real-Ip") != "127.0.0.1" {
		t.Errorf("upstream headers %v", h)
	}
}
