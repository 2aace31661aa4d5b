package crs

// The test harness: a real warden server (config.Parse → gateway.Build →
// gateway.NewServer → gateway.NewHTTPServer on 127.0.0.1:0) in front of a
// real albedo-like echo upstream, warden's decision log collected from its
// slog.Logger, and a runner that sends each stage as raw bytes on its own TCP
// connection.
//
// Log lines are tied to their request without go-ftw's marker requests, so
// tests can run in parallel: warden answers every request with X-Request-Id,
// every record it logs about that request carries the id as request_id, and
// a stage is judged only after the server is done with its connection (the
// http.Server's ConnState reports it idle or closed, which happens after the
// handler, and so after warden's "waf response" record, has returned).

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
)

// crsTestFiles is the CRS v4.25.0 regression suite: the *.yaml files the
// coraza-coreruleset module embeds (its tests package), and the one *.yml
// file that module leaves out, vendored under testdata/crs-extra with its
// licence. Nothing is read from outside the repository and the module cache.
func crsTestFiles() []fs.FS {
	extra, err := fs.Sub(crsExtraTests, "testdata/crs-extra")
	if err != nil {
		panic(err) // a fixed path inside an embed.FS
	}
	return []fs.FS{crstests.FS, extra}
}

//go:embed testdata/crs-extra
var crsExtraTests embed.FS

// The suite's size (CRS v4.25.0's tests/regression/tests: 318 *.yaml in the
// module plus 999999.yml), checked so that a test file that fails to load,
// or a module update, cannot quietly shrink what is run.
const (
	crsSuiteFiles = 319
	crsSuiteTests = 4711
)

