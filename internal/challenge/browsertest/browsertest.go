// Package browsertest drives Debian's chromium headless for tests, through
// chromedp: the only way to prove that a page's JavaScript works is to run
// it in the browser it is for. Without chromium a test is skipped, or fails
// with CI=true (scripts/test.sh installs it).
package browsertest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/proctest"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Chromium finds the browser.
func Chromium(t testing.TB) string {
	t.Helper()
	return proctest.Program(t, "chromium", "chromium-browser", "google-chrome")
}

// Start starts a headless browser for the test; it stops when the test
// ends.
func Start(t testing.TB) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium(t)),
		chromedp.NoSandbox, // the tests run as root in CI
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(900, 700),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first run starts the browser, and lives as long as its context:
	// no timeout here, one per step.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Step runs actions, bounded in time.
func Step(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// Get runs one action that returns a value, bounded in time.
func Get[T any](ctx context.Context, t testing.TB, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Cookie returns the browser's cookie of that name, or nil.
func Cookie(ctx context.Context, t testing.TB, name string) *network.Cookie {
	t.Helper()
	cookies := Get(ctx, t, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		return res.Cookies, err
	})
	for _, c := range cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// ArtifactDir is where a test saves what a person should look at
// (WARDEN_ARTIFACTS, or the test's own temporary folder).
func ArtifactDir(t testing.TB) string {
	if d := os.Getenv("WARDEN_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	return t.TempDir()
}

// ClearCookies drops every cookie of the browser.
func ClearCookies() chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, network.ClearBrowserCookies, cdp.Empty{})
		return chromedp.Void{}, err
	}
}
