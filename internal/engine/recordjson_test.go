package engine_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/obs"
)

// slogLine is the record as slog's JSONHandler writes it at t: the path
// AppendJSON must match byte for byte.
func slogLine(t *testing.T, rec *engine.Record, at time.Time) []byte {
	t.Helper()
	var out bytes.Buffer
	r := slog.NewRecord(at, slog.LevelInfo, "decision", 0)
	r.AddAttrs(rec.Attrs()...)
	if err := slog.NewJSONHandler(&out, nil).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// awkward holds every character class the two encoders treat specially:
// quotes, backslash, control characters (\b and \f differ between slog's
// string escaper and encoding/json's), HTML characters (not escaped by
// either), DEL, U+2028/U+2029, invalid UTF-8, a lone continuation byte, and
// multi-byte runes.
const awkward = "a\"b\\c\nd\re\tf\bg\fh\x00i\x1fj<k>l&m\x7fn\u2028o\u2029p\xffq\xc3r\x80sé☃😀"

func TestAppendJSONMatchesSlog(t *testing.T) {
	times := []time.Time{
		time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 5, 9, 0, 0, 123456789, time.UTC),
		time.Date(2026, 12, 5, 9, 0, 0, 120000000, time.FixedZone("CET", 3600)),
		time.Now(), // with a monotonic reading, which slog strips
	}
	full := engine.Record{
		RequestID: "01JABCDEF", Front: "gateway", Method: "POST", Host: "shop.example",
		Target: "/api/v1/orders?x=1", Path: "/api/v1/orders", Query: "x=1",
		ClientIP: "203.0.113.7", Peer: "10.0.0.1:4711",
		Headers:   map[string]string{"User-Agent": "curl/8.5.0", "Accept": "*/*", "X-Forwarded-For": "203.0.113.7, 10.0.0.2", "Origin": awkward, "Referer": "https://a.example/<x>&y"},
		Dropped:   []string{"X-Real-Ip", "Forwarded"},
		Principal: "alice", Roles: []string{"admin", "ops"}, Scopes: []string{"orders:write"},
		Credentials: "valid", Challenge: "failed: expired", Bot: "not verified: dns mismatch",
		Stage: "policy", Action: "deny", Code: "ip_denied", Status: 403, Reason: "address is on a deny list",
		Rule: "scanners", RuleAt: "warden.yaml:12", Detail: "list scanners", Handler: "api",
		Trace: []decision.Step{
			{Rule: "allow-health", Line: 3, Matched: false, Note: "path /health: no"},
			{Rule: "scanners", Line: 12, Matched: true},
			{Rule: "x", Matched: false, Note: awkward},
		},
		WAF:        &engine.WAFRecord{Score: 10, WouldBlock: true, Blocked: true, RuleIDs: []int{942100, 941100}, Matches: []string{`[id "942100"] SQL injection <script>`, awkward}},
		WouldDeny:  &engine.WouldRecord{Rule: "report-bots", RuleAt: "warden.yaml:40", Code: "bot_denied"},
		RateLimits: []engine.RateLimitState{{Rule: "per-ip", Key: "203.0.113.7", Remaining: 0, Allowed: false}, {Rule: "global", Key: "", Remaining: 99, Allowed: true}},
		Bytes:      -1,
	}
	cases := map[string]engine.Record{
		"empty":          {},
		"minimal":        {RequestID: "r1", Method: "GET", Stage: "policy", Action: "allow"},
		"refusal":        {RequestID: "r2", Method: "GET", Host: "h", Target: "/metrics", Path: "/metrics", ClientIP: "10.1.2.3", Peer: "10.1.2.3:4567", Headers: map[string]string{"User-Agent": "curl/8.5.0", "Accept": "*/*"}, Credentials: "none", Stage: "policy", Action: "deny", Code: "path_denied", Status: 403, Reason: "r", Rule: "metrics", RuleAt: "p.yaml:9", Trace: []decision.Step{{Rule: "metrics", Line: 9, Matched: true, Note: "path /metrics"}}},
		"full":           full,
		"awkward":        {RequestID: awkward, Front: awkward, Method: awkward, Host: awkward, Target: awkward, Path: awkward, Query: awkward, ClientIP: awkward, Peer: awkward, Principal: awkward, Roles: []string{awkward, ""}, Scopes: []string{""}, Credentials: awkward, Challenge: awkward, Bot: awkward, Stage: awkward, Action: awkward, Code: awkward, Reason: awkward, Rule: awkward, RuleAt: awkward, Detail: awkward, Handler: awkward, Headers: map[string]string{awkward: awkward, "": ""}, Dropped: []string{awkward}},
		"waf only score": {RequestID: "r3", Method: "GET", Stage: "waf", Action: "allow", WAF: &engine.WAFRecord{}, WouldDeny: &engine.WouldRecord{}, Status: -5, Bytes: 1 << 40},
		"empty slices":   {RequestID: "r4", Headers: map[string]string{}, Dropped: []string{}, Roles: []string{}, Trace: []decision.Step{}, RateLimits: []engine.RateLimitState{}},
		"many headers": {RequestID: "r5", Headers: map[string]string{
			"a": "1", "B": "2", "c": "3", "D": "4", "e": "5", "F": "6", "g": "7", "H": "8", "i": "9", "J": "10",
			"k": "11", "L": "12", "m": "13", "N": "14", "o": "15", "P": "16", "q": "17", "R": "18", "é": "19", "\xff": "20",
		}},
	}
	var buf []byte
	for name, rec := range cases {
		for _, at := range times {
			want := slogLine(t, &rec, at)
			buf = rec.AppendJSON(buf[:0], at)
			if !bytes.Equal(buf, want) {
				t.Errorf("%s at %v:\n got %s\nwant %s", name, at, buf, want)
			}
		}
	}
}

