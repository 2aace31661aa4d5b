package identity_test

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
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
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/identity"
)

// The identity corpus: JWT, HTTP Basic and API-key attacks from the
// literature, each sent as raw bytes to a gateway built as `warden serve`
// builds it, and each asserting what the client gets (status and code) and
// what the decision log says (the detail names the real cause). Controls
// must be let in as the right caller. Sources:
//
//   - RFC 8725 (JWT BCP), RFC 7515/7519/7797, RFC 7617 (Basic), RFC 9110;
//   - PortSwigger Web Security Academy, "JWT attacks" (alg none, algorithm
//     confusion, jwk/jku/kid header injection);
//   - ticarpi/jwt_tool's attack modes (-X a none variants, -X k key
//     confusion, -X i embedded jwk, -X s jku spoof, kid injections,
//     -I claim tampering);
//   - CVE-2015-9235 / CVE-2016-10555 (HS/RS confusion), CVE-2018-0114
//     (embedded jwk), CVE-2022-21449 (ECDSA r=s=0 "psychic signatures"),
//     CVE-2022-23540 (empty key / none), CVE-2020-28042 (empty signature).
//   - issue 10's findings: ambiguous claim paths, pretty-printed headers,
//     refusals logged with the wrong cause.

const (
	corpusIssuer   = "https://issuer.corpus.test"
	corpusAudience = "corpus-api"
	adminAPIKey    = "corpus-admin-key-0123456789abcdef"
	userAPIKey     = "corpus-user-key-0123456789abcdef"
)

// corpusCase is one request and what must come of it.
type corpusCase struct {
	family string // "jwt", "basic", "api_key"
	name   string
	source string
	// headers are raw header lines, sent as written.
	headers []string
	path    string // default /admin/panel
	// For refusals: status, code and a piece of the logged detail ("" when
	// the refusal has none, as a 401 unauthenticated).
	status int
	code   string
	detail string
	// For controls (status 200): the caller the upstream is told.
	user string
}

// logBuffer collects the decision log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// record returns the decision record of request id.
func (b *logBuffer) record(id string) map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, line := range bytes.Split(b.buf.Bytes(), []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(line, &rec) == nil && rec["msg"] == "decision" && rec["request_id"] == id {
			return rec
		}
	}
	return nil
}

