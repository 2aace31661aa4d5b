package tlsconf_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/proctest"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/tlsconf"
	"github.com/warden-gateway/warden/internal/tlsconf/tlstest"
)

// pebble is a real ACME CA (github.com/letsencrypt/pebble, a go tool of
// this module) on loopback, resolving every name to 127.0.0.1 through a
// DNS server the test runs, so its validation of HTTP-01 and TLS-ALPN-01
// reaches warden's listeners for real.
type pebble struct {
	dir     string // directory URL
	caRoot  string // PEM file: the CA of Pebble's own HTTPS
	mgmt    string // management address (the issuing roots)
	tlsPool *x509.CertPool
	out     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// loopbackDNS answers A 127.0.0.1 for every name (and no AAAA), over UDP
// and TCP on one port (Pebble's resolver asks over TCP).
func loopbackDNS(t *testing.T) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue // the TCP port is taken; another pair
		}
		udp, tcp := &dns.Server{PacketConn: pc, Handler: h}, &dns.Server{Listener: ln, Handler: h}
		go udp.ActivateAndServe()
		go tcp.ActivateAndServe()
		t.Cleanup(func() { _ = udp.Shutdown(); _ = tcp.Shutdown() })
		return pc.LocalAddr().String()
	}
	t.Fatal("no UDP and TCP port pair free")
	return ""
}

// startPebble runs Pebble validating on httpPort and tlsPort, issuing
// certificates valid for validity.
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) *pebble {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed to run Pebble (go tool pebble)")
	}
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "pebble test CA")
	cert, key := ca.Issue(t, tlstest.Spec{CN: "localhost", DNS: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}).Write(t, dir, "pebble")
	caRoot := filepath.Join(dir, "pebble-ca.pem")
	if err := os.WriteFile(caRoot, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	api, mgmt := fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", proctest.FreePort(t))
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": api, "managementListenAddress": mgmt,
		"certificate": cert, "privateKey": key,
		"httpPort": httpPort, "tlsPort": tlsPort,
		"keyAlgorithm": "ecdsa",
		"profiles":     map[string]any{"default": map[string]any{"description": "test", "validityPeriod": int(validity / time.Second)}},
	}}
	b, _ := json.Marshal(conf)
	confFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "pebble", "-config", confFile, "-dnsserver", loopbackDNS(t))
	// No random sleeps before validating; no nonces rejected at random
	// (the client retries them, but the test is about the challenges).
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // go tool runs pebble as a child: stop both
	p := &pebble{dir: "https://" + api + "/dir", caRoot: caRoot, mgmt: mgmt, tlsPool: ca.Pool(), out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("pebble:\n%s", p.out)
		}
	})
	cl := p.client()
	deadline := time.Now().Add(120 * time.Second) // the first run compiles pebble
	for {
		resp, err := cl.Get(p.dir)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start: %v\n%s", err, p.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *pebble) client() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.tlsPool}}}
}

// issuingRoots are the roots Pebble signs with (made fresh at each start).
func (p *pebble) issuingRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.client().Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("no roots: %s", b)
	}
	return pool
}

// wardenACME is warden's front door on fixed ports, as `warden serve` runs
// it: HTTPS on tlsPort, the redirect listener on httpPort.
// alpnChallenges counts the handshakes that offered only acme-tls/1: the
// CA validating TLS-ALPN-01 (RFC 8737).
var alpnChallenges atomic.Int64

func wardenACME(t *testing.T, section string, httpPort, tlsPort int, opt tlsconf.Options) (*tlsconf.Manager, func()) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "w.yaml"), []byte(section))
	if err != nil {
		t.Fatal(err)
	}
	opt.Base, opt.HTTPPort, opt.TLSPort = dir, httpPort, tlsPort
	if opt.ACMELogger == nil {
		opt.ACMELogger = zap.NewNop()
	}
	m, err := tlsconf.New(cfg.TLS, opt)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort))
	if err != nil {
		t.Fatal(err)
	}
	hs := gateway.NewHTTPServer("", http.HandlerFunc(hello), &cfg.Limits)
	hs.TLSConfig = m.TLSConfig().Clone()
	get := hs.TLSConfig.GetCertificate
	hs.TLSConfig.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == "acme-tls/1" {
			alpnChallenges.Add(1)
		}
		return get(hello)
	}
	go hs.Serve(gateway.ServeTLSOn(hs, ln, &cfg.Limits))
	var rs *http.Server
	if cfg.TLS.RedirectHTTP.Value != "" {
		rl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort))
		if err != nil {
			t.Fatal(err)
		}
		rs = &http.Server{Handler: m.RedirectHandler(tlsPort)}
		go rs.Serve(rl)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		hs.Close()
		if rs != nil {
			rs.Close()
		}
		m.Close()
	}
	t.Cleanup(stop)
	return m, stop
}

