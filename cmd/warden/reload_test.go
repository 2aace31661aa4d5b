package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// reloadPolicy is generation n of the test policy: rule gen-N refuses
// /probe, and the limits differ with every generation, so each good reload
// also replaces the listener's http.Server.
func reloadPolicy(addr, site string, n int) string {
	return fmt.Sprintf(`listen: %s
refusals: { show_rule: true }
rules:
  - name: gen-%d
    when: { path: { exact: [/probe] } }
    action: deny
handle:
  - path: /
    root: %s
limits:
  max_body_bytes: %d
  read_header_timeout: %ds
  idle_timeout: %ds
  max_connections: %d
`, addr, n, site, 1000+n, n%3+2, n%5+5, 200+n)
}

type reloadHarness struct {
	path, site, addr string
	srv              *gateway.Server
	live             *liveServer
	rl               *reloader
}

func startReloadHarness(t *testing.T, ctx context.Context) *reloadHarness {
	t.Helper()
	dir := t.TempDir()
	h := &reloadHarness{path: filepath.Join(dir, "warden.yaml"), site: filepath.Join(dir, "site"), addr: freeAddr(t)}
	os.Mkdir(h.site, 0o755)
	os.WriteFile(filepath.Join(h.site, "index.html"), []byte("hello"), 0o644)
	if err := os.WriteFile(h.path, []byte(reloadPolicy(h.addr, h.site, 0)), 0o644); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	h.srv = gateway.NewServer(logger)
	load := func() (*gateway.Runtime, error) {
		cfg, err := config.Load(h.path)
		if err != nil {
			return nil, err
		}
		return gateway.Build(cfg, gateway.Options{Logger: logger}, h.srv.UpstreamError)
	}
	rt, err := load()
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Swap(rt)
	t.Cleanup(func() {
		if rt := h.srv.Runtime(); rt != nil {
			rt.Close()
		}
	})
	h.live, err = newLiveServer(listenAddr(rt.Config, ""), rt.Config.Limits, h.srv, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.live.shutdown(sctx)
	})
	h.rl = &reloader{path: h.path, load: load, srv: h.srv, live: h.live, logger: logger}
	h.rl.start(ctx)
	return h
}

// probeRule is the rule that refuses /probe now.
func probeRule(c *http.Client, base string) (string, error) {
	req, _ := http.NewRequest("GET", base+"/probe", nil)
	req.Header.Set("Accept", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var p struct {
		Rule string `json:"rule"`
	}
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		return "", err
	}
	return p.Rule, nil
}

// TestReloadUnderLoad rewrites the policy 50 times, good and broken
// alternately, limits included, while clients keep asking: no request
// fails, each good policy is in force within a second of being written,
// and a broken one changes nothing.
func TestReloadUnderLoad(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := startReloadHarness(t, ctx)
	base := "http://" + h.addr

	var stop atomic.Bool
	var okN, failN atomic.Int64
	var firstFail atomic.Value
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for n := 0; !stop.Load() && n < 200_000; n++ {
				var reused bool
				req, _ := http.NewRequest("GET", base+"/", nil)
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
				res, err := c.Do(req)
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				if err != nil {
					failN.Add(1)
					firstFail.CompareAndSwap(nil, fmt.Sprintf("%v (on a reused connection: %v)", err, reused))
					continue
				}
				okN.Add(1)
			}
		}()
	}
	probe := &http.Client{Timeout: 5 * time.Second}
	write := func(i int, src string) {
		if i%2 == 0 {
			if err := os.WriteFile(h.path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		// The other way config managers write: a new file renamed over.
		tmp := h.path + ".tmp"
		os.WriteFile(tmp, []byte(src), 0o644)
		if err := os.Rename(tmp, h.path); err != nil {
			t.Fatal(err)
		}
	}
	var slowest time.Duration
	gen := 0
	for i := 1; i <= 50; i++ {
		if i%2 == 1 {
			gen++
			write(i, reloadPolicy(h.addr, h.site, gen))
			start := time.Now()
			want := fmt.Sprintf("gen-%d", gen)
			for {
				rule, err := probeRule(probe, base)
				if err != nil {
					t.Fatalf("probe: %v", err)
				}
				if rule == want {
					break
				}
				if time.Since(start) > time.Second {
					t.Fatalf("rewrite %d: %s not in force after 1s (still %s)", i, want, rule)
				}
				time.Sleep(10 * time.Millisecond)
			}
			slowest = max(slowest, time.Since(start))
			if got := h.live.Limits().MaxBodyBytes; got != int64(1000+gen) {
				t.Fatalf("rewrite %d: listener limits not replaced: max_body_bytes %d", i, got)
			}
			continue
		}
		broken := reloadPolicy(h.addr, h.site, 1000) + "  max_conections: 5\n" // a typo: refused
		if i%4 == 0 {
			broken = "rules: [ {name: x\n" // not YAML
		}
		write(i, broken)
		time.Sleep(250 * time.Millisecond) // settle + reload
		if rule, err := probeRule(probe, base); err != nil || rule != fmt.Sprintf("gen-%d", gen) {
			t.Fatalf("rewrite %d (broken): rule %q, %v; want gen-%d to keep serving", i, rule, err, gen)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d requests during 50 rewrites, %d failed; slowest good reload in force after %v", okN.Load(), failN.Load(), slowest)
	if failN.Load() != 0 {
		t.Errorf("%d requests failed during reloads; first: %v", failN.Load(), firstFail.Load())
	}
	if okN.Load() < 100 {
		t.Errorf("only %d requests ran: the load loop did not load", okN.Load())
	}
}

// TestReloadMovesTheListener: a new listen address is served after a
// reload, and the old one closes.
func TestReloadMovesTheListener(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := startReloadHarness(t, ctx)
	next := freeAddr(t)
	if err := os.WriteFile(h.path, []byte(reloadPolicy(next, h.site, 7)), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if rule, err := probeRule(c, "http://"+next); err == nil && rule == "gen-7" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new address %s not served", next)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.CloseIdleConnections()
	if _, err := c.Get("http://" + h.addr + "/"); err == nil {
		t.Errorf("old address %s still serves", h.addr)
	}
}
