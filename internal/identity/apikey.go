package identity

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
)

// APIKey is one key as configured: only its SHA-256 is kept.
type APIKey struct {
	ID     string
	SHA256 [32]byte
	Roles  []string
	Scopes []string
}

// ParseKeyHash reads a key hash written as "sha256:<64 hex digits>".
func ParseKeyHash(s string) ([32]byte, error) {
	var h [32]byte
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return h, fmt.Errorf("key hash %q must start with \"sha256:\" (make one with: warden hash-key KEY)", s)
	}
	b, err := hex.DecodeString(hexPart)
	if err != nil || len(b) != 32 {
		return h, fmt.Errorf("key hash %q: want 64 hex digits after \"sha256:\"", s)
	}
	copy(h[:], b)
	return h, nil
}

// HashKey returns the "sha256:..." form of a plain key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// APIKeys authenticates a key sent in a header (default X-API-Key) or as
// "Authorization: Bearer <key>". Keys are compared as SHA-256 digests in
// constant time, against every configured key, so timing says nothing about
// which key came close.
type APIKeys struct {
	Header string
	// Bearer also accepts the key from "Authorization: Bearer".
	Bearer bool
	Keys   []APIKey
}

func (a *APIKeys) Name() string { return "api_keys" }

func (a *APIKeys) Challenge(invalid bool) string {
	return fmt.Sprintf(`ApiKey realm="warden", header=%q`, a.header())
}

func (a *APIKeys) header() string {
	if a.Header == "" {
		return "X-API-Key"
	}
	return a.Header
}

// Authenticate implements Authenticator.
func (a *APIKeys) Authenticate(r *canonical.Request, _ time.Time) (*Principal, error) {
	// A repeated key header or Authorization header is refused, not read
	// one way here and another upstream (see errTooManyAuthorization).
	if len(r.Header.Values(a.header())) > 1 {
		return nil, fmt.Errorf("%w: more than one %s header", ErrInvalid, a.header())
	}
	key := r.Header.Get(a.header())
	if key == "" && a.Bearer {
		if v, ok := bearer(r.Header); ok && !looksLikeJWT(v) {
			if repeatedScheme(r.Header, "bearer ") {
				return nil, errTooManyAuthorization
			}
			key = v
		}
	}
	if key == "" {
		return nil, nil
	}
	sum := sha256.Sum256([]byte(key))
	var found *APIKey
	for i := range a.Keys {
		if subtle.ConstantTimeCompare(sum[:], a.Keys[i].SHA256[:]) == 1 {
			found = &a.Keys[i]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: unknown API key", ErrInvalid)
	}
	return &Principal{ID: found.ID, Method: "api_key", Roles: found.Roles, Scopes: found.Scopes}, nil
}

func bearer(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:]), true
	}
	return "", false
}
