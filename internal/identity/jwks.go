package identity

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWKSBytes bounds a JWKS document: real ones are a few kilobytes, and a
// misbehaving endpoint must not make warden buffer gigabytes.
const maxJWKSBytes = 1 << 20

// minRSABits refuses RSA keys too short to be trusted with signatures.
const minRSABits = 2048

// verificationKey is one usable public (or, for HS*, shared) key.
type verificationKey struct {
	kid string
	// alg is the JWK "alg" member: when set, only that algorithm may use
	// the key (RFC 7517 4.4), which is what stops algorithm confusion at the
	// key level too.
	alg string
	// key is *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte.
	key any
}

// KeySet is an immutable snapshot of verification keys. The JWT
// authenticator holds the current one in an atomic pointer and swaps it whole
// when the JWKS changes, so verification never sees a half-updated set.
type KeySet struct {
	keys  []verificationKey
	byKID map[string][]int
	// digest identifies the document the set came from, so a refresh that
	// returns the same document keeps the same snapshot (and the token
	// verification cache stays warm).
	digest [32]byte
	// Skipped lists keys of the document that were not usable and why.
	Skipped []string
}

// Len returns the number of usable keys.
func (s *KeySet) Len() int { return len(s.keys) }

// KeyIDs returns the key ids of the usable keys, in document order.
func (s *KeySet) KeyIDs() []string {
	out := make([]string, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, k.kid)
	}
	return out
}

// candidates returns the keys that may verify a token signed with alg and
// carrying key id kid. A token without kid may be verified by any key that
// fits the algorithm; known is false when kid is set and absent from the set.
func (s *KeySet) candidates(kid, alg string) (keys []verificationKey, known bool) {
	if kid != "" {
		idx, ok := s.byKID[kid]
		if !ok {
			return nil, false
		}
		for _, i := range idx {
			if keyFitsAlg(s.keys[i], alg) {
				keys = append(keys, s.keys[i])
			}
		}
		return keys, true
	}
	for _, k := range s.keys {
		if keyFitsAlg(k, alg) {
			keys = append(keys, k)
		}
	}
	return keys, true
}

// keyFitsAlg reports whether a token signed with alg may be checked with k.
// go-jose refuses mismatched key types as well; checking here too keeps the
// guarantee independent of library internals and gives a clear error.
func keyFitsAlg(k verificationKey, alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return key.Curve == elliptic.P256()
		case "ES384":
			return key.Curve == elliptic.P384()
		case "ES512":
			return key.Curve == elliptic.P521()
		}
		return false
	case ed25519.PublicKey:
		return alg == "EdDSA"
	case []byte:
		return strings.HasPrefix(alg, "HS")
	}
	return false
}

// ParseJWKS reads a JSON Web Key Set. With hmac set only symmetric ("oct")
// keys are used, otherwise only asymmetric ones, so one authenticator never
// holds both kinds and an RSA public key can never serve as an HMAC secret.
// Keys that cannot verify signatures (an encryption key, an unknown key
// type, an RSA key under 2048 bits, a key of the other kind) are skipped and
// listed in KeySet.Skipped; a set with no usable key at all is an error.
// Private key material in the document is reduced to its public half.
func ParseJWKS(data []byte, hmac bool) (*KeySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("JWKS is not a JSON object with a \"keys\" list: %w", err)
	}
	set := &KeySet{byKID: make(map[string][]int), digest: sha256.Sum256(data)}
	for i, raw := range doc.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			set.Skipped = append(set.Skipped, fmt.Sprintf("key #%d: %v", i+1, err))
			continue
		}
		name := fmt.Sprintf("key #%d", i+1)
		if jwk.KeyID != "" {
			name = fmt.Sprintf("key %q", jwk.KeyID)
		}
		if jwk.Use != "" && jwk.Use != "sig" {
			set.Skipped = append(set.Skipped, fmt.Sprintf("%s: use %q is not \"sig\"", name, jwk.Use))
			continue
		}
		if !jwk.IsPublic() {
			if _, symmetric := jwk.Key.([]byte); !symmetric {
				jwk = jwk.Public()
			}
		}
		vk := verificationKey{kid: jwk.KeyID, alg: jwk.Algorithm}
		_, isOct := jwk.Key.([]byte)
		if isOct != hmac {
			if hmac {
				set.Skipped = append(set.Skipped, fmt.Sprintf("%s: asymmetric key, but the algorithms are HS*", name))
			} else {
				set.Skipped = append(set.Skipped, fmt.Sprintf("%s: symmetric (oct) key, but the algorithms are asymmetric", name))
			}
			continue
		}
		switch key := jwk.Key.(type) {
		case *rsa.PublicKey:
			if key.N.BitLen() < minRSABits {
				set.Skipped = append(set.Skipped, fmt.Sprintf("%s: RSA key of %d bits is too short (need %d)", name, key.N.BitLen(), minRSABits))
				continue
			}
			vk.key = key
		case *ecdsa.PublicKey, ed25519.PublicKey:
			vk.key = key
		case []byte:
			if len(key) < 32 {
				set.Skipped = append(set.Skipped, fmt.Sprintf("%s: symmetric key of %d bytes is too short (need 32)", name, len(key)))
				continue
			}
			vk.key = slices.Clone(key)
		default:
			set.Skipped = append(set.Skipped, fmt.Sprintf("%s: unsupported key type %T", name, jwk.Key))
			continue
		}
		set.byKID[vk.kid] = append(set.byKID[vk.kid], len(set.keys))
		set.keys = append(set.keys, vk)
	}
	if len(set.keys) == 0 {
		if len(set.Skipped) > 0 {
			return nil, fmt.Errorf("JWKS holds no usable signing key (%s)", strings.Join(set.Skipped, "; "))
		}
		return nil, errors.New("JWKS holds no keys")
	}
	return set, nil
}

// fetchJWKS downloads a JWKS document. It runs only in Refresh and the
// background loop, never on the request path.
func fetchJWKS(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("JWKS request for %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS from %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching JWKS from %s: HTTP status %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading JWKS from %s: %w", url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS from %s is larger than %d bytes", url, maxJWKSBytes)
	}
	return bytes.TrimSpace(body), nil
}
