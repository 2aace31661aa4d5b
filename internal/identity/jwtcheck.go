package identity

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"
)

// maxClaimDepth bounds how deeply claims may nest. Real tokens nest two or
// three levels (Keycloak's resource_access.<client>.roles); deep nesting is
// only ever a parser attack.
const maxClaimDepth = 16

// maxNumericDate bounds exp, nbf and iat (seconds): about the year 36,800,
// far beyond any real token and well inside 64-bit arithmetic.
const maxNumericDate = 1 << 40

// maxQuoted bounds attacker-chosen strings (kid, iss, alg) copied into an
// error, which the decision log keeps.
const maxQuoted = 64

// looksLikeJWT tells a compact JWS from an opaque key by its structure, so
// one Authorization header can serve both authenticators: three segments
// (two dots), the first of the base64url alphabet (RFC 7515 section 2: no
// padding) decoding to what opens a JSON object, i.e. a JOSE header. The
// other two segments are not judged here: a token with a broken payload or
// signature is still a token, refused by the JWT authenticator as
// malformed, not an unknown API key. Recognising tokens by their first
// characters ("eyJ") sent a validly signed token whose header was
// serialised with a space or a newline ("ewog...") to the API-key
// authenticator, refused as "unknown API key" (issue 10).
func looksLikeJWT(v string) bool {
	if strings.Count(v, ".") != 2 {
		return false
	}
	head, _, _ := strings.Cut(v, ".")
	if head == "" || !isBase64URL(head) {
		return false
	}
	// Only the opening brace is looked for, in the first 24 bytes (32
	// characters, decoded on the stack: this runs on every bearer request):
	// a header that then fails to parse is a malformed token, refused by
	// the JWT authenticator with that reason, not an unknown API key.
	prefix := head
	if len(prefix) > 32 {
		prefix = prefix[:32]
	}
	var src [32]byte
	var dst [24]byte
	n := copy(src[:], prefix)
	m, err := base64.RawURLEncoding.Decode(dst[:], src[:n])
	if err != nil {
		return false
	}
	for _, c := range dst[:m] {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// quote shortens an attacker-chosen string for an error message.
func quote(s string) string {
	if len(s) > maxQuoted {
		return fmt.Sprintf("%q…", s[:maxQuoted])
	}
	return fmt.Sprintf("%q", s)
}

// clip bounds a parser's message, which may quote attacker input.
func clip(s string) string {
	if len(s) > 2*maxQuoted {
		return s[:2*maxQuoted] + "…"
	}
	return s
}

// errTooManyAuthorization refuses a request with more than one
// Authorization header carrying the scheme an authenticator reads: which
// copy counts differs between warden (the first), proxies and frameworks
// (some the last, some a comma-joined list), so a second copy is a way to
// be judged with one credential and served with another (RFC 9110 section
// 5.3: a field that is not a list must not be repeated).
var errTooManyAuthorization = fmt.Errorf("%w: more than one Authorization header", ErrInvalid)

// repeatedScheme reports whether h holds several Authorization headers of
// which at least one uses scheme (compared case-insensitively, with its
// trailing space, e.g. "bearer ").
func repeatedScheme(h http.Header, scheme string) bool {
	vals := h.Values("Authorization")
	if len(vals) < 2 {
		return false
	}
	for _, v := range vals {
		if len(v) >= len(scheme) && strings.EqualFold(v[:len(scheme)], scheme) {
			return true
		}
	}
	return false
}

// checkHeader refuses header parameters warden does not implement, before
// any key is tried, so the log names the parameter and not the signature.
//
//   - "crit" (RFC 7515 section 4.1.11) lists extensions the recipient must
//     understand or reject; warden understands none, including "b64"
//     (RFC 7797), which RFC 7797 section 7 says JWTs must not use.
//   - "cty": "JWT" marks a nested token (RFC 7519 section 5.2), whose inner
//     token would be trusted on the outer one's signature; warden accepts
//     only plain signed claims.
//
// "jwk", "jku", "x5u" and "x5c" are ignored rather than refused: keys come
// only from the configured JWKS, never from the token (the embedded-key
// attack of CVE-2018-0114 and the jku/x5u header injections of RFC 8725
// section 3.10 need a verifier that looks there).
func checkHeader(h jose.Header) error {
	if crit, ok := h.ExtraHeaders["crit"]; ok {
		return fmt.Errorf("%w: critical header extensions %v are not supported (crit, RFC 7515 4.1.11)", ErrInvalid, crit)
	}
	if cty, ok := h.ExtraHeaders["cty"].(string); ok && strings.EqualFold(strings.TrimPrefix(strings.ToLower(cty), "application/"), "jwt") {
		return fmt.Errorf("%w: nested token (cty %s) not accepted", ErrInvalid, quote(cty))
	}
	return nil
}

// describeParseError names why go-jose could not parse a compact token.
// go-jose reports a header it cannot read as "invalid protected header";
// the header is decoded again here to say why (a duplicate member, RFC 7515
// section 4: "MUST reject", or not a JSON object).
func describeParseError(raw string, err error) error {
	var alg *jose.ErrUnexpectedSignatureAlgorithm
	if errors.As(err, &alg) {
		return fmt.Errorf("%w: algorithm not allowed: %s", ErrInvalid, quote(string(alg.Got)))
	}
	head, _, _ := strings.Cut(raw, ".")
	if hdr, derr := base64.RawURLEncoding.DecodeString(head); derr == nil {
		var obj map[string]any
		if jerr := josejson.Unmarshal(hdr, &obj); jerr != nil {
			if strings.Contains(jerr.Error(), "duplicate key") {
				return fmt.Errorf("%w: malformed token: header holds a duplicate member (%s)", ErrInvalid, clip(strings.TrimPrefix(jerr.Error(), "json: ")))
			}
			return fmt.Errorf("%w: malformed token: header is not a JSON object: %s", ErrInvalid, clip(jerr.Error()))
		}
	}
	return fmt.Errorf("%w: malformed token: %v", ErrInvalid, err)
}

// decodeClaims reads a verified payload. It runs only after the signature
// verified, and each refusal names what is wrong with the claims, not the
// signature: a payload that is not a JSON object, a duplicate member
// (RFC 7519 section 4: "MUST either reject ... or use a JSON parser that
// returns only the lexically last duplicate member"; different parsers
// keep different copies, so warden rejects), nesting beyond maxClaimDepth,
// or a registered claim of the wrong type (RFC 7519 section 4.1).
func decodeClaims(payload []byte) (jwt.Claims, map[string]any, error) {
	var std jwt.Claims
	var all map[string]any
	// go-jose's JSON decoder refuses duplicate members, at every level.
	if err := josejson.Unmarshal(payload, &all); err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "duplicate key"):
			return std, nil, fmt.Errorf("%w: claims hold a duplicate member (%s)", ErrInvalid, clip(strings.TrimPrefix(msg, "json: ")))
		default:
			return std, nil, fmt.Errorf("%w: claims are not a JSON object: %s", ErrInvalid, clip(msg))
		}
	}
	if all == nil {
		return std, nil, fmt.Errorf("%w: claims are not a JSON object", ErrInvalid)
	}
	if depth(all, 0) > maxClaimDepth {
		return std, nil, fmt.Errorf("%w: claims nest deeper than %d levels", ErrInvalid, maxClaimDepth)
	}
	for name, kind := range registeredClaims {
		v, ok := all[name]
		if !ok {
			continue
		}
		if !kind.fits(v) {
			return std, nil, fmt.Errorf("%w: claim %q must be %s, not %s", ErrInvalid, name, kind, jsonKind(v))
		}
		// A time far outside any calendar overflows 64-bit nanoseconds
		// (and go-jose's NumericDate); name it rather than let it wrap.
		if f, isNum := v.(float64); isNum && (f > maxNumericDate || f < -maxNumericDate) {
			return std, nil, fmt.Errorf("%w: claim %q out of range (%g seconds)", ErrInvalid, name, f)
		}
	}
	if err := josejson.Unmarshal(payload, &std); err != nil {
		return std, nil, fmt.Errorf("%w: registered claims unreadable: %s", ErrInvalid, clip(err.Error()))
	}
	return std, all, nil
}

