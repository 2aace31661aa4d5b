package gateway_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/tlsconf/tlstest"
)

// TestVirtualHosts: one warden serves two sites over HTTPS, each with its
// own handlers, rules and refusals; a Host no handler serves, and a Host
// that is not the name the TLS connection was opened for (SNI), are
// refused 421 misdirected_request, never answered with another site.
func TestVirtualHosts(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	ca.Issue(t, tlstest.Spec{CN: "a", DNS: []string{"a.test"}}).Write(t, dir, "a")
	ca.Issue(t, tlstest.Spec{CN: "b", DNS: []string{"b.test", "*.b.test"}}).Write(t, dir, "b")
	for site, body := range map[string]string{"a": "site A", "b": "site B"} {
		for _, sub := range []string{"", "private", "admin"} {
			if err := os.MkdirAll(filepath.Join(dir, site, sub), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, site, sub, "index.html"), []byte(body+" "+sub), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	addr, _ := startTLSGateway(t, dir, `
tls:
  certificates:
    - { cert_file: a.crt, key_file: a.key }
    - { cert_file: b.crt, key_file: b.key }
rules:
  - name: a-private
    when: { hosts: [a.test], path: { prefix: [/private/] } }
    action: deny
    reason: site A keeps this private
  - name: b-admin
    when: { hosts: ["*.b.test", b.test], path: { prefix: [/admin/] } }
    action: conceal
handle:
  - { host: a.test, path: /, root: a }
  - { host: [b.test, "*.b.test"], path: /, root: b }
`)
	cl := tlsClient(ca, addr, nil)
	for _, c := range []struct {
		url, code string
		status    int
		body      string
	}{
		{"https://a.test/", "", 200, "site A "},
		{"https://b.test/", "", 200, "site B "},
		{"https://www.b.test/", "", 200, "site B "},
		{"https://a.test/admin/", "", 200, "site A admin"},
		{"https://b.test/private/", "", 200, "site B private"},
		{"https://a.test/private/", "path_forbidden", 403, "site A keeps this private"},
		{"https://b.test/admin/", "not_found", 404, ""},
	} {
		code, _, body := fetch(t, cl, c.url, jsonAccept)
		if code != c.status || c.code == "" && body != c.body || c.code != "" && (!strings.Contains(body, `"code":"`+c.code+`"`) || !strings.Contains(body, c.body)) {
			t.Errorf("%s: %d %s", c.url, code, body)
		}
	}

	// The Host and the SNI disagree: 421, with neither site's content.
	misdirected := func(sni, host string) (int, string) {
		t.Helper()
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{ServerName: sni, RootCAs: ca.Pool(), InsecureSkipVerify: sni == "c.test"},
			DialTLSContext:  nil,
			Dial:            func(network, _ string) (net.Conn, error) { return net.Dial(network, addr) },
		}
		hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		req, _ := http.NewRequest("GET", "https://"+sni+"/", nil)
		req.Host = host
		req.Header.Set("Accept", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p struct {
			Code   string `json:"code"`
			Reason string `json:"reason"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, p.Code + ": " + p.Reason
	}
	if code, got := misdirected("a.test", "b.test"); code != 421 || got != "misdirected_request: this connection is for a.test, not b.test" {
		t.Errorf("SNI a.test, Host b.test: %d %s", code, got)
	}
	if code, got := misdirected("a.test", "A.TEST:443"); code != 200 {
		t.Errorf("SNI a.test, Host A.TEST:443 is the same site: %d %s", code, got)
	}
	// A host no handler serves (its SNI matches, so only the host check
	// can refuse it).
	if code, got := misdirected("c.test", "c.test"); code != 421 || got != "misdirected_request: this server does not serve the host c.test" {
		t.Errorf("unknown host: %d %s", code, got)
	}
}

// TestUnknownHostOverPlainHTTP: without TLS, a Host no handler serves is
// refused 421 before any rule; with a handler for every host, it is that
// handler's.
func TestUnknownHostOverPlainHTTP(t *testing.T) {
	dir := t.TempDir()
	for _, site := range []string{"a", "any"} {
		_ = os.MkdirAll(filepath.Join(dir, site), 0o755)
		_ = os.WriteFile(filepath.Join(dir, site, "index.html"), []byte(site), 0o644)
	}
	getHost := func(g *gw, host string, headers ...string) response {
		t.Helper()
		req, _ := http.NewRequest("GET", g.base+"/", nil)
		req.Host = host
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ":")
			req.Header.Set(k, strings.TrimSpace(v))
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return response{resp.StatusCode, resp.Header, string(b)}
	}
	g := startGateway(t, dir, "handle:\n  - { host: a.test, path: /, root: a }\n")
	if r := getHost(g, "a.test"); r.status != 200 || r.body != "a" {
		t.Errorf("a.test: %d %s", r.status, r.body)
	}
	r := getHost(g, "other.test", jsonAccept)
	wantProblem(t, r, 421, "misdirected_request")

	g = startGateway(t, t.TempDir(), "handle:\n  - { host: a.test, path: /, root: "+filepath.Join(dir, "a")+" }\n  - { path: /, root: "+filepath.Join(dir, "any")+" }\n")
	if r := getHost(g, "other.test"); r.status != 200 || r.body != "any" {
		t.Errorf("the default site: %d %s", r.status, r.body)
	}
	if r := getHost(g, "a.test"); r.status != 200 || r.body != "a" {
		t.Errorf("a.test beside a default site: %d %s", r.status, r.body)
	}
}
