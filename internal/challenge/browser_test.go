package challenge

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/warden-gateway/warden/internal/challenge/browsertest"
)

// site is a small server with a challenge in front of /protected/ and
// /submit, as the gateway will put one in front of a rule's paths.
type site struct {
	*httptest.Server
	c               *Challenger
	pages, verifies atomic.Int32
	difficulty      int
}

func newSite(t *testing.T, difficulty int) *site {
	t.Helper()
	kr := testRing(t)
	c, err := New(Config{Keys: kr, Contact: "webmaster@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	s := &site{c: c, difficulty: difficulty}
	mux := http.NewServeMux()
	mux.Handle(c.VerifyPath(), countVerifies{c, &s.verifies})
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		// Unprotected: a form that posts to a protected URL.
		fmt.Fprint(w, `<!DOCTYPE html><title>start</title>
<form id="f" method="post" action="/submit?thread=7">
<input name="comment" value="hello &amp; &lt;world&gt;">
<input name="tag" value="a"><input name="tag" value="b">
<button id="send" name="submit" value="Send">Send</button>
</form>`)
	})
	protected := func(w http.ResponseWriter, r *http.Request, show func(w http.ResponseWriter, r *http.Request)) {
		ip, _ := PeerIP(r)
		d := s.difficulty
		if r.URL.Query().Get("hard") != "" {
			d = 30
		}
		if st := c.Check(r.Header, ip, time.Now(), d); st.State != StateValid {
			s.pages.Add(1)
			c.Serve(w, r, ip, d, time.Now())
			return
		}
		show(w, r)
	}
	mux.HandleFunc("/protected/", func(w http.ResponseWriter, r *http.Request) {
		protected(w, r, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `<!DOCTYPE html><title>protected</title><p id="protected">the protected page: %s %s</p>`,
				r.Method, html.EscapeString(r.URL.RequestURI()))
		})
	})
	mux.HandleFunc("/always/", func(w http.ResponseWriter, r *http.Request) {
		// A site that never sees the cookie (as when a browser blocks it).
		ip, _ := PeerIP(r)
		s.pages.Add(1)
		c.Serve(w, r, ip, 4, time.Now())
	})
	mux.HandleFunc("/submit", func(w http.ResponseWriter, r *http.Request) {
		protected(w, r, func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			var keys []string
			for k := range r.PostForm {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var b strings.Builder
			for _, k := range keys {
				fmt.Fprintf(&b, "%s=%s;", k, strings.Join(r.PostForm[k], ","))
			}
			fmt.Fprintf(w, `<!DOCTYPE html><title>submitted</title><p id="received">%s %s %s</p>`,
				r.Method, html.EscapeString(r.URL.RequestURI()), html.EscapeString(b.String()))
		})
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

type countVerifies struct {
	h http.Handler
	n *atomic.Int32
}

func (c countVerifies) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.h.ServeHTTP(w, r)
}

// chromium finds Debian's chromium; without it the test skips, or fails
// under CI=true (scripts/test.sh installs it).
func browser(t *testing.T) context.Context { return browsertest.Start(t) }

func step(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) error {
	return browsertest.Step(ctx, steps...)
}

func get[T any](ctx context.Context, t *testing.T, a chromedp.Action[T]) T {
	return browsertest.Get(ctx, t, a)
}

func artifactDir(t *testing.T) string { return browsertest.ArtifactDir(t) }

func clearanceCookie(ctx context.Context, t *testing.T) *network.Cookie {
	return browsertest.Cookie(ctx, t, DefaultCookieName)
}

func TestBrowserPassesChallenge(t *testing.T) {
	ctx := browser(t)
	s := newSite(t, 10)

	// A GET: the browser is shown the page, solves the work, and lands on
	// the protected page at the same URL.
	err := step(ctx,
		chromedp.Navigate(s.URL+"/protected/doc?id=42&x=a%20b"),
		chromedp.WaitVisible(chromedp.ID("protected")),
	)
	if err != nil {
		t.Fatalf("GET through the challenge: %v (pages %d, verifies %d)", err, s.pages.Load(), s.verifies.Load())
	}
	text := get(ctx, t, chromedp.Text(chromedp.ID("protected")))
	loc := get(ctx, t, chromedp.Location())
	if text != "the protected page: GET /protected/doc?id=42&x=a%20b" || loc != s.URL+"/protected/doc?id=42&x=a%20b" {
		t.Fatalf("landed on %q at %s", text, loc)
	}
	if s.pages.Load() != 1 || s.verifies.Load() != 1 {
		t.Fatalf("challenge pages %d, verifies %d; want 1 and 1", s.pages.Load(), s.verifies.Load())
	}
	ck := clearanceCookie(ctx, t)
	if ck == nil || !ck.HTTPOnly || ck.Path != "/" || ck.SameSite != network.CookieSameSiteLax {
		t.Fatalf("clearance cookie %+v", ck)
	}
	// With the cookie, the next protected page is served at once.
	if err := step(ctx,
		chromedp.Navigate(s.URL+"/protected/other"),
		chromedp.WaitVisible(chromedp.ID("protected")),
	); err != nil {
		t.Fatal(err)
	}
	if s.pages.Load() != 1 {
		t.Fatalf("challenged again with a clearance (%d pages)", s.pages.Load())
	}

	// A POST form: the browser has no clearance; the page carries the
	// form's fields through and re-submits them to the original URL.
	err = step(ctx,
		browsertest.ClearCookies(),
		chromedp.Navigate(s.URL+"/start"),
		chromedp.WaitVisible(chromedp.ID("send")),
		chromedp.Click(chromedp.ID("send")),
		chromedp.WaitVisible(chromedp.ID("received")),
	)
	if err != nil {
		t.Fatalf("POST through the challenge: %v", err)
	}
	text = get(ctx, t, chromedp.Text(chromedp.ID("received")))
	want := "POST /submit?thread=7 comment=hello & <world>;submit=Send;tag=a,b;"
	if text != want {
		t.Fatalf("the protected handler saw %q, want %q", text, want)
	}
	if s.pages.Load() != 2 || s.verifies.Load() != 2 {
		t.Fatalf("challenge pages %d, verifies %d; want 2 and 2", s.pages.Load(), s.verifies.Load())
	}
	if clearanceCookie(ctx, t) == nil {
		t.Fatal("no clearance cookie after the POST")
	}
}

func TestBrowserChallengeScreenshot(t *testing.T) {
	ctx := browser(t)
	s := newSite(t, 10)
	// At difficulty 30 the work takes long enough to photograph the page
	// at work.
	err := step(ctx,
		chromedp.Navigate(s.URL+"/protected/doc?hard=1"),
		chromedp.WaitVisible(chromedp.ID("warden-progress")),
		chromedp.Sleep(1500*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	status := get(ctx, t, chromedp.Evaluate[string](`document.getElementById("warden-status").textContent`))
	png := get(ctx, t, chromedp.FullScreenshot(100))
	if err := step(ctx, chromedp.Navigate("about:blank")); err != nil { // stop the workers
		t.Fatal(err)
	}
	if !strings.HasPrefix(status, "Checking your browser") {
		t.Fatalf("status while working: %q", status)
	}
	path := filepath.Join(artifactDir(t), "challenge-page.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the challenge page: %s", path)
}

// Programs that do not ask for HTML get the problem+json refusal with the
// hint, whatever their User-Agent.
func TestProgramsGetJSONRefusal(t *testing.T) {
	s := newSite(t, 10)
	for _, h := range []map[string]string{
		{"Accept": "*/*", "User-Agent": "curl/8.11.1"},
		{"Accept": "application/json", "User-Agent": "python-requests/2.32"},
		{"User-Agent": "Wget/1.25"},
	} {
		req, _ := http.NewRequest("GET", s.URL+"/protected/doc", nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var p struct {
			Status int    `json:"status"`
			Code   string `json:"code"`
			Hint   string `json:"hint"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("%v: not JSON: %s", h, body)
		}
		if resp.StatusCode != 403 || resp.Header.Get("Content-Type") != "application/problem+json" ||
			p.Code != "challenge_required" || p.Status != 403 || !strings.Contains(p.Hint, "API key") || !strings.Contains(p.Hint, "verified bot") {
			t.Fatalf("%v: %d %s %s", h, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
}

// A browser whose cookie never reaches the site is not sent round the
// challenge for ever: the page stops after three rounds in a minute and
// says that cookies are needed.
func TestBrowserChallengeLoopStops(t *testing.T) {
	ctx := browser(t)
	s := newSite(t, 10)
	if err := step(ctx,
		chromedp.Navigate(s.URL+"/always/x"),
		chromedp.WaitVisible(chromedp.ID("warden-retry")), // shown when the page gives up
	); err != nil {
		t.Fatalf("no loop guard: %v (pages %d, verifies %d)", err, s.pages.Load(), s.verifies.Load())
	}
	status := get(ctx, t, chromedp.Evaluate[string](`document.getElementById("warden-status").textContent`))
	if !strings.Contains(status, "did not keep its cookie") {
		t.Fatalf("status %q", status)
	}
	if n := s.pages.Load(); n != 4 {
		t.Fatalf("%d challenge pages before the guard stopped, want 4", n)
	}
}
