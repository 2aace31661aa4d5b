package gateway_test

// Throughput of the whole gateway (canonical request, a ~50-rule policy with
// a 100,000-entry ip list, decision, refusal logging set to refusals only,
// reverse proxy) against a bare httputil.NewSingleHostReverseProxy, both as
// real listening servers on 127.0.0.1 in front of the same upstream, driven
// by a keep-alive Go client with ~64 requests in flight.
//
//	go test -run '^$' -bench '^Benchmark(BareProxy|BareProxyPooled|Gateway|GatewayVsBareProxy)$' -benchtime 5s ./internal/gateway/
//
// BenchmarkGatewayVsBareProxy is the one that answers "what does warden
// cost": it alternates the two targets in rounds, so that load from other
// processes on the machine falls on both alike, and reports the ratio.
// scripts/bench.sh measures the real binaries (warden, a bare proxy, nginx,
// Caddy) with wrk.

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/identity"
)

// benchInFlight is the number of requests kept in flight, each on its own
// keep-alive connection.
const benchInFlight = 64

// benchPath is an allowed request under the API the policy guards.
const benchPath = "/api/v1/orders/12345/items?expand=sku&page=2"

// benchBody is what the upstream answers: a small JSON document, so that
// the per-request work of the two proxies dominates, which is the least
// flattering case for the gateway.
var benchBody = []byte(`{"order":12345,"items":[{"sku":"A-1","qty":2,"price":"9.90"},{"sku":"B-7","qty":1,"price":"24.00"}],"currency":"EUR","status":"shipped","updated":"2026-11-29T12:00:00Z"}` + "\n")

// countingListener counts accepted connections: with keep-alive working a
// run opens about one per request in flight, not one per request.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

func listenCounting(tb testing.TB) *countingListener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	return &countingListener{Listener: ln}
}

// lineCounter counts decision-log lines.
type lineCounter struct{ lines atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines.Add(int64(strings.Count(string(p), "\n")))
	return len(p), nil
}

// benchTarget is one listening proxy and the client that drives it.
type benchTarget struct {
	name   string
	url    string
	ln     *countingListener
	client *http.Client
}

type benchEnv struct {
	upstream *countingListener
	// bare is httputil.NewSingleHostReverseProxy as it comes, with only
	// its transport's pool sized like warden's. barePooled also recycles
	// its 32 KiB copy buffers as warden's proxy does, so that against it
	// the gateway's own per-request work is all that differs.
	bare       *benchTarget
	barePooled *benchTarget
	gateway    *benchTarget
	logLines   *lineCounter
}

// copyBuffers is the httputil.BufferPool warden's proxy also has.
type copyBuffers struct{ pool sync.Pool }

func (c *copyBuffers) Get() []byte {
	if b, ok := c.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (c *copyBuffers) Put(b []byte) { c.pool.Put(&b) }

// writeBenchCIDRs writes n distinct random IPv4 prefixes outside 127/8.
func writeBenchCIDRs(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatalf("create cidr file: %v", err)
	}
	w := bufio.NewWriter(f)
	rng := rand.New(rand.NewPCG(42, 7))
	seen := make(map[netip.Prefix]bool, n)
	for len(seen) < n {
		first := byte(11 + rng.IntN(212))
		if first == 127 {
			continue
		}
		bits := 32
		if rng.IntN(4) == 0 {
			bits = 24
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{first, byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}), bits).Masked()
		if seen[p] {
			continue
		}
		seen[p] = true
		fmt.Fprintln(w, p)
	}
	if err := w.Flush(); err != nil {
		tb.Fatalf("write cidr file: %v", err)
	}
	if err := f.Close(); err != nil {
		tb.Fatalf("close cidr file: %v", err)
	}
}

