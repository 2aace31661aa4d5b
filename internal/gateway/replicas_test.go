package gateway_test

// Two gateways sharing one real redis-server, as replicas behind a load
// balancer: a ban earned through one is enforced by the other, a rate
// limit is counted across both, and with Redis gone a fail-closed limit
// answers 503 while a fail-open one counts locally.

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/state/redistest"
)

func startReplica(t *testing.T, src string) *gatewaytest.Instance {
	t.Helper()
	cfg, err := config.Parse("replica.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	store, err := engine.OpenStore(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv, rt := gatewaytest.Build(t, cfg, slog.New(slog.DiscardHandler))
	srv.SetStore(store)
	return gatewaytest.Serve(t, srv, rt, &cfg.Limits, nil)
}

// status sends a GET from the client address from (127.0.0.x).
func status(t *testing.T, from, url string, headers ...string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := clientFrom(t, from).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestReplicasShareBansAndLimits(t *testing.T) {
	redis := redistest.Start(t)
	up := newUpstream(t)
	src := fmt.Sprintf(`state: { store: redis, redis: { addr: %q }, on_error: open }
identity:
  api_keys:
    header: X-API-Key
    keys: [{ id: ops, sha256: %q, roles: [admin] }]
bans:
  - { name: brute-force, count: [invalid_credentials], after: 3, within: 1m, ban_for: 10m }
rules:
  - name: admin
    when: { path: { prefix: [/admin/] } }
    require: { roles_any: [admin] }
    action: allow
  - name: api-closed
    when: { path: { prefix: [/api/] } }
    rate_limit: { requests: 10, per: 1h, on_error: closed }
  - name: open-limit
    when: { path: { prefix: [/open/] } }
    rate_limit: { requests: 10, per: 1h, on_error: open }
handle:
  - path: /
    upstream: %s
`, redis.Addr, identity.HashKey("right"), up.srv.URL)
	a, b := startReplica(t, src), startReplica(t, src)

	// Three wrong keys through A: B bans the address, even with the right key.
	for i := 0; i < 3; i++ {
		if s := status(t, "127.0.0.5", a.URL()+"/admin/", "X-API-Key", "wrong"); s != 401 {
			t.Fatalf("attempt %d through A: %d", i+1, s)
		}
	}
	if s := status(t, "127.0.0.5", b.URL()+"/admin/", "X-API-Key", "right"); s != 403 {
		t.Fatalf("B after three failures through A: %d, want 403 banned", s)
	}
	if s := status(t, "127.0.0.6", b.URL()+"/admin/", "X-API-Key", "right"); s != 200 {
		t.Fatalf("another client through B: %d", s)
	}

	// Ten requests an hour, counted across both replicas.
	allowed := 0
	for i := 0; i < 16; i++ {
		r := a
		if i%2 == 1 {
			r = b
		}
		if status(t, "127.0.0.7", r.URL()+"/api/x") == 200 {
			allowed++
		}
	}
	if allowed != 10 {
		t.Errorf("across two replicas %d requests passed a limit of 10", allowed)
	}

	// Redis gone: the fail-closed limit answers 503, the fail-open one
	// still serves (counted by this replica alone), and bans (open, the
	// state's default here) are checked against what this replica knows.
	redis.Stop()
	if s := status(t, "127.0.0.8", a.URL()+"/api/y"); s != 503 {
		t.Errorf("fail-closed limit with Redis down: %d, want 503", s)
	}
	if s := status(t, "127.0.0.8", a.URL()+"/open/y"); s != 200 {
		t.Errorf("fail-open limit with Redis down: %d, want 200", s)
	}
}