// claimKind is the JSON type a registered claim must have.
type claimKind int

const (
	kindString claimKind = iota
	kindNumber
	kindAudience // a string or a list of strings
)

var registeredClaims = map[string]claimKind{
	"iss": kindString, "sub": kindString, "jti": kindString,
	"aud": kindAudience,
	"exp": kindNumber, "nbf": kindNumber, "iat": kindNumber,
}

func (k claimKind) String() string {
	switch k {
	case kindString:
		return "a string"
	case kindNumber:
		return "a number (seconds since the epoch)"
	}
	return "a string or a list of strings"
}

func (k claimKind) fits(v any) bool {
	switch k {
	case kindString:
		_, ok := v.(string)
		return ok
	case kindNumber:
		_, ok := v.(float64)
		return ok
	}
	switch v := v.(type) {
	case string:
		return true
	case []any:
		for _, e := range v {
			if _, ok := e.(string); !ok {
				return false
			}
		}
		return true
	}
	return false
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func depth(v any, d int) int {
	if d > maxClaimDepth {
		return d
	}
	deepest := d
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			deepest = max(deepest, depth(e, d+1))
		}
	case []any:
		for _, e := range v {
			deepest = max(deepest, depth(e, d+1))
		}
	}
	return deepest
}

// errAmbiguousClaim is returned by claimPath when a dotted path names more
// than one member.
type errAmbiguousClaim struct{ path string }