// albedoUpstream behaves like albedo v0.3.0 as Coraza's harness uses it:
// any path answers 200 with an empty body; POST /reflect answers with the
// status, headers and body described by its JSON body. Content-Type is
// forced to text/plain first, as Coraza's harness does, so that the
// response rules inspect the body.
func albedoUpstream() http.Handler {
	type reflection struct {
		Status      int               `json:"status"`
		Headers     map[string]string `json:"headers"`
		Body        string            `json:"body"`
		EncodedBody string            `json:"encodedBody"`
		LogMessage  string            `json:"logMessage"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.Method != http.MethodPost || r.URL.Path != "/reflect" {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
			return
		}
		var spec reflection
		if err := json.NewDecoder(r.Body).Decode(&spec); err != nil {
			http.Error(w, "Invalid JSON in request body", http.StatusBadRequest)
			return
		}
		for name, value := range spec.Headers {
			w.Header().Add(name, value)
		}
		if spec.Status > 0 && spec.Status < 100 || spec.Status >= 600 {
			http.Error(w, fmt.Sprintf("Invalid status code: %d", spec.Status), http.StatusBadRequest)
			return
		}
		body := []byte(spec.Body)
		if spec.Body == "" && spec.EncodedBody != "" {
			decoded, err := base64.StdEncoding.DecodeString(spec.EncodedBody)
			if err != nil {
				http.Error(w, "invalid base64 encoding of response body", http.StatusBadRequest)
				return
			}
			body = decoded
		}
		status := spec.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
}

// logRecord is one record of warden's decision log.
type logRecord struct {
	msg   string
	attrs map[string]slog.Value
}

func (r logRecord) str(key string) string {
	if v, ok := r.attrs[key]; ok {
		return v.String()
	}
	return ""
}

func (r logRecord) strings(key string) []string {
	v, ok := r.attrs[key]
	if !ok {
		return nil
	}
	s, _ := v.Any().([]string)
	return s
}

// decisionLog is warden's decision log as the tests see it: every slog
// record, grouped by its request_id attribute.
type decisionLog struct {
	mu   sync.Mutex
	byID map[string][]logRecord
}

func newDecisionLog() *decisionLog { return &decisionLog{byID: map[string][]logRecord{}} }

// logger is the slog.Logger to give gateway.NewServer.
func (l *decisionLog) logger() *slog.Logger { return slog.New(&collectingHandler{log: l}) }

func (l *decisionLog) add(r logRecord) {
	id := r.str("request_id")
	l.mu.Lock()
	l.byID[id] = append(l.byID[id], r)
	l.mu.Unlock()
}

// records returns the records logged for one request.
func (l *decisionLog) records(requestID string) []logRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.byID[requestID])
}

// wafLines turns the "waf" and "waf response" records of a request into the
// lines a go-ftw judge reads: "<request_id> <Coraza ErrorLog line>", one per
// matched rule.
func wafLines(requestID string, records []logRecord) []string {
	var lines []string
	for _, r := range records {
		if r.msg != "waf" && r.msg != "waf response" {
			continue
		}
		for _, m := range r.strings("matches") {
			lines = append(lines, requestID+" "+m)
		}
	}
	return lines
}

// collectingHandler is a slog.Handler that keeps records in a decisionLog.
type collectingHandler struct {
	log    *decisionLog
	attrs  []slog.Attr
	prefix string // group names, "a.b."
}

func (h *collectingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *collectingHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{msg: r.Message, attrs: map[string]slog.Value{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.Resolve()
	}
	var found *engine.WAFRecord
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[h.prefix+a.Key] = a.Value.Resolve()
		if w, ok := a.Value.Any().(*engine.WAFRecord); ok {
			found = w
		}
		return true
	})
	h.log.add(rec)
	if found != nil {
		// What the WAF found rides on the request's one decision record;
		// the harness reads it as a "waf" record of its own.
		h.log.add(logRecord{msg: "waf", attrs: map[string]slog.Value{
			"request_id": rec.attrs["request_id"], "matches": slog.AnyValue(found.Matches)}})
	}
	return nil
}

func (h *collectingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Clone(h.attrs)
	for _, a := range as {
		c.attrs = append(c.attrs, slog.Attr{Key: h.prefix + a.Key, Value: a.Value})
	}
	return &c
}

func (h *collectingHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.prefix = h.prefix + name + "."
	return &c
}

// connTracker follows the server's connections, so the runner knows when
// the server has finished with a request: a connection turns idle or closed
// only after the handler returned.
type connTracker struct {
	mu     sync.Mutex
	byConn map[net.Conn]*connDone
	byAddr map[string]*connDone
}

type connDone struct {
	once sync.Once
	ch   chan struct{}
}

func newConnTracker() *connTracker {
	return &connTracker{byConn: map[net.Conn]*connDone{}, byAddr: map[string]*connDone{}}
}

func (ct *connTracker) observe(c net.Conn, state http.ConnState) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	switch state {
	case http.StateNew:
		d := &connDone{ch: make(chan struct{})}
		ct.byConn[c] = d
		ct.byAddr[c.RemoteAddr().String()] = d
	case http.StateIdle, http.StateClosed, http.StateHijacked:
		if d := ct.byConn[c]; d != nil {
			d.once.Do(func() { close(d.ch) })
			if state != http.StateIdle {
				delete(ct.byConn, c)
			}
		}
	}
}

// wait blocks until the server is done with the connection from local, or
// the timeout passes; it reports whether the server finished.
func (ct *connTracker) wait(local string, timeout time.Duration) bool {
	ct.mu.Lock()
	d := ct.byAddr[local]
	delete(ct.byAddr, local)
	ct.mu.Unlock()
	if d == nil {
		return true // the server never accepted it: nothing to wait for
	}
	select {
	case <-d.ch:
		return true
	case <-time.After(timeout):
		return false
	}
}

// serverUnderTest is a running server (warden, or the bare engine) with its
// decision log.
type serverUnderTest struct {
	addr  string
	log   *decisionLog
	conns *connTracker
	// judged reports whether the WAF judged a stage's request.
	judged func(sr *stageRun) bool
}

// wardenJudged: warden's WAF judged a request when its decision record
// carries what the WAF found, or when warden forwarded the request (the CRS
// config has no route with the WAF off, and the WAF runs on every request
// the rules allow, before it is forwarded). A request refused before the
// WAF, or answered by Go's server itself, was not judged.
func wardenJudged(up *echoUpstream) func(sr *stageRun) bool {
	return func(sr *stageRun) bool {
		if sr.requestID == "" {
			return false
		}
		if slices.ContainsFunc(sr.records, func(r logRecord) bool { return r.msg == "waf" }) {
			return true
		}
		_, forwarded := up.received(sr.requestID)
		return forwarded
	}
}

// startWarden runs warden from a YAML config on 127.0.0.1:0, the way
// `warden serve` does (NewHTTPServer on WrapListener), with a logger that
// collects its decision log. The config text may use {{UPSTREAM}} for the
// upstream's URL.
func startWarden(t testing.TB, configYAML, upstreamURL string) *serverUnderTest {
	t.Helper()
	ws := &serverUnderTest{log: newDecisionLog(), conns: newConnTracker()}
	cfg := wardenConfig(t, configYAML, upstreamURL)
	in := gatewaytest.Start(t, cfg, ws.log.logger(), func(hs *http.Server) {
		// warden's own ConnState hook feeds its framing check; keep it.
		wardenConnState := hs.ConnState
		hs.ConnState = func(c net.Conn, state http.ConnState) {
			if wardenConnState != nil {
				wardenConnState(c, state)
			}
			ws.conns.observe(c, state)
		}
	})
	ws.addr = in.Addr
	return ws
}

// newWarden builds warden's handler from a YAML config ({{UPSTREAM}}
// replaced by upstreamURL) with the given decision logger.
func newWarden(t testing.TB, configYAML, upstreamURL string, logger *slog.Logger) (*gateway.Server, *config.Config) {
	t.Helper()
	cfg := wardenConfig(t, configYAML, upstreamURL)
	srv := gateway.NewServer(logger)
	rt, err := gateway.Build(cfg, gateway.Options{}, srv.UpstreamError)
	if err != nil {
		t.Fatalf("building the warden runtime: %v", err)
	}
	srv.Swap(rt)
	rt.Start(context.Background())
	t.Cleanup(rt.Close)
	return srv, cfg
}

// wardenConfig parses a YAML config with {{UPSTREAM}} replaced by
// upstreamURL.
func wardenConfig(t testing.TB, configYAML, upstreamURL string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("crs-test.yaml", []byte(strings.ReplaceAll(configYAML, "{{UPSTREAM}}", upstreamURL)))
	if err != nil {
		t.Fatalf("parsing the warden config: %v", err)
	}
	return cfg
}

// echoUpstream is the albedo-like upstream on a loopback port. It keeps
// the headers of every request that carries warden's X-Request-Id (warden
// sets it on what it forwards), so the runner can check what reached it.
type echoUpstream struct {
	url  string
	mu   sync.Mutex
	seen map[string]http.Header
}

// received returns the headers of the request warden forwarded under
// requestID, and whether it forwarded one.
func (u *echoUpstream) received(requestID string) (http.Header, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	h, ok := u.seen[requestID]
	return h, ok
}

// startUpstream runs the albedo-like upstream on a loopback port.
func startUpstream(t testing.TB) *echoUpstream {
	t.Helper()
	u := &echoUpstream{seen: map[string]http.Header{}}
	albedo := albedoUpstream()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("X-Request-Id"); id != "" {
			u.mu.Lock()
			u.seen[id] = r.Header.Clone()
			u.mu.Unlock()
		}
		albedo.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	u.url = up.URL
	return u
}

const (
	// Coraza's sequential run reads with a 3 s timeout. Here 8 requests
	// share as few as 2 cores, and the slowest one (920390-1: a 64 KB
	// argument through every paranoia-4 regex) takes over a second alone
	// and over 15 s under the race detector, so the budget is generous: it
	// only bounds a hung request. No test's expectation depends on it
	// (920430-5, the one expect_error test, is ignored).
	crsReadTimeout = time.Minute
	crsDoneTimeout = time.Minute
)

// stageRun is one stage sent to warden and what came of it.
type stageRun struct {
	stage     int // 1-based
	raw       []byte
	resp      *ftwResponse
	sendErr   error
	requestID string
	records   []logRecord // warden's decision log for requestID
	lines     []string    // the judge's log lines (from the waf records)
	judged    bool        // the WAF judged the request
	failure   string      // "" when the stage passed
}

// runStage sends one stage's request and judges it against out.
func (ws *serverUnderTest) runStage(in ftwInput, out ftwOutput) stageRun {
	raw, method, err := buildFTWRequest(in)
	if err != nil {
		return stageRun{failure: "building the request: " + err.Error()}
	}
	sr := stageRun{raw: raw}
	sr.resp, sr.sendErr = ws.send(raw, method)
	if sr.resp != nil {
		sr.requestID = sr.resp.header.Get("X-Request-Id")
	}
	if sr.requestID != "" {
		sr.records = ws.log.records(sr.requestID)
		sr.lines = wafLines(sr.requestID, sr.records)
	}
	if ws.judged != nil {
		sr.judged = ws.judged(&sr)
	}
	sr.failure = judgeStage(out, sr.resp, sr.sendErr, sr.lines)
	return sr
}

// send writes raw on a new connection and reads one response, then waits
// until the server is done with the connection.
func (ws *serverUnderTest) send(raw []byte, method string) (*ftwResponse, error) {
	conn, err := net.DialTimeout("tcp", ws.addr, crsReadTimeout)
	if err != nil {
		return nil, err
	}
	local := conn.LocalAddr().String()
	defer func() {
		conn.Close()
		ws.conns.wait(local, crsDoneTimeout)
	}()
	if err := conn.SetDeadline(time.Now().Add(crsReadTimeout)); err != nil {
		return nil, err
	}
	if _, err := conn.Write(raw); err != nil {
		return nil, err
	}
	var rawResp bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(conn, &rawResp)), &http.Request{Method: method})
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	conn.Close()
	if !ws.conns.wait(local, crsDoneTimeout) {
		return nil, errors.New("the server did not finish with the connection")
	}
	return &ftwResponse{status: resp.StatusCode, header: resp.Header, raw: rawResp.Bytes()}, nil
}
