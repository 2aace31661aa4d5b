package policy_test

// Identity at the level of the policy: where the 401/403 line falls for a
// deny that turns on who is calling, and what a repeated JWT costs a
// decision once its verification is cached.
//
//	go test -run '^$' -bench Identity -benchtime 2s ./internal/policy/

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/policy"
)

var idNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

type idSigner struct {
	kid, alg string
	key      crypto.Signer
}

func idSigners(tb testing.TB) []idSigner {
	tb.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	_, dk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return []idSigner{{"rsa-1", "RS256", rk}, {"ec-1", "ES256", ek}, {"ed-1", "EdDSA", dk}}
}

// idPolicy compiles src as dir/warden.yaml, with jwks.json beside it
// holding the public halves of signers.
func idPolicy(tb testing.TB, src string, signers []idSigner) *policy.Policy {
	tb.Helper()
	dir := tb.TempDir()
	set := jose.JSONWebKeySet{}
	for _, s := range signers {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: s.key.Public(), KeyID: s.kid, Algorithm: s.alg, Use: "sig"})
	}
	doc, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), doc, 0o600); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, "warden.yaml")
	cfg, err := config.Parse(path, []byte(src))
	if err != nil {
		tb.Fatalf("parse: %v", err)
	}
	pol, err := policy.Compile(cfg)
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	return pol
}

func idToken(tb testing.TB, s idSigner, sub string, roles []string) string {
	tb.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), s.kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(s.alg), Key: s.key}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": "https://idp.example.test/", "aud": "api", "sub": sub,
		"iat": idNow.Unix(), "nbf": idNow.Unix(), "exp": idNow.Add(time.Hour).Unix(),
		"roles": roles, "scope": "orders:read orders:write",
	}).Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// idRequest is the canonical request net/http would hand the gateway for
// GET target from 198.51.100.7 with the header kv pairs.
func idRequest(tb testing.TB, pol *policy.Policy, target string, kv ...string) *canonical.Request {
	tb.Helper()
	r, err := http.NewRequest(http.MethodGet, "http://api.example.com"+target, nil)
	if err != nil {
		tb.Fatal(err)
	}
	r.RequestURI = target
	r.RemoteAddr = net.JoinHostPort("198.51.100.7", "40000")
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Set(kv[i], kv[i+1])
	}
	req, err := canonical.From(r, &pol.Canonical)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

const idLinePolicy = `
identity:
  api_keys:
    keys:
      - { id: admin, sha256: "{{ADMIN}}", roles: [admin] }
      - { id: user, sha256: "{{USER}}", roles: [user] }
  jwt:
    jwks_file: jwks.json
    issuer: https://idp.example.test/
    audiences: [api]
    algorithms: [RS256, ES256, EdDSA]
rules:
  - name: admins-by-expression
    when: { path: { prefix: /expr/ } }
    expr: '!("admin" in principal.roles)'
    action: deny
    reason: admins only
  - name: members-only
    when: { path: { prefix: /members/ }, authenticated: false }
    action: deny
  - name: hidden-from-non-admins
    when: { path: { prefix: /hidden/ } }
    expr: '!("admin" in principal.roles)'
    action: conceal
  - name: no-deletes
    when: { path: { prefix: /orders/ } }
    expr: 'request.method == "GET" && request.headers["x-mode"] == "bulk"'
    action: deny
`