// benchPolicy is a policy of the size and shape a real API gateway holds:
// network rules first, then path, method and host rules over several API
// roots, a role-gated admin area, and the default allow.
func benchPolicy(upstream, blockedFile string) (string, int) {
	var b strings.Builder
	fmt.Fprintf(&b, `trusted_proxies: [10.255.0.0/16]
ip_lists:
  blocked:
    files: [%q]
  scanners:
    cidrs: [192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24]
identity:
  api_keys:
    header: X-API-Key
    keys:
      - id: ops
        sha256: %q
        roles: [admin]
rules:
  - name: blocklist
    when: { ip_list: [blocked] }
    action: deny
  - name: scanners
    when: { ip_list: [scanners] }
    action: deny
  - name: no-trace
    when: { methods: [TRACE, CONNECT] }
    action: deny
  - name: vcs-folders
    when: { path: { glob: ["/**/.git/**", "/**/.svn/**"] } }
    action: conceal
  - name: dotenv
    when: { path: { glob: ["/**/.env"] } }
    action: conceal
  - name: metrics
    when: { path: { exact: [/metrics, /debug/vars], prefix: [/debug/pprof/] } }
    action: deny
  - name: admin-area
    when: { path: { prefix: /admin/ } }
    require: { roles_any: [admin] }
    action: allow
  - name: ops-from-office
    when: { path: { prefix: /ops/ }, not_ip: [192.168.0.0/16] }
    action: deny
  - name: legacy-host
    when: { hosts: [legacy.example.com, "*.old.example.net"] }
    action: conceal
`, blockedFile, identity.HashKey("bench-ops-key"))
	rules := 9
	services := []string{"orders", "users", "billing", "catalog", "search", "inventory", "shipping", "reports", "auth", "files"}
	for i, svc := range services {
		root := "/api/v" + strconv.Itoa(1+i%2) + "/" + svc + "/"
		fmt.Fprintf(&b, "  - name: %s-internal\n    when: { path: { prefix: [%sinternal/], exact: [%shealth/details] } }\n    action: deny\n", svc, root, root)
		fmt.Fprintf(&b, "  - name: %s-writes\n    when: { path: { prefix: [%sadmin/] }, methods: [PUT, DELETE, PATCH] }\n    action: deny\n", svc, root)
		fmt.Fprintf(&b, "  - name: %s-exports\n    when: { path: { glob: [\"%s*/export/**\"] } }\n    action: conceal\n", svc, root)
		fmt.Fprintf(&b, "  - name: %s-partners\n    when: { path: { prefix: [%spartner/] }, hosts: [partners.example.com] }\n    action: allow\n", svc, root)
		rules += 4
	}
	fmt.Fprintf(&b, `handle:
  - path: /
    upstream: %s
`, upstream)
	return b.String(), rules
}

// startBenchEnv starts the upstream, the bare proxy and the gateway, each on
// its own 127.0.0.1 port; all stop when tb ends.
func startBenchEnv(tb testing.TB) *benchEnv {
	tb.Helper()
	env := &benchEnv{logLines: &lineCounter{}}

	env.upstream = listenCounting(tb)
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(benchBody))}
		w.Write(benchBody)
	})}
	go up.Serve(env.upstream)
	tb.Cleanup(func() { up.Close() })
	upURL := &url.URL{Scheme: "http", Host: env.upstream.Addr().String()}

	// The bare proxies get a transport with the same pool size as warden's
	// (proxy.DefaultMaxIdleConnsPerHost): with http.DefaultTransport's 2
	// idle connections per host they would open a new upstream connection
	// for most requests and the comparison would flatter warden. Their
	// http.Server has the timeouts and header limit warden's has, and none
	// of warden's own wrapping (Harden, WrapListener).
	bareProxy := func(name string, pooled bool) *benchTarget {
		rp := httputil.NewSingleHostReverseProxy(upURL)
		rp.Transport = &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 512,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		if pooled {
			rp.BufferPool = &copyBuffers{}
		}
		ln := listenCounting(tb)
		hs := &http.Server{
			Handler:           rp,
			ReadHeaderTimeout: gateway.DefaultReadHeaderTimeout,
			ReadTimeout:       gateway.DefaultReadTimeout,
			IdleTimeout:       gateway.DefaultIdleTimeout,
			MaxHeaderBytes:    gateway.DefaultMaxHeaderBytes,
		}
		go hs.Serve(ln)
		tb.Cleanup(func() { hs.Close() })
		return newBenchTarget(name, ln)
	}
	env.bare = bareProxy("bare", false)
	env.barePooled = bareProxy("bare-pooled", true)

	dir := tb.TempDir()
	blocked := filepath.Join(dir, "blocked.txt")
	writeBenchCIDRs(tb, blocked, 100_000)
	src, nRules := benchPolicy(upURL.String(), blocked)
	cfgPath := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfgPath, []byte(src), 0o644); err != nil {
		tb.Fatalf("write config: %v", err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		tb.Fatalf("load config: %v", err)
	}
	logger := slog.New(slog.NewJSONHandler(env.logLines, nil))
	srv := gateway.NewServer(logger)
	rt, err := gateway.Build(cfg, gateway.Options{Logger: logger}, srv.UpstreamError)
	if err != nil {
		tb.Fatalf("build gateway: %v", err)
	}
	if got := rt.Policy.RuleCount(); got != nRules {
		tb.Fatalf("policy has %d rules, want %d", got, nRules)
	}
	if rt.LogAll || rt.LogOff {
		tb.Fatalf("decision log must be the default (refusals only); LogAll=%v LogOff=%v", rt.LogAll, rt.LogOff)
	}
	srv.Swap(rt)
	// Served the way `warden serve` serves: NewHTTPServer's limits and
	// checks, on WrapListener's connection limit and framing check.
	gwLn := listenCounting(tb)
	gw := gateway.NewHTTPServer("", srv, &cfg.Limits)
	go gw.Serve(gateway.WrapListener(gwLn, &cfg.Limits))
	tb.Cleanup(func() { gw.Close(); rt.Close() })
	env.gateway = newBenchTarget("gateway", gwLn)

	env.check(tb)
	return env
}

