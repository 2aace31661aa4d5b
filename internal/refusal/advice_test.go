package refusal_test

import (
	"encoding/json"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/refusal"
)

// TestAdviceIsDistinct: every code has advice of its own, and no two causes
// share a heading or a text: a visitor refused for a large body must not be
// told to check the address.
func TestAdviceIsDistinct(t *testing.T) {
	causes := refusal.Causes()
	have := map[refusal.Cause]bool{}
	for _, c := range causes {
		have[c] = true
	}
	for _, code := range decision.Codes() {
		if !have[refusal.Cause(code)] {
			t.Errorf("code %s has no advice of its own", code)
		}
	}
	kinds, texts := map[string]refusal.Cause{}, map[string]refusal.Cause{}
	for _, c := range causes {
		a := refusal.AdviceFor(c)
		if a.Kind == "" || a.Text == "" {
			t.Errorf("%s: empty advice %+v", c, a)
		}
		if other, dup := kinds[a.Kind]; dup {
			t.Errorf("%s and %s share the heading %q", c, other, a.Kind)
		}
		if other, dup := texts[a.Text]; dup {
			t.Errorf("%s and %s share the advice %q", c, other, a.Text)
		}
		kinds[a.Kind], texts[a.Text] = c, c
	}
}

// TestAdviceInEveryFormat: each cause's advice reaches the client as
// problem+json, as an HTML page and as text.
func TestAdviceInEveryFormat(t *testing.T) {
	for _, c := range refusal.Causes() {
		d := decisionFor(c)
		if got := refusal.CauseOf(&d); got != c {
			t.Fatalf("decisionFor(%s) has cause %s", c, got)
		}
		a := refusal.AdviceFor(c)
		j := write(d, "GET", "application/json", "", refusal.Options{})
		var p refusal.Problem
		if err := json.Unmarshal([]byte(j.body), &p); err != nil || p.Advice != a.Text {
			t.Errorf("%s: JSON advice %q, want %q (%v)", c, p.Advice, a.Text, err)
		}
		h := write(d, "GET", "text/html", "", refusal.Options{})
		if !strings.Contains(h.body, "<h1>"+html.EscapeString(a.Kind)+"</h1>") || !strings.Contains(h.body, html.EscapeString(a.Text)) {
			t.Errorf("%s: HTML page lacks its advice %+v", c, a)
		}
		x := write(d, "GET", "*/*", "curl/8", refusal.Options{})
		if !strings.Contains(x.body, "what you can do: "+a.Text+"\n") {
			t.Errorf("%s: text lacks its advice:\n%s", c, x.body)
		}
	}
}

// decisionFor makes a decision with cause c, as the engine makes them.
func decisionFor(c refusal.Cause) decision.Decision {
	switch c {
	case refusal.CauseBodyTooLarge:
		d := decision.Refuse(decision.BadRequest, "request body too large")
		d.Status = http.StatusRequestEntityTooLarge
		return d
	case refusal.CauseBodyTooLargeToInspect:
		return decision.Refuse(decision.BadRequest, "request body too large to inspect")
	case refusal.CauseBodyUnreadable:
		return decision.Refuse(decision.BadRequest, "the request body could not be read")
	case refusal.CauseFraming:
		return decision.Refuse(decision.BadRequest, "the request's framing is ambiguous: two Content-Length")
	case refusal.CauseHeaderNotAccepted:
		return decision.Refuse(decision.BadRequest, "header X-Original-URL is not accepted: it overrides the path")
	case refusal.CauseNoPolicy:
		return decision.Refuse(decision.Unavailable, "the gateway has no policy loaded")
	}
	return decision.Refuse(decision.ReasonCode(c), "r")
}

// TestEngineCauses drives the engine into each sub-cause the way a client
// would, so the advice follows what the engine really says.
func TestEngineCauses(t *testing.T) {
	cfg, err := config.Parse("p.yaml", []byte("limits: { max_body_bytes: 100 }\n"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.Build(cfg, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	eng := engine.New(slog.New(slog.DiscardHandler))
	wire := func(target string, h http.Header, body io.ReadCloser, n int64) *engine.Wire {
		if h == nil {
			h = http.Header{}
		}
		return &engine.Wire{Method: "POST", Target: target, Proto: "HTTP/1.1", Host: "example.com",
			RemoteAddr: "192.0.2.1:1234", Header: h, Body: body, ContentLength: n}
	}
	judge := func(w *engine.Wire) refusal.Cause {
		o := &engine.Outcome{}
		eng.Judge(w, o)
		if !o.Refused() {
			t.Fatalf("%s was allowed", w.Target)
		}
		return refusal.CauseOf(&o.Decision)
	}
	if got := judge(wire("/", nil, nil, 0)); got != refusal.CauseNoPolicy {
		t.Errorf("no policy: %s", got)
	}
	eng.Swap(rt)
	big := wire("/", nil, io.NopCloser(strings.NewReader(strings.Repeat("x", 200))), 200)
	if got := judge(big); got != refusal.CauseBodyTooLarge {
		t.Errorf("body over max_body_bytes: %s", got)
	}
	fr := wire("/", nil, nil, 0)
	fr.Framing = "Content-Length and Transfer-Encoding both given"
	if got := judge(fr); got != refusal.CauseFraming {
		t.Errorf("framing: %s", got)
	}
	if got := judge(wire("/", http.Header{"X-Original-Url": {"/admin"}}, nil, 0)); got != refusal.CauseHeaderNotAccepted {
		t.Errorf("override header: %s", got)
	}
	if got := judge(wire("/a/%2e%2e/%2e%2e/etc/passwd", nil, nil, 0)); got != refusal.Cause(decision.BadRequest) {
		t.Errorf("odd address: %s", got)
	}
}

// TestWAFCauses: a body the WAF cannot inspect or read gets advice about
// the body, not the address.
func TestWAFCauses(t *testing.T) {
	cfg, err := config.Parse("p.yaml", []byte("waf: { mode: block, body_limit: 64, body_over_limit: reject }\n"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := engine.Build(cfg, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	eng := engine.New(slog.New(slog.DiscardHandler))
	eng.Swap(rt)
	judge := func(body io.Reader, n int64) refusal.Cause {
		h := http.Header{"Content-Type": {"text/plain"}}
		w := &engine.Wire{Method: "POST", Target: "/upload", Proto: "HTTP/1.1", Host: "example.com",
			RemoteAddr: "192.0.2.1:1234", Header: h, Body: io.NopCloser(body), ContentLength: n}
		o := &engine.Outcome{}
		eng.Judge(w, o)
		if !o.Refused() {
			t.Fatalf("allowed: %+v", o.Decision)
		}
		return refusal.CauseOf(&o.Decision)
	}
	if got := judge(strings.NewReader(strings.Repeat("a", 1000)), 1000); got != refusal.CauseBodyTooLargeToInspect {
		t.Errorf("body over the WAF's limit: %s", got)
	}
	if got := judge(io.MultiReader(strings.NewReader("abc"), errReader{}), 10); got != refusal.CauseBodyUnreadable {
		t.Errorf("body that fails: %s", got)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
