package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
)

// MethodClientCert is the Principal.Method of a caller identified by a TLS
// client certificate.
const MethodClientCert = "client_cert"

// ClientCert identifies the caller by the TLS client certificate of the
// connection (mTLS). The handshake only asks for the certificate; it is
// verified here, against the configured CAs at the request's time, so that
// a rule can say why one is not accepted instead of the handshake failing
// with no explanation.
type ClientCert struct {
	roots *x509.CertPool
	// roles maps a subject common name or a SAN to roles.
	roles map[string][]string
}

// NewClientCert reads the CA file; roles maps names to roles.
func NewClientCert(caFile string, roles map[string][]string) (*ClientCert, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &ClientCert{roots: pool, roles: roles}, nil
}

// Name implements Authenticator.
func (c *ClientCert) Name() string { return "client_cert" }

// Challenge implements Authenticator: no HTTP scheme asks for a TLS
// certificate, so there is no WWW-Authenticate value.
func (c *ClientCert) Challenge(bool) string { return "" }

// CertError is why a presented client certificate is not accepted; its
// Reason is said to the client.
type CertError struct {
	Reason string
	Err    error
}

func (e *CertError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap makes the error an ErrInvalid.
func (e *CertError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// Authenticate implements Authenticator.
func (c *ClientCert) Authenticate(r *canonical.Request, now time.Time) (*Principal, error) {
	if len(r.ClientCerts) == 0 {
		return nil, nil
	}
	leaf := r.ClientCerts[0]
	inter := x509.NewCertPool()
	for _, ic := range r.ClientCerts[1:] {
		inter.AddCert(ic)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: c.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, &CertError{Reason: certReason(leaf, err, now), Err: err}
	}
	p := &Principal{ID: leaf.Subject.CommonName, Method: MethodClientCert}
	names := certNames(leaf)
	if p.ID == "" && len(names) > 0 {
		p.ID = names[0]
	}
	for _, n := range append([]string{leaf.Subject.CommonName}, names...) {
		for _, role := range c.roles[n] {
			if !slices.Contains(p.Roles, role) {
				p.Roles = append(p.Roles, role)
			}
		}
	}
	return p, nil
}

// certNames are the certificate's subject alternative names.
func certNames(c *x509.Certificate) []string {
	out := append([]string(nil), c.DNSNames...)
	out = append(out, c.EmailAddresses...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return out
}

// certReason says, in the client's words, what is wrong with the
// certificate.
func certReason(leaf *x509.Certificate, err error, now time.Time) string {
	var inv x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		if now.Before(leaf.NotBefore) {
			return "the client certificate is not valid yet (from " + leaf.NotBefore.UTC().Format(time.RFC3339) + ")"
		}
		return "the client certificate has expired (" + leaf.NotAfter.UTC().Format(time.RFC3339) + ")"
	case errors.As(err, &ua):
		return "the client certificate is not issued by a trusted CA"
	case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
		return "the certificate is not for client authentication"
	}
	return "the client certificate is not valid"
}
