package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/proctest"

	"github.com/chromedp/chromedp"

	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
)

// TestAdminPageInABrowser opens the admin page in headless Chromium after
// known refusals: the chart shows them by code, and the request-id search
// shows the trace of one of them. The screenshot is kept as an artifact.
func TestAdminPageInABrowser(t *testing.T) {
	exe := proctest.Program(t, "chromium", "chromium-browser", "google-chrome")
	cfg := testPolicy(t)
	srv, rt := gatewaytest.Build(t, cfg, slog.New(slog.DiscardHandler))
	adm, err := New(srv.Engine, nil, testToken)
	if err != nil {
		t.Fatal(err)
	}
	adm.Metrics.Loaded(rt, time.Now())
	inst := gatewaytest.Serve(t, srv, rt, &cfg.Limits, nil)
	send(t, inst.URL())
	// One more refusal whose id we search for.
	res, err := http.Get(inst.URL() + "/secret/find-me")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	id := res.Header.Get("X-Request-Id")
	if res.StatusCode != 403 || id == "" {
		t.Fatalf("refusal: %d %q", res.StatusCode, id)
	}
	admSrv := httptest.NewServer(adm)
	defer admSrv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.WindowSize(1200, 1600))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	step("open the page", chromedp.Do(ctx,
		chromedp.Navigate(admSrv.URL+"/login?token="+testToken),
		chromedp.WaitVisible(chromedp.ID("refusals-chart"))))
	forbiddenCounts, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#refusals-chart rect.bar[data-code="path_forbidden"]')).map(r => r.getAttribute('data-count'))`))
	step("read the chart", err)
	codes, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#refusals-chart text.legend')).map(t => t.textContent)`))
	step("read the legend", err)
	step("search", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("search-id"), id),
		chromedp.Click(chromedp.ID("search-go")),
		chromedp.WaitVisible(chromedp.ID("trace"))))
	traceText, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("trace")))
	step("read the trace", err)
	resultText, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("search-result")))
	step("read the result", err)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	step("screenshot", err)
	total := 0
	for _, c := range forbiddenCounts {
		n, _ := strconv.Atoi(c)
		total += n
	}
	// Three /secret/ refusals from the known traffic and the one searched.
	if total != 4 {
		t.Errorf("chart shows %d path_forbidden refusals (%v), want 4", total, forbiddenCounts)
	}
	want := map[string]bool{"path_forbidden": true, "ip_blocked": true, "unauthenticated": true, "not_found": true}
	for _, c := range codes {
		delete(want, c)
	}
	if len(want) > 0 {
		t.Errorf("chart legend %v lacks %v", codes, want)
	}
	if !strings.Contains(resultText, id) || !strings.Contains(resultText, "no-secrets") || !strings.Contains(traceText, "blocked-addresses") {
		t.Errorf("search result for %s:\n%s\ntrace:\n%s", id, resultText, traceText)
	}
	dir := os.Getenv("WARDEN_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "admin-page.png")
	if err := os.WriteFile(p, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", p, len(shot))
}