func (e errAmbiguousClaim) Error() string {
	return fmt.Sprintf("claim path %q is ambiguous: the claims hold it both as a member named with dots and as nested members", e.path)
}

// claimPath resolves a dotted path in the claims. A path such as
// "realm_access.roles" can name a nested member (realm_access → roles) or
// a member whose name contains dots ("realm_access.roles" itself, as
// namespaced claims like "https://example.com/roles" do), or a mix at any
// level. When exactly one reading exists it is the claim. When more than
// one exists, the token is refused: an issuer that lets users choose claim
// names (custom attributes mapped into tokens) would otherwise let them
// choose which reading wins, and so their roles (issue 10). Taking only the
// nested form would break namespaced claims, which exist only in the
// literal form; refusing keeps both working and fails closed on the one
// case no honest issuer produces.
func claimPath(m map[string]any, path string) (any, error) {
	found, partial := collectClaim(m, path)
	switch {
	case len(found) == 0:
		return nil, nil
	case len(found) == 1 && !partial:
		return found[0], nil
	}
	return nil, errAmbiguousClaim{path}
}

// collectClaim returns every reading of path in m, and whether a nested
// reading was begun (an object member named by a prefix of the path) but
// not completed. A literal member beside a begun nested reading is refused
// too: {"realm_access": {...}, "realm_access.roles": [...]} means the
// issuer's own realm_access holds no roles and someone else named a member
// to look like them.
func collectClaim(m map[string]any, path string) (found []any, partial bool) {
	if m == nil || path == "" {
		return nil, false
	}
	if v, ok := m[path]; ok {
		found = append(found, v)
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] != '.' {
			continue
		}
		sub, ok := m[path[:i]].(map[string]any)
		if !ok {
			continue
		}
		f, p := collectClaim(sub, path[i+1:])
		if len(f) == 0 {
			partial = true
		}
		found = append(found, f...)
		partial = partial || p
	}
	return found, partial
}
