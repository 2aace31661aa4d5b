package gateway_test

// What identity costs a request through the gateway: a real listener on
// 127.0.0.1, a keep-alive client, a real upstream. The JWT is the same on
// every request, as it is for a client between two refreshes of its token,
// so after the first request its verification comes from the cache.
//
//	go test -run '^$' -bench IdentityGateway -benchtime 2s ./internal/gateway/

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
)

const idBenchYAML = `
identity:
  jwt:
    jwks_file: jwks.json
    issuer: "` + idIssuer + `"
    audiences: [` + idAudience + `]
    algorithms: [RS256, ES256, EdDSA]
    roles_claim: realm_access.roles
rules:
  - name: api-admin
    when: { path: { prefix: /api/admin/ } }
    require: { roles_any: [admin], scopes_all: [orders:read] }
    action: allow
handle:
  - path: /
    upstream: {{UPSTREAM}}
`

type idBench struct {
	base   string
	client *http.Client
	keys   []idKey
}

// startIDBench serves the bench policy the way `warden serve` does, with
// the decision log written (as JSON, to nowhere) so refusals pay for it.
func startIDBench(b *testing.B) *idBench {
	b.Helper()
	dir := b.TempDir()
	keys := []idKey{idRSAKey(b, "rsa-b"), idECKey(b, "ec-b"), idEdKey(b, "ed-b")}
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), idJWKS(b, keys...), 0o644); err != nil {
		b.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	b.Cleanup(up.Close)
	path := filepath.Join(dir, "warden.yaml")
	src := strings.ReplaceAll(idBenchYAML, "{{UPSTREAM}}", up.URL)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	srv := gateway.NewServer(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	rt, err := gateway.Build(cfg, gateway.Options{}, srv.UpstreamError)
	if err != nil {
		b.Fatal(err)
	}
	srv.Swap(rt)
	rt.Start(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := gateway.NewHTTPServer(ln.Addr().String(), srv, &cfg.Limits)
	go hs.Serve(ln)
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	b.Cleanup(func() {
		tr.CloseIdleConnections()
		hs.Close()
		rt.Close()
	})
	return &idBench{base: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, keys: keys}
}

// idBenchRequest sends one request and checks its status; the body is
// read to the end so the connection is reused. It returns an error rather
// than failing, so RunParallel goroutines can call it.
func idBenchRequest(c *http.Client, req *http.Request, status int) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		return fmt.Errorf("%s: status %d, want %d", req.URL.Path, resp.StatusCode, status)
	}
	return nil
}

func (ib *idBench) request(b *testing.B, path, token string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, ib.base+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func (ib *idBench) run(b *testing.B, path, token string, status int) {
	req := ib.request(b, path, token)
	// Warm up: the connection, the token cache.
	if err := idBenchRequest(ib.client, req, status); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if err := idBenchRequest(ib.client, req, status); err != nil {
			b.Fatal(err)
		}
	}
	idReportCPU(b, processCPU()-cpu)
}

// idReportCPU adds cpu-us/req: the CPU time of the whole process (client,
// gateway and upstream) per request, which a shared machine disturbs far
// less than ns/op (see docs/benchmarks.md).
func idReportCPU(b *testing.B, cpu time.Duration) {
	if cpu > 0 && b.N > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1e3, "cpu-us/req")
	}
}

// BenchmarkIdentityGateway: one keep-alive client, requests in sequence.
//
//	public:          no rule asks who is calling (the baseline)
//	jwt-<alg>:       require roles_any + scopes_all with a cached JWT, proxied
//	role-required:   the 403 of a known caller without the role (no upstream)
//	unauthenticated: the 401 of a request without a token (no upstream)
func BenchmarkIdentityGateway(b *testing.B) {
	ib := startIDBench(b)
	now := time.Now()
	claims := idClaims(now, "rita", []string{"admin"}, "orders:read orders:write", nil)
	b.Run("public", func(b *testing.B) { ib.run(b, "/public/orders", "", 200) })
	for _, k := range ib.keys {
		tok := idSign(b, k, claims)
		b.Run("jwt-"+k.alg, func(b *testing.B) { ib.run(b, "/api/admin/orders", tok, 200) })
	}
	user := idSign(b, ib.keys[2], idClaims(now, "eve", []string{"user"}, "orders:read", nil))
	b.Run("role-required", func(b *testing.B) { ib.run(b, "/api/admin/orders", user, 403) })
	b.Run("unauthenticated", func(b *testing.B) { ib.run(b, "/api/admin/orders", "", 401) })
}

// BenchmarkIdentityGatewayParallel: many keep-alive clients at once, each
// with the same JWT, for throughput on all cores.
func BenchmarkIdentityGatewayParallel(b *testing.B) {
	ib := startIDBench(b)
	tok := idSign(b, ib.keys[2], idClaims(time.Now(), "rita", []string{"admin"}, "orders:read", nil))
	if err := idBenchRequest(ib.client, ib.request(b, "/api/admin/orders", tok), 200); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := processCPU()
	defer func() { idReportCPU(b, processCPU()-cpu) }()
	b.RunParallel(func(pb *testing.PB) {
		req := ib.request(b, "/api/admin/orders", tok)
		for pb.Next() {
			if err := idBenchRequest(ib.client, req, 200); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