// TestIdentityDenyOnWhoIsCalling: a deny rule that decides on who is
// calling (an expression that reads the principal, or an authenticated
// matcher) answers 401 while the caller is unknown, 401 invalid_credentials
// when the credentials are bad, 503 when they cannot be checked, and its own
// 403 only to a known caller. A conceal stays an ordinary 404, and a deny
// whose expression never reads the principal never looks at credentials.
func TestIdentityDenyOnWhoIsCalling(t *testing.T) {
	signers := idSigners(t)
	src := strings.NewReplacer("{{ADMIN}}", identity.HashKey("admin-key"), "{{USER}}", identity.HashKey("user-key")).Replace(idLinePolicy)
	pol := idPolicy(t, src, signers)
	const (
		offer   = `ApiKey realm="warden", header="X-API-Key", Bearer realm="warden"`
		badJWT  = `ApiKey realm="warden", header="X-API-Key", Bearer realm="warden", error="invalid_token"`
		badKey  = offer
		noChall = ""
	)
	userJWT := idToken(t, signers[1], "eve", []string{"user"})
	expired := idToken(t, signers[2], "ed", []string{"admin"})
	type want struct {
		action    decision.Action
		code      decision.ReasonCode
		status    int
		reason    string
		challenge string
	}
	anon := want{decision.Deny, decision.Unauthenticated, 401, "sign in to access this resource", offer}
	cases := []struct {
		name   string
		target string
		hdr    []string
		now    time.Time
		want   want
	}{
		{"expr: no credentials", "/expr/x", nil, idNow, anon},
		{"expr: unknown key", "/expr/x", []string{"X-API-Key", "nope"}, idNow,
			want{decision.Deny, decision.InvalidCredentials, 401, "the credentials given are not valid", badKey}},
		{"expr: expired token", "/expr/x", []string{"Authorization", "Bearer " + expired}, idNow.Add(2 * time.Hour),
			want{decision.Deny, decision.InvalidCredentials, 401, "the credentials given are not valid", badJWT}},
		{"expr: known caller without the role", "/expr/x", []string{"X-API-Key", "user-key"}, idNow,
			want{decision.Deny, decision.PolicyDenied, 403, "admins only", noChall}},
		{"expr: known caller by JWT without the role", "/expr/x", []string{"Authorization", "Bearer " + userJWT}, idNow,
			want{decision.Deny, decision.PolicyDenied, 403, "admins only", noChall}},
		{"expr: admin", "/expr/x", []string{"X-API-Key", "admin-key"}, idNow, want{action: decision.Allow}},
		{"authenticated: false: no credentials", "/members/x", nil, idNow, anon},
		{"authenticated: false: bad token", "/members/x", []string{"Authorization", "Bearer " + expired}, idNow.Add(2 * time.Hour),
			want{decision.Deny, decision.InvalidCredentials, 401, "the credentials given are not valid", badJWT}},
		{"authenticated: false: member", "/members/x", []string{"X-API-Key", "user-key"}, idNow, want{action: decision.Allow}},
		{"conceal stays 404 for the unknown", "/hidden/x", nil, idNow,
			want{decision.Conceal, decision.NotFound, 404, "not found", noChall}},
		{"conceal stays 404 for bad credentials", "/hidden/x", []string{"X-API-Key", "nope"}, idNow,
			want{decision.Conceal, decision.NotFound, 404, "not found", noChall}},
		{"expr without principal ignores bad credentials", "/orders/1", []string{"X-API-Key", "nope", "X-Mode", "bulk"}, idNow,
			want{decision.Deny, decision.PolicyDenied, 403, "a policy rule denies this request", noChall}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := idRequest(t, pol, c.target, c.hdr...)
			var tr decision.Trace
			d := pol.Decide(req, c.now, &tr)
			if d.Action != c.want.action || d.Code != c.want.code || d.Status != c.want.status ||
				(c.want.action != decision.Allow && d.Reason != c.want.reason) || d.WWWAuthenticate != c.want.challenge {
				t.Fatalf("decision %+v\nwant %+v\ntrace %+v", d, c.want, tr.Steps)
			}
			if plain := pol.Decide(req, c.now, nil); !sameDecision(plain, d) {
				t.Errorf("with a trace %+v, without %+v", d, plain)
			}
			if d.Status == 401 {
				last := tr.Steps[len(tr.Steps)-1]
				if !strings.Contains(last.Note, "the caller is not known") || last.Rule != d.Rule {
					t.Errorf("trace ends %+v", last)
				}
			}
		})
	}
}

