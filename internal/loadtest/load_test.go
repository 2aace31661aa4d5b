//go:build unix

package loadtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
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

// raiseFileLimit lifts RLIMIT_NOFILE to its hard limit.
func raiseFileLimit(t *testing.T, need uint64) uint64 {
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
	return lim.Cur
}

// clientResult is what the client process reports.
type clientResult struct {
	Requests, Errors, Reconnects int64
	P50, P90, P99, P999, Max     time.Duration
	SlowConns, SlowServed        int64
	SlowMaxHold                  time.Duration
	CPU                          time.Duration
	Elapsed                      time.Duration
	ClientsUp                    int64
	FirstError                   string
}

// TestLoad: 5,000 keep-alive clients, each sending a request about every
// WARDEN_LOAD_INTERVAL_MS (default 1000 ms, jittered), and 500 slowloris
// connections that trickle one header line every two seconds and reconnect
// when cut, for WARDEN_LOAD_SECONDS (default 60). The clients run in a child
// process (the test binary again), so warden's process holds only its own
// connections and its goroutine and heap figures are its own. Afterwards
// warden must hold no more goroutines and about the same heap as before,
// and still serve. Runs only with WARDEN_LONG=1 (scripts/load.sh).
func TestLoad(t *testing.T) {
	if os.Getenv("WARDEN_LOAD_ROLE") == "client" {
		runClients(t)
		return
	}
	if os.Getenv("WARDEN_LONG") != "1" {
		t.Skip("the load test runs with WARDEN_LONG=1 (scripts/load.sh)")
	}
	nClients := envInt("WARDEN_LOAD_CLIENTS", 5000)
	nSlow := envInt("WARDEN_LOAD_SLOWLORIS", 500)
	duration := time.Duration(envInt("WARDEN_LOAD_SECONDS", 60)) * time.Second
	interval := time.Duration(envInt("WARDEN_LOAD_INTERVAL_MS", 1000)) * time.Millisecond
	fdLimit := raiseFileLimit(t, uint64(nClients+nSlow+2048))

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
	t.Logf("baseline: %d goroutines, %.1f MiB heap in use; RLIMIT_NOFILE %d", baseG, mib(ms.HeapInuse), fdLimit)

	// WARDEN_LOAD_DIRECT=1 sends the clients to the upstream itself, for a
	// baseline of what the harness and the machine manage without warden.
	target := w.addr
	if os.Getenv("WARDEN_LOAD_DIRECT") == "1" {
		target = up.Listener.Addr().String()
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoad$", "-test.v", "-test.timeout=0")
	cmd.Env = append(os.Environ(), "WARDEN_LOAD_ROLE=client", "WARDEN_LOAD_ADDR="+target,
		"WARDEN_LOAD_SLOW_ADDR="+w.addr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	begin := time.Now()
	cpuBefore := cpuTime()
	loadBefore := loadAverage()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Sample warden's side while the clients run.
	peakG, peakHeap := 0, uint64(0)
	tick := time.NewTicker(5 * time.Second)
	var clientErr error
sampling:
	for {
		select {
		case clientErr = <-exited:
			break sampling
		case <-tick.C:
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			peakG = max(peakG, runtime.NumGoroutine())
			t.Logf("%3.0fs: warden %d goroutines, %.0f MiB heap in use", time.Since(begin).Seconds(), runtime.NumGoroutine(), mib(ms.HeapInuse))
		case <-time.After(duration + 2*time.Minute):
			cmd.Process.Kill()
			t.Fatalf("the client process did not finish:\n%s", out.String())
		}
	}
	tick.Stop()
	cpu := cpuTime() - cpuBefore
	loadAfter := loadAverage()
	var res clientResult
	line := ""
	for _, l := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "LOADRESULT "); ok {
			line = rest
		}
	}
	if clientErr != nil || json.Unmarshal([]byte(line), &res) != nil {
		t.Fatalf("client process: %v\n%s", clientErr, out.String())
	}

	// After: no goroutine or heap growth once the clients are gone.
	w.rt.Close()
	afterG := settle(baseG+20, 30*time.Second)
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms)
	afterHeap := ms.HeapInuse

	via := "through warden"
	if target != w.addr {
		via = "DIRECT to the upstream (baseline without warden; slowloris still at warden)"
	}
	t.Logf(`load figures (%s)
  clients:            %d keep-alive connections (%d up), one request every %v ± %v each
  slowloris:          %d connections at a time, %d opened in all, %d answered, longest held %v
  duration:           %v
  requests:           %d (%.0f/s), errors %d, reconnects %d %s
  latency:            p50 %v  p90 %v  p99 %v  p99.9 %v  max %v
  CPU:                warden + upstream %.1f s (%.0f µs per request); clients %.1f s
  machine load:       %s at start, %s at end (1-minute load average; 2 cores)
  warden peak:        %d goroutines, %.0f MiB heap in use
  warden goroutines:  %d before, %d after
  warden heap in use: %.1f MiB before, %.1f MiB after`,
		via, nClients, res.ClientsUp, interval, interval/2, nSlow, res.SlowConns, res.SlowServed, res.SlowMaxHold.Round(time.Millisecond),
		res.Elapsed.Round(time.Second), res.Requests, float64(res.Requests)/res.Elapsed.Seconds(), res.Errors, res.Reconnects, res.FirstError,
		res.P50.Round(10*time.Microsecond), res.P90.Round(10*time.Microsecond), res.P99.Round(10*time.Microsecond),
		res.P999.Round(10*time.Microsecond), res.Max.Round(10*time.Microsecond),
		cpu.Seconds(), float64(cpu.Microseconds())/float64(max(res.Requests, 1)), res.CPU.Seconds(),
		loadBefore, loadAfter, peakG, mib(peakHeap), baseG, afterG, mib(baseHeap), mib(afterHeap))

	if afterG > baseG+20 {
		t.Errorf("goroutines grew from %d to %d\n%s", baseG, afterG, goroutineSummary())
	}
	if afterHeap > baseHeap+32<<20 {
		t.Errorf("heap in use grew from %.1f to %.1f MiB", mib(baseHeap), mib(afterHeap))
	}
	if res.Requests == 0 || float64(res.Errors) > 0.001*float64(res.Requests) {
		t.Errorf("%d errors in %d requests (first: %s)", res.Errors, res.Requests, res.FirstError)
	}
	if res.ClientsUp < int64(nClients) {
		t.Errorf("only %d of %d clients connected", res.ClientsUp, nClients)
	}
	if res.SlowServed > 0 {
		t.Errorf("%d slowloris connections got an answer before finishing their headers", res.SlowServed)
	}
	if res.SlowMaxHold > 20*time.Second {
		t.Errorf("a slowloris connection was held %v; read_header_timeout is 10s", res.SlowMaxHold)
	}
	if status, _, err := get(t, &http.Client{Timeout: 5 * time.Second}, "http://"+w.addr+"/after"); status != 200 || err != nil {
		t.Errorf("after the load: %d %v", status, err)
	}
}

