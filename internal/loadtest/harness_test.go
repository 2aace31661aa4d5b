package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
)

// warden is a gateway serving on loopback.
type warden struct {
	addr string
	rt   *gateway.Runtime
	hs   *http.Server
}

// startWarden compiles yaml and serves it on a free port through
// WrapListener and NewHTTPServer, exactly as cmd/warden does.
func startWarden(t testing.TB, yaml string) *warden {
	t.Helper()
	cfg, err := config.Parse("load.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	in := gatewaytest.Start(t, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), func(hs *http.Server) { hs.ErrorLog = nil })
	return &warden{addr: in.Addr, rt: in.Runtime, hs: in.HTTP}
}

// problem is the refusal body.
type problem struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Error     string `json:"error"`
	Reason    string `json:"reason"`
	RequestID string `json:"request_id"`
}

// get sends one request on a fresh connection and decodes a refusal if
// there is one.
func get(t testing.TB, client *http.Client, url string) (int, *problem, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Type") != "application/problem+json" {
		return resp.StatusCode, nil, err
	}
	var p problem
	if jerr := json.Unmarshal(body, &p); jerr != nil {
		return resp.StatusCode, nil, fmt.Errorf("refusal is not JSON: %v: %q", jerr, body)
	}
	if p.RequestID == "" || p.RequestID != resp.Header.Get("X-Request-Id") || p.Status != resp.StatusCode {
		return resp.StatusCode, &p, fmt.Errorf("refusal %+v does not match its response (X-Request-Id %q)", p, resp.Header.Get("X-Request-Id"))
	}
	return resp.StatusCode, &p, err
}

// settle waits for the goroutine count to fall to at most limit and
// returns it; background goroutines of closed connections take a moment.
func settle(limit int, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goroutineSummary lists the functions goroutines wait in, for a failure
// message that says what leaked.
func goroutineSummary() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	counts := map[string]int{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		if len(lines) > 1 {
			counts[strings.TrimSpace(lines[1])]++
		}
	}
	var b strings.Builder
	for fn, n := range counts {
		if n > 2 {
			fmt.Fprintf(&b, "%5d %s\n", n, fn)
		}
	}
	return b.String()
}