// servedCert waits until a handshake for name gets a certificate that
// verifies against roots and satisfies ok.
func servedCert(t *testing.T, addr, name string, roots *x509.CertPool, within time.Duration, ok func(*x509.Certificate) bool) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
		if err == nil {
			leaf := c.ConnectionState().PeerCertificates[0]
			c.Close()
			if ok == nil || ok(leaf) {
				return leaf
			}
			last = fmt.Errorf("served serial %s", leaf.SerialNumber)
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no acceptable certificate for %s within %s: %v", name, within, last)
	return nil
}

// TestACMEWithPebble: warden obtains a certificate from a real ACME CA
// over HTTP-01 (answered by its redirect listener), serves HTTPS with it,
// and renews it before it expires; then, over TLS-ALPN-01 only (answered
// in its own TLS handshakes), obtains on demand a certificate for a name
// on the allow list, and never for one that is not.
func TestACMEWithPebble(t *testing.T) {
	httpPort, tlsPort := proctest.FreePort(t), proctest.FreePort(t)
	const validity = 30 * time.Second
	p := startPebble(t, httpPort, tlsPort, validity)
	addr := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	storage := t.TempDir()

	t.Run("http-01 and renewal", func(t *testing.T) {
		_, stop := wardenACME(t, fmt.Sprintf(`
tls:
  redirect_http: 127.0.0.1:%d
  acme:
    ca: %s
    ca_root: %s
    email: ops@site.test
    storage: %s
    domains: [site.test]
    challenges: [http-01]
`, httpPort, p.dir, p.caRoot, storage), httpPort, tlsPort, tlsconf.Options{
			// A 30 s certificate renewed with half its life left, checked
			// every second: renewal within the test's time.
			ACMERenewCheck: time.Second, ACMERenewalRatio: 0.5,
		})
		roots := p.issuingRoots(t)
		first := servedCert(t, addr, "site.test", roots, 60*time.Second, nil)
		if first.NotAfter.Sub(first.NotBefore) > validity+time.Minute {
			t.Fatalf("not Pebble's short-lived certificate: %s – %s", first.NotBefore, first.NotAfter)
		}
		// HTTPS with it, through a verifying client.
		cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}}
		if code, body, err := get(cl, "https://site.test/"); err != nil || code != 200 || body != "HTTP/2.0 site.test" {
			t.Fatalf("HTTPS with the ACME certificate: %d %q %v", code, body, err)
		}
		if !strings.Contains(p.out.String(), "Attempting to validate w/ HTTP: http://site.test:") {
			t.Errorf("Pebble did not validate over http-01:\n%s", p.out)
		}
		renewed := servedCert(t, addr, "site.test", roots, 40*time.Second, func(c *x509.Certificate) bool {
			return c.SerialNumber.Cmp(first.SerialNumber) != 0
		})
		if !renewed.NotAfter.After(first.NotAfter) {
			t.Errorf("the renewed certificate expires %s, not after the first (%s)", renewed.NotAfter, first.NotAfter)
		}
		// The certificate is on disk, for the next start.
		var pems int
		_ = filepath.Walk(storage, func(path string, _ os.FileInfo, _ error) error {
			if strings.HasSuffix(path, "site.test.crt") {
				b, _ := os.ReadFile(path)
				if blk, _ := pem.Decode(b); blk != nil {
					pems++
				}
			}
			return nil
		})
		if pems == 0 {
			t.Errorf("no site.test certificate under %s", storage)
		}
		stop()
	})

	t.Run("tls-alpn-01 on demand", func(t *testing.T) {
		httpBefore := strings.Count(p.out.String(), "validate w/ HTTP")
		alpnBefore := alpnChallenges.Load()
		wardenACME(t, fmt.Sprintf(`
tls:
  acme:
    ca: %s
    ca_root: %s
    storage: %s
    on_demand: ["*.apps.test"]
    challenges: [tls-alpn-01]
`, p.dir, p.caRoot, t.TempDir()), httpPort, tlsPort, tlsconf.Options{})
		roots := p.issuingRoots(t)
		leaf := servedCert(t, addr, "one.apps.test", roots, 60*time.Second, nil)
		if leaf.VerifyHostname("one.apps.test") != nil {
			t.Errorf("certificate for %v", leaf.DNSNames)
		}
		if alpnChallenges.Load() == alpnBefore || strings.Count(p.out.String(), "validate w/ HTTP") != httpBefore {
			t.Errorf("Pebble did not validate over tls-alpn-01 alone:\n%s", p.out)
		}
		// A name off the allow list: no certificate is asked for.
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{ServerName: "evil.test", InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			t.Error("a handshake for a name off the allow list succeeded")
		}
		if strings.Contains(p.out.String(), "evil.test") {
			t.Error("the CA was asked about a name off the allow list")
		}
	})
}