// runClients is the client process: keep-alive clients and slowloris
// connections for the duration, then one LOADRESULT line of JSON.
func runClients(t *testing.T) {
	addr, slowAddr := os.Getenv("WARDEN_LOAD_ADDR"), os.Getenv("WARDEN_LOAD_SLOW_ADDR")
	nClients := envInt("WARDEN_LOAD_CLIENTS", 5000)
	nSlow := envInt("WARDEN_LOAD_SLOWLORIS", 500)
	duration := time.Duration(envInt("WARDEN_LOAD_SECONDS", 60)) * time.Second
	interval := time.Duration(envInt("WARDEN_LOAD_INTERVAL_MS", 1000)) * time.Millisecond
	raiseFileLimit(t, uint64(nClients+nSlow+256))
	var res clientResult
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	cpuBefore := cpuTime()
	noteErr := func(err error) {
		atomic.AddInt64(&res.Errors, 1)
		mu.Lock()
		if res.FirstError == "" {
			res.FirstError = err.Error()
		}
		mu.Unlock()
	}

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
				c, err := net.DialTimeout("tcp", slowAddr, 5*time.Second)
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				atomic.AddInt64(&res.SlowConns, 1)
				opened := time.Now()
				io.WriteString(c, "GET /slow/"+strconv.Itoa(i)+" HTTP/1.1\r\nHost: x\r\n")
				for {
					if _, err := fmt.Fprintf(c, "X-Slow-%d: y\r\n", rand.IntN(1000)); err != nil {
						break
					}
					c.SetReadDeadline(time.Now().Add(2 * time.Second))
					n, err := c.Read(buf)
					if n > 0 {
						atomic.AddInt64(&res.SlowServed, 1)
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
				mu.Lock()
				res.SlowMaxHold = max(res.SlowMaxHold, hold)
				mu.Unlock()
			}
		}(i)
	}

	// Keep-alive clients, opened in batches so the accept queue keeps up.
	all := make([][]time.Duration, nClients)
	begin := time.Now()
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
			up := false
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
					if c, err = net.DialTimeout("tcp", addr, 10*time.Second); err != nil {
						noteErr(err)
						time.Sleep(time.Second)
						continue
					}
					br = bufio.NewReader(c)
					if !up {
						up = true
						atomic.AddInt64(&res.ClientsUp, 1)
					}
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
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					noteErr(err)
					atomic.AddInt64(&res.Reconnects, 1)
					c.Close()
					c = nil
					continue
				}
				all[i] = append(all[i], time.Since(start))
				atomic.AddInt64(&res.Requests, 1)
				time.Sleep(interval/2 + rand.N(interval))
			}
		}(i)
	}
	time.Sleep(duration - time.Since(begin))
	close(stop)
	wg.Wait()
	res.Elapsed = time.Since(begin)
	var lat []time.Duration
	for _, l := range all {
		lat = append(lat, l...)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(float64(len(lat)-1)*p)]
	}
	res.P50, res.P90, res.P99, res.P999, res.Max = pct(0.5), pct(0.9), pct(0.99), pct(0.999), pct(1)
	res.CPU = cpuTime() - cpuBefore
	b, _ := json.Marshal(&res)
	fmt.Printf("LOADRESULT %s\n", b)
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
