package gateway_test

// Issue 14: the throughput of a gateway with a per-IP rate limit against the
// same gateway without it, proxying to one upstream, over many client
// addresses (named by a trusted proxy's X-Forwarded-For, so every request
// charges its own client's counter and the in-memory store holds thousands).
//
//	go test -run '^$' -bench 'PerIPLimitVsNone' -benchtime 40000x -count 3 ./internal/gateway/

import (
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
)

// limitClients is how many client addresses the load rotates over.
const limitClients = 4096

// limitPolicy is the same policy with and without a per-IP limit; the
// limit is far above what the benchmark sends (it never refuses).
func limitPolicy(upstream string, limited bool) string {
	limit := ""
	if limited {
		limit = "  - name: per-ip\n    rate_limit: { requests: 1000000, per: 1s, key: ip }\n"
	}
	return fmt.Sprintf(`trusted_proxies: [127.0.0.1]
log: { decisions: refusals }
rules:
%s  - name: metrics
    when: { path: { exact: [/metrics] } }
    action: deny
handle:
  - path: /
    upstream: %s
`, limit, upstream)
}

func limitGateway(tb testing.TB, upstream string, limited bool) string {
	tb.Helper()
	base, _ := servePolicy(tb, tb.TempDir(), limitPolicy(upstream, limited), io.Discard)
	return base
}

// manyClients names a different client in X-Forwarded-For on each request,
// rotating over limitClients addresses in 10.0.0.0/16.
type manyClients struct {
	next  atomic.Uint32
	names []string
	rt    http.RoundTripper
}

func newManyClients(rt http.RoundTripper) *manyClients {
	m := &manyClients{rt: rt}
	for i := range limitClients {
		m.names = append(m.names, fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	return m
}

func (m *manyClients) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", m.names[m.next.Add(1)%limitClients])
	return m.rt.RoundTrip(r)
}

// BenchmarkPerIPLimitVsNone interleaves the two gateways and reports
// ratio = limited / unlimited in req/s and cpu-ratio = limited / unlimited
// in CPU per request (client, gateways and upstream, all in this process;
// a ratio above 1 is the limit's cost).
func BenchmarkPerIPLimitVsNone(b *testing.B) {
	up := perfUpstream(b)
	plain := newLatencyTarget("nolimit", limitGateway(b, up, false)+"/api/x", 200)
	limited := newLatencyTarget("perip", limitGateway(b, up, true)+"/api/x", 200)
	for _, t := range []*latencyTarget{plain, limited} {
		t.client.Transport = newManyClients(t.client.Transport)
	}
	// The limited gateway really charges: its answers carry the headers.
	req, _ := http.NewRequest("GET", limited.url, nil)
	res, err := limited.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("RateLimit-Policy") == "" || res.Header.Get("RateLimit") == "" {
		b.Fatalf("the limited gateway sent no RateLimit headers: %v", res.Header)
	}
	rate, cpu, _ := interleave(b, []*latencyTarget{plain, limited})
	b.ReportMetric(rate[1]/rate[0], "ratio")
	b.ReportMetric(cpu[1]/cpu[0], "cpu-ratio")
}
