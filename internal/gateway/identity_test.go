package gateway_test

// The 401/403 line through a listening gateway: for every kind of
// credential a caller can present (none, API keys, JWTs signed with RSA,
// ECDSA and Ed25519 keys minted here, HTTP Basic against a file made by the
// real `htpasswd -B`, identity headers from a trusted or an untrusted peer)
// and every kind of rule that asks who is calling (require authenticated,
// roles, scopes, a CEL expression on the principal), the status, reason
// code, WWW-Authenticate challenge and problem+json body that come back
// over a real TCP connection; and what of the caller's identity reaches the
// upstream.

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
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/identity"
)

const (
	idIssuer   = "https://idp.example.test/"
	idAudience = "warden-api"
	idRealm    = "staff" // the htpasswd realm of the table's config
)

// idKey is a signing key minted for the test, with the kid and alg its JWK
// is published under.
type idKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

func idRSAKey(t testing.TB, kid string) idKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return idKey{kid, "RS256", k}
}

func idECKey(t testing.TB, kid string) idKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return idKey{kid, "ES256", k}
}

func idEdKey(t testing.TB, kid string) idKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return idKey{kid, "EdDSA", k}
}

// idJWKS is the public JWK Set of keys, as an identity provider serves it.
func idJWKS(t testing.TB, keys ...idKey) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: k.alg, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// idSignWith makes a compact JWS of claims, signed with key under alg and
// naming kid in its header ("" leaves kid out).
func idSignWith(t testing.TB, alg string, key any, kid string, claims map[string]any) string {
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

func idSign(t testing.TB, k idKey, claims map[string]any) string {
	t.Helper()
	return idSignWith(t, k.alg, k.priv, k.kid, claims)
}

// idClaims are the claims of a good token at now; roles sit at the nested
// path realm_access.roles (as Keycloak puts them) and scopes in "scope".
// change edits them; a nil value deletes a claim.
func idClaims(now time.Time, sub string, roles []string, scope string, change map[string]any) map[string]any {
	c := map[string]any{
		"iss": idIssuer, "aud": []string{idAudience}, "sub": sub,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"realm_access": map[string]any{"roles": roles},
	}
	if scope != "" {
		c["scope"] = scope
	}
	for k, v := range change {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// idUpstream is a real HTTP server that records the headers of every
// request that reaches it.
type idUpstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newIDUpstream(t *testing.T) *idUpstream {
	t.Helper()
	u := &idUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Header.Clone())
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "upstream %s user=%s", r.URL.Path, r.Header.Get("X-Warden-User"))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *idUpstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

func (u *idUpstream) last() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		return nil
	}
	return u.seen[len(u.seen)-1]
}

// idLog collects the gateway's JSON decision log.
type idLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *idLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// entry returns the decision log record of a request id, or nil.
func (l *idLog) entry(id string) map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(l.buf.String(), "\n") {
		if !strings.Contains(line, id) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["request_id"] == id && m["msg"] == "decision" {
			return m
		}
	}
	return nil
}

type idGateway struct {
	base string
	rt   *gateway.Runtime
	srv  *gateway.Server
	log  *idLog
}

// startIDGateway writes src as dir/warden.yaml, builds it the way `warden
// serve` does and serves it on a free port of 127.0.0.1 until the test
// ends. With start set, the runtime's background work (JWKS fetching and
// refresh, file watching) runs, as it does in serve.
func startIDGateway(t *testing.T, dir, src string, start bool) *idGateway {
	t.Helper()
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &idLog{}
	srv, rt := gatewaytest.Build(t, cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if start {
		rt.Start(context.Background())
	}
	in := gatewaytest.Serve(t, srv, rt, &cfg.Limits, nil)
	return &idGateway{base: in.URL(), rt: rt, srv: srv, log: logs}
}

// idClientFrom is a client whose connections leave from the loopback
// address ip, so the gateway sees ip as the TCP peer.
func idClientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type idResponse struct {
	status int
	header http.Header
	body   string
}

// idGet sends GET url with the header h (values set as given, so a name may
// repeat) and an Accept of application/json.
func idGet(t *testing.T, c *http.Client, url string, h http.Header) idResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = append([]string(nil), vs...)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return idResponse{resp.StatusCode, resp.Header, string(body)}
}

// idProblem is the problem+json body; unknown members are an error.
type idProblem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	RequestID string `json:"request_id"`
	Error     string `json:"error"`
	Reason    string `json:"reason"`
	// Advice is what the client can do about this cause (refusal.AdviceFor).
	Advice string `json:"advice"`
}

// idWantRefusal checks a refusal exactly: status, code and reason in the
// problem+json body with the RFC 9457 members and warden's error/reason
// pair, the request id of the body equal to the header's, and the
// WWW-Authenticate challenge: exactly challenge on a 401 (one header
// field), none on anything else.
func idWantRefusal(t *testing.T, r idResponse, status int, code, reason, challenge string) idProblem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p idProblem
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("body is not the problem shape: %v\n%s", err, r.body)
	}
	wantErr := map[int]string{401: "unauthorized", 403: "forbidden", 503: "service_unavailable"}[status]
	if p.Status != status || p.Code != code || p.Type != "urn:warden:reason:"+code || p.Title != http.StatusText(status) ||
		p.Reason != reason || p.Detail != reason || p.Error != wantErr {
		t.Fatalf("body %s\nwant status %d, code %s, error %s, reason %q", r.body, status, code, wantErr, reason)
	}
	if id := r.header.Get("X-Request-Id"); id == "" || p.RequestID != id {
		t.Fatalf("request_id %q, X-Request-Id %q", p.RequestID, id)
	}
	got := r.header.Values("WWW-Authenticate")
	switch {
	case status == 401 && (len(got) != 1 || got[0] != challenge):
		t.Fatalf("WWW-Authenticate %q\nwant          [%s]", got, challenge)
	case status != 401 && len(got) != 0:
		t.Fatalf("a %d carries WWW-Authenticate %q", status, got)
	}
	return p
}

