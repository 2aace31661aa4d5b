package tlsconf_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/tlsconf/tlstest"
)

// The TLS figures of docs/benchmarks.md: full handshakes per second, and
// keep-alive requests over HTTPS (HTTP/1.1 and HTTP/2) against the same
// handler over plain HTTP, all on loopback in one run.

func benchServer(b *testing.B) (ca *tlstest.CA, tlsAddr, plainAddr string) {
	dir := b.TempDir()
	ca = tlstest.NewCA(b, "bench CA")
	ca.Issue(b, tlstest.Spec{CN: "a", DNS: []string{"a.test"}}).Write(b, dir, "a")
	_, tlsAddr = serveTLS(b, dir, "tls: { cert_file: a.crt, key_file: a.key }\n", http.HandlerFunc(hello))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := gateway.NewHTTPServer("", http.HandlerFunc(hello), &config.Limits{})
	go hs.Serve(gateway.WrapListener(ln, &config.Limits{}))
	b.Cleanup(func() { hs.Close() })
	return ca, tlsAddr, ln.Addr().String()
}

func BenchmarkTLSHandshake(b *testing.B) {
	ca, addr, _ := benchServer(b)
	cfg := &tls.Config{ServerName: "a.test", RootCAs: ca.Pool(), ClientSessionCache: nil}
	b.ResetTimer()
	for b.Loop() {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

func benchRequests(b *testing.B, cl *http.Client, url string) {
	for b.Loop() {
		resp, err := cl.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func BenchmarkKeepAlive(b *testing.B) {
	ca, tlsAddr, plainAddr := benchServer(b)
	b.Run("plain-http1", func(b *testing.B) {
		benchRequests(b, &http.Client{}, "http://"+plainAddr+"/")
	})
	b.Run("https-http1", func(b *testing.B) {
		benchRequests(b, client(ca, tlsAddr, false), "https://a.test/")
	})
	b.Run("https-h2", func(b *testing.B) {
		benchRequests(b, client(ca, tlsAddr, true), "https://a.test/")
	})
}
