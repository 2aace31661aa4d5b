package refusal_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/refusal"
)

func TestNegotiate(t *testing.T) {
	cases := []struct {
		accept, ua string
		want       refusal.Format
	}{
		{"application/json", "", refusal.JSON},
		{"application/problem+json", "", refusal.JSON},
		{"application/vnd.api+json", "", refusal.JSON},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "Mozilla/5.0", refusal.HTML},
		{"application/xhtml+xml", "", refusal.HTML},
		{"text/plain", "", refusal.Text},
		{"TEXT/HTML", "", refusal.HTML},
		// q-values decide, not order.
		{"text/html;q=0.5, application/json", "", refusal.JSON},
		{"application/json;q=0.1, text/plain;q=0.9", "", refusal.Text},
		{"text/html;q=0", "", refusal.JSON},
		// Anything acceptable: terminals get text, other programs JSON.
		{"*/*", "curl/8.5.0", refusal.Text},
		{"*/*", "Wget/1.21.4", refusal.Text},
		{"*/*", "HTTPie/3.2.2", refusal.Text},
		{"", "curl/7.88.1", refusal.Text},
		{"*/*", "Go-http-client/1.1", refusal.JSON},
		{"*/*", "python-requests/2.31", refusal.JSON},
		{"", "", refusal.JSON},
		{"garbage;;;", "", refusal.JSON},
		// An explicit Accept beats the user agent.
		{"application/json", "curl/8.5.0", refusal.JSON},
		{"text/html", "curl/8.5.0", refusal.HTML},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		if c.accept != "" {
			r.Header.Set("Accept", c.accept)
		}
		if c.ua != "" {
			r.Header.Set("User-Agent", c.ua)
		}
		if got := refusal.Negotiate(r); got != c.want {
			t.Errorf("Accept %q, UA %q: got format %d, want %d", c.accept, c.ua, got, c.want)
		}
	}
}

func TestBuild(t *testing.T) {
	d := decision.Refuse(decision.RoleRequired, "account lacks role: admin")
	d.Rule = "admin-area"
	p := refusal.Build(&d, "rid1", refusal.Options{})
	want := refusal.Problem{Type: "urn:warden:reason:role_required", Title: "Forbidden", Status: 403,
		Detail: "account lacks role: admin", Code: "role_required", RequestID: "rid1",
		Error: "forbidden", Reason: "account lacks role: admin",
		Advice: refusal.AdviceFor(refusal.Cause(decision.RoleRequired)).Text}
	if p != want {
		t.Errorf("Build:\n got %+v\nwant %+v", p, want)
	}
	if p := refusal.Build(&d, "rid1", refusal.Options{ShowRule: true}); p.Rule != "admin-area" {
		t.Errorf("ShowRule: rule %q", p.Rule)
	}
	p = refusal.Build(&d, "rid1", refusal.Options{Minimal: true})
	if p.Reason != "Forbidden" || p.Detail != "Forbidden" || p.Code != "role_required" || p.RequestID != "rid1" {
		t.Errorf("Minimal must hide the reason but keep code and id: %+v", p)
	}

	// A status the rule chose wins over the code's default.
	d = decision.Decision{Action: decision.Deny, Code: decision.PathForbidden, Status: 451, Reason: "legal"}
	if p := refusal.Build(&d, "x", refusal.Options{}); p.Status != 451 || p.Error != "unavailable_for_legal_reasons" {
		t.Errorf("status 451: %+v", p)
	}
	// No status: the code's.
	d = decision.Decision{Action: decision.Deny, Code: decision.RateLimited}
	if p := refusal.Build(&d, "x", refusal.Options{}); p.Status != 429 || p.Reason != "Too Many Requests" || p.Error != "too_many_requests" {
		t.Errorf("no status: %+v", p)
	}

	// A concealed refusal is an ordinary 404 whatever the rule said.
	conceal := decision.Decision{Action: decision.Conceal, Code: decision.PathForbidden, Status: 403,
		Reason: "secret admin panel", Rule: "hide-admin"}
	notFound := decision.Refuse(decision.NotFound, "no such file")
	a := refusal.Build(&conceal, "same", refusal.Options{ShowRule: true})
	b := refusal.Build(&notFound, "same", refusal.Options{ShowRule: true})
	if a != b || a.Status != 404 || a.Code != "not_found" || a.Rule != "" || strings.Contains(a.Detail, "secret") {
		t.Errorf("conceal %+v\n   404 %+v", a, b)
	}
}

