package challenge

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLeadingZeroBits(t *testing.T) {
	var s [32]byte
	if LeadingZeroBits(s) != 256 {
		t.Fatal("all zero")
	}
	s[0] = 0x80
	if LeadingZeroBits(s) != 0 {
		t.Fatal("top bit")
	}
	s[0], s[2] = 0, 0x10
	if LeadingZeroBits(s) != 19 {
		t.Fatalf("got %d", LeadingZeroBits(s))
	}
	s[2], s[9] = 0, 1
	if LeadingZeroBits(s) != 79 {
		t.Fatalf("got %d", LeadingZeroBits(s))
	}
}

func TestWorkHashIsSHA256OfConcatenation(t *testing.T) {
	got := WorkHash("abc", "123")
	if got != sha256.Sum256([]byte("abc123")) {
		t.Fatal("WorkHash is not SHA-256(challenge || counter)")
	}
}

// solveAbove finds a counter whose hash has exactly fewer than want leading
// zero bits but at least have: a solution that misses the difficulty.
func missing(t *testing.T, ch string, difficulty int) string {
	for c := 0; c < 1<<20; c++ {
		s := strconv.Itoa(c)
		if LeadingZeroBits(WorkHash(ch, s)) < difficulty {
			return s
		}
	}
	t.Fatal("no miss found")
	return ""
}