// jwtKit signs tokens byte for byte as written, so headers and claims can
// be pretty-printed, duplicated or mistyped.
type jwtKit struct {
	rsaKey, rsaEvil *rsa.PrivateKey
	ecKey, ecEvil   *ecdsa.PrivateKey
	now             time.Time
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func (k *jwtKit) rs(key *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func (k *jwtKit) es(key *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

// token is header.payload.signature over exactly these JSON texts.
func token(header, payload string, sign func([]byte) []byte) string {
	in := b64(header) + "." + b64(payload)
	if sign == nil {
		return in + "."
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(in)))
}

// claims is the JSON of a valid claim set for sub with realm roles, with
// extra members merged (nil deletes).
func (k *jwtKit) claims(sub string, roles []string, extra map[string]any) string {
	c := map[string]any{
		"iss": corpusIssuer, "aud": corpusAudience, "sub": sub,
		"iat": k.now.Unix(), "nbf": k.now.Unix(), "exp": k.now.Add(time.Hour).Unix(),
		"realm_access": map[string]any{"roles": roles},
	}
	for n, v := range extra {
		if v == nil {
			delete(c, n)
		} else {
			c[n] = v
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return string(b)
}

const (
	hdrRS = `{"alg":"RS256","typ":"JWT","kid":"rsa-1"}`
	hdrES = `{"alg":"ES256","typ":"JWT","kid":"ec-1"}`
)

func bearerLine(tok string) string { return "Authorization: Bearer " + tok }

func basicLine(userPass string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

func jwtCases(t *testing.T, k *jwtKit) []corpusCase {
	rs, es := k.rs(k.rsaKey), k.es(k.ecKey)
	admin := k.claims("alice", []string{"admin"}, nil)
	pubDER, err := x509.MarshalPKIXPublicKey(&k.rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := func(secret []byte) func([]byte) []byte {
		return func(in []byte) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write(in)
			return m.Sum(nil)
		}
	}
	evilJWK, _ := json.Marshal(jose.JSONWebKey{Key: &k.rsaEvil.PublicKey, Algorithm: "RS256", Use: "sig"})
	deep := strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40)
	prettyHeader := "{\n  \"alg\": \"RS256\",\n  \"typ\": \"JWT\",\n  \"kid\": \"rsa-1\"\n}"

	c := func(name, source string, tok string, status int, code, detail string) corpusCase {
		return corpusCase{family: "jwt", name: name, source: source, headers: []string{bearerLine(tok)}, status: status, code: code, detail: detail}
	}
	bad := func(name, source, tok, detail string) corpusCase {
		return c(name, source, tok, 401, "invalid_credentials", detail)
	}
	ok := func(name, source, tok, user string) corpusCase {
		cc := c(name, source, tok, 200, "", "")
		cc.user = user
		return cc
	}
	return []corpusCase{
		// Controls.
		ok("valid RS256 admin", "control", token(hdrRS, admin, rs), "alice"),
		ok("valid ES256 admin", "control", token(hdrES, admin, es), "alice"),
		ok("header pretty-printed, validly signed", "issue 10 (b)", token(prettyHeader, admin, rs), "alice"),
		ok("header with spaces after colons", "issue 10 (b)", token(`{"alg": "RS256", "kid": "rsa-1"}`, admin, rs), "alice"),
		ok("header without kid: any fitting key", "RFC 7515 4.1.4", token(`{"alg":"ES256"}`, admin, es), "alice"),
		ok("aud as a list holding ours", "RFC 7519 4.1.3", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"aud": []string{"other", corpusAudience}}), rs), "alice"),
		ok("claims pretty-printed", "RFC 7519 (any JSON whitespace)", token(hdrRS, strings.ReplaceAll(admin, ",", ",\n  "), rs), "alice"),
		ok("jwk header with another key is ignored; the JWKS key verifies", "CVE-2018-0114 control", token(`{"alg":"RS256","kid":"rsa-1","jwk":`+string(evilJWK)+`}`, admin, rs), "alice"),
		{family: "jwt", name: "scheme in lower case", source: "RFC 9110 11.1 (case-insensitive scheme)", headers: []string{"Authorization: bearer " + token(hdrRS, admin, rs)}, status: 200, user: "alice"},
		{family: "jwt", name: "valid token, user role, on /admin/", source: "control (403 side)", headers: []string{bearerLine(token(hdrES, k.claims("bob", []string{"user"}, nil), es))}, status: 403, code: "role_required", detail: ""},
		{family: "jwt", name: "valid token on a public path", source: "control", headers: []string{bearerLine(token(hdrES, k.claims("bob", []string{"user"}, nil), es))}, path: "/pub/page", status: 200, user: "bob"},

		// alg none and friends.
		bad("alg none", "jwt_tool -X a; RFC 8725 3.1", token(`{"alg":"none","kid":"rsa-1"}`, admin, nil), "algorithm not allowed"),
		bad("alg None", "jwt_tool -X a", token(`{"alg":"None","kid":"rsa-1"}`, admin, nil), "algorithm not allowed"),
		bad("alg NONE", "jwt_tool -X a", token(`{"alg":"NONE","kid":"rsa-1"}`, admin, nil), "algorithm not allowed"),
		bad("alg nOnE", "jwt_tool -X a", token(`{"alg":"nOnE","kid":"rsa-1"}`, admin, nil), "algorithm not allowed"),
		bad("alg none with a signature kept", "PortSwigger JWT attacks", token(`{"alg":"none"}`, admin, rs), "algorithm not allowed"),
		bad("alg empty", "jwt_tool", token(`{"alg":"","kid":"rsa-1"}`, admin, rs), "algorithm not allowed"),
		bad("no alg at all", "RFC 7515 4.1.1", token(`{"kid":"rsa-1"}`, admin, rs), "algorithm not allowed"),
		bad("alg RS256 with empty signature", "CVE-2020-28042", token(hdrRS, admin, nil), "signature does not verify"),

		// Algorithm confusion.
		bad("HS256 keyed with the RSA public key (PEM)", "CVE-2015-9235, CVE-2016-10555; jwt_tool -X k", token(`{"alg":"HS256","kid":"rsa-1"}`, admin, hs(pubPEM)), "algorithm not allowed"),
		bad("HS256 keyed with the RSA public key (DER)", "PortSwigger algorithm confusion", token(`{"alg":"HS256","kid":"rsa-1"}`, admin, hs(pubDER)), "algorithm not allowed"),
		bad("HS256 with an empty secret", "CVE-2022-23540", token(`{"alg":"HS256"}`, admin, hs(nil)), "algorithm not allowed"),
		bad("ES256 token naming the RSA kid", "RFC 8725 3.1 (key/alg binding)", token(`{"alg":"ES256","kid":"rsa-1"}`, admin, es), "no key for algorithm"),
		bad("PS256 (not pinned) with the RSA key", "RFC 8725 3.1", token(`{"alg":"PS256","kid":"rsa-1"}`, admin, rs), "algorithm not allowed"),

		// Signatures.
		bad("ECDSA r=s=0", "CVE-2022-21449 (psychic signatures)", token(hdrES, admin, func([]byte) []byte { return make([]byte, 64) }), "signature does not verify"),
		bad("ECDSA r=s=n", "CVE-2022-21449 variant", token(hdrES, admin, func([]byte) []byte {
			n := elliptic.P256().Params().N.FillBytes(make([]byte, 32))
			return append(append([]byte{}, n...), n...)
		}), "signature does not verify"),
		bad("ECDSA signature in DER, not r||s", "RFC 7518 3.4", token(hdrES, admin, func(in []byte) []byte {
			sum := sha256.Sum256(in)
			der, _ := ecdsa.SignASN1(rand.Reader, k.ecKey, sum[:])
			return der
		}), "signature does not verify"),
		bad("signed by another key under the real kid", "jwt_tool -I", token(hdrRS, admin, k.rs(k.rsaEvil)), "signature does not verify"),
		bad("payload changed after signing", "jwt_tool -I -pc", func() string {
			good := token(hdrRS, k.claims("bob", []string{"user"}, nil), rs)
			parts := strings.Split(good, ".")
			return parts[0] + "." + b64(admin) + "." + parts[2]
		}(), "signature does not verify"),
		bad("signature truncated", "fuzzing", func() string { tok := token(hdrRS, admin, rs); return tok[:len(tok)-4] }(), "signature does not verify"),

		// Key-carrying headers: keys come only from the JWKS.
		bad("embedded jwk, signed with the embedded key", "CVE-2018-0114; jwt_tool -X i", token(`{"alg":"RS256","jwk":`+string(evilJWK)+`}`, admin, k.rs(k.rsaEvil)), "signature does not verify"),
		bad("jku to an attacker JWKS", "PortSwigger jku injection; jwt_tool -X s", token(`{"alg":"RS256","kid":"evil","jku":"http://127.0.0.1:9/jwks.json"}`, admin, k.rs(k.rsaEvil)), "unknown key id"),
		bad("x5u to an attacker certificate", "RFC 8725 3.10", token(`{"alg":"RS256","kid":"evil","x5u":"http://127.0.0.1:9/cert.pem"}`, admin, k.rs(k.rsaEvil)), "unknown key id"),
		bad("x5c with garbage", "RFC 7515 4.1.6", token(`{"alg":"RS256","kid":"rsa-1","x5c":["AAAA"]}`, admin, rs), "malformed token"),
		bad("kid path traversal", "PortSwigger kid traversal; jwt_tool", token(`{"alg":"HS256","kid":"../../../../../../dev/null"}`, admin, hs(nil)), "algorithm not allowed"),
		bad("kid path traversal, RS256", "PortSwigger kid traversal", token(`{"alg":"RS256","kid":"../../../../../../dev/null"}`, admin, k.rs(k.rsaEvil)), "unknown key id"),
		bad("kid SQL injection", "jwt_tool kid injection", token(`{"alg":"RS256","kid":"x' UNION SELECT 'secret' -- "}`, admin, k.rs(k.rsaEvil)), "unknown key id"),
		bad("kid command injection", "jwt_tool kid injection", token(`{"alg":"RS256","kid":"key|/usr/bin/id"}`, admin, k.rs(k.rsaEvil)), "unknown key id"),
		bad("kid of 2,000 characters", "log flooding", token(`{"alg":"RS256","kid":"`+strings.Repeat("k", 2000)+`"}`, admin, k.rs(k.rsaEvil)), "unknown key id"),
		bad("kid as a number", "type confusion", token(`{"alg":"RS256","kid":1}`, admin, rs), "malformed token"),

		// Critical and nesting headers (issue 10 (c): named, not "signature").
		bad("crit naming exp", "RFC 7515 4.1.11", token(`{"alg":"RS256","kid":"rsa-1","crit":["exp"],"exp":1}`, admin, rs), "critical header"),
		bad("crit b64=false", "RFC 7797; jwt_tool", token(`{"alg":"RS256","kid":"rsa-1","b64":false,"crit":["b64"]}`, admin, rs), "critical header"),
		bad("crit empty list", "RFC 7515 4.1.11 (must not be empty)", token(`{"alg":"RS256","kid":"rsa-1","crit":[]}`, admin, rs), "critical header"),
		bad("nested token (cty JWT)", "RFC 7519 5.2; RFC 8725 2.8", token(`{"alg":"RS256","kid":"rsa-1","cty":"JWT"}`, b64(`{"alg":"none"}`)+"."+b64(admin)+".", rs), "nested token"),
		bad("duplicate alg in the header", "RFC 7515 5.2; RFC 8725 3.x", token(`{"alg":"RS256","kid":"rsa-1","alg":"none"}`, admin, rs), "duplicate"),
		// Not a JOSE header, so not a JWT: refused as the opaque key it then is.
		bad("header a list, not an object", "RFC 7515 4 (structure)", token(`["RS256"]`, admin, rs), "unknown API key"),
		bad("header truncated JSON", "fuzzing", token(`{"alg":"RS256"`, admin, rs), "malformed token"),

		// Claims (issue 10 (c)).
		bad("duplicate sub", "RFC 7519 4; jwt_tool -I", token(hdrRS, strings.Replace(admin, `"sub":"alice"`, `"sub":"alice","sub":"root"`, 1), rs), "duplicate member"),
		bad("duplicate roles inside realm_access", "RFC 7519 4", token(hdrRS, strings.Replace(admin, `"roles":["admin"]`, `"roles":["user"],"roles":["admin"]`, 1), rs), "duplicate member"),
		bad("claims nested 40 deep", "parser exhaustion", token(hdrRS, strings.TrimSuffix(admin, "}")+`,"x":`+deep+`}`, rs), "nest deeper"),
		bad("exp as a string", "RFC 7519 4.1.4", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"exp": fmt.Sprint(k.now.Add(time.Hour).Unix())}), rs), `claim "exp" must be a number`),
		bad("nbf as a boolean", "RFC 7519 4.1.5", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"nbf": true}), rs), `claim "nbf" must be a number`),
		bad("iat as an object", "RFC 7519 4.1.6", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"iat": map[string]any{"$gt": 0}}), rs), `claim "iat" must be a number`),
		bad("aud as a number", "RFC 7519 4.1.3", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"aud": 1}), rs), `claim "aud" must be`),
		bad("aud list with a number", "RFC 7519 4.1.3", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"aud": []any{corpusAudience, 1}}), rs), `claim "aud" must be`),
		bad("iss as a list", "RFC 7519 4.1.1", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"iss": []string{corpusIssuer}}), rs), `claim "iss" must be a string`),
		bad("sub as a number", "RFC 7519 4.1.2", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"sub": 42}), rs), `claim "sub" must be a string`),
		bad("claims a list, not an object", "RFC 7519 7.2", token(hdrRS, `[`+admin+`]`, rs), "not a JSON object"),
		bad("claims null", "RFC 7519 7.2", token(hdrRS, `null`, rs), "not a JSON object"),
		bad("claims not JSON", "RFC 7519 7.2", token(hdrRS, `sub=alice`, rs), "not a JSON object"),

		// Time.
		bad("expired", "RFC 7519 4.1.4", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"exp": k.now.Add(-time.Hour).Unix()}), rs), "expired"),
		bad("exp 0", "RFC 7519 4.1.4", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"exp": 0, "iat": nil, "nbf": nil}), rs), "expired"),
		bad("exp negative", "RFC 7519 4.1.4", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"exp": -1, "iat": nil, "nbf": nil}), rs), "expired"),
		bad("no exp", "RFC 8725 3.x (a leaked token must expire)", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"exp": nil}), rs), "no expiry"),
		bad("nbf in an hour", "RFC 7519 4.1.5", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"nbf": k.now.Add(time.Hour).Unix()}), rs), "not valid yet"),
		bad("iat in an hour", "RFC 7519 4.1.6", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"iat": k.now.Add(time.Hour).Unix()}), rs), "issued in the future"),

		// Who the token is for.
		bad("wrong issuer", "RFC 8725 3.8", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"iss": "https://evil.test"}), rs), "wrong issuer"),
		bad("issuer differing in case", "RFC 8725 3.8", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"iss": strings.ToUpper(corpusIssuer)}), rs), "wrong issuer"),
		bad("wrong audience", "RFC 8725 3.9", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"aud": "another-api"}), rs), "audience"),
		bad("empty audience list", "RFC 8725 3.9", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"aud": []string{}}), rs), "audience"),
		bad("no subject", "RFC 7519 4.1.2", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"sub": nil}), rs), "no subject"),

		// Claim paths (issue 10 (a)).
		bad("literal realm_access.roles beside the nested one", "issue 10 (a)", token(hdrRS, k.claims("bob", []string{"user"}, map[string]any{"realm_access.roles": []string{"admin"}}), rs), "ambiguous"),
		bad("literal realm_access.roles beside a nested realm_access without roles", "issue 10 (a)", token(hdrRS, k.claims("bob", nil, map[string]any{"realm_access": map[string]any{"other": 1}, "realm_access.roles": []string{"admin"}}), rs), "ambiguous"),

		// Size.
		bad("token over 16 KiB", "RFC 8725 (bounded parsing)", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"pad": strings.Repeat("x", 17<<10)}), rs), "longer than"),

		// Where tokens are read: only the Authorization header.
		{family: "jwt", name: "token in the query string", source: "RFC 6750 2.3 (not read)", path: "/admin/panel?access_token=" + token(hdrRS, admin, rs), status: 401, code: "unauthenticated"},
		{family: "jwt", name: "token in a cookie", source: "not read", headers: []string{"Cookie: access_token=" + token(hdrRS, admin, rs)}, status: 401, code: "unauthenticated"},
		{family: "jwt", name: "token in Proxy-Authorization", source: "RFC 9110 11.7.2 (not for the origin)", headers: []string{"Proxy-Authorization: Bearer " + token(hdrRS, admin, rs)}, status: 401, code: "unauthenticated"},
		bad("token with a fourth segment", "structure", token(hdrRS, admin, rs)+".eHl6", "unknown API key"),
		bad("token with a space inside", "structure", strings.Replace(token(hdrRS, admin, rs), ".", ". ", 1), "malformed token"),
		bad("header segment in the standard alphabet", "RFC 7515 2 (base64url)", strings.Replace(b64(`{"alg":"RS256","kid":"rsa-1"}`), "_", "/", -1)+"+."+b64(admin)+".c2ln", "unknown API key"),
		bad("alg in lower case", "RFC 7518 3.1 (case-sensitive)", token(`{"alg":"rs256","kid":"rsa-1"}`, admin, rs), "algorithm not allowed"),
		bad("exp 1e20 (overflows a 64-bit time)", "integer overflow", token(hdrRS, strings.Replace(admin, fmt.Sprintf(`"exp":%d`, k.now.Add(time.Hour).Unix()), `"exp":1e20`, 1), rs), `claim "exp" out of range`),
		bad("sub empty", "RFC 7519 4.1.2", token(hdrRS, k.claims("", []string{"admin"}, nil), rs), "no subject"),
		bad("iss with a trailing slash", "RFC 8725 3.8 (exact match)", token(hdrRS, k.claims("alice", []string{"admin"}, map[string]any{"iss": corpusIssuer + "/"}), rs), "wrong issuer"),
		// Roles of the wrong shape give no role: 403, never admin.
		{family: "jwt", name: "roles as an object", source: "type confusion", headers: []string{bearerLine(token(hdrRS, k.claims("bob", nil, map[string]any{"realm_access": map[string]any{"roles": map[string]any{"admin": true}}}), rs))}, status: 403, code: "role_required"},
		{family: "jwt", name: "roles holding non-strings", source: "type confusion", headers: []string{bearerLine(token(hdrRS, k.claims("bob", nil, map[string]any{"realm_access": map[string]any{"roles": []any{1, map[string]any{"admin": 1}, []string{"admin"}}}}), rs))}, status: 403, code: "role_required"},
		{family: "jwt", name: "role with a trailing space", source: "normalisation", headers: []string{bearerLine(token(hdrRS, k.claims("bob", []string{"admin "}, nil), rs))}, status: 403, code: "role_required"},
		{family: "jwt", name: "role in upper case", source: "normalisation", headers: []string{bearerLine(token(hdrRS, k.claims("bob", []string{"ADMIN"}, nil), rs))}, status: 403, code: "role_required"},
		{family: "jwt", name: "roles in the default claim, not the configured one", source: "claim confusion", headers: []string{bearerLine(token(hdrRS, k.claims("bob", nil, map[string]any{"roles": []string{"admin"}}), rs))}, status: 403, code: "role_required"},
		ok("a role as a single string", "control (claim may be a string)", token(hdrRS, k.claims("alice", nil, map[string]any{"realm_access": map[string]any{"roles": "admin"}}), rs), "alice"),
		ok("exp with a fraction", "RFC 7519 2 (NumericDate may be non-integer)", token(hdrRS, strings.Replace(admin, fmt.Sprintf(`"exp":%d`, k.now.Add(time.Hour).Unix()), fmt.Sprintf(`"exp":%d.5`, k.now.Add(time.Hour).Unix()), 1), rs), "alice"),
		// A member named like the path, with no nested realm_access at
		// all, is the only reading: namespaced claims work this way. It is
		// the issuer's to keep users from naming claims (see claimPath).
		ok("only a literal realm_access.roles member", "namespaced claims (control)", token(hdrRS, k.claims("alice", nil, map[string]any{"realm_access": nil, "realm_access.roles": []string{"admin"}}), rs), "alice"),

		// Several Authorization headers.
		{family: "jwt", name: "two Authorization headers, a valid user token first", source: "RFC 9110 5.3", headers: []string{
			bearerLine(token(hdrES, k.claims("bob", []string{"user"}, nil), es)), bearerLine(token(hdrRS, admin, rs)),
		}, status: 401, code: "invalid_credentials", detail: "more than one Authorization header"},
		{family: "jwt", name: "Bearer token and Basic together", source: "RFC 9110 5.3", headers: []string{
			bearerLine(token(hdrRS, admin, rs)), basicLine("alice:correct horse"),
		}, status: 401, code: "invalid_credentials", detail: "more than one Authorization header"},
	}
}