func newBenchTarget(name string, ln *countingListener) *benchTarget {
	return &benchTarget{
		name: name,
		url:  "http://" + ln.Addr().String() + benchPath,
		ln:   ln,
		client: &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        2 * benchInFlight,
			MaxIdleConnsPerHost: 2 * benchInFlight,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}},
	}
}

// check proves the set-up before anything is timed: both targets answer the
// upstream's body, the gateway refuses what its policy says, refusals are
// logged, and the allowed request is not.
func (env *benchEnv) check(tb testing.TB) {
	tb.Helper()
	for _, t := range []*benchTarget{env.bare, env.barePooled, env.gateway} {
		if err := t.get(); err != nil {
			tb.Fatalf("%s: %v", t.name, err)
		}
	}
	if n := env.logLines.lines.Load(); n != 0 {
		tb.Fatalf("an allowed request was logged (%d lines); the default logs refusals only", n)
	}
	base := strings.TrimSuffix(env.gateway.url, benchPath)
	for path, want := range map[string]int{"/metrics": 403, "/api/v1/orders/internal/x": 403, "/app/.git/config": 404, "/admin/": 401} {
		resp, err := env.gateway.client.Get(base + path)
		if err != nil {
			tb.Fatalf("gateway %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("X-Request-Id") == "" {
			tb.Fatalf("gateway %s: status %d (request id %q), want %d with a request id", path, resp.StatusCode, resp.Header.Get("X-Request-Id"), want)
		}
	}
	if n := env.logLines.lines.Load(); n != 4 {
		tb.Fatalf("4 refusals gave %d decision-log lines, want 4", n)
	}
	env.logLines.lines.Store(0)
}

// get sends one benchmark request and checks the answer.
func (t *benchTarget) get() error {
	resp, err := t.client.Get(t.url)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading body: %w", err)
	}
	if resp.StatusCode != http.StatusOK || n != int64(len(benchBody)) {
		return fmt.Errorf("status %d with %d body bytes, want 200 with %d", resp.StatusCode, n, len(benchBody))
	}
	return nil
}

// drive sends total requests with benchInFlight in flight and returns how
// long they took, the CPU time the process spent meanwhile, and the first
// error.
func (t *benchTarget) drive(total int) (wall, cpu time.Duration, err error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	workers := min(benchInFlight, total)
	cpu0 := processCPU()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				if err := t.get(); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), processCPU() - cpu0, firstErr
}