type written struct {
	status int
	header http.Header
	body   string
}

func write(d decision.Decision, method, accept, ua string, opt refusal.Options) written {
	r := httptest.NewRequest(method, "/x", nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	if ua != "" {
		r.Header.Set("User-Agent", ua)
	}
	rec := httptest.NewRecorder()
	// Headers a handler may have set before the refusal was decided must
	// not leak into it.
	rec.Header().Set("ETag", `"abc"`)
	rec.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
	refusal.Write(rec, r, &d, "req-123", opt)
	return written{rec.Code, rec.Header(), rec.Body.String()}
}

func TestWriteJSON(t *testing.T) {
	d := decision.Refuse(decision.RoleRequired, "account lacks role: admin")
	w := write(d, "GET", "application/json", "", refusal.Options{})
	if w.status != 403 || w.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d type %q", w.status, w.header.Get("Content-Type"))
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(w.body), &got); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, w.body)
	}
	want := map[string]any{"type": "urn:warden:reason:role_required", "title": "Forbidden", "status": 403.0,
		"detail": "account lacks role: admin", "code": "role_required", "request_id": "req-123",
		"error": "forbidden", "reason": "account lacks role: admin",
		"advice": "You are signed in, but your account lacks the permission this needs. Signing in again will not help: ask the site owner to grant it."}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("extra fields in %v", got)
	}
	for k, v := range map[string]string{"X-Request-Id": "req-123", "Cache-Control": "no-store",
		"X-Content-Type-Options": "nosniff", "ETag": "", "Last-Modified": "", "WWW-Authenticate": ""} {
		if got := w.header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if w.header.Get("Content-Length") != itoa(len(w.body)) {
		t.Errorf("Content-Length %q for %d bytes", w.header.Get("Content-Length"), len(w.body))
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestWriteUnauthorizedAlwaysChallenges(t *testing.T) {
	d := decision.Refuse(decision.Unauthenticated, "sign in")
	if w := write(d, "GET", "", "", refusal.Options{}); w.status != 401 || w.header.Get("WWW-Authenticate") != `Bearer realm="warden"` {
		t.Errorf("no challenge given: %d %q", w.status, w.header.Get("WWW-Authenticate"))
	}
	d.WWWAuthenticate = `ApiKey realm="warden", header="X-API-Key"`
	if w := write(d, "GET", "", "", refusal.Options{}); w.header.Get("WWW-Authenticate") != d.WWWAuthenticate {
		t.Errorf("challenge %q", w.header.Get("WWW-Authenticate"))
	}
	d = decision.Refuse(decision.InvalidCredentials, "bad key")
	if w := write(d, "GET", "", "", refusal.Options{}); w.status != 401 || w.header.Get("WWW-Authenticate") == "" {
		t.Errorf("invalid_credentials: %d %q", w.status, w.header.Get("WWW-Authenticate"))
	}
	// A 403 never challenges: signing in again would not help.
	d = decision.Refuse(decision.RoleRequired, "account lacks role: admin")
	d.WWWAuthenticate = "Bearer"
	if w := write(d, "GET", "", "", refusal.Options{}); w.header.Get("WWW-Authenticate") != "" {
		t.Errorf("403 with a challenge: %q", w.header.Get("WWW-Authenticate"))
	}
}

func TestWriteRetryAfter(t *testing.T) {
	for _, c := range []struct {
		code decision.ReasonCode
		want string
	}{{decision.RateLimited, "7"}, {decision.Unavailable, "7"}, {decision.PathForbidden, ""}} {
		d := decision.Refuse(c.code, "x")
		d.RetryAfter = 7
		if w := write(d, "GET", "", "", refusal.Options{}); w.header.Get("Retry-After") != c.want {
			t.Errorf("%s: Retry-After %q, want %q", c.code, w.header.Get("Retry-After"), c.want)
		}
	}
}

func TestWriteHTML(t *testing.T) {
	d := decision.Refuse(decision.PathForbidden, `<script>alert("x")</script> & more`)
	d.Rule = `<b>rule</b>`
	w := write(d, "GET", "text/html", "Mozilla/5.0", refusal.Options{ShowRule: true, Contact: `<a href="javascript:x">me</a>`})
	if w.status != 403 || w.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d type %q", w.status, w.header.Get("Content-Type"))
	}
	if csp := w.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for _, must := range []string{"req-123", "path_forbidden", "Access forbidden",
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more", "&lt;b&gt;rule&lt;/b&gt;",
		"&lt;a href=&#34;javascript:x&#34;&gt;me&lt;/a&gt;", "<!doctype html>"} {
		if !strings.Contains(w.body, must) {
			t.Errorf("page lacks %q:\n%s", must, w.body)
		}
	}
	for _, mustNot := range []string{"<script", "<b>", "<link", "src=", "http://", "https://", "@import", "url("} {
		if strings.Contains(w.body, mustNot) {
			t.Errorf("page holds %q (external asset or unescaped input):\n%s", mustNot, w.body)
		}
	}
}

// TestHTMLSaysWhatToDo: each kind of refusal tells the visitor what it is
// and what would help.
func TestHTMLSaysWhatToDo(t *testing.T) {
	for code, must := range map[decision.ReasonCode]string{
		decision.Unauthenticated:          "Sign in",
		decision.RoleRequired:             "Signing in again will not help",
		decision.IPBlocked:                "VPN",
		decision.UserAgentBlocked:         "API",
		decision.DirectoryListingDisabled: "Folder listing is off",
		decision.FileNotReadable:          "permissions",
		decision.UpstreamError:            "did not answer properly",
		decision.UpstreamTimeout:          "did not answer in time",
	} {
		w := write(decision.Refuse(code, "r"), "GET", "text/html", "", refusal.Options{})
		if !strings.Contains(w.body, must) {
			t.Errorf("%s page does not say %q", code, must)
		}
	}
	for _, code := range decision.Codes() {
		w := write(decision.Refuse(code, "r"), "GET", "text/html", "", refusal.Options{})
		if strings.Contains(w.body, "<h1>Request refused</h1>") {
			t.Errorf("%s has no advice of its own", code)
		}
		if w.status != code.Status() {
			t.Errorf("%s: status %d, want %d", code, w.status, code.Status())
		}
	}
}

func TestWriteText(t *testing.T) {
	d := decision.Refuse(decision.IPBlocked, "blocked\r\nX-Injected: yes\x1b[31m")
	w := write(d, "GET", "*/*", "curl/8.5.0", refusal.Options{})
	if w.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("type %q", w.header.Get("Content-Type"))
	}
	lines := strings.Split(strings.TrimSuffix(w.body, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 lines, got %d:\n%s", len(lines), w.body)
	}
	if lines[0] != "403 Forbidden: blocked  X-Injected: yes [31m" {
		t.Errorf("first line %q: control characters must be blanked", lines[0])
	}
	if lines[1] != "code: ip_blocked" || !strings.HasPrefix(lines[2], "what you can do: ") || lines[3] != "request id: req-123" {
		t.Errorf("text body:\n%s", w.body)
	}
}

func TestWriteHeadHasNoBody(t *testing.T) {
	w := write(decision.Refuse(decision.PathForbidden, "no"), "HEAD", "application/json", "", refusal.Options{})
	if w.status != 403 || w.body != "" || w.header.Get("Content-Length") == "0" || w.header.Get("Content-Length") == "" {
		t.Errorf("HEAD: %d %q Content-Length %q", w.status, w.body, w.header.Get("Content-Length"))
	}
}

// TestConcealIsByteIdenticalToNotFound in every format: a client cannot
// tell a hidden resource from a missing one.
func TestConcealIsByteIdenticalToNotFound(t *testing.T) {
	conceal := decision.Decision{Action: decision.Conceal, Code: decision.NotFound, Status: 404,
		Reason: "hidden by rule hide-internal", Rule: "hide-internal", RuleLine: 9}
	missing := decision.Refuse(decision.NotFound, "no such file")
	for _, f := range []struct{ accept, ua string }{{"application/json", ""}, {"text/html", ""}, {"*/*", "curl/8"}} {
		for _, opt := range []refusal.Options{{}, {ShowRule: true}, {Minimal: true}} {
			a := write(conceal, "GET", f.accept, f.ua, opt)
			b := write(missing, "GET", f.accept, f.ua, opt)
			if a.status != 404 || a.status != b.status || a.body != b.body {
				t.Errorf("%s %+v:\nconceal %d %s\n    404 %d %s", f.accept, opt, a.status, a.body, b.status, b.body)
			}
			for k := range b.header {
				if a.header.Get(k) != b.header.Get(k) {
					t.Errorf("%s: header %s differs: %q vs %q", f.accept, k, a.header.Get(k), b.header.Get(k))
				}
			}
		}
	}
}