// TestAppendJSONNoAlloc: encoding a refusal's record into a grown buffer
// allocates nothing.
func TestAppendJSONNoAlloc(t *testing.T) {
	rec := engine.Record{RequestID: "r2", Method: "GET", Host: "h", Target: "/metrics", Headers: map[string]string{"User-Agent": "curl/8.5.0", "Accept": "*/*"}, Stage: "policy", Action: "deny", Code: "path_denied", Status: 403, Trace: []decision.Step{{Rule: "metrics", Line: 9, Matched: true}}}
	at := time.Now()
	buf := rec.AppendJSON(nil, at)
	if a := testing.AllocsPerRun(100, func() { buf = rec.AppendJSON(buf[:0], at) }); a != 0 {
		t.Errorf("%.1f allocations per record, want 0", a)
	}
}

// TestLogFastPathMatchesSlog: an engine logging to obs.SwitchHandler (the
// direct path, record built in a recycled scratch) writes the same line as
// one logging through slog's JSONHandler, for refusals with a trace, a
// client address, recorded headers and a rule position, request after
// request (the scratch is reused), and in text format falls back to slog.
func TestLogFastPathMatchesSlog(t *testing.T) {
	cfg, err := config.Parse("zero.yaml", []byte(zeroPolicy))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.Build(cfg, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	var fastOut, slogOut bytes.Buffer
	sw := obs.NewSwitchHandler(&fastOut)
	fast, slow := engine.New(slog.New(sw)), engine.New(slog.New(slog.NewJSONHandler(&slogOut, nil)))
	fast.Swap(rt)
	slow.Swap(rt)
	requests := []engine.Wire{
		{Method: "GET", Target: "/metrics", Host: "shop.example", RemoteAddr: "192.0.2.9:4711", Header: http.Header{"User-Agent": {"curl/8.5.0 \"<x>\"\b"}, "Accept": {"*/*"}}},
		{Method: "GET", Target: "/debug/vars?x=1", Host: "shop.example", RemoteAddr: "[2001:db8::1]:443", Header: http.Header{"Referer": {"https://a.example/\u2028\xff"}}},
		{Method: "HEAD", Target: "/a/.git/config", Host: "x", RemoteAddr: "203.0.113.7:1", Header: http.Header{}},
		{Method: "GET", Target: "/metrics", Host: "shop.example", RemoteAddr: "203.0.113.8:2", Header: http.Header{"Origin": {"https://o.example"}}},
	}
	timeField := regexp.MustCompile(`"time":"[^"]*"`)
	for round := range 2 {
		for i := range requests {
			for _, e := range []*engine.Engine{fast, slow} {
				w := requests[i]
				w.Proto, w.Body = "HTTP/1.1", http.NoBody
				o := &engine.Outcome{Front: "gateway"}
				e.Judge(&w, o)
				if !o.Refused() {
					t.Fatalf("%s: not refused", w.Target)
				}
				o.ID = "id-" + w.Target // the same id on both engines
				e.Log(o)
			}
			got := timeField.ReplaceAll(fastOut.Bytes(), []byte(`"time":"T"`))
			want := timeField.ReplaceAll(slogOut.Bytes(), []byte(`"time":"T"`))
			if !bytes.Equal(got, want) {
				t.Fatalf("round %d, %s:\n got %s\nwant %s", round, requests[i].Target, got, want)
			}
			if !bytes.Contains(got, []byte(`"trace":[`)) || !bytes.Contains(got, []byte(`"rule_at":"zero.yaml:`)) || !bytes.Contains(got, []byte(`"client_ip":"`)) {
				t.Fatalf("the line lacks trace, rule_at or client_ip: %s", got)
			}
			fastOut.Reset()
			slogOut.Reset()
		}
	}
	sw.SetFormat("text")
	w := requests[0]
	w.Proto, w.Body = "HTTP/1.1", http.NoBody
	o := &engine.Outcome{}
	fast.Judge(&w, o)
	fast.Log(o)
	if !bytes.HasPrefix(fastOut.Bytes(), []byte("time=")) || !bytes.Contains(fastOut.Bytes(), []byte("msg=decision")) {
		t.Fatalf("text format: %s", fastOut.Bytes())
	}
}
