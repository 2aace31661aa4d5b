// Package tlsconf is warden's TLS front door: certificates from files
// (reloaded when they change) and from an ACME CA (certmagic), chosen by
// SNI; modern protocol defaults; HTTP/2; HSTS; the plain-HTTP listener that
// redirects to HTTPS and answers ACME HTTP-01 challenges.
package tlsconf

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/warden-gateway/warden/internal/config"
)

// DefaultReloadInterval is how often certificate files are checked.
const DefaultReloadInterval = 5 * time.Second

// Options are what the caller knows beyond the tls section.
type Options struct {
	// Base is the folder relative paths are taken from (the policy's).
	Base   string
	Logger *slog.Logger
	// HTTPPort and TLSPort are the ports the redirect listener and the
	// HTTPS listener are bound to, where ACME challenges arrive.
	HTTPPort, TLSPort int
	// RequestClientCert asks clients for a certificate (mTLS identity).
	// It is requested, not verified, in the handshake: verification is
	// the policy's, so a missing or untrusted certificate is a refusal
	// that says what is wrong, not a failed handshake.
	RequestClientCert bool
	// ACMERenewCheck is how often the certificate cache looks for
	// certificates due for renewal (0: certmagic's 10 minutes), and
	// ACMERenewalRatio the share of a lifetime left when renewal starts
	// (0: a third). Tests with short-lived certificates shorten both.
	ACMERenewCheck   time.Duration
	ACMERenewalRatio float64
	// ACMELogger receives certmagic's log (nil: JSON on stderr).
	ACMELogger *zap.Logger
}

// Manager holds the TLS configuration in service.
type Manager struct {
	cfg       *tls.Config
	files     *fileCerts
	acme      *acmeManager
	hsts      string
	interval  time.Duration
	log       *slog.Logger
	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New validates the tls section and loads its certificates. Errors carry
// the section's file:line.
func New(c *config.TLS, opt Options) (*Manager, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{log: opt.Logger, interval: DefaultReloadInterval}
	if c.ReloadInterval.Duration > 0 {
		m.interval = c.ReloadInterval.Duration
	}
	var errs config.Errors
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(opt.Base, p)
	}
	var pairs [][2]string
	addPair := func(pos config.Pos, cert, key config.Scalar) {
		if cert.Value == "" || key.Value == "" {
			errs = append(errs, &config.Error{Pos: pos, Msg: "tls: a certificate needs both cert_file and key_file"})
			return
		}
		pairs = append(pairs, [2]string{abs(cert.Value), abs(key.Value)})
	}
	if c.CertFile.Value != "" || c.KeyFile.Value != "" {
		addPair(c.Pos, c.CertFile, c.KeyFile)
	}
	for _, p := range c.Certificates {
		addPair(p.Pos, p.CertFile, p.KeyFile)
	}
	if len(pairs) == 0 && c.ACME == nil {
		errs = append(errs, &config.Error{Pos: c.Pos, Msg: "tls: no certificate", Hint: "give cert_file and key_file, certificates, or acme"})
	}
	if len(pairs) > 0 && len(errs) == 0 {
		fc, err := newFileCerts(pairs)
		if err != nil {
			errs = append(errs, &config.Error{Pos: c.Pos, Msg: err.Error()})
		}
		m.files = fc
	}
	minVersion := uint16(tls.VersionTLS12)
	switch c.MinVersion.Value {
	case "", "1.2":
	case "1.3":
		minVersion = tls.VersionTLS13
	default:
		errs = append(errs, &config.Error{Pos: c.MinVersion.Pos, Msg: fmt.Sprintf("tls.min_version must be 1.2 or 1.3, not %q", c.MinVersion.Value),
			Hint: "TLS 1.0 and 1.1 are deprecated (RFC 8996)"})
	}
	if c.HSTS != nil {
		m.hsts = hstsValue(c.HSTS)
		if c.HSTS.MaxAge.Duration <= 0 {
			errs = append(errs, &config.Error{Pos: c.HSTS.Pos, Msg: "tls.hsts needs max_age, such as 8760h (a year)"})
		} else if c.HSTS.Preload && (c.HSTS.MaxAge.Duration < 365*24*time.Hour || !c.HSTS.IncludeSubdomains) {
			// https://hstspreload.org/#submission-requirements
			errs = append(errs, &config.Error{Pos: c.HSTS.Pos, Msg: "tls.hsts preload needs max_age of at least 8760h and include_subdomains"})
		}
	}
	if c.RedirectHTTP.Value != "" {
		if _, _, err := net.SplitHostPort(c.RedirectHTTP.Value); err != nil {
			errs = append(errs, &config.Error{Pos: c.RedirectHTTP.Pos, Msg: fmt.Sprintf("tls.redirect_http: %v", err), Hint: "an address such as :80"})
		}
	}
	if c.ACME != nil && len(errs) == 0 {
		a, aerrs := newACME(c, opt, abs)
		errs = append(errs, aerrs...)
		m.acme = a
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs.Err()
	}
	// TLS 1.2 suites: Mozilla's "intermediate" list, forward-secret AEAD
	// only. Go's defaults still hold the ECDHE CBC-SHA1 suites, which are
	// open to Lucky13-style padding-oracle timing (CVE-2013-0169); 3DES
	// (CVE-2016-2183) and RSA key exchange are already out. TLS 1.3 suites
	// are not configurable and all sound.
	m.cfg = &tls.Config{
		MinVersion:     minVersion,
		CipherSuites:   modernSuites,
		GetCertificate: m.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if c.HTTP2 != nil && !*c.HTTP2 {
		m.cfg.NextProtos = []string{"http/1.1"}
	}
	if m.acme != nil && m.acme.tlsALPN {
		// RFC 8737: the CA validates with a handshake that offers only
		// acme-tls/1; the certificate then comes from the ACME solver.
		m.cfg.NextProtos = append(m.cfg.NextProtos, acmeTLS1)
	}
	if opt.RequestClientCert {
		m.cfg.ClientAuth = tls.RequestClientCert
	}
	return m, nil
}

const acmeTLS1 = "acme-tls/1"

var modernSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func hstsValue(h *config.HSTS) string {
	v := "max-age=" + strconv.FormatInt(int64(h.MaxAge.Duration/time.Second), 10)
	if h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return v
}

// TLSConfig is the server's TLS configuration. HTTP/2 is offered in
// NextProtos, which is how net/http's Server.Serve knows to speak it.
func (m *Manager) TLSConfig() *tls.Config { return m.cfg }

// HTTP2 reports whether h2 is offered.
func (m *Manager) HTTP2() bool { return slices.Contains(m.cfg.NextProtos, "h2") }

func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m.acme != nil && slices.Contains(hello.SupportedProtos, acmeTLS1) {
		return m.acme.magic.GetCertificate(hello)
	}
	var def *tls.Certificate
	if m.files != nil {
		c, ok := m.files.match(hello.ServerName)
		if ok {
			return c, nil
		}
		def = c
	}
	if m.acme != nil && hello.ServerName != "" {
		c, err := m.acme.magic.GetCertificate(hello)
		if err == nil || def == nil {
			return c, err
		}
	}
	if def != nil {
		// No SNI (a client that connects by address) or a name no
		// certificate covers: the first configured certificate, which the
		// client will reject if it does not cover the name it wanted.
		return def, nil
	}
	return nil, errors.New("tls: no certificate for this server name")
}

