package gateway_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/tlsconf"
	"github.com/warden-gateway/warden/internal/tlsconf/tlstest"
)

// startTLSGateway serves the policy src (written to dir/warden.yaml) over
// HTTPS as `warden serve` does, and returns the address and decision log.
func startTLSGateway(t *testing.T, dir, src string) (string, *syncBuffer) {
	t.Helper()
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	srv, _ := gatewaytest.Build(t, cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	m, err := tlsconf.New(cfg.TLS, tlsconf.Options{Base: dir, RequestClientCert: cfg.Identity.ClientCert != nil})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := gateway.NewHTTPServer("", srv, &cfg.Limits)
	hs.TLSConfig = m.TLSConfig()
	go hs.Serve(gateway.ServeTLSOn(hs, ln, &cfg.Limits))
	t.Cleanup(func() { hs.Close(); m.Close() })
	return ln.Addr().String(), logs
}

// tlsClient trusts ca, presents cert (when not nil) and connects to addr
// whatever the URL says.
func tlsClient(ca *tlstest.CA, addr string, cert *tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: ca.Pool()}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tc, ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

func fetch(t *testing.T, cl *http.Client, url string, headers ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestClientCertificates: a valid client certificate makes its subject the
// caller, with the roles the policy maps to it; an expired one, one from
// another CA, or none at all is refused with client_certificate_required
// and a reason that says which, in problem+json, HTML and text alike.
func TestClientCertificates(t *testing.T) {
	dir := t.TempDir()
	serverCA := tlstest.NewCA(t, "server CA")
	serverCA.Issue(t, tlstest.Spec{CN: "site", DNS: []string{"site.test"}}).Write(t, dir, "site")
	clientCA := tlstest.NewCA(t, "client CA")
	if err := os.WriteFile(filepath.Join(dir, "clients.pem"), clientCA.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, "user=%s roles=%s", r.Header.Get("X-Warden-User"), r.Header.Get("X-Warden-Roles"))
	}))
	t.Cleanup(up.Close)
	addr, logs := startTLSGateway(t, dir, `
tls: { cert_file: site.crt, key_file: site.key }
identity:
  client_cert:
    ca_file: clients.pem
    roles:
      alice: [admin]
      bob@site.test: [ops]
rules:
  - name: admin
    when: { path: { prefix: [/admin/] } }
    require: { client_cert: true, roles_any: [admin] }
    action: allow
  - name: machines
    when: { path: { prefix: [/machines/] } }
    require: { client_cert: true }
    action: allow
handle:
  - path: /
    upstream: `+up.URL+`
`)
	alice := clientCA.Issue(t, tlstest.Spec{CN: "alice", Client: true})
	bob := clientCA.Issue(t, tlstest.Spec{CN: "bob", Emails: []string{"bob@site.test"}, Client: true})
	expired := clientCA.Issue(t, tlstest.Spec{CN: "alice", Client: true, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	stranger := tlstest.NewCA(t, "another CA").Issue(t, tlstest.Spec{CN: "alice", Client: true})
	serverCert := serverCA.Issue(t, tlstest.Spec{CN: "alice", DNS: []string{"alice"}}) // not for client auth

	// alice: admin by her common name; the upstream is told who she is.
	if code, _, body := fetch(t, tlsClient(serverCA, addr, &alice.TLS), "https://site.test/admin/x"); code != 200 || body != "user=alice roles=admin" {
		t.Fatalf("alice: %d %s", code, body)
	}
	// Over h2 net/http holds the *tls.Conn; over HTTP/1.1 it gets the
	// framer's wrapper, and the certificate must still reach the policy.
	for _, h2 := range []bool{true, false} {
		cl := tlsClient(serverCA, addr, &alice.TLS)
		if !h2 {
			tr := cl.Transport.(*http.Transport)
			tr.ForceAttemptHTTP2 = false
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		resp, err := cl.Get("https://site.test/admin/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if wantMajor := map[bool]int{true: 2, false: 1}[h2]; resp.ProtoMajor != wantMajor || resp.StatusCode != 200 || string(b) != "user=alice roles=admin" {
			t.Errorf("alice over %s (want HTTP/%d): %d %s", resp.Proto, wantMajor, resp.StatusCode, b)
		}
	}
	// bob: known by certificate (roles by his e-mail SAN), but not admin.
	if code, _, body := fetch(t, tlsClient(serverCA, addr, &bob.TLS), "https://site.test/admin/x", jsonAccept); code != 403 || !strings.Contains(body, `"code":"role_required"`) {
		t.Errorf("bob on /admin/: %d %s", code, body)
	}
	if code, _, body := fetch(t, tlsClient(serverCA, addr, &bob.TLS), "https://site.test/machines/x"); code != 200 || body != "user=bob roles=ops" {
		t.Errorf("bob on /machines/: %d %s", code, body)
	}

	before := hits.Load()
	for _, c := range []struct {
		name   string
		cert   *tls.Certificate
		reason string
	}{
		{"no certificate", nil, "no client certificate was presented"},
		{"expired", &expired.TLS, "the client certificate has expired (" + expired.Cert.NotAfter.UTC().Format(time.RFC3339) + ")"},
		{"another CA", &stranger.TLS, "the client certificate is not issued by a trusted CA"},
		{"a server certificate", &serverCert.TLS, "the client certificate is not issued by a trusted CA"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := tlsClient(serverCA, addr, c.cert)
			code, h, body := fetch(t, cl, "https://site.test/machines/x", jsonAccept)
			var p struct {
				Code      string `json:"code"`
				Reason    string `json:"reason"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(body), &p); err != nil || code != 403 || h.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("problem+json: %d %s %s", code, h.Get("Content-Type"), body)
			}
			if p.Code != "client_certificate_required" || p.Reason != c.reason {
				t.Errorf("problem+json: code %q reason %q, want %q", p.Code, p.Reason, c.reason)
			}
			if h.Get("WWW-Authenticate") != "" {
				t.Errorf("WWW-Authenticate %q on a 403", h.Get("WWW-Authenticate"))
			}
			code, h, body = fetch(t, cl, "https://site.test/machines/x", "Accept: text/html")
			if code != 403 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, "<code>client_certificate_required</code>") ||
				!strings.Contains(body, htmlEscape(c.reason)) || !strings.Contains(body, "Client certificate required") {
				t.Errorf("HTML: %d %s\n%s", code, h.Get("Content-Type"), body)
			}
			code, h, body = fetch(t, cl, "https://site.test/machines/x", "User-Agent: curl/8.5.0")
			if code != 403 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || !strings.Contains(body, "code: client_certificate_required\n") ||
				!strings.Contains(body, "403 Forbidden: "+c.reason+"\n") {
				t.Errorf("text: %d %s\n%s", code, h.Get("Content-Type"), body)
			}
			if e := logs.entry(t, p.RequestID); e["code"] != "client_certificate_required" {
				t.Errorf("log: %v", e)
			}
		})
	}
	if n := hits.Load() - before; n != 0 {
		t.Errorf("%d refused requests reached the upstream", n)
	}
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}
