package loadtest

import (
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/identity"
)

// floodPhase is what the public page got during one phase.
type floodPhase struct {
	name            string
	publicRequests  int64
	publicErrors    int64
	elapsed         time.Duration
	p50, p99, max   time.Duration
	floodRequests   int64
	floodStatus     map[int]int64
	hashesComputed  int64
	checksRefused   int64
	floodConnsCount int
}

func (p floodPhase) rps() float64 { return float64(p.publicRequests) / p.elapsed.Seconds() }

// TestPasswordFlood reproduces issue 10's password flood through a real
// listener: a public page measured alone, then while 32 connections send
// wrong HTTP Basic passwords for a bcrypt (cost 10) user to a protected
// path, (a) the same wrong password over and over (the case) and
// (b) a fresh wrong password every request (no cache can help: only the
// bound on hashing CPU and the quick 503 for the excess), and for scale
// (c) 32 connections flooding the public page itself, a flood that costs
// the gateway no hashing at all.
//
// The default run takes about a second per phase and asserts the bar: the
// public page keeps at least half the rate it had alone, and the repeated
// wrong password was hashed a handful of times, not once per request.
// WARDEN_LONG=1 (or WARDEN_FLOOD_SECONDS=N) runs 5 s phases for the
// figures in docs/load.md.
func TestPasswordFlood(t *testing.T) {
	seconds := 1
	if os.Getenv("WARDEN_LONG") == "1" {
		seconds = 5
	}
	if v, err := strconv.Atoi(os.Getenv("WARDEN_FLOOD_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	phaseLen := time.Duration(seconds) * time.Second
	const (
		floodConns  = 32
		publicConns = 32
	)

	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	if err := os.MkdirAll(filepath.Join(site, "private"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>public</h1>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(site, "private", "index.html"), []byte("<h1>private</h1>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("the right password"), 10)
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("flood.yaml", []byte(fmt.Sprintf(`
identity:
  htpasswd: { file: %q }
rules:
  - name: private
    when: { path: { prefix: [/private/] } }
    require: { authenticated: true }
    action: allow
handle:
  - path: /
    root: %q
    index: [index.html]
`, users, site)))
	if err != nil {
		t.Fatal(err)
	}
	in := gatewaytest.Start(t, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), func(hs *http.Server) { hs.ErrorLog = nil })
	var ht *identity.Htpasswd
	for _, a := range in.Runtime.Policy.Identity() {
		if h, ok := a.(*identity.Htpasswd); ok {
			ht = h
		}
	}
	if ht == nil {
		t.Fatal("no htpasswd authenticator in the built policy")
	}
	base := in.URL()

	// The right password works, and the wrong one is a 401.
	client := &http.Client{Timeout: 5 * time.Second}
	for pw, want := range map[string]int{"the right password": 200, "wrong": 401} {
		req, _ := http.NewRequest("GET", base+"/private/", nil)
		req.SetBasicAuth("alice", pw)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("password %q: status %d, want %d", pw, resp.StatusCode, want)
		}
	}

	run := func(name string, flood func(worker, i int) *http.Request) floodPhase {
		ph := floodPhase{name: name, floodStatus: map[int]int64{}}
		if flood != nil {
			ph.floodConnsCount = floodConns
		}
		computed0, refused0 := ht.HashStats()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var floodMu sync.Mutex
		var floodN atomic.Int64
		if flood != nil {
			tr := &http.Transport{MaxIdleConnsPerHost: floodConns, DisableCompression: true}
			defer tr.CloseIdleConnections()
			fc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for w := range floodConns {
				wg.Go(func() {
					local := map[int]int64{}
					for i := 0; ; i++ {
						select {
						case <-stop:
							floodMu.Lock()
							for k, v := range local {
								ph.floodStatus[k] += v
							}
							floodMu.Unlock()
							return
						default:
						}
						resp, err := fc.Do(flood(w, i))
						if err != nil {
							local[0]++
							continue
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						local[resp.StatusCode]++
						floodN.Add(1)
					}
				})
			}
			time.Sleep(200 * time.Millisecond) // let the flood build up
		}
		tr := &http.Transport{MaxIdleConnsPerHost: publicConns, DisableCompression: true}
		defer tr.CloseIdleConnections()
		pc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		lat := make([][]time.Duration, publicConns)
		var errs atomic.Int64
		var pwg sync.WaitGroup
		begin := time.Now()
		deadline := begin.Add(phaseLen)
		for c := range publicConns {
			pwg.Go(func() {
				for time.Now().Before(deadline) {
					t0 := time.Now()
					resp, err := pc.Get(base + "/")
					if err != nil {
						errs.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errs.Add(1)
						continue
					}
					lat[c] = append(lat[c], time.Since(t0))
				}
			})
		}
		pwg.Wait()
		ph.elapsed = time.Since(begin)
		close(stop)
		wg.Wait()
		all := slices.Concat(lat...)
		slices.Sort(all)
		ph.publicRequests, ph.publicErrors = int64(len(all)), errs.Load()
		if n := len(all); n > 0 {
			ph.p50, ph.p99, ph.max = all[n/2], all[min(n-1, n*99/100)], all[n-1]
		}
		ph.floodRequests = floodN.Load()
		computed1, refused1 := ht.HashStats()
		ph.hashesComputed, ph.checksRefused = computed1-computed0, refused1-refused0
		t.Logf("%-34s public %6d req (%7.0f/s) p50 %-9v p99 %-9v max %-9v errors %d | flood %6d req %v, hashes %d, refused for want of a slot %d",
			name, ph.publicRequests, ph.rps(), ph.p50.Round(10*time.Microsecond), ph.p99.Round(10*time.Microsecond), ph.max.Round(10*time.Microsecond),
			ph.publicErrors, ph.floodRequests, ph.floodStatus, ph.hashesComputed, ph.checksRefused)
		return ph
	}
	basic := func(pw string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+pw))
	}
	sameWrong := basic("not the right password")
	private := func(authz string) *http.Request {
		req, _ := http.NewRequest("GET", base+"/private/", nil)
		req.Header.Set("Authorization", authz)
		return req
	}

	alone := run("public page alone", nil)
	same := run("32 conns, same wrong password", func(int, int) *http.Request { return private(sameWrong) })
	fresh := run("32 conns, a new wrong password each", func(w, i int) *http.Request {
		return private(basic("guess-" + strconv.Itoa(w) + "-" + strconv.Itoa(i)))
	})
	plain := run("32 conns flooding the public page", func(int, int) *http.Request {
		req, _ := http.NewRequest("GET", base+"/", nil)
		return req
	})
	t.Logf("public rate kept: same wrong password %.0f%%, new wrong passwords %.0f%%, plain flood %.0f%% (GOMAXPROCS-bounded hashing, %d s phases)",
		100*same.rps()/alone.rps(), 100*fresh.rps()/alone.rps(), 100*plain.rps()/alone.rps(), seconds)

	if alone.publicRequests < 100 || alone.publicErrors > 0 {
		t.Fatalf("the public page alone: %d requests, %d errors", alone.publicRequests, alone.publicErrors)
	}
	for _, ph := range []floodPhase{same, fresh, plain} {
		if ph.publicErrors > 0 {
			t.Errorf("%s: %d public requests failed", ph.name, ph.publicErrors)
		}
		if ph.floodStatus[200] > 0 && ph.name != plain.name {
			t.Errorf("%s: a wrong password got in %d times", ph.name, ph.floodStatus[200])
		}
	}
	// The bar of issue 10: with as many public connections as flooding
	// ones, the public page keeps half its rate. Under fair sharing of the
	// CPU that is also what an equally large flood of the public page
	// itself leaves, so the assertion is made against that flood, measured
	// in the same run: the wrong passwords may cost no more than ordinary
	// requests (0.75 leaves room for a noisy, shared machine).
	if same.rps() < 0.75*plain.rps() {
		t.Errorf("same wrong password: the public page fell to %.0f req/s; an equal flood of the public page leaves %.0f (alone %.0f)", same.rps(), plain.rps(), alone.rps())
	}
	// Fresh passwords must each be hashed; the guard keeps that to a
	// bounded share of the cores, so the public page is slowed, not
	// starved (unbounded, it fell to under a tenth).
	if fresh.rps() < 0.2*plain.rps() {
		t.Errorf("new wrong passwords: the public page fell to %.0f req/s; an equal flood of the public page leaves %.0f", fresh.rps(), plain.rps())
	}
	// The repeated wrong password is hashed once (once more per entry
	// if the phase outlasts the verdict's minute), not once per request.
	if same.floodStatus[401] < 100 || same.hashesComputed > 2 {
		t.Errorf("same wrong password: %d answered 401 with %d hashes computed; want many answers, at most 2 hashes", same.floodStatus[401], same.hashesComputed)
	}
	// New passwords cannot all be hashed: the excess is refused with 503.
	if fresh.floodStatus[503] == 0 || fresh.checksRefused == 0 {
		t.Errorf("new wrong passwords: no 503 for the excess (%v, refused %d)", fresh.floodStatus, fresh.checksRefused)
	}
}
