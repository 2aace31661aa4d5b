package identity

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// MintToken signs a JWT with the claims warden's JWT authenticator reads:
// iss, aud, sub, iat, nbf, exp and "roles". It serves `warden token` and
// tests, with local keys only. alg must fit the key (EdDSA for Ed25519,
// ES256 for P-256, RS256 for RSA, ...).
func MintToken(key crypto.Signer, kid, alg, issuer, audience, subject string, roles []string, ttl time.Duration, now time.Time) (string, error) {
	if key == nil {
		return "", errors.New("mint token: no signing key")
	}
	if ttl <= 0 {
		return "", errors.New("mint token: ttl must be positive")
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(alg),
		Key:       jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg},
	}, opts)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	std := jwt.Claims{
		Issuer:    issuer,
		Subject:   subject,
		Audience:  jwt.Audience{audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(ttl)),
	}
	extra := map[string]any{}
	if roles != nil {
		extra["roles"] = roles
	}
	tok, err := jwt.Signed(signer).Claims(std).Claims(extra).Serialize()
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return tok, nil
}

// GenerateDemoKey makes an Ed25519 key pair for local use: the public half
// as a JWKS document (kid, alg EdDSA, use sig) and the private half as a
// signer. The kid is the key's RFC 7638 thumbprint.
func GenerateDemoKey() (jwks []byte, signer crypto.Signer, kid string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, "", fmt.Errorf("generate demo key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: pub, Algorithm: "EdDSA", Use: "sig"}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, nil, "", fmt.Errorf("generate demo key: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	jwks, err = json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}}, "", "  ")
	if err != nil {
		return nil, nil, "", fmt.Errorf("generate demo key: %w", err)
	}
	return jwks, priv, jwk.KeyID, nil
}

// MarshalSigningKey writes a private key as a JWK (with kid and, when
// known from the key type, alg), so `warden token` can sign again later.
// The result is secret: store it with mode 0600.
func MarshalSigningKey(signer crypto.Signer, kid string) ([]byte, error) {
	jwk := jose.JSONWebKey{Key: signer, KeyID: kid, Use: "sig"}
	if _, ok := signer.(ed25519.PrivateKey); ok {
		jwk.Algorithm = "EdDSA"
	}
	if !jwk.Valid() {
		return nil, fmt.Errorf("marshal signing key: unsupported key type %T", signer)
	}
	return json.MarshalIndent(jwk, "", "  ")
}

// LoadSigningKey reads a private JWK written by MarshalSigningKey (or any
// private RSA, EC or Ed25519 JWK). alg is the JWK's "alg", or "" if absent.
func LoadSigningKey(data []byte) (signer crypto.Signer, kid, alg string, err error) {
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(data, &jwk); err != nil {
		return nil, "", "", fmt.Errorf("load signing key: %w", err)
	}
	if jwk.IsPublic() {
		return nil, "", "", errors.New("load signing key: the JWK holds only a public key")
	}
	s, ok := jwk.Key.(crypto.Signer)
	if !ok {
		return nil, "", "", fmt.Errorf("load signing key: %T cannot sign", jwk.Key)
	}
	return s, jwk.KeyID, jwk.Algorithm, nil
}
