package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-gateway/warden/internal/canonical"
)

const (
	testIssuer   = "https://issuer.test"
	testAudience = "warden-api"
)

// An RSA key takes a while to generate: make each test key once.
var (
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	ecKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
	edKey = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

// testKey is a signing key with its kid and algorithm.
type testKey struct {
	kid, alg string
	signer   crypto.Signer
}

func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.signer.Public(), KeyID: k.kid, Algorithm: k.alg, Use: "sig"}
}

func jwksJSON(t testing.TB, keys ...testKey) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeJWKS(t testing.TB, keys ...testKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksJSON(t, keys...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sign makes a compact JWS over claims with key (no kid header when kid is "").
func sign(t testing.TB, key any, kid, alg string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func claimsAt(now time.Time, extra map[string]any) map[string]any {
	c := map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "alice",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"roles": []string{"admin", "ops"},
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func bearerRequest(token string) *canonical.Request {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	return &canonical.Request{Method: "GET", Path: "/", Header: h}
}

func newJWTForTest(t testing.TB, cfg JWTConfig) *JWT {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	if cfg.Audiences == nil {
		cfg.Audiences = []string{testAudience}
	}
	j, err := NewJWT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

var (
	rsaTK = func() testKey { return testKey{"rsa-1", "RS256", rsaKey()} }
	ecTK  = func() testKey { return testKey{"ec-1", "ES256", ecKey()} }
	edTK  = func() testKey { return testKey{"ed-1", "EdDSA", edKey()} }
)

func TestJWTAcceptsRealSignedTokens(t *testing.T) {
	keys := []testKey{rsaTK(), ecTK(), edTK()}
	path := writeJWKS(t, keys...)
	j := newJWTForTest(t, JWTConfig{JWKSFile: path, Algorithms: []string{"RS256", "ES256", "EdDSA"}})
	for _, k := range keys {
		t.Run(k.alg, func(t *testing.T) {
			tok := sign(t, k.signer, k.kid, k.alg, claimsAt(t0, nil))
			p, err := j.Authenticate(bearerRequest(tok), t0.Add(time.Minute))
			if err != nil {
				t.Fatalf("valid %s token refused: %v", k.alg, err)
			}
			if p == nil || p.ID != "alice" || p.Method != "jwt" || !slices.Equal(p.Roles, []string{"admin", "ops"}) {
				t.Fatalf("principal = %+v", p)
			}
			if p.Claims["iss"] != testIssuer {
				t.Errorf("claims not exposed: %v", p.Claims)
			}
		})
	}
}

func TestJWTRejects(t *testing.T) {
	rk, ek := rsaTK(), ecTK()
	other := testKey{"rsa-1", "RS256", mustRSA(t)} // same kid, different key
	path := writeJWKS(t, rk, ek)
	j := newJWTForTest(t, JWTConfig{JWKSFile: path, Algorithms: []string{"RS256", "ES256"}, Leeway: 30 * time.Second})

	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	payload, _ := json.Marshal(claimsAt(t0, nil))
	noneToken := b64(`{"alg":"none","typ":"JWT","kid":"rsa-1"}`) + "." + b64(string(payload)) + "."

	valid := sign(t, rk.signer, rk.kid, "RS256", claimsAt(t0, nil))
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + b64(strings.Replace(string(must64(t, parts[1])), "alice", "mallory", 1)) + "." + parts[2]

	cases := []struct {
		name  string
		token string
		now   time.Time
		want  string
	}{
		{"expired", sign(t, rk.signer, rk.kid, "RS256", claimsAt(t0, map[string]any{"exp": t0.Add(-time.Minute).Unix()})), t0, "expired"},
		{"expired beyond leeway", sign(t, rk.signer, rk.kid, "RS256", claimsAt(t0, nil)), t0.Add(time.Hour + 31*time.Second), "expired"},
		{"not yet valid", sign(t, rk.signer, rk.kid, "RS256", claimsAt(t0, map[string]any{"nbf": t0.Add(time.Hour).Unix()})), t0, "not valid yet"},
		{"issued in the future", sign(t, ek.signer, ek.kid, "ES256", claimsAt(t0, map[string]any{"iat": t0.Add(time.Hour).Unix()})), t0, "future"},
		{"wrong issuer", sign(t, rk.signer, rk.kid, "RS256", claimsAt(t0, map[string]any{"iss": "https://evil.test"})), t0, "wrong issuer"},
		{"wrong audience", sign(t, ek.signer, ek.kid, "ES256", claimsAt(t0, map[string]any{"aud": "another-api"})), t0, "audience"},
		{"unknown kid", sign(t, rk.signer, "rsa-2", "RS256", claimsAt(t0, nil)), t0, "unknown key id"},
		{"signed by another key", sign(t, other.signer, other.kid, "RS256", claimsAt(t0, nil)), t0, "signature"},
		{"tampered payload", tampered, t0, "signature"},
		{"alg none", noneToken, t0, "algorithm not allowed"},
		{"HS256 with the RSA public key as secret", sign(t, pubPEM, rk.kid, "HS256", claimsAt(t0, nil)), t0, "algorithm not allowed"},
		{"ES256 token naming the RSA kid", sign(t, ek.signer, rk.kid, "ES256", claimsAt(t0, nil)), t0, "no key for algorithm"},
		{"no expiry", sign(t, rk.signer, rk.kid, "RS256", claimsAt(t0, map[string]any{"exp": nil})), t0, "no expiry"},
		{"no subject", sign(t, rk.signer, rk.kid, "RS256", claimsAt(t0, map[string]any{"sub": nil})), t0, "no subject"},
		{"oversized", "eyJ" + strings.Repeat("A", maxTokenBytes) + ".e30.c2ln", t0, "longer than"},
		{"garbage header", b64(`{"alg":"RS256"`) + ".e30.c2ln", t0, "malformed"},
		{"garbage payload", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", t0, "signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := j.Authenticate(bearerRequest(tc.token), tc.now)
			if p != nil || err == nil {
				t.Fatalf("accepted: p=%+v err=%v", p, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to mention %q", err, tc.want)
			}
		})
	}

	// The same tokens inside the leeway are accepted.
	within := sign(t, rk.signer, rk.kid, "RS256", claimsAt(t0, map[string]any{"nbf": t0.Add(20 * time.Second).Unix()}))
	if _, err := j.Authenticate(bearerRequest(within), t0); err != nil {
		t.Errorf("nbf 20s ahead with 30s leeway refused: %v", err)
	}
	if _, err := j.Authenticate(bearerRequest(valid), t0.Add(time.Hour+29*time.Second)); err != nil {
		t.Errorf("exp 29s ago with 30s leeway refused: %v", err)
	}
}

// With only HS256 allowed, a JWKS file holding RSA keys offers no key: the
// RSA public key can never be used as an HMAC secret.
func TestJWTHMACNeverUsesAsymmetricKeys(t *testing.T) {
	rk := rsaTK()
	path := writeJWKS(t, rk)
	if _, err := NewJWT(JWTConfig{JWKSFile: path, Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: []string{"HS256"}}); err == nil {
		t.Fatal("a JWKS with only an RSA key was accepted for HS256")
	}

	secret := []byte("0123456789abcdef0123456789abcdef")
	oct := jose.JSONWebKey{Key: secret, KeyID: "hmac-1", Algorithm: "HS256", Use: "sig"}
	doc, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{oct, rk.jwk()}})
	path = filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	j := newJWTForTest(t, JWTConfig{JWKSFile: path, Algorithms: []string{"HS256"}})
	if _, err := j.Authenticate(bearerRequest(sign(t, secret, "hmac-1", "HS256", claimsAt(t0, nil))), t0); err != nil {
		t.Fatalf("HS256 with the shared secret refused: %v", err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey().PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	_, err := j.Authenticate(bearerRequest(sign(t, pubPEM, rk.kid, "HS256", claimsAt(t0, nil))), t0)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "unknown key id") {
		t.Fatalf("HS256 signed with the RSA public key: err = %v, want invalid", err)
	}
}

func TestJWTConfigErrors(t *testing.T) {
	path := writeJWKS(t, edTK())
	base := func() JWTConfig {
		return JWTConfig{JWKSFile: path, Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: []string{"EdDSA"}}
	}
	cases := []struct {
		name string
		edit func(*JWTConfig)
		want string
	}{
		{"none", func(c *JWTConfig) { c.Algorithms = []string{"none"} }, `"none"`},
		{"unknown alg", func(c *JWTConfig) { c.Algorithms = []string{"RS1"} }, "unknown algorithm"},
		{"no algorithms", func(c *JWTConfig) { c.Algorithms = nil }, "pinned"},
		{"HS mixed with RS", func(c *JWTConfig) { c.Algorithms = []string{"RS256", "HS256"} }, "mixed"},
		{"HS from a URL", func(c *JWTConfig) {
			c.JWKSFile, c.JWKSURL, c.Algorithms = "", "https://idp.test/jwks", []string{"HS256"}
		}, "jwks_file"},
		{"no issuer", func(c *JWTConfig) { c.Issuer = "" }, "issuer"},
		{"no audience", func(c *JWTConfig) { c.Audiences = nil }, "audience"},
		{"both sources", func(c *JWTConfig) { c.JWKSURL = "https://idp.test/jwks" }, "exactly one"},
		{"plain http", func(c *JWTConfig) { c.JWKSFile, c.JWKSURL = "", "http://idp.example.com/jwks" }, "plain http"},
		{"missing file", func(c *JWTConfig) { c.JWKSFile = filepath.Join(t.TempDir(), "nope.json") }, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.edit(&cfg)
			_, err := NewJWT(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
	cfg := base()
	cfg.JWKSFile, cfg.JWKSURL, cfg.AllowHTTP = "", "http://idp.example.com/jwks", true
	if _, err := NewJWT(cfg); err != nil {
		t.Errorf("plain http explicitly allowed: %v", err)
	}
	cfg.JWKSURL, cfg.AllowHTTP = "http://127.0.0.1:9/jwks", false
	if _, err := NewJWT(cfg); err != nil {
		t.Errorf("plain http on loopback: %v", err)
	}
}

func TestJWTClaimPaths(t *testing.T) {
	ek := ecTK()
	path := writeJWKS(t, ek)
	claims := claimsAt(t0, map[string]any{
		"roles":                      nil,
		"realm_access":               map[string]any{"roles": []any{"admin", 7, "viewer"}},
		"scope":                      "read:orders write:orders",
		"https://example.com/groups": []string{"staff"},
		"preferred_username":         "alice@example.com",
		"single":                     "auditor",
	})
	tok := sign(t, ek.signer, ek.kid, "ES256", claims)
	cases := []struct {
		cfg               JWTConfig
		id                string
		roles, wantScopes []string
	}{
		{JWTConfig{RolesClaim: "realm_access.roles"}, "alice", []string{"admin", "viewer"}, []string{"read:orders", "write:orders"}},
		{JWTConfig{RolesClaim: "https://example.com/groups", SubjectClaim: "preferred_username"}, "alice@example.com", []string{"staff"}, []string{"read:orders", "write:orders"}},
		{JWTConfig{RolesClaim: "single", ScopesClaim: "realm_access.roles"}, "alice", []string{"auditor"}, []string{"admin", "viewer"}},
		{JWTConfig{RolesClaim: "realm_access.missing"}, "alice", nil, []string{"read:orders", "write:orders"}},
	}
	for _, tc := range cases {
		cfg := tc.cfg
		cfg.JWKSFile, cfg.Algorithms = path, []string{"ES256"}
		j := newJWTForTest(t, cfg)
		p, err := j.Authenticate(bearerRequest(tok), t0)
		if err != nil {
			t.Fatal(err)
		}
		if p.ID != tc.id || !slices.Equal(p.Roles, tc.roles) || !slices.Equal(p.Scopes, tc.wantScopes) {
			t.Errorf("cfg %+v: got id=%q roles=%v scopes=%v, want %q %v %v", tc.cfg, p.ID, p.Roles, p.Scopes, tc.id, tc.roles, tc.wantScopes)
		}
	}

	// "scp" as a list (Azure AD style) is read when "scope" is absent.
	tok = sign(t, ek.signer, ek.kid, "ES256", claimsAt(t0, map[string]any{"scp": []string{"a", "b"}}))
	j := newJWTForTest(t, JWTConfig{JWKSFile: path, Algorithms: []string{"ES256"}})
	if p, err := j.Authenticate(bearerRequest(tok), t0); err != nil || !slices.Equal(p.Scopes, []string{"a", "b"}) {
		t.Errorf("scp list: p=%+v err=%v", p, err)
	}
}

func TestJWTIgnoresOtherCredentials(t *testing.T) {
	j := newJWTForTest(t, JWTConfig{JWKSFile: writeJWKS(t, edTK()), Algorithms: []string{"EdDSA"}})
	for _, h := range []string{"", "Basic YWxpY2U6c2VjcmV0", "Bearer opaque-api-key-123"} {
		r := &canonical.Request{Header: http.Header{}}
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if p, err := j.Authenticate(r, t0); p != nil || err != nil {
			t.Errorf("Authorization %q: p=%v err=%v, want nil, nil", h, p, err)
		}
	}
	if got := j.Challenge(false); got != `Bearer realm="warden"` {
		t.Errorf("challenge = %s", got)
	}
	if got := j.Challenge(true); got != `Bearer realm="warden", error="invalid_token"` {
		t.Errorf("challenge = %s", got)
	}
}

func TestJWTTokenWithoutKidUsesFittingKey(t *testing.T) {
	ek, dk := ecTK(), edTK()
	j := newJWTForTest(t, JWTConfig{JWKSFile: writeJWKS(t, ek, dk), Algorithms: []string{"ES256", "EdDSA"}})
	for _, k := range []testKey{ek, dk} {
		if _, err := j.Authenticate(bearerRequest(sign(t, k.signer, "", k.alg, claimsAt(t0, nil))), t0); err != nil {
			t.Errorf("%s without kid: %v", k.alg, err)
		}
	}
}

// The cache must not outlive the token: a cached token is refused once
// expired, and a key removed from the set stops being honoured.
func TestJWTCacheHonoursExpiryAndRotation(t *testing.T) {
	dk := edTK()
	path := writeJWKS(t, dk)
	j := newJWTForTest(t, JWTConfig{JWKSFile: path, Algorithms: []string{"EdDSA", "ES256"}})
	tok := sign(t, dk.signer, dk.kid, "EdDSA", claimsAt(t0, map[string]any{"exp": t0.Add(time.Minute).Unix()}))
	p1, err := j.Authenticate(bearerRequest(tok), t0)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := j.Authenticate(bearerRequest(tok), t0.Add(30*time.Second))
	if err != nil || p2 != p1 {
		t.Fatalf("second use not served from cache: p1=%p p2=%p err=%v", p1, p2, err)
	}
	if _, err := j.Authenticate(bearerRequest(tok), t0.Add(61*time.Second)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expired cached token: err = %v", err)
	}
	if _, err := j.Authenticate(bearerRequest(tok), t0.Add(-time.Hour)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("cached token before nbf: err = %v", err)
	}

	// Rotate the file to another key and reload: the cached token is
	// verified again and refused.
	if err := os.WriteFile(path, jwksJSON(t, ecTK()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := j.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Authenticate(bearerRequest(tok), t0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token of a removed key still accepted: err = %v", err)
	}
}

func TestTokenCacheIsBounded(t *testing.T) {
	c := newTokenCache(32)
	for i := range 1000 {
		c.put(fmt.Sprintf("tok-%d", i), cachedToken{notAfter: t0.Add(time.Hour)}, t0)
	}
	total := 0
	for i := range c.shards {
		total += len(c.shards[i].m)
	}
	if total > 32 {
		t.Fatalf("cache holds %d entries, bound is 32", total)
	}
	if _, ok := c.get("tok-999"); !ok {
		t.Fatal("the newest entry was evicted")
	}
}

// jwksServer is a real JWKS endpoint on 127.0.0.1 whose document can be
// swapped, counting the fetches it serves.
type jwksServer struct {
	*httptest.Server
	doc     atomic.Pointer[[]byte]
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...testKey) *jwksServer {
	s := &jwksServer{}
	s.set(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(*s.doc.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(t *testing.T, keys ...testKey) {
	b := jwksJSON(t, keys...)
	s.doc.Store(&b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJWTKeyRotationFromJWKSServer(t *testing.T) {
	oldKey := testKey{"2026-01", "ES256", ecKey()}
	newKey := testKey{"2026-02", "EdDSA", edKey()}
	srv := newJWKSServer(t, oldKey)
	j := newJWTForTest(t, JWTConfig{
		JWKSURL: srv.URL + "/jwks", Algorithms: []string{"ES256", "EdDSA"},
		RefreshInterval: time.Hour, MinRefetchInterval: 200 * time.Millisecond,
	})
	oldTok := sign(t, oldKey.signer, oldKey.kid, oldKey.alg, claimsAt(t0, nil))
	newTok := sign(t, newKey.signer, newKey.kid, newKey.alg, claimsAt(t0, nil))

	// Before any fetch there are no keys: 503, not 401.
	if _, err := j.Authenticate(bearerRequest(oldTok), t0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("before first fetch: err = %v, want ErrUnavailable", err)
	}
	if err := j.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Authenticate(bearerRequest(oldTok), t0); err != nil {
		t.Fatalf("old kid after first fetch: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j.Start(ctx)
	// Rotation: the issuer now publishes only the new key.
	srv.set(t, newKey)
	before := srv.fetches.Load()
	if _, err := j.Authenticate(bearerRequest(newTok), t0); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "unknown key id") {
		t.Fatalf("new kid before refetch: err = %v", err)
	}
	// Many requests with the unknown kid must not cause many fetches.
	for range 200 {
		j.Authenticate(bearerRequest(newTok), t0)
	}
	waitFor(t, "refetch after unknown kid", func() bool {
		_, err := j.Authenticate(bearerRequest(newTok), t0)
		return err == nil
	})
	if n := srv.fetches.Load() - before; n < 1 || n > 2 {
		t.Errorf("unknown kid caused %d fetches, want 1 or 2 (rate-limited)", n)
	}
	if _, err := j.Authenticate(bearerRequest(oldTok), t0); !errors.Is(err, ErrInvalid) {
		t.Errorf("old kid still accepted after rotation: %v", err)
	}
	if st := j.Status(); st.Keys != 1 || st.KeyIDs[0] != newKey.kid || st.LastError != nil {
		t.Errorf("status = %+v", st)
	}
}

func TestJWTUnreachableJWKS(t *testing.T) {
	dk := edTK()
	srv := newJWKSServer(t, dk)
	url := srv.URL + "/jwks"
	srv.Close() // nothing listens there any more
	j := newJWTForTest(t, JWTConfig{JWKSURL: url, Algorithms: []string{"EdDSA"}})
	if err := j.Refresh(context.Background()); err == nil {
		t.Fatal("refresh from a closed server succeeded")
	}
	tok := sign(t, dk.signer, dk.kid, "EdDSA", claimsAt(t0, nil))
	if _, err := j.Authenticate(bearerRequest(tok), t0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if st := j.Status(); st.LastError == nil || st.Keys != 0 {
		t.Errorf("status = %+v", st)
	}

	// Keys fetched once keep working while the endpoint is down.
	srv2 := newJWKSServer(t, dk)
	j2 := newJWTForTest(t, JWTConfig{JWKSURL: srv2.URL, Algorithms: []string{"EdDSA"}})
	if err := j2.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv2.Close()
	if err := j2.Refresh(context.Background()); err == nil {
		t.Fatal("refresh from a closed server succeeded")
	}
	if _, err := j2.Authenticate(bearerRequest(tok), t0); err != nil {
		t.Fatalf("stale keys not used: %v", err)
	}
}

func TestJWTBadJWKSDocuments(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	enc := edTK().jwk()
	enc.Use = "enc"
	smallDoc, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &small.PublicKey, KeyID: "small"}, enc}})
	for name, doc := range map[string]string{
		"not json":      "<html>",
		"empty":         `{"keys":[]}`,
		"only unusable": string(smallDoc),
		"unknown kty":   `{"keys":[{"kty":"XYZ","kid":"x"}]}`,
	} {
		if _, err := ParseJWKS([]byte(doc), false); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A private JWK is reduced to its public half; usable keys survive
	// next to unusable ones.
	priv := jose.JSONWebKey{Key: edKey(), KeyID: "priv", Algorithm: "EdDSA"}
	doc, _ := json.Marshal(map[string]any{"keys": []any{priv, map[string]any{"kty": "XYZ"}}})
	set, err := ParseJWKS(doc, false)
	if err != nil || set.Len() != 1 || len(set.Skipped) != 1 {
		t.Fatalf("set=%+v err=%v", set, err)
	}
	if _, ok := set.keys[0].key.(ed25519.PublicKey); !ok {
		t.Fatalf("private key kept as %T", set.keys[0].key)
	}

	// A server answering 500 is a failed fetch.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	j := newJWTForTest(t, JWTConfig{JWKSURL: srv.URL, Algorithms: []string{"EdDSA"}})
	if err := j.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("err = %v", err)
	}
}

func TestJWTFileReloadOnChange(t *testing.T) {
	dk, ek := edTK(), ecTK()
	path := writeJWKS(t, dk)
	j := newJWTForTest(t, JWTConfig{JWKSFile: path, Algorithms: []string{"EdDSA", "ES256"}, RefreshInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j.Start(ctx)
	tok := sign(t, ek.signer, ek.kid, "ES256", claimsAt(t0, nil))
	if _, err := j.Authenticate(bearerRequest(tok), t0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ES256 key not yet in file: %v", err)
	}
	next := jwksJSON(t, dk, ek)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, next, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "JWKS file reload", func() bool {
		_, err := j.Authenticate(bearerRequest(tok), t0)
		return err == nil
	})
}

func TestMintTokenRoundTrip(t *testing.T) {
	jwks, signer, kid, err := GenerateDemoKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "demo.jwks")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	j := newJWTForTest(t, JWTConfig{JWKSFile: path, Algorithms: []string{"EdDSA"}})
	tok, err := MintToken(signer, kid, "EdDSA", testIssuer, testAudience, "bob", []string{"admin"}, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := j.Authenticate(bearerRequest(tok), t0.Add(59*time.Minute))
	if err != nil || p.ID != "bob" || !slices.Equal(p.Roles, []string{"admin"}) {
		t.Fatalf("p=%+v err=%v", p, err)
	}
	if _, err := j.Authenticate(bearerRequest(tok), t0.Add(61*time.Minute)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("minted token outlived its ttl: %v", err)
	}

	// The private key survives a round trip through a file.
	saved, err := MarshalSigningKey(signer, kid)
	if err != nil {
		t.Fatal(err)
	}
	loaded, kid2, alg, err := LoadSigningKey(saved)
	if err != nil || kid2 != kid || alg != "EdDSA" {
		t.Fatalf("load: kid=%q alg=%q err=%v", kid2, alg, err)
	}
	tok2, err := MintToken(loaded, kid2, alg, testIssuer, testAudience, "carol", nil, time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := j.Authenticate(bearerRequest(tok2), t0); err != nil || p.ID != "carol" {
		t.Fatalf("token from reloaded key: p=%+v err=%v", p, err)
	}
	if _, _, _, err := LoadSigningKey(jwks); err == nil {
		t.Fatal("a public JWKS was accepted as a signing key")
	}
	// RSA and ECDSA keys mint too.
	for _, k := range []testKey{rsaTK(), ecTK()} {
		tok, err := MintToken(k.signer, k.kid, k.alg, testIssuer, testAudience, "dave", nil, time.Minute, t0)
		if err != nil {
			t.Fatalf("%s: %v", k.alg, err)
		}
		j := newJWTForTest(t, JWTConfig{JWKSFile: writeJWKS(t, k), Algorithms: []string{k.alg}})
		if _, err := j.Authenticate(bearerRequest(tok), t0); err != nil {
			t.Fatalf("%s: %v", k.alg, err)
		}
	}
}

func mustRSA(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func must64(t testing.TB, s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func BenchmarkJWTCached(b *testing.B) {
	rk := rsaTK()
	j := newJWTForTest(b, JWTConfig{JWKSFile: writeJWKS(b, rk), Algorithms: []string{"RS256"}})
	r := bearerRequest(sign(b, rk.signer, rk.kid, "RS256", claimsAt(t0, nil)))
	if _, err := j.Authenticate(r, t0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := j.Authenticate(r, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJWTUncached(b *testing.B) {
	for _, k := range []testKey{rsaTK(), ecTK(), edTK()} {
		b.Run(k.alg, func(b *testing.B) {
			j := newJWTForTest(b, JWTConfig{JWKSFile: writeJWKS(b, k), Algorithms: []string{k.alg}})
			tok := sign(b, k.signer, k.kid, k.alg, claimsAt(t0, nil))
			keys := j.keys.Load()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := j.verify(tok, keys, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