// runParallel drives one target with b.RunParallel and reports requests per
// second.
func runParallel(b *testing.B, pick func(*benchEnv) *benchTarget) {
	env := startBenchEnv(b)
	t := pick(env)
	if _, _, err := t.drive(4 * benchInFlight); err != nil { // open the connections
		b.Fatalf("%s warm-up: %v", t.name, err)
	}
	b.SetParallelism((benchInFlight + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var failures atomic.Int64
	var firstErr atomic.Value
	upConns := env.upstream.accepted.Load()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := t.get(); err != nil {
				if failures.Add(1) == 1 {
					firstErr.Store(err)
				}
			}
		}
	})
	cpu := processCPU() - cpu0
	b.StopTimer()
	if n := failures.Load(); n > 0 {
		b.Fatalf("%s: %d of %d requests failed; first: %v", t.name, n, b.N, firstErr.Load())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	// Client, upstream and proxy all run in this process: this is what one
	// request costs the machine end to end.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1e3, "cpu-us/req")
	b.ReportMetric(float64(t.ln.accepted.Load()), "conns")
	// Upstream connections opened while timed: near 0 when the proxy's
	// pool keeps them alive.
	b.ReportMetric(float64(env.upstream.accepted.Load()-upConns), "new-upstream-conns")
	if n := env.logLines.lines.Load(); n != 0 {
		b.Fatalf("%d decision-log lines for allowed requests; the default logs refusals only", n)
	}
}

// BenchmarkBareProxy is httputil.NewSingleHostReverseProxy alone.
func BenchmarkBareProxy(b *testing.B) {
	runParallel(b, func(e *benchEnv) *benchTarget { return e.bare })
}

// BenchmarkBareProxyPooled is the bare proxy with recycled copy buffers.
func BenchmarkBareProxyPooled(b *testing.B) {
	runParallel(b, func(e *benchEnv) *benchTarget { return e.barePooled })
}

// BenchmarkGateway is warden: canonical request, policy, proxy.
func BenchmarkGateway(b *testing.B) {
	runParallel(b, func(e *benchEnv) *benchTarget { return e.gateway })
}

// BenchmarkGatewayVsBareProxy sends b.N requests to each of the bare
// proxy, the bare proxy with pooled buffers and the gateway, in rounds that
// rotate their order, and reports each rate, ratio = gateway / bare and
// ratio-pooled = gateway / bare-pooled. ns/op is the time of one request to
// each of the three.
//
// Client, upstream and proxy share this process, so the process's CPU time
// per request is what one request costs the machine end to end; cpu-ratio
// and cpu-ratio-pooled compare those costs (bare / gateway). On a machine
// shared with other work they move much less than the wall-clock ratios,
// and on a dedicated CPU-bound machine the two agree.
func BenchmarkGatewayVsBareProxy(b *testing.B) {
	env := startBenchEnv(b)
	targets := []*benchTarget{env.bare, env.barePooled, env.gateway}
	for _, t := range targets {
		if _, _, err := t.drive(4 * benchInFlight); err != nil {
			b.Fatalf("%s warm-up: %v", t.name, err)
		}
	}
	const rounds = 12
	spent := make([]time.Duration, len(targets))
	cpu := make([]time.Duration, len(targets))
	sent := make([]int, len(targets))
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		if n == 0 {
			continue
		}
		for k := range targets {
			i := (k + r) % len(targets)
			if r%2 == 1 {
				i = len(targets) - 1 - i
			}
			d, c, err := targets[i].drive(n)
			if err != nil {
				b.Fatalf("%s: %v", targets[i].name, err)
			}
			spent[i] += d
			cpu[i] += c
			sent[i] += n
		}
	}
	b.StopTimer()
	rate := make([]float64, len(targets))
	for i, t := range targets {
		rate[i] = float64(sent[i]) / spent[i].Seconds()
		b.ReportMetric(rate[i], t.name+"-req/s")
	}
	b.ReportMetric(rate[2]/rate[0], "ratio")
	b.ReportMetric(rate[2]/rate[1], "ratio-pooled")
	if cpu[0] > 0 && cpu[1] > 0 && cpu[2] > 0 {
		perReq := func(i int) float64 { return float64(cpu[i].Nanoseconds()) / float64(sent[i]) }
		b.ReportMetric(perReq(2)/1e3, "gateway-cpu-us/req")
		b.ReportMetric(perReq(0)/perReq(2), "cpu-ratio")
		b.ReportMetric(perReq(1)/perReq(2), "cpu-ratio-pooled")
	}
	if n := env.logLines.lines.Load(); n != 0 {
		b.Fatalf("%d decision-log lines for allowed requests; the default logs refusals only", n)
	}
}
