// Package demo is the policy and site `warden serve` runs with no config, so
// a newcomer meets every kind of refusal in a minute.
package demo

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"io/fs"
	"strings"

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

// Demo is a demo policy with fresh API keys.
type Demo struct {
	Config   *config.Config
	AdminKey string
	UserKey  string
	YAML     string
}

// New makes the demo config with two new random API keys; only their
// hashes go into the policy, as in a real one.
func New() (*Demo, error) {
	d := &Demo{AdminKey: "wk_admin_" + randomHex(12), UserKey: "wk_user_" + randomHex(12)}
	return d, d.build()
}

// NewWithKeys makes the demo with given keys, for tests.
func NewWithKeys(admin, user string) (*Demo, error) {
	d := &Demo{AdminKey: admin, UserKey: user}
	return d, d.build()
}

func (d *Demo) build() error {
	d.YAML = strings.NewReplacer(
		"{{ADMIN_KEY_HASH}}", identity.HashKey(d.AdminKey),
		"{{USER_KEY_HASH}}", identity.HashKey(d.UserKey),
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