// idHtpasswd makes an htpasswd file with the real Apache tool, bcrypt
// (-B) at its default cost, one user per pair.
func idHtpasswd(t *testing.T, path string, userPass ...string) {
	t.Helper()
	bin, err := exec.LookPath("htpasswd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("htpasswd not installed (apt-get install -y apache2-utils)")
		}
		t.Skip("htpasswd not installed (apt-get install -y apache2-utils)")
	}
	for i := 0; i+1 < len(userPass); i += 2 {
		args := []string{"-B", "-b", path, userPass[i], userPass[i+1]}
		if i == 0 {
			args = []string{"-B", "-c", "-b", path, userPass[i], userPass[i+1]}
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("htpasswd %v: %v\n%s", args, err, out)
		}
	}
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// idTableYAML: every authenticator at once, and one rule of each kind that
// asks who is calling. /public/ has no rule (the default allows).
const idTableYAML = `
trusted_proxies: [127.0.0.2]
identity:
  api_keys:
    header: X-API-Key
    keys:
      - { id: key-admin, sha256: "{{ADMIN_KEY}}", roles: [admin], scopes: [reports:read, reports:write] }
      - { id: key-user, sha256: "{{USER_KEY}}", roles: [user], scopes: [reports:read] }
  jwt:
    jwks_file: jwks.json
    issuer: "` + idIssuer + `"
    audiences: [other-api, ` + idAudience + `]
    algorithms: [RS256, ES256, EdDSA]
    leeway: 30s
    roles_claim: realm_access.roles
  htpasswd:
    file: users.htpasswd
    realm: ` + idRealm + `
    roles:
      alice: [admin]
      bob: [user]
  headers:
    user: X-Auth-Request-User
    groups: X-Auth-Request-Groups
    email: X-Auth-Request-Email
rules:
  - name: signed-in
    when: { path: { prefix: /auth/ } }
    require: { authenticated: true }
    action: allow
  - name: admin-area
    when: { path: { prefix: /admin/ } }
    require: { roles_any: [admin] }
    action: allow
  - name: reports
    when: { path: { prefix: /reports/ } }
    require: { scopes_all: [reports:read, reports:write] }
    action: allow
  - name: admins-by-expression
    when: { path: { prefix: /expr/ } }
    expr: '!("admin" in principal.roles)'
    action: deny
    reason: admins only
handle:
  - path: /
    upstream: {{UPSTREAM}}
`

const (
	idAdminKey = "admin-key-0123456789"
	idUserKey  = "user-key-0123456789"
)

// idOutcome is what one rule must answer: 200 from the upstream, or a
// refusal with its code and reason.
type idOutcome struct {
	status int
	code   string
	reason string
}

var (
	idPass       = idOutcome{status: 200}
	idAnonymous  = idOutcome{401, "unauthenticated", "sign in to access this resource"}
	idInvalid    = idOutcome{401, "invalid_credentials", "the credentials given are not valid"}
	idLacksAdmin = idOutcome{403, "role_required", "account lacks role: admin"}
	idExprDenied = idOutcome{403, "policy_denied", "admins only"}
)

func idLacksScope(s string) idOutcome {
	return idOutcome{403, "role_required", "token lacks scope: " + s}
}

// idRulePaths are the paths of the rules, in the order of idCredential.want.
var idRulePaths = [4]string{"/auth/x", "/admin/x", "/reports/x", "/expr/x"}

// idCredential is one state a caller can be in.
type idCredential struct {
	name   string
	from   string // the client's loopback address; "" is 127.0.0.1
	header http.Header
	// user is the principal the upstream is told of on a 200.
	user string
	// want is the outcome at each of idRulePaths.
	want [4]idOutcome
	// challenge is the exact WWW-Authenticate of the 401s.
	challenge string
	// logDetail is what the decision log must say of the failure.
	logDetail string
}

