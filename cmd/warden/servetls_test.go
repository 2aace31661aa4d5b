package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/tlsconf/tlstest"
)

// startServeTLS runs `warden serve` and returns the HTTPS address it
// prints, and its stderr.
func startServeTLS(t *testing.T, dir string, args ...string) (string, *lockedBuffer) {
	t.Helper()
	cmd := wardenCmd(t, dir, append([]string{"serve"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := &lockedBuffer{}
	found := make(chan string, 1)
	exited := make(chan struct{})
	re := regexp.MustCompile(`on https://(127\.0\.0\.1:\d+)`)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			buf.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = cmd.Wait()
	})
	select {
	case addr := <-found:
		return addr, buf
	case <-exited:
		t.Fatalf("warden serve exited:\n%s", buf)
	case <-time.After(15 * time.Second):
		t.Fatalf("warden serve printed no https address:\n%s", buf)
	}
	return "", nil
}

// TestServeTLS: with a tls section, `warden serve` speaks HTTPS (HTTP/2)
// on its listen address with the certificate from the files, adds HSTS,
// refuses as on plain HTTP, and its redirect listener sends plain HTTP to
// HTTPS.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	ca.Issue(t, tlstest.Spec{CN: "site", DNS: []string{"site.test"}}).Write(t, dir, "site")
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("home"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A free port for the redirect listener, so the test knows it.
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	redirectAddr := pl.Addr().String()
	pl.Close()
	policy := `
tls:
  cert_file: site.crt
  key_file: site.key
  redirect_http: ` + redirectAddr + `
  hsts: { max_age: 24h }
rules:
  - name: no-admin
    when: { path: { prefix: [/admin/] } }
    action: deny
handle:
  - path: /
    root: .
`
	if err := os.WriteFile(filepath.Join(dir, "w.yaml"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, stderr := startServeTLS(t, dir, "--config", "w.yaml", "--listen", "127.0.0.1:0")
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.Pool()},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	resp, err := cl.Get("https://site.test/")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "home" || resp.ProtoMajor != 2 || resp.Header.Get("Strict-Transport-Security") != "max-age=86400" {
		t.Errorf("GET /: %d %s %q hsts=%q", resp.StatusCode, resp.Proto, body, resp.Header.Get("Strict-Transport-Security"))
	}
	req, _ := http.NewRequest("GET", "https://site.test/admin/", nil)
	req.Header.Set("Accept", "application/json")
	resp, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), `"code":"path_forbidden"`) {
		t.Errorf("GET /admin/: %d %s", resp.StatusCode, body)
	}
	// Plain HTTP on the HTTPS port is not served.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the HTTPS listener")
		}
	}
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ = http.NewRequest("GET", "http://"+redirectAddr+"/a?b=c", nil)
	req.Host = "site.test"
	resp, err = noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(addr)
	if resp.StatusCode != 308 || resp.Header.Get("Location") != "https://site.test:"+port+"/a?b=c" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
