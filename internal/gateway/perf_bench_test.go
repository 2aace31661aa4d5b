package gateway_test

// Issue 17's gateway benchmarks: refusals against a minimal Go server
// answering 403, the 1M-CIDR gateway against the 10k one (with forced GC
// cycles while serving), and the allocations of one refused request.
//
//	go test -run '^$' -bench 'RefusalVsMinimal403|ListSize' -benchtime 20000x ./internal/gateway/
//	go test -run '^$' -bench 'Zero' -benchtime 100x ./internal/gateway/

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/obs"
)

// perfGateway starts a gateway served as `warden serve` serves it, with
// benchPolicy over a list of nCIDRs, logging JSON through obs.LogWriter to
// out. It returns its base URL and the server.
func perfGateway(tb testing.TB, upstream string, nCIDRs int, out io.Writer) (string, *gateway.Server) {
	tb.Helper()
	dir := tb.TempDir()
	blocked := filepath.Join(dir, "blocked.txt")
	writeBenchCIDRs(tb, blocked, nCIDRs)
	src, _ := benchPolicy(upstream, blocked)
	return servePolicy(tb, dir, src, out)
}

// servePolicy serves the policy src (written to dir/warden.yaml) as
// `warden serve` does, logging JSON through obs.LogWriter to out, until the
// benchmark ends. It returns the base URL and the server.
func servePolicy(tb testing.TB, dir, src string, out io.Writer) (string, *gateway.Server) {
	tb.Helper()
	cfgPath := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfgPath, []byte(src), 0o644); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		tb.Fatal(err)
	}
	lw := obs.NewLogWriter(out, 0)
	logger := slog.New(obs.NewSwitchHandler(lw))
	srv := gateway.NewServer(logger)
	rt, err := gateway.Build(cfg, gateway.Options{Logger: logger}, srv.UpstreamError)
	if err != nil {
		tb.Fatal(err)
	}
	srv.Swap(rt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hs := gateway.NewHTTPServer("", srv, &cfg.Limits)
	go hs.Serve(gateway.WrapListener(ln, &cfg.Limits))
	tb.Cleanup(func() { hs.Close(); rt.Close(); lw.Close() })
	return "http://" + ln.Addr().String(), srv
}

func perfUpstream(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Write(benchBody)
	})}
	go up.Serve(ln)
	tb.Cleanup(func() { up.Close() })
	return "http://" + ln.Addr().String()
}

// latencyTarget is a URL, the status it must answer and the client for it.
type latencyTarget struct {
	name   string
	url    string
	status int
	client *http.Client
}

func newLatencyTarget(name, url string, status int) *latencyTarget {
	return &latencyTarget{name: name, url: url, status: status, client: &http.Client{Transport: &http.Transport{
		MaxIdleConns: 2 * benchInFlight, MaxIdleConnsPerHost: 2 * benchInFlight, DisableCompression: true,
	}}}
}

// drive sends total requests with benchInFlight in flight and returns the
// wall time, the process CPU time and every request's latency.
func (t *latencyTarget) drive(total int) (wall, cpu time.Duration, lat []time.Duration, err error) {
	var next atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	lats := make([][]time.Duration, min(benchInFlight, total))
	cpu0 := processCPU()
	start := time.Now()
	for i := range lats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				t0 := time.Now()
				resp, e := t.client.Get(t.url)
				if e == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != t.status {
						e = &statusError{t.name, resp.StatusCode, t.status}
					}
				}
				if e != nil {
					once.Do(func() { err = e })
					return
				}
				lats[i] = append(lats[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	wall, cpu = time.Since(start), processCPU()-cpu0
	for _, l := range lats {
		lat = append(lat, l...)
	}
	return wall, cpu, lat, err
}

type statusError struct {
	name      string
	got, want int
}

func (e *statusError) Error() string {
	return e.name + ": status " + http.StatusText(e.got) + ", want " + http.StatusText(e.want)
}

func p99(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[len(lat)*99/100]
}

// interleave drives every target with b.N requests in rounds that rotate
// their order, and reports req/s, cpu-us/req and p99 per target.
func interleave(b *testing.B, targets []*latencyTarget) (rate, cpuPer []float64, p99s []time.Duration) {
	for _, t := range targets {
		if _, _, _, err := t.drive(4 * benchInFlight); err != nil {
			b.Fatalf("warm-up: %v", err)
		}
	}
	const rounds = 8
	spent := make([]time.Duration, len(targets))
	cpu := make([]time.Duration, len(targets))
	sent := make([]int, len(targets))
	lats := make([][]time.Duration, len(targets))
	b.ResetTimer()
	for r := range rounds {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		if n == 0 {
			continue
		}
		for k := range targets {
			i := (k + r) % len(targets)
			d, c, l, err := targets[i].drive(n)
			if err != nil {
				b.Fatal(err)
			}
			spent[i] += d
			cpu[i] += c
			sent[i] += n
			lats[i] = append(lats[i], l...)
		}
	}
	b.StopTimer()
	for i, t := range targets {
		rate = append(rate, float64(sent[i])/spent[i].Seconds())
		cpuPer = append(cpuPer, float64(cpu[i].Nanoseconds())/float64(max(sent[i], 1))/1e3)
		p99s = append(p99s, p99(lats[i]))
		b.ReportMetric(rate[i], t.name+"-req/s")
		b.ReportMetric(cpuPer[i], t.name+"-cpu-us/req")
		b.ReportMetric(float64(p99s[i].Microseconds()), t.name+"-p99-us")
	}
	return rate, cpuPer, p99s
}

// BenchmarkRefusalVsMinimal403 interleaves warden refusing /metrics (a path
// rule: 403, no upstream, a decision-log line each through obs.LogWriter)
// with a minimal net/http server answering every request 403, and reports
// ratio = warden / minimal in req/s and cpu-ratio = minimal / warden in CPU
// per request (client, server and all, in this process).
func BenchmarkRefusalVsMinimal403(b *testing.B) {
	lines := &lineCounter{}
	base, _ := perfGateway(b, perfUpstream(b), 10_000, lines)
	minimal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "forbidden\n")
	}))
	b.Cleanup(minimal.Close)
	targets := []*latencyTarget{newLatencyTarget("minimal", minimal.URL+"/metrics", 403), newLatencyTarget("warden", base+"/metrics", 403)}
	rate, cpu, _ := interleave(b, targets)
	b.ReportMetric(rate[1]/rate[0], "ratio")
	b.ReportMetric(cpu[0]/cpu[1], "cpu-ratio")
	time.Sleep(50 * time.Millisecond) // let the log writer catch up
	if lines.lines.Load() == 0 {
		b.Fatal("no refusal was logged")
	}
}