func TestIdentity401403Line(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().Truncate(time.Second)
	rsaKey, ecKey, edKey := idRSAKey(t, "rsa-2026"), idECKey(t, "ec-2026"), idEdKey(t, "ed-2026")
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), idJWKS(t, rsaKey, ecKey, edKey), 0o644); err != nil {
		t.Fatal(err)
	}
	idHtpasswd(t, filepath.Join(dir, "users.htpasswd"), "alice", "alice-pw", "bob", "bob-pw", "dave", "dave-pw")
	up := newIDUpstream(t)
	src := strings.NewReplacer(
		"{{ADMIN_KEY}}", identity.HashKey(idAdminKey),
		"{{USER_KEY}}", identity.HashKey(idUserKey),
		"{{UPSTREAM}}", up.srv.URL,
	).Replace(idTableYAML)
	g := startIDGateway(t, dir, src, true)
	// A fixed clock, so expiry and leeway are tested to the second.
	g.srv.Now = func() time.Time { return now }

	const (
		chOffer        = `ApiKey realm="warden", header="X-API-Key", Bearer realm="warden", Basic realm="staff", charset="UTF-8"`
		chInvalidToken = `ApiKey realm="warden", header="X-API-Key", Bearer realm="warden", error="invalid_token", Basic realm="staff", charset="UTF-8"`
	)
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	bearer := func(tok string) http.Header { return hdr("Authorization", "Bearer "+tok) }
	all := func(o idOutcome) [4]idOutcome { return [4]idOutcome{o, o, o, o} }
	badToken := func(name, tok, detail string) idCredential {
		return idCredential{name: name, header: bearer(tok), want: all(idInvalid), challenge: chInvalidToken, logDetail: detail}
	}

	fullScope := "reports:read reports:write"
	goodRSA := idSign(t, rsaKey, idClaims(now, "rita", []string{"admin"}, fullScope, nil))
	rsaPub, err := x509.MarshalPKIXPublicKey(rsaKey.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	rsaPubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPub})
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": rsaKey.kid})
	payload, _ := json.Marshal(idClaims(now, "rita", []string{"admin"}, fullScope, nil))
	algNone := b64url(string(header)) + "." + b64url(string(payload)) + "."
	parts := strings.Split(goodRSA, ".")
	otherRSA := idRSAKey(t, rsaKey.kid) // a key the JWKS does not hold, claiming a kid it does

	creds := []idCredential{
		{name: "no credentials", want: all(idAnonymous), challenge: chOffer},

		// API keys.
		{name: "API key with the role and scopes", header: hdr("X-API-Key", idAdminKey), user: "key-admin", want: all(idPass)},
		{name: "API key without the role", header: hdr("X-API-Key", idUserKey), user: "key-user",
			want: [4]idOutcome{idPass, idLacksAdmin, idLacksScope("reports:write"), idExprDenied}},
		{name: "API key without the role, as a bearer token", header: bearer(idUserKey), user: "key-user",
			want: [4]idOutcome{idPass, idLacksAdmin, idLacksScope("reports:write"), idExprDenied}},
		{name: "unknown API key", header: hdr("X-API-Key", "not-a-key"), want: all(idInvalid), challenge: chOffer, logDetail: "unknown API key"},
		{name: "unknown API key, as a bearer token", header: bearer("not-a-key"), want: all(idInvalid), challenge: chOffer, logDetail: "unknown API key"},

		// JWTs: one per key type.
		{name: "JWT RS256 with role and scopes", header: bearer(goodRSA), user: "rita", want: all(idPass)},
		{name: "JWT ES256 without the role, one scope", header: bearer(idSign(t, ecKey, idClaims(now, "eve", []string{"user"}, "reports:read", nil))),
			user: "eve", want: [4]idOutcome{idPass, idLacksAdmin, idLacksScope("reports:write"), idExprDenied}},
		{name: "JWT EdDSA with the role, no scope", header: bearer(idSign(t, edKey, idClaims(now, "ed", []string{"admin"}, "", nil))),
			user: "ed", want: [4]idOutcome{idPass, idPass, idLacksScope("reports:read"), idPass}},
		{name: "JWT with roles but not at the configured claim path", header: bearer(idSign(t, edKey, idClaims(now, "flat", nil, fullScope, map[string]any{"roles": []string{"admin"}}))),
			user: "flat", want: [4]idOutcome{idPass, idLacksAdmin, idPass, idExprDenied}},
		{name: "JWT expired within the leeway", header: bearer(idSign(t, rsaKey, idClaims(now, "rita", []string{"admin"}, fullScope, map[string]any{"exp": now.Add(-29 * time.Second).Unix()}))),
			user: "rita", want: all(idPass)},
		badToken("JWT expired", idSign(t, ecKey, idClaims(now, "eve", []string{"admin"}, fullScope, map[string]any{"exp": now.Add(-31 * time.Second).Unix()})), "token expired"),
		badToken("JWT not valid yet", idSign(t, edKey, idClaims(now, "ed", []string{"admin"}, fullScope, map[string]any{"nbf": now.Add(5 * time.Minute).Unix()})), "token not valid yet"),
		badToken("JWT from another issuer", idSign(t, rsaKey, idClaims(now, "rita", []string{"admin"}, fullScope, map[string]any{"iss": "https://evil.example.test/"})), "wrong issuer"),
		badToken("JWT for another audience", idSign(t, rsaKey, idClaims(now, "rita", []string{"admin"}, fullScope, map[string]any{"aud": []string{"billing"}})), "not meant for this audience"),
		badToken("JWT without expiry", idSign(t, rsaKey, idClaims(now, "rita", []string{"admin"}, fullScope, map[string]any{"exp": nil})), "no expiry"),
		badToken("JWT with an unknown kid", idSign(t, idEdKey(t, "ed-unknown"), idClaims(now, "ed", []string{"admin"}, fullScope, nil)), `unknown key id "ed-unknown"`),
		badToken("JWT signed by another key under a known kid", idSign(t, otherRSA, idClaims(now, "rita", []string{"admin"}, fullScope, nil)), "signature does not verify"),
		badToken("JWT with alg none", algNone, "algorithm not allowed"),
		badToken("JWT HS256 signed with the RSA public key", idSignWith(t, "HS256", rsaPubPEM, rsaKey.kid, idClaims(now, "rita", []string{"admin"}, fullScope, nil)), "algorithm not allowed"),
		badToken("JWT with its payload swapped", parts[0]+"."+b64url(`{"sub":"root"}`)+"."+parts[2], "signature does not verify"),
		badToken("malformed JWT", "eyJhbGciOiJSUzI1NiJ9.%%%.xyz", "malformed"),

		// HTTP Basic against the file htpasswd -B wrote.
		{name: "Basic with the role", header: hdr("Authorization", basicAuth("alice", "alice-pw")), user: "alice",
			want: [4]idOutcome{idPass, idPass, idLacksScope("reports:read"), idPass}},
		{name: "Basic without the role", header: hdr("Authorization", basicAuth("bob", "bob-pw")), user: "bob",
			want: [4]idOutcome{idPass, idLacksAdmin, idLacksScope("reports:read"), idExprDenied}},
		{name: "Basic user with no roles at all", header: hdr("Authorization", basicAuth("dave", "dave-pw")), user: "dave",
			want: [4]idOutcome{idPass, idLacksAdmin, idLacksScope("reports:read"), idExprDenied}},
		{name: "Basic with a wrong password", header: hdr("Authorization", basicAuth("alice", "bob-pw")), want: all(idInvalid), challenge: chOffer, logDetail: "wrong password"},
		{name: "Basic with an unknown user", header: hdr("Authorization", basicAuth("mallory", "alice-pw")), want: all(idInvalid), challenge: chOffer, logDetail: "unknown user"},
		{name: "Basic that is not base64", header: hdr("Authorization", "Basic !!!"), want: all(idInvalid), challenge: chOffer, logDetail: "not base64"},

		// Identity headers set by an authenticating proxy.
		{name: "identity headers from the trusted proxy", from: "127.0.0.2",
			header: hdr("X-Auth-Request-User", "carol", "X-Auth-Request-Groups", "ops, admin"), user: "carol",
			want: [4]idOutcome{idPass, idPass, idLacksScope("reports:read"), idPass}},
		{name: "identity headers from the trusted proxy, without the role", from: "127.0.0.2",
			header: hdr("X-Auth-Request-User", "carol", "X-Auth-Request-Groups", "ops"), user: "carol",
			want: [4]idOutcome{idPass, idLacksAdmin, idLacksScope("reports:read"), idExprDenied}},
		{name: "identity headers from an untrusted peer", from: "127.0.0.3",
			header: hdr("X-Auth-Request-User", "carol", "X-Auth-Request-Groups", "ops, admin"),
			want:   all(idAnonymous), challenge: chOffer},
		{name: "two user headers from the trusted proxy", from: "127.0.0.2",
			header: hdr("X-Auth-Request-User", "carol", "X-Auth-Request-User", "admin", "X-Auth-Request-Groups", "admin"),
			want:   all(idInvalid), challenge: chOffer, logDetail: "2 X-Auth-Request-User headers"},
	}

	clients := map[string]*http.Client{}
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		clients[ip] = idClientFrom(t, ip)
	}
	for _, c := range creds {
		for i, path := range idRulePaths {
			want := c.want[i]
			t.Run(c.name+" "+path, func(t *testing.T) {
				from := c.from
				if from == "" {
					from = "127.0.0.1"
				}
				before := up.count()
				r := idGet(t, clients[from], g.base+path, c.header)
				if want.status == 200 {
					wantBody := fmt.Sprintf("upstream %s user=%s", path, c.user)
					if r.status != 200 || r.body != wantBody {
						t.Fatalf("%d %q, want 200 %q", r.status, r.body, wantBody)
					}
					if ch := r.header.Values("WWW-Authenticate"); len(ch) != 0 {
						t.Errorf("a 200 carries WWW-Authenticate %q", ch)
					}
					return
				}
				p := idWantRefusal(t, r, want.status, want.code, want.reason, c.challenge)
				if n := up.count() - before; n != 0 {
					t.Errorf("a refused request reached the upstream")
				}
				if want.reason == "account lacks role: admin" && !strings.Contains(r.body, `"error":"forbidden","reason":"account lacks role: admin"`) {
					t.Errorf("body lacks the seed example's error/reason pair: %s", r.body)
				}
				e := g.log.entry(p.RequestID)
				if e == nil {
					t.Fatalf("no decision log entry for %s", p.RequestID)
				}
				if e["code"] != want.code {
					t.Errorf("log code %v, want %s", e["code"], want.code)
				}
				if c.logDetail != "" {
					if d, _ := e["detail"].(string); !strings.Contains(d, c.logDetail) {
						t.Errorf("log detail %q, want it to say %q", d, c.logDetail)
					}
				}
			})
		}
	}
}