// Start runs the background work: watching certificate files, obtaining
// and renewing ACME certificates.
func (m *Manager) Start(ctx context.Context) error {
	ctx, m.stop = context.WithCancel(ctx)
	if m.files != nil {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.watch(ctx)
		}()
	}
	if m.acme != nil {
		return m.acme.start(ctx)
	}
	return nil
}

// Close stops the background work.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		if m.stop != nil {
			m.stop()
		}
		m.wg.Wait()
		if m.acme != nil {
			m.acme.close()
		}
	})
}

func (m *Manager) watch(ctx context.Context) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		loaded, errs := m.files.reload()
		for _, f := range loaded {
			m.log.Info("tls certificate reloaded", "file", f)
		}
		for _, err := range errs {
			m.log.Warn("tls certificate not reloaded; the previous one keeps serving", "error", err.Error())
		}
	}
}

// WrapHSTS adds Strict-Transport-Security to every response of h (when
// hsts is configured). Sent over HTTPS only, as RFC 6797 section 7.2
// requires; the redirect listener never sends it.
func (m *Manager) WrapHSTS(h http.Handler) http.Handler {
	if m.hsts == "" {
		return h
	}
	v := []string{m.hsts}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Strict-Transport-Security"] = v
		h.ServeHTTP(w, r)
	})
}

// RedirectHandler answers plain-HTTP requests: ACME HTTP-01 challenges,
// and for everything else a 308 to the same URL over HTTPS (308 keeps the
// method and body, RFC 9110 15.4.9). httpsPort is the HTTPS listener's
// port, left out of the URL when it is 443.
func (m *Manager) RedirectHandler(httpsPort int) http.Handler {
	redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" || strings.ContainsAny(host, "/\\@?#") {
			http.Error(w, "bad Host header", http.StatusBadRequest)
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]" // IPv6 literal
		}
		if httpsPort != 443 && httpsPort != 0 {
			host += ":" + strconv.Itoa(httpsPort)
		}
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
	if m.acme != nil && m.acme.http01 {
		return m.acme.issuer.HTTPChallengeHandler(redirect)
	}
	return redirect
}
