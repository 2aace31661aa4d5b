package tlsconf_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/tlsconf"
	"github.com/warden-gateway/warden/internal/tlsconf/tlstest"
)

// serveTLS serves h over HTTPS with the tls section yaml (under a policy
// file in dir) on a real loopback listener, the way `warden serve` does,
// and returns the address.
func serveTLS(t testing.TB, dir, section string, h http.Handler) (*tlsconf.Manager, string) {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(dir, "w.yaml"), []byte(section))
	if err != nil {
		t.Fatal(err)
	}
	m, err := tlsconf.New(cfg.TLS, tlsconf.Options{Base: dir})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := gateway.NewHTTPServer("", m.WrapHSTS(h), &cfg.Limits)
	hs.TLSConfig = m.TLSConfig()
	go hs.Serve(gateway.ServeTLSOn(hs, ln, &cfg.Limits))
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close(); m.Close() })
	return m, ln.Addr().String()
}

func hello(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%s %s", r.Proto, r.Host)
}

// client trusts ca only, connects to addr whatever the URL's host, and
// offers h2 when h2 is set.
func client(ca *tlstest.CA, addr string, h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.Pool()},
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// peerCert handshakes with serverName and returns the certificate served.
func peerCert(t *testing.T, addr, serverName string) (*tls.ConnectionState, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st := c.ConnectionState()
	return &st, nil
}

// TestCertificatesBySNI: each name gets its own certificate, a wildcard
// covers one label, and a name no certificate covers gets the first one
// (which a client then rejects), not a failed handshake.
func TestCertificatesBySNI(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	ca.Issue(t, tlstest.Spec{CN: "a", DNS: []string{"a.test"}}).Write(t, dir, "a")
	ca.Issue(t, tlstest.Spec{CN: "b", DNS: []string{"b.test", "*.b.test"}}).Write(t, dir, "b")
	_, addr := serveTLS(t, dir, `
tls:
  certificates:
    - { cert_file: a.crt, key_file: a.key }
    - { cert_file: b.crt, key_file: b.key }
`, http.HandlerFunc(hello))
	for _, c := range []struct{ sni, wantCN string }{
		{"a.test", "a"}, {"b.test", "b"}, {"www.b.test", "b"}, {"A.TEST", "a"},
		{"x.www.b.test", "a"}, {"other.test", "a"}, {"", "a"},
	} {
		st, err := peerCert(t, addr, c.sni)
		if err != nil {
			t.Fatalf("%q: %v", c.sni, err)
		}
		if got := st.PeerCertificates[0].Subject.CommonName; got != c.wantCN {
			t.Errorf("SNI %q: got certificate %q, want %q", c.sni, got, c.wantCN)
		}
	}
	// Through a verifying client, by name: HTTP/2 by default.
	cl := client(ca, addr, true)
	code, body, err := get(cl, "https://a.test/")
	if err != nil || code != 200 || body != "HTTP/2.0 a.test" {
		t.Errorf("a.test: %d %q %v", code, body, err)
	}
	if _, _, err := get(cl, "https://other.test/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("other.test must fail verification, got %v", err)
	}
}