// TestIdentityDenyOnWhoIsCallingFailsClosed: keys that were never fetched
// make a deny on the principal a 503, not a 403 and not an allow.
func TestIdentityDenyOnWhoIsCallingFailsClosed(t *testing.T) {
	cfg, err := config.Parse("w.yaml", []byte(`
identity:
  jwt:
    jwks_url: http://127.0.0.1:9/jwks.json
    issuer: https://idp.example.test/
    audiences: [api]
    algorithms: [EdDSA]
rules:
  - name: admins-by-expression
    expr: '!("admin" in principal.roles)'
    action: deny
`))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok := idToken(t, idSigners(t)[2], "ed", []string{"admin"})
	d := pol.Decide(idRequest(t, pol, "/x", "Authorization", "Bearer "+tok), idNow, nil)
	if d.Code != decision.Unavailable || d.Status != 503 || d.RetryAfter == 0 {
		t.Fatalf("decision %+v, want 503 unavailable with Retry-After", d)
	}
}

// idRoleRule is the rule the cached-verification figures are taken on:
// the common shape of a JWT-protected API route.
const idRoleRule = `
identity:
  jwt:
    jwks_file: jwks.json
    issuer: https://idp.example.test/
    audiences: [api]
    algorithms: [RS256, ES256, EdDSA]
rules:
  - name: api-admin
    when: { path: { prefix: /api/admin/ } }
    require: { roles_any: [admin], scopes_all: [orders:read] }
    action: allow
`

// TestIdentityCachedJWTDecision: once a token is verified, deciding on it
// again allocates nothing, for each key type (its cost, under 2 µs, is
// BenchmarkIdentityDecideCachedJWT's: a benchmark, not a
// timed test that a busy machine would fail).
func TestIdentityCachedJWTDecision(t *testing.T) {
	signers := idSigners(t)
	pol := idPolicy(t, idRoleRule, signers)
	for _, s := range signers {
		t.Run(s.alg, func(t *testing.T) {
			req := idRequest(t, pol, "/api/admin/orders", "Authorization", "Bearer "+idToken(t, s, "rita", []string{"admin"}))
			if d := pol.Decide(req, idNow, nil); !d.Allowed() {
				t.Fatalf("first decision %+v", d)
			}
			allocs := testing.AllocsPerRun(1000, func() {
				if d := pol.Decide(req, idNow, nil); !d.Allowed() {
					t.Fatal(d)
				}
			})
			if allocs != 0 {
				t.Errorf("a cached token costs %.1f allocations per decision", allocs)
			}
		})
	}
}

// BenchmarkIdentityDecideCachedJWT: the same token over and over (a client
// on a keep-alive connection): the chain finds the verification in the
// cache, and the decision checks role and scope.
func BenchmarkIdentityDecideCachedJWT(b *testing.B) {
	signers := idSigners(b)
	pol := idPolicy(b, idRoleRule, signers)
	for _, s := range signers {
		b.Run(s.alg, func(b *testing.B) {
			req := idRequest(b, pol, "/api/admin/orders", "Authorization", "Bearer "+idToken(b, s, "rita", []string{"admin"}))
			if d := pol.Decide(req, idNow, nil); !d.Allowed() {
				b.Fatalf("decision %+v", d)
			}
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				pol.Decide(req, idNow, nil)
			}
			idReportCPU(b, processCPU()-cpu)
		})
	}
}

// idReportCPU adds cpu-ns/op, the process's CPU time per iteration, which
// a shared machine disturbs far less than ns/op (see docs/benchmarks.md).
func idReportCPU(b *testing.B, cpu time.Duration) {
	if cpu > 0 && b.N > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkIdentityDecideCachedJWTRefused: the 403 of a known caller who
// lacks the role, with the same cached token.
func BenchmarkIdentityDecideCachedJWTRefused(b *testing.B) {
	signers := idSigners(b)
	pol := idPolicy(b, idRoleRule, signers)
	req := idRequest(b, pol, "/api/admin/orders", "Authorization", "Bearer "+idToken(b, signers[2], "eve", []string{"user"}))
	if d := pol.Decide(req, idNow, nil); d.Code != decision.RoleRequired {
		b.Fatalf("decision %+v", d)
	}
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		pol.Decide(req, idNow, nil)
	}
	idReportCPU(b, processCPU()-cpu)
}
