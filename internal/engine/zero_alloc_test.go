package engine_test

// The engine's hot paths allocate nothing: a refused request (a path rule's
// 403) and an allowed one, judged into a reused Outcome, as the gateway
// does with its pool. CI runs these with a short benchtime
// (scripts/test.sh), and TestZeroAllocJudge holds them to 0.

import (
	"net/http"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
)

const zeroPolicy = `
ip_lists:
  scanners: { cidrs: [192.0.2.0/24, 198.51.100.0/24] }
rules:
  - name: scanners
    when: { ip_list: [scanners] }
    action: deny
  - name: metrics
    when: { path: { exact: [/metrics], prefix: [/debug/] } }
    action: deny
  - name: dotfiles
    when: { path: { glob: ["/**/.git/**"] } }
    action: conceal
`

func zeroEngine(tb testing.TB) *engine.Engine {
	tb.Helper()
	cfg, err := config.Parse("zero.yaml", []byte(zeroPolicy))
	if err != nil {
		tb.Fatal(err)
	}
	rt, err := engine.Build(cfg, engine.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(rt.Close)
	e := engine.New(nil)
	e.Swap(rt)
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	e.Now = func() time.Time { return now }
	return e
}

// judgeLoop judges the same request again and again into one outcome, as
// a pooled outcome is reused, and checks the verdict each time.
func judgeLoop(tb testing.TB, e *engine.Engine, target string, wantRefused bool) func() {
	header := http.Header{"User-Agent": {"Mozilla/5.0"}, "Accept": {"application/json"}}
	wire := engine.Wire{Method: "GET", Target: target, Proto: "HTTP/1.1", Host: "shop.example", RemoteAddr: "203.0.113.7:4711", Header: header, Body: http.NoBody}
	o := &engine.Outcome{}
	return func() {
		o.ID = ""
		e.Judge(&wire, o)
		if o.Refused() != wantRefused {
			tb.Fatalf("%s: refused=%v (%s), want %v", target, o.Refused(), o.Decision.Code, wantRefused)
		}
	}
}

func BenchmarkZeroAllocJudgeRefused(b *testing.B) {
	f := judgeLoop(b, zeroEngine(b), "/metrics", true)
	b.ReportAllocs()
	for b.Loop() {
		f()
	}
}

func BenchmarkZeroAllocJudgeAllowed(b *testing.B) {
	f := judgeLoop(b, zeroEngine(b), "/api/v1/orders/12345?page=2", false)
	b.ReportAllocs()
	for b.Loop() {
		f()
	}
}

// TestZeroAllocJudge: judging costs no allocation on either path (request
// ids are cut from batches, so one in 64 judgements makes a batch: the
// average stays under 1).
func TestZeroAllocJudge(t *testing.T) {
	e := zeroEngine(t)
	for _, c := range []struct {
		target  string
		refused bool
	}{{"/metrics", true}, {"/debug/vars", true}, {"/api/v1/orders/12345?page=2", false}} {
		f := judgeLoop(t, e, c.target, c.refused)
		f()
		if a := testing.AllocsPerRun(640, f); a >= 1 {
			t.Errorf("%s: %.2f allocations per judgement, want 0", c.target, a)
		}
	}
}