func TestSolution(t *testing.T) {
	kr := testRing(t)
	const d = 10
	exp := t0.Add(5 * time.Minute)
	ch := kr.IssueChallenge(ipA, uaFF, "POST", "/comment?x=1", d, exp, [16]byte{1, 2, 3})
	counter, ok := Solve(ch, d, 1<<24)
	if !ok {
		t.Fatal("no solution")
	}
	p, err := kr.CheckSolution(ch, counter, ipA2, uaFF, "POST", "/comment?x=1", t0)
	if err != nil {
		t.Fatalf("valid solution: %v", err)
	}
	if p.Difficulty != d || p.Nonce != [16]byte{1, 2, 3} || !p.Expires.Equal(exp) {
		t.Fatalf("puzzle %+v", p)
	}

	raw, _ := base64.RawURLEncoding.DecodeString(ch)
	// The client lowers the difficulty in the challenge to make its work easy.
	easier := append([]byte(nil), raw...)
	easier[offDifficulty] = 1
	easy := base64.RawURLEncoding.EncodeToString(easier)
	easyCounter, _ := Solve(easy, 1, 1<<10)

	other, _ := NewKeyring(testKey(t, 9))
	foreign := other.IssueChallenge(ipA, uaFF, "POST", "/comment?x=1", d, exp, [16]byte{})
	foreignCounter, _ := Solve(foreign, d, 1<<24)

	cases := []struct {
		name               string
		ch, counter        string
		ip                 netip.Addr
		ua, method, target string
		now                time.Time
		want               Reason
	}{
		{"misses the difficulty", ch, missing(t, ch, d), ipA, uaFF, "POST", "/comment?x=1", t0, ReasonInsufficientWork},
		{"difficulty tampered", easy, easyCounter, ipA, uaFF, "POST", "/comment?x=1", t0, ReasonForged},
		{"expired", ch, counter, ipA, uaFF, "POST", "/comment?x=1", exp, ReasonExpired},
		{"replayed from another network", ch, counter, ipB, uaFF, "POST", "/comment?x=1", t0, ReasonWrongIP},
		{"replayed with another user agent", ch, counter, ipA, uaOther, "POST", "/comment?x=1", t0, ReasonWrongUserAgent},
		{"redirected to another URL", ch, counter, ipA, uaFF, "POST", "/admin", t0, ReasonWrongTarget},
		{"another method", ch, counter, ipA, uaFF, "GET", "/comment?x=1", t0, ReasonWrongTarget},
		{"other deployment", foreign, foreignCounter, ipA, uaFF, "POST", "/comment?x=1", t0, ReasonUnknownKey},
		{"counter not digits", ch, "12a", ipA, uaFF, "POST", "/comment?x=1", t0, ReasonMalformed},
		{"counter too long", ch, strings.Repeat("1", 21), ipA, uaFF, "POST", "/comment?x=1", t0, ReasonMalformed},
		{"no counter", ch, "", ipA, uaFF, "POST", "/comment?x=1", t0, ReasonMalformed},
		{"truncated challenge", ch[:len(ch)-2], counter, ipA, uaFF, "POST", "/comment?x=1", t0, ReasonMalformed},
		{"clearance posted as challenge", kr.IssueClearance(ipA, uaFF, 30, exp), counter, ipA, uaFF, "POST", "/comment?x=1", t0, ReasonMalformed},
	}
	for _, c := range cases {
		_, err := kr.CheckSolution(c.ch, c.counter, c.ip, c.ua, c.method, c.target, c.now)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

// newTestChallenger is a Challenger whose client address comes from the
// X-Test-IP header and whose clock is fixed.
func newTestChallenger(t *testing.T, now *time.Time) *Challenger {
	t.Helper()
	c, err := New(Config{
		Keys:    testRing(t),
		Contact: "webmaster@example.org",
		Now:     func() time.Time { return *now },
		ClientIP: func(r *http.Request) (netip.Addr, bool) {
			a, err := netip.ParseAddr(r.Header.Get("X-Test-IP"))
			return a, err == nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func postSolution(c *Challenger, ip, ua string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", c.VerifyPath(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Test-IP", ip)
	req.Header.Set("User-Agent", ua)
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	return rec
}

func TestVerifyEndpointRedeemsOnce(t *testing.T) {
	now := t0
	c := newTestChallenger(t, &now)
	req := httptest.NewRequest("GET", "/docs/page?q=1", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	req.Header.Set("User-Agent", uaFF)
	rec := httptest.NewRecorder()
	c.Serve(rec, req, ipA, 6, now)
	if rec.Code != http.StatusForbidden || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	ch := attr(t, rec.Body.String(), "data-challenge")
	if got := attr(t, rec.Body.String(), "data-url"); got != "/docs/page?q=1" {
		t.Fatalf("data-url %q", got)
	}
	counter, _ := Solve(ch, 6, 1<<20)
	form := url.Values{"challenge": {ch}, "counter": {counter}, "method": {"GET"}, "url": {"/docs/page?q=1"}}

	// From another network, the solution is refused and not spent.
	if rec := postSolution(c, ipB.String(), uaFF, form); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "challenge_failed") {
		t.Fatalf("other network: %d %s", rec.Code, rec.Body)
	}
	ok := postSolution(c, ipA2.String(), uaFF, form)
	if ok.Code != http.StatusNoContent {
		t.Fatalf("verify: %d %s", ok.Code, ok.Body)
	}
	cookie := ok.Result().Cookies()[0]
	if cookie.Name != DefaultCookieName || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" || cookie.Secure {
		t.Fatalf("cookie %+v", cookie)
	}
	h := http.Header{"Cookie": {"a=b; " + cookie.Name + "=" + cookie.Value}, "User-Agent": {uaFF}}
	if st := c.Check(h, ipA, now, 6); st.State != StateValid || st.Clearance.Difficulty != 6 {
		t.Fatalf("check: %+v", st)
	}
	if st := c.Check(h, ipA, now, 7); st.State != StateFailed || st.Reason != ReasonDifficultyTooLow {
		t.Fatalf("check at higher difficulty: %+v", st)
	}
	if st := c.Check(h, ipB, now, 6); st.String() != "failed: wrong_ip" {
		t.Fatalf("status text %q", st)
	}
	if st := c.Check(h, ipA, now, 6); st.String() != "valid (difficulty 6)" {
		t.Fatalf("status text %q", st)
	}
	if st := c.Check(http.Header{}, ipA, now, 6); st.State != StateNone || st.String() != "none" {
		t.Fatalf("no cookie: %+v", st)
	}
	// Within its binding, a second redemption of the same solution is refused.
	again := postSolution(c, ipA.String(), uaFF, form)
	if again.Code != http.StatusForbidden || !strings.Contains(again.Body.String(), "already redeemed") {
		t.Fatalf("replay: %d %s", again.Code, again.Body)
	}
	// An open redirect through url= is refused before anything else.
	bad := url.Values{"challenge": {ch}, "counter": {counter}, "method": {"GET"}, "url": {"//evil.example/"}}
	if rec := postSolution(c, ipA.String(), uaFF, bad); rec.Code != http.StatusForbidden {
		t.Fatalf("open redirect: %d", rec.Code)
	}
	if rec := httptest.NewRecorder(); true {
		c.ServeHTTP(rec, httptest.NewRequest("GET", c.VerifyPath(), nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Fatalf("GET verify: %d", rec.Code)
		}
	}
}

func TestProgramsGetJSON(t *testing.T) {
	now := t0
	c := newTestChallenger(t, &now)
	for _, accept := range []string{"", "*/*", "application/json", "text/html;q=0, application/json"} {
		req := httptest.NewRequest("GET", "/", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		rec := httptest.NewRecorder()
		c.Serve(rec, req, ipA, 4, now)
		var p map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("Accept %q: not JSON: %s", accept, rec.Body)
		}
		if rec.Code != 403 || p["code"] != "challenge_required" || p["hint"] != Hint() || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("Accept %q: %d %v", accept, rec.Code, p)
		}
	}
}

func TestPageCarriesForm(t *testing.T) {
	now := t0
	c := newTestChallenger(t, &now)
	form := url.Values{"comment": {`<script>alert("x")</script> & more`}, "submit": {"Send"}}
	req := httptest.NewRequest("POST", "/comments?thread=7", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	c.Serve(rec, req, ipA, 4, now)
	body := rec.Body.String()
	if strings.Contains(body, `<script>alert`) {
		t.Fatal("field value not escaped")
	}
	if !strings.Contains(body, `name="comment" value="&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more"`) {
		t.Fatalf("field not carried:\n%s", body)
	}
	if attr(t, body, "data-carried") != "1" || attr(t, body, "data-method") != "POST" {
		t.Fatal("not marked as carried POST")
	}
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "worker-src blob:") {
		t.Fatalf("csp %q", csp)
	}
	for _, external := range []string{"src=\"http", "href=\"http", "@import", "url("} {
		if strings.Contains(body, external) {
			t.Fatalf("page loads something from elsewhere: %q", external)
		}
	}
	if !strings.Contains(body, "<noscript>") || !strings.Contains(body, "webmaster@example.org") {
		t.Fatal("no noscript text or contact")
	}
}

func attr(t *testing.T, body, name string) string {
	t.Helper()
	i := strings.Index(body, name+`="`)
	if i < 0 {
		t.Fatalf("no %s in page", name)
	}
	rest := body[i+len(name)+2:]
	return strings.ReplaceAll(rest[:strings.IndexByte(rest, '"')], "&amp;", "&")
}

func TestSafeTarget(t *testing.T) {
	for in, want := range map[string]string{
		"/a?b=c":               "/a?b=c",
		"//evil.example/":      "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"":                     "/",
		"/a\nb":                "/",
	} {
		if got := safeTarget(in); got != want {
			t.Errorf("safeTarget(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSpentSetBounded(t *testing.T) {
	s := newSpentSet(4)
	exp := t0.Add(time.Minute)
	for i := range 10 {
		if !s.redeem([16]byte{byte(i)}, exp, t0) {
			t.Fatalf("fresh nonce %d refused", i)
		}
	}
	if len(s.seen) > 4 {
		t.Fatalf("%d remembered, bound 4", len(s.seen))
	}
	if s.redeem([16]byte{9}, exp, t0) {
		t.Fatal("recent nonce redeemed twice")
	}
	// Expired entries are forgotten.
	if !s.redeem([16]byte{9}, exp.Add(time.Minute), exp) {
		t.Fatal("expired entry still blocks")
	}
}

func TestCookieValue(t *testing.T) {
	h := http.Header{"Cookie": {"x=1; warden_clearance2=no", `warden_clearance="abc"; y=2`}}
	if v, ok := CookieValue(h, "warden_clearance"); !ok || v != "abc" {
		t.Fatalf("got %q %v", v, ok)
	}
	if _, ok := CookieValue(h, "missing"); ok {
		t.Fatal("found a missing cookie")
	}
}

func TestWantsPage(t *testing.T) {
	for accept, want := range map[string]bool{
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8": true,
		"*/*":                   false,
		"":                      false,
		"application/json":      false,
		"text/html;q=0":         false,
		"application/xhtml+xml": true,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		if WantsPage(r) != want {
			t.Errorf("Accept %q: WantsPage = %v", accept, !want)
		}
	}
}

func TestCheckAllocatesNothing(t *testing.T) {
	now := t0
	c := newTestChallenger(t, &now)
	tok := c.cfg.Keys.IssueClearance(ipA, uaOther, 4, t0.Add(time.Hour))
	h := http.Header{"Cookie": {"_ga=GA1.1.1; warden_clearance=" + tok + "; theme=dark"}, "User-Agent": {uaOther}}
	n := testing.AllocsPerRun(100, func() {
		if st := c.Check(h, ipA, t0, 4); st.State != StateValid {
			t.Fatal(st)
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestPageKeepsFieldOrder(t *testing.T) {
	now := t0
	c := newTestChallenger(t, &now)
	req := httptest.NewRequest("POST", "/f", strings.NewReader("z=1&a=2&z=3&empty=&plus=a+b%21"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	c.Serve(rec, req, ipA, 4, now)
	want := `<input type="hidden" name="z" value="1"><input type="hidden" name="a" value="2">` +
		`<input type="hidden" name="z" value="3"><input type="hidden" name="empty" value="">` +
		`<input type="hidden" name="plus" value="a b!">`
	if !strings.Contains(rec.Body.String(), want) {
		t.Fatalf("fields not carried in order:\n%s", rec.Body)
	}
	// A body that is not a form is not carried, and the page says so.
	req = httptest.NewRequest("POST", "/f", strings.NewReader(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/html")
	rec = httptest.NewRecorder()
	c.Serve(rec, req, ipA, 4, now)
	if attr(t, rec.Body.String(), "data-carried") != "0" {
		t.Fatal("a JSON body was marked as carried")
	}
}

func TestSecureCookieUnderTLS(t *testing.T) {
	now := t0
	c := newTestChallenger(t, &now)
	ch := c.cfg.Keys.IssueChallenge(ipA, uaFF, "GET", "/", 2, now.Add(time.Minute), [16]byte{42})
	counter, _ := Solve(ch, 2, 1<<12)
	form := url.Values{"challenge": {ch}, "counter": {counter}, "method": {"GET"}, "url": {"/"}}
	req := httptest.NewRequest("POST", "https://site.example"+c.VerifyPath(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Test-IP", ipA.String())
	req.Header.Set("User-Agent", uaFF)
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusNoContent || len(cookies) != 1 || !cookies[0].Secure || cookies[0].MaxAge != int(DefaultClearanceTTL/time.Second) {
		t.Fatalf("%d %+v", rec.Code, cookies)
	}
}

func TestCheckClampsDifficulty(t *testing.T) {
	now := t0
	c := newTestChallenger(t, &now)
	tok := c.cfg.Keys.IssueClearance(ipA, uaFF, MaxDifficulty, t0.Add(time.Hour))
	h := http.Header{"Cookie": {DefaultCookieName + "=" + tok}, "User-Agent": {uaFF}}
	if st := c.Check(h, ipA, now, MaxDifficulty+8); st.State != StateValid {
		t.Fatalf("a clearance at the highest difficulty that can be issued: %+v", st)
	}
}
