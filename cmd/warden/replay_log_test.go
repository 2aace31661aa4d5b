package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
)

const replayOld = `
rules:
  - name: block-doc-net
    when: { ip: [203.0.113.0/24] }
    action: deny
  - name: no-env
    when: { path: { glob: ["/**/.env"] } }
    action: deny
`

// replayNew lifts the address block, keeps .env refused, and refuses
// a scraper's User-Agent and a hotlink to images.
const replayNew = `
server_names: [www.example.com]
rules:
  - name: no-env
    when: { path: { glob: ["/**/.env"] } }
    action: deny
  - name: no-scrapers
    when: { user_agent: { substring: [BadBot] } }
    action: deny
  - name: images-hotlink
    when: { path: { prefix: [/img/] }, referer_not_in: [none, server_names] }
    action: deny
`

func writePolicy(t testing.TB, dir, name, src string) *engine.Runtime {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err := loadRuntime(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// combinedLine writes one line as nginx's combined format does.
func combinedLine(w io.Writer, ip, user, method, target, ref, ua string, status int) {
	q := func(s string) string {
		if s == "" {
			return "-"
		}
		return strings.ReplaceAll(s, `"`, `\x22`)
	}
	fmt.Fprintf(w, "%s - %s [05/Dec/2026:08:00:00 +0000] \"%s %s HTTP/1.1\" %d 512 \"%s\" \"%s\"\n", ip, user, method, target, status, q(ref), q(ua))
}

// genLog writes a combined log with known numbers of each kind of request.
func genLog(w io.Writer, scale int) (want map[string]int) {
	for i := 0; i < scale; i++ {
		combinedLine(w, fmt.Sprintf("198.51.100.%d", i%250+1), "-", "GET", fmt.Sprintf("/page/%d?x=%d", i%97, i), "https://www.example.com/", "Mozilla/5.0", 200)
	}
	for i := 0; i < 3*scale/10+1; i++ { // the lifted block: newly allowed
		combinedLine(w, fmt.Sprintf("203.0.113.%d", i%200+1), "-", "GET", "/", "", "curl/8", 403)
	}
	for i := 0; i < 2*scale/10+1; i++ { // scrapers: newly refused by no-scrapers
		combinedLine(w, "192.0.2.7", "-", "GET", "/page/1", "", `Mozilla/5.0 (compatible; BadBot/2.1; "quoted")`, 200)
	}
	for i := 0; i < scale/10+1; i++ { // hotlinks: newly refused by images-hotlink
		combinedLine(w, "192.0.2.8", "-", "GET", "/img/logo.png", "https://elsewhere.example/post", "Mozilla/5.0", 200)
	}
	for i := 0; i < scale/10+1; i++ { // refused before and after by the same rule
		combinedLine(w, "192.0.2.9", "alice", "GET", "/app/.env", "", "Mozilla/5.0", 403)
	}
	return map[string]int{
		"allowed": 3*scale/10 + 1, "scrapers": 2*scale/10 + 1, "hotlinks": scale/10 + 1,
		"total": scale + 3*scale/10 + 1 + 2*scale/10 + 1 + 2*(scale/10+1),
	}
}

func TestReplayCombinedWithBaseline(t *testing.T) {
	dir := t.TempDir()
	oldRT := writePolicy(t, dir, "old.yaml", replayOld)
	newRT := writePolicy(t, dir, "new.yaml", replayNew)
	var log bytes.Buffer
	want := genLog(&log, 200)
	log.WriteString("this is not a log line\n")
	for _, workers := range []int{1, 3} {
		sum, err := replayWith(newRT, oldRT, bytes.NewReader(log.Bytes()), time.Unix(1_800_000_000, 0), workers)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Requests != want["total"] || sum.SkippedCount != 1 {
			t.Fatalf("workers %d: %d requests, %d skipped; want %d and 1", workers, sum.Requests, sum.SkippedCount, want["total"])
		}
		if sum.Counts[kindAllowed] != want["allowed"] || sum.Counts[kindRefused] != want["scrapers"]+want["hotlinks"] || sum.Counts[kindCode] != 0 {
			t.Errorf("workers %d: counts %v, want %d allowed, %d refused", workers, sum.Counts, want["allowed"], want["scrapers"]+want["hotlinks"])
		}
		if sum.Unchanged != sum.Requests-want["allowed"]-want["scrapers"]-want["hotlinks"] {
			t.Errorf("unchanged %d", sum.Unchanged)
		}
		groups := map[string]replayGroup{}
		for _, g := range sum.Groups {
			groups[g.Kind+" "+g.Rule+" "+g.BeforeRule] = g
		}
		check := func(key string, n int, after string) {
			g, ok := groups[key]
			if !ok || g.Count != n || g.After != after || len(g.Examples) == 0 || len(g.Examples) > maxGroupExamples {
				t.Errorf("workers %d: group %q = %+v, want %d × %s", workers, key, g, n, after)
			}
		}
		check("newly_allowed (default) block-doc-net", want["allowed"], "allow")
		check("newly_refused no-scrapers (default)", want["scrapers"], "deny user_agent_blocked")
		check("newly_refused images-hotlink (default)", want["hotlinks"], "deny hotlink_blocked")
		if ex := groups["newly_refused no-scrapers (default)"].Examples[0]; ex.Request != "GET /page/1" || ex.ClientIP != "192.0.2.7" {
			t.Errorf("example %+v", ex)
		}
	}
}

// TestReplayOwnDecisionLog: a gateway's own decision log (decisions: all),
// replayed under the policy that wrote it, shows no change.
func TestReplayOwnDecisionLog(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "site", "img"), 0o755)
	os.WriteFile(filepath.Join(dir, "site", "index.html"), []byte("hi"), 0o644)
	os.WriteFile(filepath.Join(dir, "site", "img", "logo.png"), []byte("png"), 0o644)
	src := replayNew + `
trusted_proxies: [127.0.0.0/8]
log: { decisions: all }
handle:
  - path: /
    root: ./site
`
	p := filepath.Join(dir, "w.yaml")
	os.WriteFile(p, []byte(src), 0o644)
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	var decisions syncBuffer
	inst := gatewaytest.Start(t, cfg, slog.New(slog.NewJSONHandler(&decisions, nil)), nil)
	reqs := []struct{ path, ua, ref, xff string }{
		{"/", "Mozilla/5.0", "", ""},
		{"/img/logo.png", "Mozilla/5.0", "https://www.example.com/", ""},
		{"/img/logo.png", "Mozilla/5.0", "https://elsewhere.example/", ""},
		{"/x/.env", "Mozilla/5.0", "", "203.0.113.4"},
		{"/", "BadBot/1", "", ""},
		{"/missing", "Mozilla/5.0", "", "198.51.100.3"},
		{"/%2e%2e/etc/passwd", "curl/8", "", ""},
	}
	for _, r := range reqs {
		req, _ := http.NewRequest("GET", inst.URL()+r.path, nil)
		req.Header.Set("User-Agent", r.ua)
		if r.ref != "" {
			req.Header.Set("Referer", r.ref)
		}
		if r.xff != "" {
			req.Header.Set("X-Forwarded-For", r.xff)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	rt, err := loadRuntime(p)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	sum, err := replayWith(rt, nil, strings.NewReader(decisions.String()), time.Now(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requests != len(reqs) || sum.Unchanged != len(reqs) || len(sum.Groups) != 0 {
		t.Fatalf("own log under its own policy: %d requests, %d unchanged, groups %+v\nlog:\n%s", sum.Requests, sum.Unchanged, sum.Groups, decisions.String())
	}
	// The same log under a policy without the scraper rule shows exactly
	// that request newly allowed.
	lax := writePolicy(t, dir, "lax.yaml", strings.Replace(src, "BadBot", "NoSuchBot", 1))
	sum, _ = replayWith(lax, nil, strings.NewReader(decisions.String()), time.Now(), 2)
	if sum.Counts[kindAllowed] != 1 || sum.NewlyAllowed[0].Request != "GET /" {
		t.Errorf("lax policy: %+v", sum)
	}
}

// BenchmarkReplayCombined measures replay of a combined log with a
// baseline (two judgements a line), against a plain line scan of the same
// bytes in the same run.
func BenchmarkReplayCombined(b *testing.B) {
	dir := b.TempDir()
	oldRT := writePolicy(b, dir, "old.yaml", replayOld)
	newRT := writePolicy(b, dir, "new.yaml", replayNew)
	var log bytes.Buffer
	want := genLog(&log, 100_000)
	data := log.Bytes()
	b.Run("scan", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			sc := bufio.NewScanner(bytes.NewReader(data))
			n := 0
			for sc.Scan() {
				n++
			}
		}
		b.ReportMetric(float64(want["total"])*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
	b.Run("replay", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		cpu0 := cpuSeconds()
		for i := 0; i < b.N; i++ {
			sum, err := replayWith(newRT, oldRT, bytes.NewReader(data), time.Unix(1_800_000_000, 0), runtime.GOMAXPROCS(0))
			if err != nil || sum.Requests != want["total"] {
				b.Fatalf("%v %d", err, sum.Requests)
			}
		}
		b.ReportMetric(float64(want["total"])*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		// On a shared machine wall time undercounts; lines per CPU-second
		// times the cores is what dedicated cores would do.
		b.ReportMetric(float64(want["total"])*float64(b.N)/(cpuSeconds()-cpu0), "lines/cpu-s")
	})
}

// syncBuffer is a bytes.Buffer the gateway's handlers may write to at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func TestParseCombinedVariants(t *testing.T) {
	cases := []struct {
		line                       string
		ok                         bool
		method, target, ua, ref, u string
	}{
		{`192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`, true, "GET", "/apache_pb.gif", "", "", ""},
		{`2001:db8::1 - frank [10/Oct/2000:13:55:36 -0700] "POST /a?b=c HTTP/1.1" 302 - "http://x/\"q\"" "Moz \\ \"x\""`, true, "POST", "/a?b=c", `Moz \ "x"`, `http://x/"q"`, "frank"},
		{`203.0.113.4 - - [05/Dec/2026:08:42:53 +0000] "GET /x HTTP/1.1" 403 220 "-" "curl/8 \x22q\x22" 0180bcd183f9a925 0.000`, true, "GET", "/x", `curl/8 "q"`, "", ""},
		{`not-an-ip - - [x] "GET / HTTP/1.1" 200 1`, false, "", "", "", "", ""},
		{`192.0.2.1 - - [x] "\x16\x03\x01" 400 0 "-" "-"`, false, "", "", "", "", ""},
	}
	for _, c := range cases {
		rec, ok := parseCombined(c.line)
		if ok != c.ok {
			t.Errorf("%s: ok %v", c.line, ok)
			continue
		}
		if !ok {
			continue
		}
		if rec.Method != c.method || rec.Target != c.target || rec.UserAgent != c.ua || rec.Referer != c.ref || rec.Principal != c.u {
			t.Errorf("%s:\n got %q %q ua %q ref %q user %q", c.line, rec.Method, rec.Target, rec.UserAgent, rec.Referer, rec.Principal)
		}
	}
}

// lineSource generates a combined log of n lines on the fly, so replay's
// memory is measured without the log in memory.
type lineSource struct {
	n, i int
	buf  []byte
}

func (s *lineSource) Read(p []byte) (int, error) {
	for len(s.buf) < len(p) && s.i < s.n {
		s.buf = fmt.Appendf(s.buf, "198.51.100.%d - - [05/Dec/2026:08:00:00 +0000] \"GET /page/%d?q=%d HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0 BadBot\"\n", s.i%250+1, s.i%1000, s.i)
		s.i++
	}
	if len(s.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.buf)
	s.buf = s.buf[:copy(s.buf, s.buf[n:])]
	return n, nil
}

// TestReplayMemoryIsBounded: replaying a log of ~40 MB, where every line
// is a change, keeps the heap far below the log's size.
func TestReplayMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	dir := t.TempDir()
	oldRT := writePolicy(t, dir, "old.yaml", replayOld)
	newRT := writePolicy(t, dir, "new.yaml", replayNew)
	const lines = 300_000
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	src := &lineSource{n: lines}
	sum, err := replayWith(newRT, oldRT, src, time.Unix(1_800_000_000, 0), 2)
	close(done)
	if err != nil || sum.Requests != lines || sum.Counts[kindRefused] != lines {
		t.Fatalf("%v: %d requests, counts %v", err, sum.Requests, sum.Counts)
	}
	if len(sum.NewlyRefused) != maxReplayExamples || len(sum.Groups) != 1 || len(sum.Groups[0].Examples) != maxGroupExamples {
		t.Errorf("summary not bounded: %d examples, %d groups", len(sum.NewlyRefused), len(sum.Groups))
	}
	// What replay itself holds: the peak above the heap the two compiled
	// policies already took before the first line.
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("%d lines (~%d MB): peak heap in use %d MB, %d MB above the policies' own", lines, lines*130>>20, peak.Load()>>20, grew>>20)
	if grew > 32<<20 {
		t.Errorf("replay grew the heap by %d MB for a streamed log", grew>>20)
	}
}