func basicCases() []corpusCase {
	ok := func(name, source, line, user string) corpusCase {
		return corpusCase{family: "basic", name: name, source: source, headers: []string{line}, status: 200, user: user}
	}
	bad := func(name, source string, lines []string, status int, code, detail string) corpusCase {
		return corpusCase{family: "basic", name: name, source: source, headers: lines, status: status, code: code, detail: detail}
	}
	cred := base64.StdEncoding.EncodeToString([]byte("alice:correct horse"))
	wrong := "unknown user or wrong password"
	// A credential whose base64 holds '+' or '/', to try the URL-safe
	// alphabet on it.
	var plusSlash string
	for i := range 1000 {
		s := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("alice:pw%d?>~", i)))
		if strings.ContainsAny(s, "+/") {
			plusSlash = strings.NewReplacer("+", "-", "/", "_").Replace(s)
			break
		}
	}
	return []corpusCase{
		ok("right password", "control", basicLine("alice:correct horse"), "alice"),
		ok("scheme in lower case", "RFC 7617 2 (case-insensitive)", "Authorization: basic "+cred, "alice"),
		ok("scheme in upper case", "RFC 7617 2", "Authorization: BASIC "+cred, "alice"),
		ok("two spaces after the scheme", "RFC 7235 2.1 (lenient)", "Authorization: Basic  "+cred, "alice"),
		ok("colon in the password", "RFC 7617 2 (user-id has no colon; password may)", basicLine("carol:pa:ss:word"), "carol"),
		ok("UTF-8 password", "RFC 7617 2.1 (charset UTF-8)", basicLine("dave:pässwörd"), "dave"),
		{family: "basic", name: "right password, user without the role", source: "control (403 side)", headers: []string{basicLine("bob:hunter2")}, status: 403, code: "role_required"},

		bad("wrong password", "brute force", []string{basicLine("alice:Correct horse")}, 401, "invalid_credentials", wrong),
		bad("unknown user", "user enumeration", []string{basicLine("mallory:correct horse")}, 401, "invalid_credentials", wrong),
		bad("user name in another case", "user enumeration", []string{basicLine("ALICE:correct horse")}, 401, "invalid_credentials", wrong),
		bad("user name with a trailing space", "normalisation", []string{basicLine("alice :correct horse")}, 401, "invalid_credentials", wrong),
		bad("password with a trailing NUL", "C-string truncation", []string{basicLine("alice:correct horse\x00")}, 401, "invalid_credentials", wrong),
		bad("password truncated at the colon", "parser confusion", []string{basicLine("carol:pa")}, 401, "invalid_credentials", wrong),
		bad("the stored hash as password", "pass-the-hash", []string{basicLine("alice:$2a$04$invalidinvalidinvalidinvalidinvalidinvalidinvali")}, 401, "invalid_credentials", wrong),
		bad("non-UTF-8 user name", "RFC 7617 2.1", []string{basicLine("al\xffice:correct horse")}, 401, "invalid_credentials", wrong),
		bad("Latin-1 password for a UTF-8 one", "RFC 7617 2.1", []string{basicLine("dave:p\xe4ssw\xf6rd")}, 401, "invalid_credentials", wrong),
		bad("empty user", "RFC 7617 2", []string{basicLine(":correct horse")}, 401, "invalid_credentials", `need "user:password"`),
		bad("no colon", "RFC 7617 2", []string{basicLine("alice")}, 401, "invalid_credentials", `need "user:password"`),
		bad("empty credentials", "RFC 7617 2", []string{"Authorization: Basic "}, 401, "unauthenticated", ""),
		bad("scheme alone", "RFC 7235", []string{"Authorization: Basic"}, 401, "unauthenticated", ""),
		bad("not base64", "fuzzing", []string{"Authorization: Basic %%%"}, 401, "invalid_credentials", "not base64"),
		bad("URL-safe alphabet", "base64 variants (RFC 4648 5)", []string{"Authorization: Basic " + plusSlash}, 401, "invalid_credentials", "not base64"),
		bad("padding removed", "base64 variants (RFC 4648 3.2)", []string{"Authorization: Basic " + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("alice:correct horse!")), "=")}, 401, "invalid_credentials", "not base64"),
		bad("padding doubled", "base64 variants", []string{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:correct horse!")) + "=="}, 401, "invalid_credentials", "not base64"),
		bad("space inside the base64", "base64 variants", []string{"Authorization: Basic " + cred[:8] + " " + cred[8:]}, 401, "invalid_credentials", "not base64"),
		bad("tab instead of a space", "RFC 7235 2.1 (1*SP)", []string{"Authorization: Basic\t" + cred}, 401, "unauthenticated", ""),
		bad("scheme glued to the credentials", "RFC 7235 2.1", []string{"Authorization: Basic" + cred}, 401, "unauthenticated", ""),
		bad("credentials over 4 KiB", "bounded parsing", []string{basicLine("alice:" + strings.Repeat("x", 5000))}, 401, "invalid_credentials", "too long"),
		bad("two Authorization headers, right one second", "RFC 9110 5.3", []string{basicLine("bob:hunter2"), basicLine("alice:correct horse")}, 401, "invalid_credentials", "more than one Authorization header"),
		bad("two Authorization headers, right one first", "RFC 9110 5.3", []string{basicLine("alice:correct horse"), basicLine("bob:hunter2")}, 401, "invalid_credentials", "more than one Authorization header"),
		bad("credentials in Proxy-Authorization", "RFC 9110 11.7.2 (not for the origin)", []string{"Proxy-Authorization: Basic " + cred}, 401, "unauthenticated", ""),
		bad("Digest scheme", "RFC 7616", []string{`Authorization: Digest username="alice", realm="warden"`}, 401, "unauthenticated", ""),
	}
}

