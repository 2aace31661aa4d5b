//go:build unix

package loadtest

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// raiseFileLimit lifts RLIMIT_NOFILE to its hard limit: the test holds both
// ends of every connection.
func raiseFileLimit(t *testing.T, need uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Logf("raising RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur < need {
		t.Fatalf("RLIMIT_NOFILE is %d; this test needs %d (raise the hard limit)", lim.Cur, need)
	}
}

type loadFigures struct {
	clients, slowloris int
	duration           time.Duration
	requests, errors   int64
	reconnects         int64
	latencies          []time.Duration
	slowConns          int64 // slowloris connections opened
	slowServed         int64 // slowloris connections that got an answer
	slowMaxHold        time.Duration
	peakGoroutines     int
	peakHeap           uint64
}

func (f *loadFigures) pct(p float64) time.Duration {
	if len(f.latencies) == 0 {
		return 0
	}
	i := int(float64(len(f.latencies)-1) * p)
	return f.latencies[i]
}

// TestLoad: 5,000 keep-alive clients, each sending a request about every
// WARDEN_LOAD_INTERVAL_MS (default 1000 ms, jittered), and 500 slowloris
// connections that trickle one header line every two seconds and reconnect
// when cut, for WARDEN_LOAD_SECONDS (default 60). Afterwards warden must hold
// no more goroutines and about the same heap as before, and still serve.
// Runs only with WARDEN_LONG=1 (scripts/load.sh).
func TestLoad(t *testing.T) {
	if os.Getenv("WARDEN_LONG") != "1" {
		t.Skip("the load test runs with WARDEN_LONG=1 (scripts/load.sh)")
	}
	nClients := envInt("WARDEN_LOAD_CLIENTS", 5000)
	nSlow := envInt("WARDEN_LOAD_SLOWLORIS", 500)
	duration := time.Duration(envInt("WARDEN_LOAD_SECONDS", 60)) * time.Second
	interval := time.Duration(envInt("WARDEN_LOAD_INTERVAL_MS", 1000)) * time.Millisecond
	raiseFileLimit(t, uint64(2*(nClients+nSlow)+2048))

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "upstream says hello to "+r.URL.Path)
	}))
	defer up.Close()
	w := startWarden(t, `
ip_lists:
  blocked: { cidrs: [192.0.2.0/24, 198.51.100.0/24] }
identity:
  api_keys:
    keys:
      - { id: ops, sha256: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", roles: [admin] }
rules:
  - name: blocked
    when: { ip_list: blocked }
    action: deny
  - name: admin
    when: { path: { prefix: /admin/ } }
    require: { authenticated: true }
    action: allow
  - name: writes
    when: { methods: [DELETE, PUT] }
    action: deny
handle:
  - path: /
    upstream: `+up.URL+"\n")

	// Warm up, then take the baseline.
	warm := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 200; i++ {
		if status, _, err := get(t, warm, "http://"+w.addr+"/warm"); status != 200 || err != nil {
			t.Fatalf("warm-up: %d %v", status, err)
		}
	}
	warm.CloseIdleConnections()
	w.rt.Close()
	baseG := settle(0, time.Second)
	var ms runtime.MemStats
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapInuse
	t.Logf("baseline: %d goroutines, %.1f MiB heap in use", baseG, mib(ms.HeapInuse))

	fig := &loadFigures{clients: nClients, slowloris: nSlow, duration: duration}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lmu sync.Mutex

	// Slowloris: half a request, one more header line every 2 s.
	for i := 0; i < nSlow; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			buf := make([]byte, 512)
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				atomic.AddInt64(&fig.slowConns, 1)
				opened := time.Now()
				io.WriteString(c, "GET /slow/"+strconv.Itoa(i)+" HTTP/1.1\r\nHost: x\r\n")
				for {
					if _, err := fmt.Fprintf(c, "X-Slow-%d: y\r\n", rand.IntN(1000)); err != nil {
						break
					}
					c.SetReadDeadline(time.Now().Add(2 * time.Second))
					n, err := c.Read(buf)
					if n > 0 {
						atomic.AddInt64(&fig.slowServed, 1)
					}
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						select {
						case <-stop:
							c.Close()
							return
						default:
							continue
						}
					}
					break // closed by warden
				}
				hold := time.Since(opened)
				c.Close()
				lmu.Lock()
				fig.slowMaxHold = max(fig.slowMaxHold, hold)
				lmu.Unlock()
			}
		}(i)
	}

	// Keep-alive clients, opened in batches so the accept queue keeps up.
	// WARDEN_LOAD_DIRECT=1 sends them to the upstream itself, for a
	// baseline of what the harness and the machine manage without warden.
	target := w.addr
	if os.Getenv("WARDEN_LOAD_DIRECT") == "1" {
		target = up.Listener.Addr().String()
	}
	all := make([][]time.Duration, nClients)
	for i := 0; i < nClients; i++ {
		if i%250 == 0 {
			time.Sleep(50 * time.Millisecond)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var c net.Conn
			var br *bufio.Reader
			req := []byte("GET /page/" + strconv.Itoa(i) + " HTTP/1.1\r\nHost: x\r\nUser-Agent: loadtest\r\n\r\n")
			// Start at a random point of the interval, so requests spread.
			time.Sleep(rand.N(interval))
			for {
				select {
				case <-stop:
					if c != nil {
						c.Close()
					}
					return
				default:
				}
				if c == nil {
					var err error
					if c, err = net.DialTimeout("tcp", target, 10*time.Second); err != nil {
						atomic.AddInt64(&fig.errors, 1)
						time.Sleep(time.Second)
						continue
					}
					br = bufio.NewReader(c)
				}
				start := time.Now()
				c.SetDeadline(start.Add(15 * time.Second))
				_, err := c.Write(req)
				var resp *http.Response
				if err == nil {
					resp, err = http.ReadResponse(br, nil)
				}
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					atomic.AddInt64(&fig.errors, 1)
					atomic.AddInt64(&fig.reconnects, 1)
					c.Close()
					c = nil
					continue
				}
				all[i] = append(all[i], time.Since(start))
				atomic.AddInt64(&fig.requests, 1)
				time.Sleep(interval/2 + rand.N(interval))
			}
		}(i)
	}

	// Run, sampling the peaks.
	begin := time.Now()
	cpuBefore := cpuTime()
	loadBefore := loadAverage()
	tick := time.NewTicker(5 * time.Second)
	var last int64
	for time.Since(begin) < duration {
		<-tick.C
		runtime.ReadMemStats(&ms)
		fig.peakHeap = max(fig.peakHeap, ms.HeapInuse)
		fig.peakGoroutines = max(fig.peakGoroutines, runtime.NumGoroutine())
		n := atomic.LoadInt64(&fig.requests)
		t.Logf("%3.0fs: %6d req/s, %d errors, %d goroutines, %.0f MiB heap, %d slowloris connections so far",
			time.Since(begin).Seconds(), (n-last)/5, atomic.LoadInt64(&fig.errors), runtime.NumGoroutine(), mib(ms.HeapInuse), atomic.LoadInt64(&fig.slowConns))
		last = n
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	elapsed := time.Since(begin)
	for _, l := range all {
		fig.latencies = append(fig.latencies, l...)
	}
	slices.Sort(fig.latencies)

	p50, p90, p99, p999, pmax := fig.pct(0.5), fig.pct(0.9), fig.pct(0.99), fig.pct(0.999), fig.pct(1)
	fig.latencies, all = nil, nil
	cpu := cpuTime() - cpuBefore
	loadAfter := loadAverage()

	// After: no goroutine or heap growth once the clients are gone.
	w.rt.Close()
	afterG := settle(baseG+50, 30*time.Second)
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms)
	afterHeap := ms.HeapInuse

	rps := float64(fig.requests) / elapsed.Seconds()
	t.Logf(`load figures
  clients:            %d keep-alive connections, one request every %v ± %v each
  slowloris:          %d connections at a time, %d opened in all, %d answered, longest held %v
  duration:           %v
  requests:           %d (%.0f/s), errors %d, reconnects %d
  latency:            p50 %v  p90 %v  p99 %v  p99.9 %v  max %v
  CPU:                %.1f s for warden, upstream and clients together (%.0f µs per request)
  machine load:       %s at start, %s at end (2 cores; other work on the machine shows here)
  peak:               %d goroutines, %.0f MiB heap in use
  goroutines:         %d before, %d after
  heap in use:        %.1f MiB before, %.1f MiB after`,
		nClients, interval, interval/2, nSlow, fig.slowConns, fig.slowServed, fig.slowMaxHold.Round(time.Millisecond),
		elapsed.Round(time.Second), fig.requests, rps, fig.errors, fig.reconnects,
		p50.Round(10*time.Microsecond), p90.Round(10*time.Microsecond), p99.Round(10*time.Microsecond),
		p999.Round(10*time.Microsecond), pmax.Round(10*time.Microsecond),
		cpu.Seconds(), float64(cpu.Microseconds())/float64(max(fig.requests, 1)), loadBefore, loadAfter,
		fig.peakGoroutines, mib(fig.peakHeap), baseG, afterG, mib(baseHeap), mib(afterHeap))

	if afterG > baseG+50 {
		t.Errorf("goroutines grew from %d to %d\n%s", baseG, afterG, goroutineSummary())
	}
	if afterHeap > baseHeap+64<<20 {
		t.Errorf("heap in use grew from %.1f to %.1f MiB", mib(baseHeap), mib(afterHeap))
	}
	if fig.requests == 0 || float64(fig.errors) > 0.001*float64(fig.requests) {
		t.Errorf("%d errors in %d requests", fig.errors, fig.requests)
	}
	if fig.slowServed > 0 {
		t.Errorf("%d slowloris connections got an answer before finishing their headers", fig.slowServed)
	}
	if fig.slowMaxHold > 20*time.Second {
		t.Errorf("a slowloris connection was held %v; read_header_timeout is 10s", fig.slowMaxHold)
	}
	// And warden still serves.
	if status, _, err := get(t, &http.Client{Timeout: 5 * time.Second}, "http://"+w.addr+"/after"); status != 200 || err != nil {
		t.Errorf("after the load: %d %v", status, err)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage is the one-minute load average, where the system says it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
