// Package authztest runs warden's decision services on loopback for tests,
// as `warden serve` runs them (one engine, the runtime built from a config,
// its background work started), and writes the policy the decision-service
// tests share: an IP list, API keys, JWT roles, a concealed area and the
// WAF.
package authztest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"google.golang.org/grpc"

	"github.com/warden-gateway/warden/internal/authz/extauthz"
	"github.com/warden-gateway/warden/internal/authz/forwardauth"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/identity"
)

// Keys and addresses of the shared policy.
const (
	AdminKey  = "authz-admin-key"
	UserKey   = "authz-user-key"
	Issuer    = "https://issuer.authz.test/"
	Audience  = "warden-authz-test"
	Blocked   = "127.0.0.66"
	Trusted   = "127.0.0.10" // a proxy in front, listed in trusted_proxies
	SiteHost  = "site.example"
	Untrusted = "127.0.0.20"
)

// Policy is the shared policy, written to a folder with its site and keys.
type Policy struct {
	Dir  string
	Path string
	YAML []byte
	key  *ecdsa.PrivateKey
}

// Token signs a JWT for sub with roles, valid for an hour from now.
func (p *Policy) Token(tb testing.TB, sub string, roles ...string) string {
	tb.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": Issuer, "aud": []string{Audience}, "sub": sub,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"roles": roles,
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), "k1"))
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// Config parses the policy.
func (p *Policy) Config(tb testing.TB) *config.Config {
	tb.Helper()
	cfg, err := config.Parse(p.Path, p.YAML)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// WritePolicy writes the shared policy. extra is appended to the YAML
// (more rules go under rules: by starting with "  - ").
func WritePolicy(tb testing.TB, peers string) *Policy {
	tb.Helper()
	dir := tb.TempDir()
	for name, body := range map[string]string{
		"site/pub/hello.txt":   "hello\n",
		"site/pub/search":      "results\n",
		"site/admin/x":         "admin area\n",
		"site/api/x":           "api\n",
		"site/internal/secret": "secret\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), jwks, 0o644); err != nil {
		tb.Fatal(err)
	}
	if peers == "" {
		peers = "127.0.0.1/32"
	}
	src := `server_names: [` + SiteHost + `]
trusted_proxies: [` + Trusted + `]
log: { decisions: all }
ip_lists:
  blocked: { cidrs: [` + Blocked + `/32] }
identity:
  api_keys:
    header: X-API-Key
    keys:
      - { id: ops, sha256: "` + identity.HashKey(UserKey) + `", roles: [user] }
      - { id: root, sha256: "` + identity.HashKey(AdminKey) + `", roles: [admin] }
  jwt:
    jwks_file: jwks.json
    issuer: "` + Issuer + `"
    audiences: [` + Audience + `]
    algorithms: [ES256]
    roles_claim: roles
rules:
  - name: blocked-addresses
    when: { ip_list: blocked }
    action: deny
  - name: no-delete
    when: { methods: [DELETE] }
    action: deny
  - name: scanners
    when: { user_agent: { substring: [sqlmap, nikto] } }
    action: deny
  - name: admin-area
    when: { path: { prefix: [/admin/] } }
    require: { roles_any: [admin] }
    action: allow
  - name: api
    when: { path: { prefix: [/api/] } }
    require: { authenticated: true }
    action: allow
  - name: hide-internal
    when: { path: { prefix: [/internal/] } }
    action: conceal
waf:
  mode: block
forward_auth:
  listen: 127.0.0.1:0
  peers: [` + peers + `]
ext_authz:
  listen: 127.0.0.1:0
  peers: [` + peers + `]
  max_request_bytes: 65536
handle:
  - path: /
    root: ./site
`
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		tb.Fatal(err)
	}
	return &Policy{Dir: dir, Path: p, YAML: []byte(src), key: key}
}

// Engine builds cfg into a new engine, its background work started; both
// end with the test.
func Engine(tb testing.TB, cfg *config.Config, logger *slog.Logger) *engine.Engine {
	tb.Helper()
	rt, err := engine.Build(cfg, engine.Options{Logger: logger})
	if err != nil {
		tb.Fatalf("building the runtime: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt.Start(ctx)
	tb.Cleanup(func() { cancel(); rt.Close() })
	eng := engine.New(logger)
	eng.Swap(rt)
	return eng
}

// ForwardAuth serves the forward-auth service of eng on addr ("127.0.0.1:0"
// picks a port) until the test ends, and returns its address.
func ForwardAuth(tb testing.TB, eng *engine.Engine, addr string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	hs := forwardauth.NewHTTPServer(ln.Addr().String(), forwardauth.New(eng), eng.Logger())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("forward-auth: %v", err)
		}
	}()
	tb.Cleanup(func() { hs.Close(); <-done })
	return ln.Addr().String()
}

// ExtAuthz serves the ext_authz service of eng on 127.0.0.1 until the test
// ends, and returns its address.
func ExtAuthz(tb testing.TB, eng *engine.Engine) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var max int64
	if s := eng.Runtime().Services; s != nil && s.ExtAuthz != nil {
		max = s.ExtAuthz.MaxRequestBytes
	}
	gs := extauthz.NewGRPCServer(extauthz.New(eng), max)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := gs.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			tb.Errorf("ext_authz: %v", err)
		}
	}()
	tb.Cleanup(func() { gs.Stop(); <-done })
	return ln.Addr().String()
}

// RecordLog collects the decision records a front end logs (give it to
// slog.NewJSONHandler).
type RecordLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *RecordLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Text is everything logged.
func (l *RecordLog) Text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Logger is a JSON logger into l.
func (l *RecordLog) Logger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }

// ByID returns the decision records, by request id.
func (l *RecordLog) ByID(tb testing.TB) map[string][]engine.Record {
	tb.Helper()
	out := map[string][]engine.Record{}
	for _, line := range strings.Split(strings.TrimSpace(l.Text()), "\n") {
		if line == "" {
			continue
		}
		var probe struct {
			Msg string `json:"msg"`
		}
		if err := json.Unmarshal([]byte(line), &probe); err != nil {
			tb.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if probe.Msg != "decision" {
			continue
		}
		var rec engine.Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			tb.Fatalf("decision record: %v: %s", err, line)
		}
		out[rec.RequestID] = append(out[rec.RequestID], rec)
	}
	return out
}