func get(cl *http.Client, url string) (int, string, error) {
	resp, err := cl.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestReloadsChangedFiles: a renewed certificate written over the old
// files is served to new handshakes without a restart; a pair that does not
// load (the certificate written before its key) leaves the old one serving.
func TestReloadsChangedFiles(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	first := ca.Issue(t, tlstest.Spec{CN: "first", DNS: []string{"a.test"}})
	first.Write(t, dir, "a")
	_, addr := serveTLS(t, dir, "tls: { cert_file: a.crt, key_file: a.key, reload_interval: 20ms }\n", http.HandlerFunc(hello))
	served := func() string {
		st, err := peerCert(t, addr, "a.test")
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "first" {
		t.Fatalf("served %q", got)
	}
	// Half a renewal: the new certificate, the old key. Not served.
	second := ca.Issue(t, tlstest.Spec{CN: "second", DNS: []string{"a.test"}})
	if err := os.WriteFile(filepath.Join(dir, "a.crt"), second.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := served(); got != "first" {
		t.Fatalf("a certificate without its key was served: %q", got)
	}
	// The key follows: the new pair is served.
	if err := os.WriteFile(filepath.Join(dir, "a.key"), second.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for served() != "second" {
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was not picked up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProtocolDefaults: TLS 1.0 and 1.1 are refused (RFC 8996); no
// CBC-mode or RSA-key-exchange suite is accepted in TLS 1.2; HTTP/2 can
// be turned off.
func TestProtocolDefaults(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	ca.Issue(t, tlstest.Spec{CN: "a", DNS: []string{"a.test"}}).Write(t, dir, "a")
	_, addr := serveTLS(t, dir, "tls: { cert_file: a.crt, key_file: a.key }\n", http.HandlerFunc(hello))
	dial := func(c *tls.Config) error {
		c.ServerName, c.RootCAs = "a.test", ca.Pool()
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("a TLS 1.1 handshake succeeded")
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12}); err != nil {
		t.Errorf("TLS 1.2: %v", err)
	}
	weak := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: weak}); err == nil {
		t.Error("a CBC-mode suite was accepted")
	}
	if code, body, err := get(client(ca, addr, false), "https://a.test/"); err != nil || code != 200 || body != "HTTP/1.1 a.test" {
		t.Errorf("HTTP/1.1 client: %d %q %v", code, body, err)
	}

	dir2 := t.TempDir()
	ca.Issue(t, tlstest.Spec{CN: "a", DNS: []string{"a.test"}}).Write(t, dir2, "a")
	_, addr2 := serveTLS(t, dir2, "tls: { cert_file: a.crt, key_file: a.key, http2: false, min_version: '1.3' }\n", http.HandlerFunc(hello))
	if code, body, err := get(client(ca, addr2, true), "https://a.test/"); err != nil || code != 200 || body != "HTTP/1.1 a.test" {
		t.Errorf("with http2: false: %d %q %v", code, body, err)
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12}); err != nil {
		t.Errorf("first server, TLS 1.2: %v", err)
	}
	c, err := tls.Dial("tcp", addr2, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12})
	if err == nil {
		c.Close()
		t.Error("min_version 1.3 accepted TLS 1.2")
	}
}

// TestRedirectAndHSTS: the plain-HTTP listener answers 308 to the same
// URL over HTTPS (no HSTS there, RFC 6797 7.2); HTTPS responses carry HSTS.
func TestRedirectAndHSTS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	ca.Issue(t, tlstest.Spec{CN: "a", DNS: []string{"a.test"}}).Write(t, dir, "a")
	m, addr := serveTLS(t, dir, `
tls:
  cert_file: a.crt
  key_file: a.key
  redirect_http: 127.0.0.1:0
  hsts: { max_age: 8760h, include_subdomains: true }
`, http.HandlerFunc(hello))
	resp, err := client(ca, addr, true).Get("https://a.test/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("HSTS: %q", got)
	}
	_, port, _ := net.SplitHostPort(addr)
	for _, c := range []struct {
		port int
		want string
	}{
		{443, "https://a.test/x/y?q=1"},
		{8443, "https://a.test:8443/x/y?q=1"},
	} {
		srv := httpServe(t, m.RedirectHandler(c.port))
		req, _ := http.NewRequest("POST", "http://"+srv+"/x/y?q=1", strings.NewReader("body"))
		req.Host = "a.test:80"
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != c.want {
			t.Errorf("redirect to port %d: %d %q", c.port, resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp.Header.Get("Strict-Transport-Security") != "" {
			t.Error("HSTS sent over plain HTTP")
		}
	}
	_ = port
}

func httpServe(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// TestConfigErrors: mistakes in the tls section are reported together,
// each with its file:line.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "w.yaml"), []byte(`tls:
  certificates:
    - { cert_file: a.crt }
  min_version: "1.0"
  hsts: { max_age: 1h, preload: true }
  redirect_http: "80"
  acme: { challenges: [dns-01] }
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tlsconf.New(cfg.TLS, tlsconf.Options{Base: dir})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"w.yaml:3: tls: a certificate needs both cert_file and key_file",
		`w.yaml:4: tls.min_version must be 1.2 or 1.3, not "1.0"`,
		"w.yaml:5: tls.hsts preload needs",
		"w.yaml:6: tls.redirect_http",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	// A missing file names the file.
	cfg, _ = config.Parse(filepath.Join(dir, "w.yaml"), []byte("tls: { cert_file: nope.crt, key_file: nope.key }\n"))
	if _, err := tlsconf.New(cfg.TLS, tlsconf.Options{Base: dir}); err == nil || !strings.Contains(err.Error(), "nope.crt") {
		t.Errorf("missing file: %v", err)
	}
}