func apiKeyCases() []corpusCase {
	ok := func(name, source string, lines []string, user string) corpusCase {
		return corpusCase{family: "api_key", name: name, source: source, headers: lines, status: 200, user: user}
	}
	bad := func(name, source string, lines []string, status int, code, detail string) corpusCase {
		return corpusCase{family: "api_key", name: name, source: source, headers: lines, status: status, code: code, detail: detail}
	}
	unknown := "unknown API key"
	return []corpusCase{
		ok("key header", "control", []string{"X-API-Key: " + adminAPIKey}, "admin-key"),
		ok("key header name in lower case", "RFC 9110 5.1 (names are case-insensitive)", []string{"x-api-key: " + adminAPIKey}, "admin-key"),
		ok("key with surrounding spaces", "RFC 9110 5.5 (OWS is not part of the value)", []string{"X-API-Key:   " + adminAPIKey + "  "}, "admin-key"),
		ok("key as Bearer", "control", []string{"Authorization: Bearer " + adminAPIKey}, "admin-key"),
		ok("key as bearer, scheme in lower case", "RFC 9110 11.1", []string{"Authorization: bearer " + adminAPIKey}, "admin-key"),
		{family: "api_key", name: "user key on /admin/", source: "control (403 side)", headers: []string{"X-API-Key: " + userAPIKey}, status: 403, code: "role_required"},
		{family: "api_key", name: "user key in the header, admin key as Bearer: the header decides", source: "credential confusion", headers: []string{"X-API-Key: " + userAPIKey, "Authorization: Bearer " + adminAPIKey}, status: 403, code: "role_required"},

		bad("unknown key", "guessing", []string{"X-API-Key: nope"}, 401, "invalid_credentials", unknown),
		bad("key in upper case", "normalisation", []string{"X-API-Key: " + strings.ToUpper(adminAPIKey)}, 401, "invalid_credentials", unknown),
		bad("key with a space inside", "normalisation", []string{"X-API-Key: " + adminAPIKey[:10] + " " + adminAPIKey[10:]}, 401, "invalid_credentials", unknown),
		bad("key truncated", "prefix guessing", []string{"X-API-Key: " + adminAPIKey[:len(adminAPIKey)-1]}, 401, "invalid_credentials", unknown),
		bad("key with a suffix", "prefix matching", []string{"X-API-Key: " + adminAPIKey + "x"}, 401, "invalid_credentials", unknown),
		bad("the key's hash as key", "pass-the-hash", []string{"X-API-Key: " + identity.HashKey(adminAPIKey)}, 401, "invalid_credentials", unknown),
		bad("key base64-encoded", "encoding confusion", []string{"X-API-Key: " + base64.StdEncoding.EncodeToString([]byte(adminAPIKey))}, 401, "invalid_credentials", unknown),
		bad("two key headers, admin second", "RFC 9110 5.3", []string{"X-API-Key: " + userAPIKey, "X-API-Key: " + adminAPIKey}, 401, "invalid_credentials", "more than one X-API-Key header"),
		bad("two key headers, both admin", "RFC 9110 5.3", []string{"X-API-Key: " + adminAPIKey, "X-API-Key: " + adminAPIKey}, 401, "invalid_credentials", "more than one X-API-Key header"),
		bad("two Bearer keys", "RFC 9110 5.3", []string{"Authorization: Bearer " + userAPIKey, "Authorization: Bearer " + adminAPIKey}, 401, "invalid_credentials", "more than one Authorization header"),
		bad("key header spelled with underscores", "CGI header mapping", []string{"X_API_Key: " + adminAPIKey}, 401, "unauthenticated", ""),
		bad("empty key header", "RFC 9110 5.5", []string{"X-API-Key: "}, 401, "unauthenticated", ""),
		{family: "api_key", name: "key in the query string", source: "not read", path: "/admin/panel?api_key=" + adminAPIKey, status: 401, code: "unauthenticated"},
		{family: "api_key", name: "key in a cookie", source: "not read", headers: []string{"Cookie: X-API-Key=" + adminAPIKey}, status: 401, code: "unauthenticated"},
		bad("key as Basic password", "scheme confusion", []string{basicLine("admin-key:" + adminAPIKey)}, 401, "invalid_credentials", "unknown user or wrong password"),
		bad("key as Basic user", "scheme confusion", []string{basicLine(adminAPIKey + ":")}, 401, "invalid_credentials", "unknown user or wrong password"),
		bad("JWT-shaped opaque bearer", "issue 10 (b) (structure, not prefix)", []string{"Authorization: Bearer abc.def.ghi"}, 401, "invalid_credentials", unknown),
	}
}

