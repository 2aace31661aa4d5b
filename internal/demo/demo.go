// Package demo is the policy and site `warden serve` runs with no config, so
// a newcomer meets every kind of refusal in a minute.
package demo

import (
	"crypto"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/identity"
)

//go:embed policy.yaml
var policyYAML string

//go:embed all:site
var siteFS embed.FS

// Site is the embedded demo site.
func Site() fs.FS {
	sub, err := fs.Sub(siteFS, "site")
	if err != nil {
		panic(err) // the embed is fixed at build time
	}
	return sub
}

// Demo is a demo policy with fresh API keys and a fresh token-signing key.
type Demo struct {
	Config   *config.Config
	AdminKey string
	UserKey  string
	YAML     string
	// Dir holds the demo's JWKS and signing key; Close removes it.
	Dir string
	// SigningKeyFile is the private JWK `warden token --key` mints with.
	SigningKeyFile string
	signer         crypto.Signer
	kid            string
}

// Issuer and Audience of demo tokens.
const (
	Issuer   = "warden-demo"
	Audience = "warden-demo-api"
)

// New makes the demo config with two new random API keys; only their
// hashes go into the policy, as in a real one.
func New() (*Demo, error) {
	return NewWithKeys("wk_admin_"+randomHex(12), "wk_user_"+randomHex(12))
}

// NewWithKeys makes the demo with given API keys, for tests.
func NewWithKeys(admin, user string) (*Demo, error) {
	d := &Demo{AdminKey: admin, UserKey: user}
	if err := d.build(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Token mints a demo JWT for subject with roles, valid for ttl.
func (d *Demo) Token(subject string, roles []string, ttl time.Duration) (string, error) {
	return identity.MintToken(d.signer, d.kid, "EdDSA", Issuer, Audience, subject, roles, ttl, time.Now())
}

// Close removes the demo's key folder.
func (d *Demo) Close() {
	if d.Dir != "" {
		os.RemoveAll(d.Dir)
	}
}

func (d *Demo) build() error {
	jwks, signer, kid, err := identity.GenerateDemoKey()
	if err != nil {
		return err
	}
	d.signer, d.kid = signer, kid
	if d.Dir, err = os.MkdirTemp("", "warden-demo-"); err != nil {
		return err
	}
	jwksFile := filepath.Join(d.Dir, "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o644); err != nil {
		return err
	}
	priv, err := identity.MarshalSigningKey(signer, kid)
	if err != nil {
		return err
	}
	d.SigningKeyFile = filepath.Join(d.Dir, "signing-key.jwk")
	if err := os.WriteFile(d.SigningKeyFile, priv, 0o600); err != nil {
		return err
	}
	d.YAML = strings.NewReplacer(
		"{{ADMIN_KEY_HASH}}", identity.HashKey(d.AdminKey),
		"{{USER_KEY_HASH}}", identity.HashKey(d.UserKey),
		"{{JWKS_FILE}}", jwksFile,
	).Replace(policyYAML)
	cfg, err := config.Parse("demo/policy.yaml", []byte(d.YAML))
	if err != nil {
		return err
	}
	d.Config = cfg
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// PolicyYAML is the demo policy as embedded, with its {{PLACEHOLDERS}}.
func PolicyYAML() string { return policyYAML }
