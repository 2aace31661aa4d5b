package gateway_test

// The challenge in a real browser, through a real gateway: a challenge
// rule in front of an upstream; headless chromium is shown the page, does
// the work, gets the clearance cookie and lands on the upstream's page,
// and a POST form arrives at the upstream with its fields.

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/warden-gateway/warden/internal/challenge"
	"github.com/warden-gateway/warden/internal/challenge/browsertest"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
)

func TestChallengeInABrowserThroughTheGateway(t *testing.T) {
	ctx := browsertest.Start(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/form":
			io.WriteString(w, `<form method="post" action="/submit?thread=7"><input name="comment" value="hello &amp; goodbye"><button id="send">Send</button></form>`)
		case "/submit":
			r.ParseForm()
			fmt.Fprintf(w, `<p id="received">%s %s comment=%s</p>`, r.Method, r.URL.RequestURI(), r.PostForm.Get("comment"))
		default:
			fmt.Fprintf(w, `<p id="protected">the protected page: %s</p>`, r.URL.RequestURI())
		}
	}))
	defer app.Close()
	dir := t.TempDir()
	src := `challenge: { key_file: challenge.key }
rules:
  - name: browsers-prove-themselves
    when: { path: { prefix: [/] } }
    action: challenge
    challenge: { difficulty: 10 }
handle:
  - path: /
    upstream: ` + app.URL + `
`
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	gw := gatewaytest.Start(t, cfg, slog.New(slog.DiscardHandler), nil)

	if err := browsertest.Step(ctx,
		chromedp.Navigate(gw.URL()+"/docs/page?id=42"),
		chromedp.WaitVisible(chromedp.ID("protected")),
	); err != nil {
		t.Fatalf("GET through the challenge: %v", err)
	}
	if text := browsertest.Get(ctx, t, chromedp.Text(chromedp.ID("protected"))); text != "the protected page: /docs/page?id=42" {
		t.Fatalf("landed on %q", text)
	}
	if ck := browsertest.Cookie(ctx, t, challenge.DefaultCookieName); ck == nil || !ck.HTTPOnly {
		t.Fatalf("clearance cookie %+v", ck)
	}
	shot := browsertest.Get(ctx, t, chromedp.CaptureScreenshot())
	out := filepath.Join(browsertest.ArtifactDir(t), "gateway-after-challenge.png")
	if err := os.WriteFile(out, shot, 0o644); err == nil {
		t.Logf("screenshot: %s", out)
	}

	// A POST form sent from a page whose clearance is then dropped: the
	// challenge carries the form's fields through to the upstream.
	if err := browsertest.Step(ctx,
		chromedp.Navigate(gw.URL()+"/form"),
		chromedp.WaitVisible(chromedp.ID("send")),
		browsertest.ClearCookies(),
		chromedp.Click(chromedp.ID("send")),
		chromedp.WaitVisible(chromedp.ID("received")),
	); err != nil {
		t.Fatalf("POST through the challenge: %v", err)
	}
	if text := browsertest.Get(ctx, t, chromedp.Text(chromedp.ID("received"))); text != "POST /submit?thread=7 comment=hello & goodbye" {
		t.Fatalf("the upstream saw %q", text)
	}
}