// TestIdentityCorpus is the CI bar for identity: every attack refused with
// its code and its real cause in the decision log, every control let in as
// the right caller.
func TestIdentityCorpus(t *testing.T) {
	dir := t.TempDir()
	mustKey := func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	mustEC := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	kit := &jwtKit{rsaKey: mustKey(), rsaEvil: mustKey(), ecKey: mustEC(), ecEvil: mustEC(), now: time.Now()}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &kit.rsaKey.PublicKey, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
		{Key: &kit.ecKey.PublicKey, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var users strings.Builder
	for _, u := range [][2]string{{"alice", "correct horse"}, {"bob", "hunter2"}, {"carol", "pa:ss:word"}, {"dave", "pässwörd"}} {
		h, err := bcrypt.GenerateFromPassword([]byte(u[1]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&users, "%s:%s\n", u[0], h)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "user=%s;roles=%s", r.Header.Get("X-Warden-User"), r.Header.Get("X-Warden-Roles"))
	}))
	defer up.Close()
	cfg, err := config.Parse(filepath.Join(dir, "identity.yaml"), []byte(fmt.Sprintf(`
identity:
  api_keys:
    keys:
      - { id: admin-key, sha256: %q, roles: [admin] }
      - { id: user-key, sha256: %q, roles: [user] }
  jwt:
    jwks_file: %q
    issuer: %q
    audiences: [%q]
    algorithms: [RS256, ES256]
    roles_claim: realm_access.roles
  htpasswd:
    file: %q
    roles: { alice: [admin], bob: [user], carol: [admin], dave: [admin] }
rules:
  - name: admin
    when: { path: { prefix: [/admin/] } }
    require: { roles_any: [admin] }
    action: allow
handle:
  - path: /
    upstream: %s
`, identity.HashKey(adminAPIKey), identity.HashKey(userAPIKey), write("jwks.json", jwks), corpusIssuer, corpusAudience,
		write("users", []byte(users.String())), up.URL)))
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	in := gatewaytest.Start(t, cfg, slog.New(slog.NewJSONHandler(logs, nil)), nil)

	cases := slices(jwtCases(t, kit), basicCases(), apiKeyCases())
	perFamily := map[string][2]int{}
	outcomes := map[string]int{}
	for _, c := range cases {
		n := perFamily[c.family]
		if c.status == 200 {
			n[1]++
		} else {
			n[0]++
		}
		perFamily[c.family] = n
		t.Run(c.family+"/"+c.name, func(t *testing.T) {
			status, code, body, id := sendRaw(t, in.Addr, c)
			outcomes[fmt.Sprintf("%d %s", status, code)]++
			if status != c.status || code != c.code {
				t.Fatalf("[%s] got %d %q, want %d %q (body %.200s)", c.source, status, code, c.status, c.code, body)
			}
			if c.status == 200 {
				if want := "user=" + c.user + ";"; !strings.HasPrefix(body, want) {
					t.Fatalf("[%s] upstream was told %q, want %s", c.source, body, want)
				}
				return
			}
			rec := logs.record(id)
			if rec == nil {
				t.Fatalf("[%s] no decision record for request %s", c.source, id)
			}
			if rec["code"] != c.code {
				t.Errorf("[%s] logged code %v, want %s", c.source, rec["code"], c.code)
			}
			detail, _ := rec["detail"].(string)
			if c.detail != "" && !strings.Contains(detail, c.detail) {
				t.Errorf("[%s] logged detail %q, want it to name %q", c.source, detail, c.detail)
			}
			if c.detail != "signature does not verify" && strings.Contains(detail, "signature does not verify") {
				t.Errorf("[%s] blamed on the signature: %q", c.source, detail)
			}
			if len(detail) > 400 {
				t.Errorf("[%s] logged detail of %d bytes: attacker input is not bounded", c.source, len(detail))
			}
		})
	}
	var lines []string
	for k, v := range outcomes {
		lines = append(lines, fmt.Sprintf("%4d × %s", v, k))
	}
	sort.Strings(lines)
	t.Logf("%d cases (refused + let in: jwt %d + %d, basic %d + %d, api_key %d + %d):\n%s", len(cases),
		perFamily["jwt"][0], perFamily["jwt"][1], perFamily["basic"][0], perFamily["basic"][1],
		perFamily["api_key"][0], perFamily["api_key"][1], strings.Join(lines, "\n"))
	if len(cases) < 140 {
		t.Errorf("the corpus has %d cases; the bar is 140", len(cases))
	}
}

func slices(parts ...[]corpusCase) []corpusCase {
	var out []corpusCase
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// sendRaw writes the case as raw bytes and reads the answer: status, the
// refusal code from a JSON body, the body, and the request id.
func sendRaw(t *testing.T, addr string, c corpusCase) (int, string, string, string) {
	t.Helper()
	path := c.path
	if path == "" {
		path = "/admin/panel"
	}
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: corpus.test\r\nAccept: application/json\r\n", path)
	for _, h := range c.headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p struct {
		Code string `json:"code"`
	}
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		_ = json.Unmarshal(body, &p)
	}
	return resp.StatusCode, p.Code, string(body), resp.Header.Get("X-Request-Id")
}
