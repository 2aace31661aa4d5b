package tlsconf

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/warden-gateway/warden/internal/config"
)

// acmeManager obtains and renews certificates with certmagic.
type acmeManager struct {
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	cache   *certmagic.Cache
	domains []string
	// onDemand are the names (exact, or "*.example.com" for one label)
	// a handshake may obtain a certificate for.
	onDemand        []string
	http01, tlsALPN bool
}

func newACME(c *config.TLS, opt Options, abs func(string) string) (*acmeManager, config.Errors) {
	a := c.ACME
	var errs config.Errors
	am := &acmeManager{}
	for _, d := range a.Domains {
		n, err := hostName(d.Value, false)
		if err != nil {
			errs = append(errs, &config.Error{Pos: d.Pos, Msg: "tls.acme.domains: " + err.Error()})
			continue
		}
		am.domains = append(am.domains, n)
	}
	for _, d := range a.OnDemand {
		n, err := hostName(d.Value, true)
		if err != nil {
			errs = append(errs, &config.Error{Pos: d.Pos, Msg: "tls.acme.on_demand: " + err.Error()})
			continue
		}
		am.onDemand = append(am.onDemand, n)
	}
	if len(am.domains) == 0 && len(am.onDemand) == 0 && len(errs) == 0 {
		errs = append(errs, &config.Error{Pos: a.Pos, Msg: "tls.acme needs domains or on_demand (an allow list of host names)"})
	}
	if len(a.Challenges) == 0 {
		am.tlsALPN = true
		am.http01 = c.RedirectHTTP.Value != ""
	}
	for _, ch := range a.Challenges {
		switch ch.Value {
		case "http-01":
			if c.RedirectHTTP.Value == "" {
				errs = append(errs, &config.Error{Pos: ch.Pos, Msg: "tls.acme: http-01 needs tls.redirect_http (the CA connects to port 80)"})
			}
			am.http01 = true
		case "tls-alpn-01":
			am.tlsALPN = true
		default:
			errs = append(errs, &config.Error{Pos: ch.Pos, Msg: fmt.Sprintf("tls.acme.challenges: %q is not http-01 or tls-alpn-01", ch.Value),
				Hint: "dns-01 needs a DNS provider and is not built in"})
		}
	}
	var roots *x509.CertPool
	if a.CARoot.Value != "" {
		pem, err := os.ReadFile(abs(a.CARoot.Value))
		if err != nil {
			errs = append(errs, &config.Error{Pos: a.CARoot.Pos, Msg: "tls.acme.ca_root: " + err.Error()})
		} else {
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				errs = append(errs, &config.Error{Pos: a.CARoot.Pos, Msg: "tls.acme.ca_root: no PEM certificate in " + a.CARoot.Value})
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	storage := a.Storage.Value
	if storage == "" {
		storage = "acme"
	}
	logger := opt.ACMELogger
	if logger == nil {
		logger = zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(os.Stderr), zapcore.InfoLevel))
	}
	var cfgPtr *certmagic.Config
	am.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return cfgPtr, nil },
		RenewCheckInterval: opt.ACMERenewCheck,
		Logger:             logger,
	})
	mc := certmagic.Config{
		Storage:            &certmagic.FileStorage{Path: abs(storage)},
		Logger:             logger,
		RenewalWindowRatio: opt.ACMERenewalRatio,
	}
	if len(am.onDemand) > 0 {
		mc.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: am.allowOnDemand}
	}
	cfgPtr = certmagic.New(am.cache, mc)
	am.magic = cfgPtr
	am.issuer = certmagic.NewACMEIssuer(cfgPtr, certmagic.ACMEIssuer{
		CA:                      a.CA.Value,
		Email:                   a.Email.Value,
		Agreed:                  true,
		DisableHTTPChallenge:    !am.http01,
		DisableTLSALPNChallenge: !am.tlsALPN,
		// The challenges arrive on warden's own listeners; certmagic
		// finds the ports taken and answers through the handlers warden
		// installs (RedirectHandler, getCertificate).
		AltHTTPPort:    opt.HTTPPort,
		AltTLSALPNPort: opt.TLSPort,
		TrustedRoots:   roots,
		Logger:         logger,
	})
	cfgPtr.Issuers = []certmagic.Issuer{am.issuer}
	return am, nil
}

func (am *acmeManager) start(ctx context.Context) error {
	if len(am.domains) == 0 {
		return nil
	}
	// Async: a CA that is down must not keep warden from serving what
	// it already has; certmagic retries with backoff.
	return am.magic.ManageAsync(ctx, am.domains)
}

func (am *acmeManager) close() { am.cache.Stop() }

// allowOnDemand is the on-demand gate: a certificate is requested only for
// a name on the allow list, so that a client cannot make warden ask the CA
// for names of its choosing (and use up the CA's rate limits).
func (am *acmeManager) allowOnDemand(_ context.Context, name string) error {
	if allowedName(am.onDemand, name) {
		return nil
	}
	return fmt.Errorf("%q is not on tls.acme.on_demand", name)
}

func allowedName(list []string, name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, p := range list {
		if p == name {
			return true
		}
		if rest, ok := strings.CutPrefix(p, "*."); ok {
			if i := strings.IndexByte(name, '.'); i > 0 && name[i+1:] == rest {
				return true
			}
		}
	}
	return false
}

// hostName checks a configured DNS name.
func hostName(s string, wildcard bool) (string, error) {
	n := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
	check := n
	if wildcard {
		check = strings.TrimPrefix(n, "*.")
	}
	if check == "" || strings.ContainsAny(check, "*/:@ ") || !strings.Contains(check, ".") && check != "localhost" {
		return "", fmt.Errorf("%q is not a host name", s)
	}
	return n, nil
}
