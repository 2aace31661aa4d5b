package refusal

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/warden-gateway/warden/internal/decision"
)

// TestNegotiateQuickAgreesWithFull: wherever the quick path answers, it
// answers what the full parse does.
func TestNegotiateQuickAgreesWithFull(t *testing.T) {
	accepts := []string{"", "*/*", "application/json", "APPLICATION/JSON", "application/problem+json", "application/vnd.api+json",
		"text/html", "TEXT/HTML", "text/plain", "application/xhtml+xml", "image/webp,*/*", "text/html, application/json",
		"application/json,text/html", " text/plain , */*", "garbage", "garbage;;;", "text/html;q=0.5, application/json",
		"a/b/c", "/json", "text/", ",,,", "+json", "x/+json", "*/*;q=0.8", "text/html\t,\ttext/plain"}
	uas := []string{"", "curl/8.5.0", "CURL/8", "Wget/1.21", "HTTPie/3.2.2", "Go-http-client/1.1", "Mozilla/5.0", "xh/0.1", "Lynx/2.8", "W3M/0.5", "PowerShell/7", "naïve curl/1"}
	for _, a := range accepts {
		for _, ua := range uas {
			h := http.Header{}
			if a != "" {
				h.Set("Accept", a)
			}
			if ua != "" {
				h.Set("User-Agent", ua)
			}
			if f, ok := negotiateQuick(h); ok {
				if full := negotiateFull(h); f != full {
					t.Errorf("Accept %q, UA %q: quick %d, full %d", a, ua, f, full)
				}
			}
		}
	}
	curl := http.Header{"Accept": {"*/*"}, "User-Agent": {"curl/8.5.0"}}
	if a := testing.AllocsPerRun(100, func() { NegotiateHeader(curl) }); a != 0 {
		t.Errorf("negotiating */* costs %.0f allocations", a)
	}
}

// TestWriteCachedIsRender: the cached refusal is byte for byte what Render
// writes, for every format, HEAD, options and kinds of decision, first
// time and from the cache.
func TestWriteCachedIsRender(t *testing.T) {
	role := decision.Refuse(decision.RoleRequired, "account lacks role: admin")
	role.Rule = "admin-area"
	unauth := decision.Refuse(decision.Unauthenticated, "")
	unauth.WWWAuthenticate = `Bearer realm="api", error="invalid_token"`
	conceal := decision.Decision{Action: decision.Conceal, Code: decision.PathForbidden, Reason: "secret", Rule: "hide"}
	html := decision.Refuse(decision.PathForbidden, `<script>alert("x")</script> & "quotes"`)
	limited := decision.Refuse(decision.RateLimited, "slow down")
	limited.RetryAfter = 7
	decisions := []decision.Decision{role, unauth, conceal, html, limited, decision.Refuse(decision.IPBlocked, "")}
	opts := []Options{{}, {Minimal: true}, {ShowRule: true, Contact: "ops@example.com"}}
	ids := []string{"0123456789abcdef", "abc", "with space", "<id>", ""}
	for _, d := range decisions {
		for _, f := range []Format{JSON, HTML, Text} {
			for _, head := range []bool{false, true} {
				for _, opt := range opts {
					for _, id := range ids {
						want := Render(&d, f, head, id, opt)
						for round := range 2 {
							rec := httptest.NewRecorder()
							rec.Header().Set("ETag", `"v1"`)
							status, n := WriteCached(rec, &d, f, head, id, opt)
							if status != want.Status || rec.Code != want.Status || n != len(want.Body) || !bytes.Equal(rec.Body.Bytes(), want.Body) {
								t.Fatalf("%s f=%d head=%v opt=%+v id=%q round %d: got %d %q, want %d %q", d.Code, f, head, opt, id, round, rec.Code, rec.Body, want.Status, want.Body)
							}
							got := rec.Header()
							if got.Get("ETag") != "" {
								t.Fatal("ETag survived a refusal")
							}
							for k := range want.Header {
								if got.Get(k) != want.Header.Get(k) {
									t.Fatalf("%s f=%d id=%q: header %s = %q, want %q", d.Code, f, id, k, got.Get(k), want.Header.Get(k))
								}
							}
							if len(got) != len(want.Header) {
								t.Fatalf("%s: headers %v, want %v", d.Code, got, want.Header)
							}
						}
					}
				}
			}
		}
	}
}

func BenchmarkZeroRefusalCached(b *testing.B) {
	d := decision.Refuse(decision.PathForbidden, "")
	d.Rule = "metrics"
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"curl/8.5.0"}}
	w := &discardWriter{h: http.Header{}}
	id := []string{"0123456789abcdef"} // as the gateway sets it before refusing
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.h["X-Request-Id"] = id
		WriteCached(w, &d, NegotiateHeader(h), false, "0123456789abcdef", Options{})
	}
}

func BenchmarkRefusalRender(b *testing.B) {
	d := decision.Refuse(decision.PathForbidden, "")
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"curl/8.5.0"}}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		res := Render(&d, NegotiateHeader(h), false, "0123456789abcdef", Options{})
		res.WriteTo(w)
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