// TestIdentityHeadersFromUntrustedPeersNeverReachTheUpstream: a client that
// is not the trusted proxy cannot name itself, neither to warden's rules nor
// to the upstream: the identity headers it sends are dropped before
// proxying, and so are the X-Warden-* headers warden itself sets.
func TestIdentityHeadersFromUntrustedPeersNeverReachTheUpstream(t *testing.T) {
	dir := t.TempDir()
	up := newIDUpstream(t)
	src := strings.NewReplacer("{{UPSTREAM}}", up.srv.URL).Replace(`
trusted_proxies: [127.0.0.2]
identity:
  headers:
    user: X-Auth-Request-User
    groups: X-Auth-Request-Groups
    email: X-Auth-Request-Email
handle:
  - path: /
    upstream: {{UPSTREAM}}
`)
	g := startIDGateway(t, dir, src, true)
	spoof := http.Header{
		"X-Auth-Request-User":   {"mallory"},
		"X-Auth-Request-Groups": {"admin"},
		"X-Auth-Request-Email":  {"mallory@example.test"},
		"X-Warden-User":         {"mallory"},
		"X-Warden-Roles":        {"admin"},
	}
	identityHeaders := []string{"X-Auth-Request-User", "X-Auth-Request-Groups", "X-Auth-Request-Email", "X-Warden-User", "X-Warden-Roles"}

	for _, from := range []string{"127.0.0.1", "127.0.0.3"} {
		t.Run("untrusted "+from, func(t *testing.T) {
			r := idGet(t, idClientFrom(t, from), g.base+"/public/page", spoof)
			if r.status != 200 || r.body != "upstream /public/page user=" {
				t.Fatalf("%d %q", r.status, r.body)
			}
			seen := up.last()
			for _, h := range identityHeaders {
				if v, ok := seen[h]; ok {
					t.Errorf("upstream received %s: %q from an untrusted peer", h, v)
				}
			}
		})
	}
	t.Run("untrusted, header names in odd case", func(t *testing.T) {
		h := http.Header{}
		for k, v := range spoof {
			h[strings.ToLower(k)] = v // sent on the wire as written
		}
		r := idGet(t, idClientFrom(t, "127.0.0.3"), g.base+"/public/page", h)
		if r.status != 200 {
			t.Fatalf("%d %q", r.status, r.body)
		}
		seen := up.last()
		for _, name := range identityHeaders {
			if v := seen.Get(name); v != "" {
				t.Errorf("upstream received %s: %q", name, v)
			}
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		h := http.Header{
			"X-Auth-Request-User":   {"carol"},
			"X-Auth-Request-Groups": {"ops,admin"},
			"X-Warden-User":         {"root"}, // the proxy's client tried too
		}
		r := idGet(t, idClientFrom(t, "127.0.0.2"), g.base+"/public/page", h)
		if r.status != 200 || r.body != "upstream /public/page user=carol" {
			t.Fatalf("%d %q", r.status, r.body)
		}
		seen := up.last()
		if got := seen.Values("X-Warden-User"); len(got) != 1 || got[0] != "carol" {
			t.Errorf("X-Warden-User %q, want [carol]", got)
		}
		if got := seen.Get("X-Warden-Roles"); got != "ops,admin" {
			t.Errorf("X-Warden-Roles %q, want ops,admin", got)
		}
	})
}

// idJWKSServer is a real JWKS endpoint on 127.0.0.1 whose document can be
// replaced, counting the fetches it serves.
type idJWKSServer struct {
	srv     *httptest.Server
	doc     atomic.Pointer[[]byte]
	fetches atomic.Int64
}

func newIDJWKSServer(t *testing.T, doc []byte) *idJWKSServer {
	t.Helper()
	s := &idJWKSServer{}
	s.doc.Store(&doc)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(*s.doc.Load())
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *idJWKSServer) publish(doc []byte) { s.doc.Store(&doc) }

// idEventually polls get until it answers want (status and code), or fails
// after limit.
func idEventually(t *testing.T, what string, limit time.Duration, get func() idResponse, status int, code string) idResponse {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r := get()
		if r.status == status && (code == "" || strings.Contains(r.body, `"code":"`+code+`"`)) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %d %s after %v", what, r.status, r.body, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const idRotationYAML = `
identity:
  jwt:
    jwks_url: {{JWKS}}
    issuer: "` + idIssuer + `"
    audiences: [` + idAudience + `]
    algorithms: [ES256, EdDSA]
    refresh: {{REFRESH}}
rules:
  - name: api
    when: { path: { prefix: /api/ } }
    require: { authenticated: true }
    action: allow
handle:
  - path: /
    upstream: {{UPSTREAM}}
`

// TestIdentityJWKSRotationThroughTheGateway: keys come from a real JWKS
// server; the gateway fails closed (503) until it has them, follows the
// issuer's rotation on its refresh schedule, and then refuses tokens of the
// retired key as invalid.
func TestIdentityJWKSRotationThroughTheGateway(t *testing.T) {
	t.Parallel()
	oldKey, newKey := idECKey(t, "2026-01"), idEdKey(t, "2026-02")
	jwks := newIDJWKSServer(t, idJWKS(t, oldKey))
	up := newIDUpstream(t)
	src := strings.NewReplacer("{{JWKS}}", jwks.srv.URL+"/.well-known/jwks.json", "{{REFRESH}}", "200ms", "{{UPSTREAM}}", up.srv.URL).Replace(idRotationYAML)
	g := startIDGateway(t, t.TempDir(), src, false)
	now := time.Now()
	oldTok := idSign(t, oldKey, idClaims(now, "old", nil, "", nil))
	newTok := idSign(t, newKey, idClaims(now, "new", nil, "", nil))
	client := idClientFrom(t, "127.0.0.1")
	get := func(tok string) func() idResponse {
		return func() idResponse {
			return idGet(t, client, g.base+"/api/x", http.Header{"Authorization": {"Bearer " + tok}})
		}
	}

	// Not started: no keys yet. The rule fails closed, with 503 rather than
	// blaming the caller's token.
	r := get(oldTok)()
	idWantRefusal(t, r, 503, "unavailable", "credentials cannot be verified right now", "")
	if r.header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	if up.count() != 0 || jwks.fetches.Load() != 0 {
		t.Fatalf("before Start: %d upstream hits, %d JWKS fetches", up.count(), jwks.fetches.Load())
	}

	g.rt.Start(context.Background())
	r = idEventually(t, "old key after start", 5*time.Second, get(oldTok), 200, "")
	if r.body != "upstream /api/x user=old" {
		t.Fatalf("body %q", r.body)
	}
	r = get(newTok)()
	idWantRefusal(t, r, 401, "invalid_credentials", "the credentials given are not valid", `Bearer realm="warden", error="invalid_token"`)

	// The issuer rotates: only the new key is published now.
	jwks.publish(idJWKS(t, newKey))
	r = idEventually(t, "new key after rotation", 5*time.Second, get(newTok), 200, "")
	if r.body != "upstream /api/x user=new" {
		t.Fatalf("body %q", r.body)
	}
	// The old token was verified (and cached) before; the cache must not
	// outlive the key it was verified with.
	r = get(oldTok)()
	p := idWantRefusal(t, r, 401, "invalid_credentials", "the credentials given are not valid", `Bearer realm="warden", error="invalid_token"`)
	if e := g.log.entry(p.RequestID); e == nil || !strings.Contains(fmt.Sprint(e["detail"]), `unknown key id "2026-01"`) {
		t.Errorf("log entry %v, want the unknown key id", e)
	}

	// The JWKS server goes away: the keys in hand stay in use.
	jwks.srv.Close()
	time.Sleep(500 * time.Millisecond) // several failed refreshes
	if r := get(newTok)(); r.status != 200 {
		t.Fatalf("after the JWKS server went away: %d %s", r.status, r.body)
	}
}

// TestIdentityJWKSUnknownKidTriggersRefetch: with a refresh interval of an
// hour, a token naming a kid the gateway has not seen makes it fetch the
// JWKS again soon (rate-limited: the default minimum is 10s between
// fetches), rather than refusing the new key for an hour. Many requests with
// the unknown kid cost one fetch, not one each.
func TestIdentityJWKSUnknownKidTriggersRefetch(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 10s refetch rate limit")
	}
	t.Parallel()
	oldKey, newKey := idECKey(t, "2026-01"), idEdKey(t, "2026-02")
	jwks := newIDJWKSServer(t, idJWKS(t, oldKey))
	up := newIDUpstream(t)
	src := strings.NewReplacer("{{JWKS}}", jwks.srv.URL, "{{REFRESH}}", "1h", "{{UPSTREAM}}", up.srv.URL).Replace(idRotationYAML)
	g := startIDGateway(t, t.TempDir(), src, true)
	now := time.Now()
	client := idClientFrom(t, "127.0.0.1")
	get := func(tok string) func() idResponse {
		return func() idResponse {
			return idGet(t, client, g.base+"/api/x", http.Header{"Authorization": {"Bearer " + tok}})
		}
	}
	oldTok := idSign(t, oldKey, idClaims(now, "old", nil, "", nil))
	newTok := idSign(t, newKey, idClaims(now, "new", nil, "", nil))
	// Wait for the first fetch without sending tokens: a token refused
	// for want of keys would itself ask for an early refetch, and this
	// test is about the refetch an unknown kid asks for.
	deadline := time.Now().Add(5 * time.Second)
	for jwks.fetches.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the keys are stored right after the fetch
	if r := get(oldTok)(); r.status != 200 {
		t.Fatalf("old key after the first fetch: %d %s", r.status, r.body)
	}
	if n := jwks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches after start, want 1", n)
	}
	jwks.publish(idJWKS(t, oldKey, newKey))
	start := time.Now()
	for range 50 {
		if r := get(newTok)(); r.status != 401 {
			t.Fatalf("new kid before the refetch: %d %s", r.status, r.body)
		}
	}
	idEventually(t, "new kid after refetch", 15*time.Second, get(newTok), 200, "")
	t.Logf("unknown kid accepted %v after first seen", time.Since(start).Round(100*time.Millisecond))
	if n := jwks.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2 (start, then one for the unknown kid)", n)
	}
	if r := get(oldTok)(); r.status != 200 {
		t.Errorf("old key, still published: %d %s", r.status, r.body)
	}
}

// idLineOf is the 1-based line of the first line of src containing s.
func idLineOf(t *testing.T, src, s string) int {
	t.Helper()
	for i, line := range strings.Split(src, "\n") {
		if strings.Contains(line, s) {
			return i + 1
		}
	}
	t.Fatalf("%q not in the config", s)
	return 0
}

// TestIdentityCheckReportsBadExpressionsWithTheirLine: what `warden check`
// does (config.Parse, then gateway.Build) names each bad CEL expression by
// file and config line, with CEL's own position inside the expression, all
// of them in one run.
func TestIdentityCheckReportsBadExpressionsWithTheirLine(t *testing.T) {
	src := `identity:
  api_keys:
    keys:
      - { id: a, sha256: "` + identity.HashKey("k") + `", roles: [admin] }
rules:
  - name: fine
    expr: '"admin" in principal.roles'
    action: allow
  - name: typo
    expr: '"admin" in princpal.roles'
    action: deny
  - name: types
    expr: 'principal.id == 1'
    action: deny
  - name: not-bool
    expr: principal.roles
    action: deny
  - name: syntax
    expr: '"admin" in principal.roles &&'
    action: deny
  - name: claim-not-compared
    expr: principal.claims.admin
    action: deny
  - name: multi-line
    expr: |
      request.method == "GET" &&
      "ops" in principal.roles &&
      request.header["x-team"] == "blue"
    action: deny
`
	path := filepath.Join(t.TempDir(), "warden.yaml")
	cfg, err := config.Parse(path, []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	_, err = gateway.Build(cfg, gateway.Options{}, nil)
	if err == nil {
		t.Fatal("bad expressions built")
	}
	got := strings.Split(err.Error(), "\n")
	want := []struct {
		rule, exprLine, message string
	}{
		{"typo", `princpal.roles'`, `expr: 1:12: undeclared reference to 'princpal' (did you mean 'principal'?)`},
		{"types", `principal.id == 1`, `expr: 1:14: found no matching overload for '_==_' applied to '(string, int)'`},
		{"not-bool", `expr: principal.roles`, `expr: 1:1: expression must yield a bool, but yields list(string)`},
		{"syntax", `principal.roles &&'`, `expr: 1:30: Syntax error: mismatched input '<EOF>'`},
		{"claim-not-compared", `principal.claims.admin`, `must yield a bool`},
		// A block: the config line is the one of "expr: |"; CEL's
		// position (line 3 of the expression) finds the field.
		{"multi-line", `expr: |`, `expr: 3:8: undefined field 'header'`},
	}
	if len(got) != len(want) {
		t.Errorf("%d errors, want %d:\n%s", len(got), len(want), err)
	}
	for _, w := range want {
		prefix := fmt.Sprintf("%s:%d: rule %q: ", path, idLineOf(t, src, w.exprLine), w.rule)
		found := false
		for _, line := range got {
			if strings.HasPrefix(line, prefix) && strings.Contains(line, w.message) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error %q ... %q in:\n%s", prefix, w.message, err)
		}
	}
}

