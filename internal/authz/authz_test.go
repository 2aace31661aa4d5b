package authz_test

import (
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
)

// Mistakes in the decision-service sections are reported by the one Build
// that `warden check` and `warden serve` run, each with its file:line.
func TestServiceSectionsAreChecked(t *testing.T) {
	src := `rules:
  - name: x
    when: { path: { prefix: [/a/] } }
    action: deny
forward_auth:
  listen: nope
  peers: [10.0.0.1/8, 127.0.0.1]
ext_authz:
  max_request_bytes: -1
`
	cfg, err := config.Parse("policy.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.Build(cfg, engine.Options{})
	if err == nil {
		t.Fatal("Build accepted broken forward_auth and ext_authz sections")
	}
	for _, want := range []string{
		`policy.yaml:6: forward_auth.listen "nope"`,
		`policy.yaml:7: forward_auth.peers: "10.0.0.1/8" has host bits set`,
		`policy.yaml:9: ext_authz needs listen`,
		`policy.yaml:9: ext_authz needs peers`,
		`policy.yaml:9: ext_authz.max_request_bytes must be positive`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the errors lack %q:\n%v", want, err)
		}
	}

	ok := `forward_auth: { listen: "127.0.0.1:9091", peers: [127.0.0.1/32] }
ext_authz: { listen: "127.0.0.1:9091", peers: ["::1"] }
`
	cfg, err = config.Parse("policy.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Build(cfg, engine.Options{}); err == nil || !strings.Contains(err.Error(), "policy.yaml:2: ext_authz.listen 127.0.0.1:9091 is forward_auth's address too") {
		t.Errorf("two services on one address: %v", err)
	}
}
