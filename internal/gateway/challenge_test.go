package gateway_test

// The challenge action through a real gateway: programs get the JSON
// refusal with a hint, browsers the page, a valid clearance passes, a
// forged or wrongly bound one is challenge_failed.

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/challenge"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
)

func TestChallengeAction(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "site", "index.html"), []byte("the protected page\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `challenge: { key_file: challenge.key }
log: { decisions: all }
rules:
  - name: scrapers-beware
    when: { path: { prefix: [/] } }
    action: challenge
    challenge: { difficulty: 8 }
handle:
  - path: /
    root: ./site
`
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	gw := gatewaytest.Start(t, cfg, slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	key, err := challenge.LoadOrCreateKeyFile(filepath.Join(dir, "challenge.key"))
	if err != nil {
		t.Fatalf("the key file warden made: %v", err)
	}
	ring, _ := challenge.NewKeyring(key)
	const ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
	get := func(accept, cookie string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", gw.URL()+"/", nil)
		req.Header.Set("Accept", accept)
		req.Header.Set("User-Agent", ua)
		if cookie != "" {
			req.Header.Set("Cookie", challenge.DefaultCookieName+"="+cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	// A program: 403 challenge_required with what would let it in.
	resp, body := get("application/json", "")
	var prob struct{ Code, Detail string }
	_ = json.Unmarshal([]byte(body), &prob)
	if resp.StatusCode != 403 || prob.Code != "challenge_required" {
		t.Fatalf("program: %d %s", resp.StatusCode, body)
	}
	// A browser: the page, self-contained, with its noscript text.
	resp, body = get("text/html,application/xhtml+xml", "")
	if resp.StatusCode != 403 || !strings.Contains(body, "<noscript>") || strings.Contains(body, "src=\"http") || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("browser: %d %q", resp.StatusCode, body[:min(len(body), 300)])
	}
	// A valid clearance for this client passes.
	now := time.Now()
	good := ring.IssueClearance(netip.MustParseAddr("127.0.0.1"), ua, 8, now.Add(time.Hour))
	if resp, body = get("text/html", good); resp.StatusCode != 200 || body != "the protected page\n" {
		t.Fatalf("with clearance: %d %q", resp.StatusCode, body)
	}
	// Bound to another network, expired, too easy, or forged: failed.
	for name, cookie := range map[string]string{
		"other network": ring.IssueClearance(netip.MustParseAddr("198.51.100.1"), ua, 8, now.Add(time.Hour)),
		"expired":       ring.IssueClearance(netip.MustParseAddr("127.0.0.1"), ua, 8, now.Add(-time.Minute)),
		"too easy":      ring.IssueClearance(netip.MustParseAddr("127.0.0.1"), ua, 4, now.Add(time.Hour)),
		"forged":        good[:len(good)-4] + "AAAA",
	} {
		resp, body := get("application/json", cookie)
		if resp.StatusCode != 403 || !strings.Contains(body, `"code":"challenge_failed"`) {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	if !strings.Contains(logs.String(), `"challenge":"failed: `) || !strings.Contains(logs.String(), `"challenge":"valid"`) {
		t.Errorf("the decision log does not show the challenge state:\n%s", logs.String())
	}
}