// TestIdentityCheckRefusesWeakHtpasswdHashes: an htpasswd file with an
// MD5 entry (as `htpasswd -m` writes it) is a check error naming the config
// line and the file's own line, until allow_weak_hashes says otherwise;
// then that user signs in through the gateway.
func TestIdentityCheckRefusesWeakHtpasswdHashes(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	idHtpasswd(t, users, "alice", "alice-pw")
	if out, err := exec.Command("htpasswd", "-m", "-b", users, "legacy", "legacy-pw").CombinedOutput(); err != nil {
		t.Fatalf("htpasswd -m: %v\n%s", err, out)
	}
	up := newIDUpstream(t)
	src := func(allowWeak bool) string {
		return fmt.Sprintf(`identity:
  htpasswd:
    file: users
    allow_weak_hashes: %v
rules:
  - name: staff
    require: { authenticated: true }
    action: allow
handle:
  - path: /
    upstream: %s
`, allowWeak, up.srv.URL)
	}
	path := filepath.Join(dir, "warden.yaml")
	cfg, err := config.Parse(path, []byte(src(false)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = gateway.Build(cfg, gateway.Options{}, nil)
	want := fmt.Sprintf(`%s:3: identity.htpasswd: %s:2: user "legacy" uses a weak hash ($apr1$); re-create it with htpasswd -B or set allow_weak_hashes`, path, users)
	// Only the first line is checked: the rules that need the refused
	// authenticator may add lines of their own.
	if err == nil || strings.Split(err.Error(), "\n")[0] != want {
		t.Fatalf("check error:\n%v\nwant first\n%s", err, want)
	}

	g := startIDGateway(t, dir, src(true), true)
	c := idClientFrom(t, "127.0.0.1")
	for user, pass := range map[string]string{"alice": "alice-pw", "legacy": "legacy-pw"} {
		r := idGet(t, c, g.base+"/x", http.Header{"Authorization": {basicAuth(user, pass)}})
		if r.status != 200 || r.body != "upstream /x user="+user {
			t.Errorf("%s: %d %q", user, r.status, r.body)
		}
	}
	r := idGet(t, c, g.base+"/x", http.Header{"Authorization": {basicAuth("legacy", "wrong")}})
	idWantRefusal(t, r, 401, "invalid_credentials", "the credentials given are not valid", `Basic realm="warden", charset="UTF-8"`)
}

const idCELYAML = `
identity:
  api_keys:
    keys:
      - { id: ops-key, sha256: "{{OPS}}", roles: [ops] }
      - { id: dev-key, sha256: "{{DEV}}", roles: [dev] }
  jwt:
    jwks_file: jwks.json
    issuer: "` + idIssuer + `"
    audiences: [` + idAudience + `]
    algorithms: [EdDSA]
rules:
  - name: ops-sign-in
    when: { path: { prefix: /ops/ } }
    require: { authenticated: true }
  - name: ops-team-on-blue
    when: { path: { prefix: /ops/ } }
    expr: '"ops" in principal.roles && request.headers["x-team"] == "blue" && request.method == "GET"'
    action: allow
  - name: ops-otherwise
    when: { path: { prefix: /ops/ } }
    action: deny
    reason: ops team on the blue shift only
  - name: sre-claim
    when: { path: { prefix: /sre/ } }
    expr: 'principal.claims.dept != "sre"'
    action: deny
    reason: SRE department only
handle:
  - path: /
    upstream: {{UPSTREAM}}
`

// TestIdentityCELThroughTheGateway: expression rules on principal.roles,
// request.headers, request.method and a JWT claim decide real requests; an
// expression that cannot be evaluated (a header or claim that is absent)
// takes the refusing side, and the log names the rule and its line.
func TestIdentityCELThroughTheGateway(t *testing.T) {
	dir := t.TempDir()
	key := idEdKey(t, "ed-cel")
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), idJWKS(t, key), 0o644); err != nil {
		t.Fatal(err)
	}
	up := newIDUpstream(t)
	src := strings.NewReplacer("{{OPS}}", identity.HashKey("ops-key"), "{{DEV}}", identity.HashKey("dev-key"), "{{UPSTREAM}}", up.srv.URL).Replace(idCELYAML)
	g := startIDGateway(t, dir, src, true)
	now := time.Now()
	sre := idSign(t, key, idClaims(now, "sam", nil, "", map[string]any{"dept": "sre"}))
	web := idSign(t, key, idClaims(now, "wes", nil, "", map[string]any{"dept": "web"}))
	expired := idSign(t, key, idClaims(now, "sam", nil, "", map[string]any{"dept": "sre", "exp": now.Add(-time.Hour).Unix()}))
	c := idClientFrom(t, "127.0.0.1")
	const offer = `ApiKey realm="warden", header="X-API-Key", Bearer realm="warden"`
	blueShift := "ops team on the blue shift only"
	cases := []struct {
		name   string
		method string
		path   string
		header http.Header
		want   idOutcome
		user   string
		rule   string // the rule the log must name for a refusal
	}{
		{"ops on blue", "GET", "/ops/deploy", http.Header{"X-Api-Key": {"ops-key"}, "X-Team": {"blue"}}, idPass, "ops-key", ""},
		{"header name in lower case on the wire", "GET", "/ops/deploy", http.Header{"x-api-key": {"ops-key"}, "x-team": {"blue"}}, idPass, "ops-key", ""},
		{"ops on red", "GET", "/ops/deploy", http.Header{"X-Api-Key": {"ops-key"}, "X-Team": {"red"}}, idOutcome{403, "path_forbidden", blueShift}, "", "ops-otherwise"},
		{"ops, no team header", "GET", "/ops/deploy", http.Header{"X-Api-Key": {"ops-key"}}, idOutcome{403, "path_forbidden", blueShift}, "", "ops-otherwise"},
		{"ops on blue, but POST", "POST", "/ops/deploy", http.Header{"X-Api-Key": {"ops-key"}, "X-Team": {"blue"}}, idOutcome{403, "path_forbidden", blueShift}, "", "ops-otherwise"},
		{"dev on blue", "GET", "/ops/deploy", http.Header{"X-Api-Key": {"dev-key"}, "X-Team": {"blue"}}, idOutcome{403, "path_forbidden", blueShift}, "", "ops-otherwise"},
		{"nobody on blue", "GET", "/ops/deploy", http.Header{"X-Team": {"blue"}}, idAnonymous, "", "ops-sign-in"},
		{"claim matches", "GET", "/sre/pager", http.Header{"Authorization": {"Bearer " + sre}}, idPass, "sam", ""},
		{"claim differs", "GET", "/sre/pager", http.Header{"Authorization": {"Bearer " + web}}, idOutcome{403, "policy_denied", "SRE department only"}, "", "sre-claim"},
		{"no such claim (API key)", "GET", "/sre/pager", http.Header{"X-Api-Key": {"ops-key"}}, idOutcome{403, "policy_denied", "SRE department only"}, "", "sre-claim"},
		{"claim rule, nobody", "GET", "/sre/pager", nil, idAnonymous, "", "sre-claim"},
		{"claim rule, expired token", "GET", "/sre/pager", http.Header{"Authorization": {"Bearer " + expired}}, idInvalid, "", "sre-claim"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, g.base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tc.header.Clone()
			if req.Header == nil {
				req.Header = http.Header{}
			}
			req.Header.Set("Accept", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r := idResponse{resp.StatusCode, resp.Header, string(body)}
			if tc.want.status == 200 {
				if want := "upstream " + tc.path + " user=" + tc.user; r.status != 200 || r.body != want {
					t.Fatalf("%d %q, want 200 %q", r.status, r.body, want)
				}
				return
			}
			challenge := ""
			if tc.want.status == 401 {
				challenge = offer
				if tc.want.code == "invalid_credentials" {
					challenge = `ApiKey realm="warden", header="X-API-Key", Bearer realm="warden", error="invalid_token"`
				}
			}
			p := idWantRefusal(t, r, tc.want.status, tc.want.code, tc.want.reason, challenge)
			e := g.log.entry(p.RequestID)
			ruleLine := idLineOf(t, src, "name: "+tc.rule)
			if e == nil || e["rule"] != tc.rule || e["rule_at"] != fmt.Sprintf("%s:%d", filepath.Join(dir, "warden.yaml"), ruleLine) {
				t.Errorf("log entry %v, want rule %s at line %d", e, tc.rule, ruleLine)
			}
		})
	}
}
