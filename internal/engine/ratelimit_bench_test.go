package engine_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
)

// BenchmarkJudgeRateLimit: the whole judgement of a request (canonical
// request, rules, store round trip) with a per-IP rate limit in memory,
// against the same policy without the limit, over 1,000 client addresses.
// The ratio is what the limit costs a request:
//
//	go test -run '^$' -bench JudgeRateLimit -benchtime 200000x ./internal/engine/
func BenchmarkJudgeRateLimit(b *testing.B) {
	const base = `
rules:
  - name: api
    when: { path: { prefix: [/api/] } }
    action: allow
`
	const limited = `
rules:
  - name: api-rate
    when: { path: { prefix: [/api/] } }
    rate_limit: { requests: 1000000, per: 1s, key: ip }
  - name: api
    when: { path: { prefix: [/api/] } }
    action: allow
`
	for _, c := range []struct{ name, src string }{{"no-limit", base}, {"per-ip-limit", limited}} {
		b.Run(c.name, func(b *testing.B) {
			cfg, err := config.Parse("bench.yaml", []byte(c.src))
			if err != nil {
				b.Fatal(err)
			}
			rt, err := engine.Build(cfg, engine.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			e := engine.New(nil)
			e.Swap(rt)
			now := time.Unix(1_800_000_000, 0)
			e.Now = func() time.Time { return now }
			wires := make([]engine.Wire, 1000)
			for i := range wires {
				wires[i] = engine.Wire{Method: "GET", Target: "/api/orders", Host: "api.example", RemoteAddr: "10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250) + ":4000", Header: http.Header{}}
			}
			var o engine.Outcome
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e.Judge(&wires[i%len(wires)], &o)
				if o.Refused() {
					b.Fatalf("refused: %+v", o.Decision)
				}
			}
		})
	}
}
