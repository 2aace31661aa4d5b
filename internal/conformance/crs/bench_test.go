package crs

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	txhttp "github.com/corazawaf/coraza/v3/http"

	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/waf"
)

// The benchmarks compare two fronts before the same loopback upstream,
// each a real server on its own loopback port driven by a real client:
//
//   - warden: the whole gateway (canonical request, policy, request id,
//     WAF, reverse proxy) built from benchWardenConfig;
//   - coraza-middleware: Coraza's own net/http middleware
//     (txhttp.WrapHandler) around an httputil.ReverseProxy (with the
//     connection pool and copy-buffer pool warden's proxy has), over a WAF built
//     from exactly the SecLang warden's engine loads (Engine.Directives):
//     the CRS at paranoia 1, block mode, thresholds 5/4, request body
//     inspection on, response inspection off.
//
// Run them with:
//
//	go test ./internal/conformance/crs -run '^$' -bench . -benchtime 3s -count 5

const (
	benchGETTarget = "/articles/2024/hello-world?page=2&sort=date"
	benchFormBody  = "name=Ada+Lovelace&email=ada%40example.org&bio=Mathematician+and+writer.&newsletter=on"
	benchAttack    = "/articles?q=1%27%20OR%20%271%27%3D%271"
	benchHost      = "shop.example"
)

// benchWardenConfig is warden with the WAF at its defaults (block mode,
// paranoia 1) in front of one upstream.
const benchWardenConfig = `
handle:
  - path: /
    upstream: "{{UPSTREAM}}"
waf:
  mode: block
`

// benchWAFConfig is the waf.Config benchWardenConfig's waf section means.
var benchWAFConfig = waf.Config{Mode: waf.ModeBlock}

func benchUpstream(b *testing.B) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><title>ok</title><p>hello</p>")
	}))
	b.Cleanup(up.Close)
	return up
}

// benchLogger is what `warden serve` logs with, writing nowhere.
func benchLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// wardenFront runs warden on a loopback port, as `warden serve` does, and
// returns its base URL.
func wardenFront(b *testing.B, upstreamURL string) string {
	return gatewaytest.Start(b, wardenConfig(b, benchWardenConfig, upstreamURL), benchLogger(), nil).URL()
}

// corazaFront runs Coraza's middleware, over the SecLang warden's engine
// is built from, around a reverse proxy to the upstream.
func corazaFront(b *testing.B, upstreamURL string) string {
	e, err := waf.New(benchWAFConfig)
	if err != nil {
		b.Fatal(err)
	}
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(e.Directives()))
	if err != nil {
		b.Fatal(err)
	}
	target, err := url.Parse(upstreamURL)
	if err != nil {
		b.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// The connection pool and recycled copy buffers warden's proxy has
	// (proxy.DefaultMaxIdleConnsPerHost, its BufferPool), so that the two
	// fronts differ in how they run the WAF, not in how they forward.
	proxy.Transport = &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second}
	proxy.BufferPool = &copyBuffers{}
	srv := httptest.NewServer(txhttp.WrapHandler(w, proxy))
	b.Cleanup(srv.Close)
	return srv.URL
}

// copyBuffers recycles httputil.ReverseProxy's 32 KiB copy buffers.
type copyBuffers struct{ pool sync.Pool }

