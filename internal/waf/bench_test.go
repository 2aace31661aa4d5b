package waf

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	txhttp "github.com/corazawaf/coraza/v3/http"
)

// The benchmarks put each front (warden's Inspect-based handler, Coraza's
// own net/http middleware) in front of the same loopback upstream, through
// the same reverse proxy, and drive it with a real client over loopback.
// Both fronts run one WAF built from the same SecLang: warden's default
// configuration (block mode, paranoia 1, response inspection off).

const (
	benchGETTarget = "/articles/2024/hello-world?page=2&sort=date"
	benchFormBody  = "name=Ada+Lovelace&email=ada%40example.org&bio=Mathematician+and+writer.&newsletter=on"
)

func BenchmarkWardenGET(b *testing.B)      { benchFront(b, wardenFront, "GET") }
func BenchmarkWardenFormPOST(b *testing.B) { benchFront(b, wardenFront, "POST") }

func BenchmarkCorazaMiddlewareGET(b *testing.B)      { benchFront(b, corazaFront, "GET") }
func BenchmarkCorazaMiddlewareFormPOST(b *testing.B) { benchFront(b, corazaFront, "POST") }

// wardenFront is the gateway's WAF step as the lead wires it: Inspect with
// the canonical path, refuse or forward the returned body.
func wardenFront(b *testing.B, proxy http.Handler) http.Handler {
	e, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, _ := netip.ParseAddrPort(r.RemoteAddr)
		v, body, err := e.Inspect(RequestFrom(r, "", r.URL.EscapedPath(), r.URL.RawQuery, peer.Addr()))
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if d, refused := v.Refusal(); refused {
			http.Error(w, d.Reason, d.Status)
			return
		}
		r.Body = body
		proxy.ServeHTTP(v.WrapResponse(w), r)
		if rv, _ := v.Finish(); rv.Blocked {
			http.Error(w, "response judged unsafe", http.StatusForbidden)
		}
	})
}

// corazaFront is Coraza's middleware over a WAF built from the very
// directives warden's default engine loads.
func corazaFront(b *testing.B, proxy http.Handler) http.Handler {
	cfg, err := withDefaults(Config{})
	if err != nil {
		b.Fatal(err)
	}
	routeRules, err := compileRoutes(cfg.Routes)
	if err != nil {
		b.Fatal(err)
	}
	waf, err := buildWAF(directiveSections(cfg, routeRules), nil)
	if err != nil {
		b.Fatal(err)
	}
	return txhttp.WrapHandler(waf, proxy)
}

func benchFront(b *testing.B, front func(*testing.B, http.Handler) http.Handler, method string) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><title>ok</title><p>hello</p>")
	}))
	defer upstream.Close()
	upstreamURL, _ := url.Parse(upstream.URL)
	proxy := httputil.NewSingleHostReverseProxy(upstreamURL)
	proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 64}

	srv := httptest.NewServer(front(b, proxy))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	newRequest := func() *http.Request {
		var r *http.Request
		if method == "POST" {
			r, _ = http.NewRequest("POST", srv.URL+"/account/profile", strings.NewReader(benchFormBody))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r, _ = http.NewRequest("GET", srv.URL+benchGETTarget, nil)
		}
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
		r.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
		r.Header.Set("Accept-Language", "en-GB,en;q=0.5")
		return r
	}
	do := func() error {
		resp, err := client.Do(newRequest())
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return &statusError{resp.StatusCode}
		}
		return nil
	}
	if err := do(); err != nil { // warm up, and make sure the request is benign
		b.Fatal(err)
	}

	b.ReportAllocs()
	// Enough clients in flight to keep every core of the front busy, so
	// req/s is the front's throughput rather than a round-trip latency.
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := do(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "req/s")
	}
}

type statusError struct{ status int }

func (e *statusError) Error() string { return "status " + http.StatusText(e.status) }

