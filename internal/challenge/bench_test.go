package challenge

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// discardWriter is a ResponseWriter that keeps nothing but the byte count,
// so the benchmarks below measure the handlers, not a recorder.
type discardWriter struct {
	h    http.Header
	n    int
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }
func (w *discardWriter) reset()                      { clear(w.h); w.n, w.code = 0, 0 }

func browserRequest() *http.Request {
	r := httptest.NewRequest("GET", "/docs/page?q=1", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	r.Header.Set("User-Agent", uaOther)
	return r
}

// BenchmarkChallengePage serves the challenge page (a fresh challenge each
// time: random nonce, HMAC, page splice).
func BenchmarkChallengePage(b *testing.B) {
	now := t0
	c, err := New(Config{Keys: testRing(b), Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	r := browserRequest()
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		w.reset()
		c.Serve(w, r, ipA, 16, now)
	}
	reportCPU(b, processCPU()-cpu)
	if w.code != http.StatusForbidden || w.n < 1000 {
		b.Fatalf("served %d, %d bytes", w.code, w.n)
	}
	b.ReportMetric(float64(w.n), "bytes/page")
}

// BenchmarkStaticFile is the baseline: a static file of the page's size
// served from memory with http.ServeContent, as a file server would.
func BenchmarkStaticFile(b *testing.B) {
	now := t0
	c, _ := New(Config{Keys: testRing(b), Now: func() time.Time { return now }})
	rec := httptest.NewRecorder()
	c.Serve(rec, browserRequest(), ipA, 16, now)
	content := rec.Body.Bytes()
	r := browserRequest()
	w := &discardWriter{h: http.Header{}}
	mod := t0.Add(-time.Hour)
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		w.reset()
		http.ServeContent(w, r, "page.html", mod, bytes.NewReader(content))
	}
	reportCPU(b, processCPU()-cpu)
	if w.code != http.StatusOK || w.n != len(content) {
		b.Fatalf("served %d, %d bytes", w.code, w.n)
	}
	b.ReportMetric(float64(w.n), "bytes/page")
}

// BenchmarkCheckRequest is Check as the gateway calls it: find the cookie
// among others and verify it.
func BenchmarkCheckRequest(b *testing.B) {
	now := t0
	c, _ := New(Config{Keys: testRing(b), Now: func() time.Time { return now }})
	tok := c.cfg.Keys.IssueClearance(ipA, uaOther, 16, t0.Add(time.Hour))
	h := http.Header{"Cookie": {"_ga=GA1.1.123456789.1700000000; theme=dark; warden_clearance=" + tok}, "User-Agent": {uaOther}}
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if st := c.Check(h, ipA, now, 16); st.State != StateValid {
			b.Fatal(st)
		}
	}
	reportCPU(b, processCPU()-cpu)
}

// BenchmarkCheckSolution is the verify endpoint's work check at difficulty
// 16 (the page's worker needs ~65,000 hashes for what costs the server one).
func BenchmarkCheckSolution(b *testing.B) {
	kr := testRing(b)
	ch := kr.IssueChallenge(ipA, uaOther, "GET", "/", 16, t0.Add(time.Minute), [16]byte{7})
	counter, ok := Solve(ch, 16, 1<<26)
	if !ok {
		b.Fatal("no solution")
	}
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if _, err := kr.CheckSolution(ch, counter, ipA, uaOther, "GET", "/", t0); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, processCPU()-cpu)
}

// BenchmarkBaselineStdlibHMAC is the baseline for BenchmarkVerifyClearance
// in the same run: the MAC alone of the clearance payload with the standard
// library's crypto/hmac, as a straightforward implementation would compute
// it (without decoding, binding or comparison). Verify should cost less
// than this although it does more.
func BenchmarkBaselineStdlibHMAC(b *testing.B) {
	key := bytes.Repeat([]byte{1}, KeySize)
	msg := make([]byte, clearancePayload)
	var out [32]byte
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		m.Sum(out[:0])
	}
	reportCPU(b, processCPU()-cpu)
}

// reportCPU adds cpu-ns/op: the process's CPU time per iteration, steadier
// than wall time on a shared machine (see docs/benchmarks.md, The machine).
func reportCPU(b *testing.B, cpu time.Duration) {
	b.StopTimer()
	if cpu > 0 && b.N > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