func (c *copyBuffers) Get() []byte {
	if b, ok := c.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (c *copyBuffers) Put(b []byte) { c.pool.Put(&b) }

// benchClient sends browser-like requests to one front.
type benchClient struct {
	base   string
	client *http.Client
}

func newBenchClient(b *testing.B, base string) *benchClient {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	return &benchClient{base: base, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *benchClient) do(method, target string) (int, error) {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(benchFormBody)
	}
	r, err := http.NewRequest(method, c.base+target, body)
	if err != nil {
		return 0, err
	}
	r.Host = benchHost
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	r.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	r.Header.Set("Accept-Language", "en-GB,en;q=0.5")
	resp, err := c.client.Do(r)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// benchFront is one front with a client for it.
type benchFront struct {
	name string
	c    *benchClient
}

// startFronts starts the upstream and both fronts before it, and checks
// that both serve the benign requests and refuse an attack: the WAF is
// really on in both.
func startFronts(b *testing.B) []benchFront {
	up := benchUpstream(b)
	fronts := []benchFront{
		{"warden", newBenchClient(b, wardenFront(b, up.URL))},
		{"coraza-middleware", newBenchClient(b, corazaFront(b, up.URL))},
	}
	for _, f := range fronts {
		for _, probe := range []struct {
			method, target string
			want           int
		}{{"GET", benchGETTarget, 200}, {"POST", "/account/profile", 200}, {"GET", benchAttack, 403}} {
			if status, err := f.c.do(probe.method, probe.target); err != nil || status != probe.want {
				b.Fatalf("%s: %s %s: status %d (%v), want %d", f.name, probe.method, probe.target, status, err, probe.want)
			}
		}
	}
	return fronts
}

var benchRequests = []struct{ name, method, target string }{
	{"GET", http.MethodGet, benchGETTarget},
	{"FormPOST", http.MethodPost, "/account/profile"},
}

// benchParallelism clients per core are in flight, enough to keep every
// core busy, so req/s is throughput, not round-trip latency.
const benchParallelism = 4

// BenchmarkWAFFront measures each front on its own, benign GET and benign
// form POST: req/s, ns, process CPU time and allocations per request
// (client and servers together, as all run in this process).
func BenchmarkWAFFront(b *testing.B) {
	fronts := startFronts(b)
	for _, req := range benchRequests {
		b.Run(req.name, func(b *testing.B) {
			for _, f := range fronts {
				b.Run(f.name, func(b *testing.B) {
					b.ReportAllocs()
					b.SetParallelism(benchParallelism)
					startCPU := processCPU()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if status, err := f.c.do(req.method, req.target); err != nil || status != http.StatusOK {
								b.Errorf("status %d, error %v", status, err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
					if cpu := processCPU() - startCPU; cpu > 0 {
						b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/req")
					}
				})
			}
		})
	}
}

// BenchmarkWAFFrontInterleaved compares the fronts under the same
// conditions: the b.N requests go in alternating phases of up to
// benchPhase requests, all clients on one front, then all on the other, so that
// anything else the machine does weighs on both alike. It reports each
// front's req/s over its own phases and warden's rate over the
// middleware's, and the process CPU time per request in each front's phases
// (client, front and upstream; other processes' load does not count), with
// the middleware's CPU per request over warden's: above 1, warden is cheaper.
func BenchmarkWAFFrontInterleaved(b *testing.B) {
	const benchPhase = 32
	fronts := startFronts(b)
	workers := benchParallelism * runtime.GOMAXPROCS(0)
	for _, req := range benchRequests {
		b.Run(req.name, func(b *testing.B) {
			served := make([]int, len(fronts))
			spent := make([]time.Duration, len(fronts))
			cpu := make([]time.Duration, len(fronts))
			remaining := b.N
			phaseLen := max(1, min(benchPhase, b.N/(2*len(fronts)))) // at least two phases each
			for phase := 0; remaining > 0; phase++ {
				i := phase % len(fronts)
				n := min(phaseLen, remaining)
				var next atomic.Int64
				var wg sync.WaitGroup
				start, startCPU := time.Now(), processCPU()
				for range workers {
					wg.Go(func() {
						for next.Add(1) <= int64(n) {
							if status, err := fronts[i].c.do(req.method, req.target); err != nil || status != http.StatusOK {
								b.Errorf("%s: status %d, error %v", fronts[i].name, status, err)
								return
							}
						}
					})
				}
				wg.Wait()
				spent[i] += time.Since(start)
				cpu[i] += processCPU() - startCPU
				served[i] += n
				remaining -= n
			}
			if spent[0] == 0 || spent[1] == 0 {
				return // too few requests for both fronts to have had a phase
			}
			warden := float64(served[0]) / spent[0].Seconds()
			middleware := float64(served[1]) / spent[1].Seconds()
			b.ReportMetric(warden, "warden-req/s")
			b.ReportMetric(middleware, "middleware-req/s")
			b.ReportMetric(warden/middleware, "warden/middleware")
			wardenCPU := float64(cpu[0].Microseconds()) / float64(served[0])
			middlewareCPU := float64(cpu[1].Microseconds()) / float64(served[1])
			if wardenCPU > 0 {
				b.ReportMetric(wardenCPU, "warden-cpu-us/req")
				b.ReportMetric(middlewareCPU, "middleware-cpu-us/req")
				b.ReportMetric(middlewareCPU/wardenCPU, "cpu-middleware/warden")
			}
		})
	}
}

// BenchmarkIPRefused: a request refused by an IP rule costs the same with
// the WAF on as with it off, because the WAF runs only after the rules. The
// requests go straight to the gateway's ServeHTTP, so that nothing but
// warden's own work is measured. For scale, waf-refused is what the WAF's
// work costs: an attack from an allowed address, refused by the CRS. The
// sub-benchmark on-vs-off alternates phases of up to 1024 IP-refused requests
// between the two servers, so the ratio holds on a busy machine.
func BenchmarkIPRefused(b *testing.B) {
	const policy = `
ip_lists:
  blocked:
    cidrs: [203.0.113.0/24]
rules:
  - name: blocked-addresses
    when: { ip_list: blocked }
    action: deny
handle:
  - path: /
    upstream: "{{UPSTREAM}}"
`
	up := benchUpstream(b)
	type server struct {
		name string
		srv  *gateway.Server
		req  *http.Request
	}
	var servers []server
	for _, tc := range []struct {
		name, config, from, code string
	}{
		{"waf-off", policy, "203.0.113.9", "ip_blocked"},
		{"waf-on", policy + "waf:\n  mode: block\n", "203.0.113.9", "ip_blocked"},
		{"waf-refused", policy + "waf:\n  mode: block\n", "198.51.100.20", "waf_blocked"},
	} {
		srv, _ := newWarden(b, tc.config, up.URL, benchLogger())
		r := httptest.NewRequest(http.MethodGet, benchAttack, nil)
		r.RemoteAddr = tc.from + ":40000"
		r.Host = benchHost
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
		r.Header.Set("Accept", "application/json")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), `"code":"`+tc.code+`"`) {
			b.Fatalf("%s: status %d body %s, want 403 %s", tc.name, w.Code, w.Body, tc.code)
		}
		servers = append(servers, server{tc.name, srv, r})
	}
	for _, s := range servers {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			startCPU := processCPU()
			for b.Loop() {
				s.srv.ServeHTTP(httptest.NewRecorder(), s.req)
			}
			if cpu := processCPU() - startCPU; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
	b.Run("on-vs-off", func(b *testing.B) {
		pair := servers[:2] // waf-off, waf-on
		phaseLen := max(1, min(1024, b.N/4))
		var spent, cpu [2]time.Duration
		var served [2]int
		remaining := b.N
		for p := 0; remaining > 0; p++ {
			i := p % 2
			n := min(phaseLen, remaining)
			start, startCPU := time.Now(), processCPU()
			for range n {
				pair[i].srv.ServeHTTP(httptest.NewRecorder(), pair[i].req)
			}
			spent[i] += time.Since(start)
			cpu[i] += processCPU() - startCPU
			served[i] += n
			remaining -= n
		}
		if served[1] == 0 {
			return
		}
		off := float64(spent[0].Nanoseconds()) / float64(served[0])
		on := float64(spent[1].Nanoseconds()) / float64(served[1])
		b.ReportMetric(off, "waf-off-ns/req")
		b.ReportMetric(on, "waf-on-ns/req")
		b.ReportMetric(on/off, "on/off")
		if cpu[0] > 0 {
			offCPU := float64(cpu[0].Nanoseconds()) / float64(served[0])
			onCPU := float64(cpu[1].Nanoseconds()) / float64(served[1])
			b.ReportMetric(offCPU, "waf-off-cpu-ns/req")
			b.ReportMetric(onCPU, "waf-on-cpu-ns/req")
			b.ReportMetric(onCPU/offCPU, "cpu-on/off")
		}
	})
}
