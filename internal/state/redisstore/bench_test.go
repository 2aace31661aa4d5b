package redisstore

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/state"
	"github.com/warden-gateway/warden/internal/state/redistest"
)

// The Redis benchmarks report, besides ns/op, "roundtrips/op" (counted by a
// go-redis hook; connection set-up excluded) and "decisions/s". The
// baseline in the same run is BenchmarkRedisPing: one bare PING round trip,
// the floor any Redis-backed decision stands on.

// benchServer is the redis-server of the running benchmark, whose CPU time
// report adds as "redis-cpu-ns/op".
var benchServer *redistest.Server

func benchStore(b *testing.B) *Store {
	srv := redistest.Start(b)
	benchServer = srv
	s, err := New(Options{Addr: srv.Addr, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	// Load the scripts before timing.
	if _, err := s.Peek(context.Background(), "warm", state.Limit{Rate: 1, Per: time.Second}, t0); err != nil {
		b.Fatal(err)
	}
	return s
}

func keys(n int) []string {
	k := make([]string, n)
	for i := range k {
		k[i] = state.RuleKey("api-rate", state.IPKey(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})))
	}
	return k
}

func report(b *testing.B, s *Store, rt0 uint64, start time.Time, redisCPU0 time.Duration) {
	b.ReportMetric(float64(benchServer.CPUTime()-redisCPU0)/float64(b.N), "redis-cpu-ns/op")
	b.ReportMetric(float64(s.Stats().RoundTrips-rt0)/float64(b.N), "roundtrips/op")
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
	if st := s.Stats(); st.Fallbacks != 0 {
		b.Fatalf("%d operations fell back during the benchmark", st.Fallbacks)
	}
}

func BenchmarkRedisPing(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	rt0, start, rcpu0 := s.Stats().RoundTrips, time.Now(), benchServer.CPUTime()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if err := s.client.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
	report(b, s, rt0, start, rcpu0)
	reportCPU(b, cpu0)
}

func BenchmarkRedisAllow(b *testing.B) {
	s := benchStore(b)
	k := keys(1024)
	lim := state.Limit{Rate: 100, Per: time.Minute, Burst: 20}
	ctx := context.Background()
	b.ReportAllocs()
	rt0, start, rcpu0 := s.Stats().RoundTrips, time.Now(), benchServer.CPUTime()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := s.Allow(ctx, k[i&1023], lim, t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
	report(b, s, rt0, start, rcpu0)
	reportCPU(b, cpu0)
}

// BenchmarkRedisAllowParallel: 16 concurrent callers (on 2 CPUs), the way a
// busy gateway calls; decisions/s is the throughput one replica gets.
func BenchmarkRedisAllowParallel(b *testing.B) {
	s := benchStore(b)
	k := keys(1024)
	lim := state.Limit{Rate: 100, Per: time.Minute, Burst: 20}
	ctx := context.Background()
	b.SetParallelism(8)
	rt0, start, rcpu0 := s.Stats().RoundTrips, time.Now(), benchServer.CPUTime()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Allow(ctx, k[i&1023], lim, t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	report(b, s, rt0, start, rcpu0)
	reportCPU(b, cpu0)
}

// BenchmarkRedisApplyBanAndLimit is one request's whole state work: is the
// client banned, and charge two rate limits (per address and per /24).
func BenchmarkRedisApplyBanAndLimit(b *testing.B) {
	s := benchStore(b)
	k := keys(1024)
	lim := state.Limit{Rate: 100, Per: time.Minute, Burst: 20}
	ctx := context.Background()
	ops := make([]state.Op, 3)
	out := make([]state.Outcome, 3)
	rt0, start, rcpu0 := s.Stats().RoundTrips, time.Now(), benchServer.CPUTime()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		key := k[i&1023]
		ops[0] = state.Op{Kind: state.OpBanned, Key: key}
		ops[1] = state.Op{Kind: state.OpAllow, Key: key, Limit: lim}
		ops[2] = state.Op{Kind: state.OpAllow, Key: "api-rate|net:10.1.0.0/24", Limit: lim}
		if err := s.Apply(ctx, ops, out, t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
	report(b, s, rt0, start, rcpu0)
	reportCPU(b, cpu0)
}

// BenchmarkHTTPPerIPLimit: requests through a real HTTP server on loopback
// whose handler charges a per-IP limit, against the same server without
// one. The limit is generous, so every request is served and the
// difference is the cost of the decision. (The same comparison for the
// whole gateway belongs to the engine once rate_limit is wired into it.)
func BenchmarkHTTPPerIPLimit(b *testing.B) {
	lim := state.Limit{Rate: 100000, Per: time.Second, Burst: 100000}
	run := func(b *testing.B, st state.Store) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if st != nil {
				ap, _ := netip.ParseAddrPort(r.RemoteAddr)
				res, err := st.Allow(r.Context(), state.RuleKey("api", state.IPKey(ap.Addr())), lim, time.Now())
				if err != nil {
					http.Error(w, "unavailable", http.StatusServiceUnavailable)
					return
				}
				if !res.Allowed {
					http.Error(w, "rate limited", http.StatusTooManyRequests)
					return
				}
			}
			io.WriteString(w, "ok")
		})
		srv := httptest.NewServer(h)
		defer srv.Close()
		tr := &http.Transport{MaxIdleConnsPerHost: 64, DialContext: (&net.Dialer{}).DialContext}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		b.SetParallelism(4)
		start := time.Now()
		b.ResetTimer()
		cpu0 := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := c.Get(srv.URL + "/api/x")
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		reportCPU(b, cpu0)
	}
	b.Run("none", func(b *testing.B) { run(b, nil) })
	b.Run("memory", func(b *testing.B) { run(b, state.NewMemory(state.MemoryOptions{})) })
	b.Run("redis", func(b *testing.B) { run(b, benchStore(b)) })
}