// BenchmarkListSize interleaves two gateways that differ only in the size
// of their deny list (10,000 and 1,000,000 CIDRs), with a GC cycle forced
// every 20 ms while they serve, and reports ratio = 1M / 10k in req/s,
// p99 of each, and the heap the 1M list holds.
func BenchmarkListSize(b *testing.B) {
	up := perfUpstream(b)
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	small, _ := perfGateway(b, up, 10_000, io.Discard)
	big, _ := perfGateway(b, up, 1_000_000, io.Discard)
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	targets := []*latencyTarget{newLatencyTarget("10k", small+benchPath, 200), newLatencyTarget("1M", big+benchPath, 200)}
	stop := make(chan struct{})
	done := make(chan struct{})
	var gcs int
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				runtime.GC()
				gcs++
			}
		}
	}()
	rate, cpu, p := interleave(b, targets)
	close(stop)
	<-done
	b.ReportMetric(rate[1]/rate[0], "ratio")
	b.ReportMetric(cpu[0]/cpu[1], "cpu-ratio")
	b.ReportMetric(float64(p[1])/float64(max(p[0], 1)), "p99-ratio")
	b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/(1<<20), "lists-heap-MiB")
	b.ReportMetric(float64(gcs), "forced-gcs")
}

// nopWriter is a ResponseWriter that keeps nothing, for allocation counts.
type nopWriter struct {
	h      http.Header
	status int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) WriteHeader(s int)           { w.status = s }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkZeroServeRefusal is the gateway's handler refusing /metrics, in
// process (no connection): judge, render from the refusal cache, log the
// record to obs.LogWriter. Its allocations are the gateway's own.
func BenchmarkZeroServeRefusal(b *testing.B) {
	_, srv := perfGateway(b, perfUpstream(b), 1_000, io.Discard)
	r := httptest.NewRequest("GET", "/metrics", nil)
	r.RemoteAddr = "10.1.2.3:4567"
	r.Header.Set("User-Agent", "curl/8.5.0")
	r.Header.Set("Accept", "*/*")
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		srv.ServeHTTP(w, r)
		if w.status != 403 {
			b.Fatalf("status %d, want 403", w.status)
		}
	}
}

// refusalAllocs is what BenchmarkZeroServeRefusal may allocate per refused
// request, and TestZeroServeRefusalAllocs holds it there (issue 17: it was
// 20 with the decision line built by slog, its trace put into words and its
// headers in a fresh map, and X-Request-Id's value a fresh slice).
const refusalAllocs = 0

// TestZeroServeRefusalAllocs: the gateway's refusal path, decision line
// included, stays within refusalAllocs allocations, and the line is written.
func TestZeroServeRefusalAllocs(t *testing.T) {
	lines := &newlineCounter{}
	_, srv := perfGateway(t, perfUpstream(t), 1_000, lines)
	r := httptest.NewRequest("GET", "/metrics", nil)
	r.RemoteAddr = "10.1.2.3:4567"
	r.Header.Set("User-Agent", "curl/8.5.0")
	r.Header.Set("Accept", "*/*")
	w := &nopWriter{h: http.Header{}}
	serve := func() {
		clear(w.h)
		srv.ServeHTTP(w, r)
		if w.status != 403 || w.h.Get("X-Request-Id") == "" || w.h.Get("Content-Type") == "" {
			t.Fatalf("status %d, headers %v", w.status, w.h)
		}
	}
	for range 1000 { // the log writer's buffers and the pools fill up
		serve()
	}
	time.Sleep(50 * time.Millisecond)
	// AllocsPerRun counts the whole process: the least of three runs, so
	// that another test's goroutine allocating meanwhile is not counted.
	a := testing.AllocsPerRun(500, serve)
	for range 2 {
		a = min(a, testing.AllocsPerRun(500, serve))
	}
	t.Logf("%.1f allocations per refusal", a)
	if a > refusalAllocs {
		t.Errorf("%.1f allocations per refusal, want at most %d", a, refusalAllocs)
	}
	deadline := time.Now().Add(2 * time.Second)
	for lines.lines.Load() < 2500 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := lines.lines.Load(); n < 2500 {
		t.Errorf("%d decision lines written, want at least 2500", n)
	}
}

// newlineCounter counts lines without allocating (the log writer's
// goroutine runs during AllocsPerRun, and its allocations count too).
type newlineCounter struct{ lines atomic.Int64 }

func (c *newlineCounter) Write(p []byte) (int, error) {
	c.lines.Add(int64(bytes.Count(p, []byte{'\n'})))
	return len(p), nil
}
