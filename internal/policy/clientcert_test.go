package policy_test

import (
	"strings"
	"testing"
)

// TestClientCertConfigErrors: a rule cannot require a client certificate
// no CA is configured for, and the CA file must hold certificates.
func TestClientCertConfigErrors(t *testing.T) {
	errs := compileErrors(t, `
rules:
  - name: machines
    require: { client_cert: true }
    action: allow
`)
	if len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), `p.yaml:4: rule "machines" requires a client certificate but none is configured`) {
		t.Errorf("got %q", errs)
	}
	errs = compileErrors(t, `
identity:
  client_cert: { ca_file: /nonexistent/ca.pem }
`)
	if len(errs) != 1 || !strings.Contains(errs[0], "p.yaml:3: identity.client_cert:") {
		t.Errorf("got %q", errs)
	}
}