// BenchmarkInspectTarget measures what judging a non-canonical target costs:
// a target already canonical is judged once; one whose spelling the
// canonicalizer changed (here merged slashes and a dot segment) is judged
// twice, raw and canonical. Engine only, no HTTP:
//
//	go test -run '^$' -bench BenchmarkInspectTarget -benchtime 300x -count 3 -cpu 1 ./internal/waf/
func BenchmarkInspectTarget(b *testing.B) {
	e, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	r.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	for _, c := range []struct{ name, raw string }{
		{"canonical", "/articles/2024/hello-world?page=2"},
		{"non-canonical", "/articles//2024/./hello-world?page=2"},
	} {
		b.Run(c.name, func(b *testing.B) {
			startCPU := processCPU()
			for b.Loop() {
				req := RequestFrom(r, "", "/articles/2024/hello-world", "page=2", testClient)
				req.RawTarget = c.raw
				v, body, err := e.Inspect(req)
				if err != nil || v.Blocked {
					b.Fatalf("blocked=%v err=%v", v.Blocked, err)
				}
				body.Close()
				_, _ = v.Finish()
			}
			// CPU time, not wall time: on a machine shared with other
			// work it is the figure that holds still.
			if cpu := processCPU() - startCPU; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkGCPercent measures how much of the CRS's cost is the garbage
// collector's: Coraza allocates some 3,000 objects per request, and a
// higher GOGC trades memory for fewer collections. Benign requests through
// Inspect, rotating phases of 64 requests between GOGC=100 (Go's default,
// what `warden serve` runs with), 200 and 400, with the process CPU time per
// request of each (GC workers included) and 100/200, 100/400 (above 1: the
// higher setting saves CPU). The setting is process-wide, so nothing else
// runs meanwhile. The price is memory: one engine holds about 21 MB live
// (the compiled CRS), and the heap grows to about (1+GOGC/100) times the
// live heap between collections. Engine only, no HTTP:
//
//	go test -run '^$' -bench BenchmarkGCPercent -benchtime 2000x -count 5 ./internal/waf/
func BenchmarkGCPercent(b *testing.B) {
	e, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	settings := [3]int{100, 200, 400}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, c := range []struct{ method, target, body string }{
		{"GET", benchGETTarget, ""},
		{"POST", "/account/profile", benchFormBody},
	} {
		b.Run(c.method, func(b *testing.B) {
			var cpu [3]time.Duration
			var served [3]int
			remaining := b.N
			for phase := 0; remaining > 0; phase++ {
				i, n := phase%3, min(64, remaining)
				debug.SetGCPercent(settings[i])
				start := processCPU()
				for range n {
					var body io.Reader
					if c.body != "" {
						body = strings.NewReader(c.body)
					}
					r := browserRequest(c.method, c.target, body)
					path, query, _ := strings.Cut(c.target, "?")
					v, rb, err := e.Inspect(RequestFrom(r, "", path, query, testClient))
					if err != nil || v.Blocked || len(v.Matches) != 0 {
						b.Fatalf("GOGC=%d: blocked=%v matches=%v err=%v", settings[i], v.Blocked, v.RuleIDs(), err)
					}
					rb.Close()
					_, _ = v.Finish()
				}
				cpu[i] += processCPU() - start
				served[i] += n
				remaining -= n
			}
			if served[2] == 0 || cpu[1] == 0 || cpu[2] == 0 {
				return
			}
			ns := func(i int) float64 { return float64(cpu[i].Nanoseconds()) / float64(served[i]) }
			b.ReportMetric(ns(0), "gogc100-cpu-ns/req")
			b.ReportMetric(ns(1), "gogc200-cpu-ns/req")
			b.ReportMetric(ns(2), "gogc400-cpu-ns/req")
			b.ReportMetric(ns(0)/ns(1), "cpu-100/200")
			b.ReportMetric(ns(0)/ns(2), "cpu-100/400")
		})
	}
}
