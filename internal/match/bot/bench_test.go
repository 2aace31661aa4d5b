package bot

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkVerifyNotClaimed is what every ordinary visitor costs: the
// User-Agent is scanned for crawler tokens, nothing else.
func BenchmarkVerifyNotClaimed(b *testing.B) {
	v, _ := NewVerifier(Config{Resolver: &DNSResolver{Server: "127.0.0.1:1"}})
	ip := netip.MustParseAddr("198.51.100.7")
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	b.ReportAllocs()
	for b.Loop() {
		if v.Verify(context.Background(), ua, ip, now).Outcome != NotClaimed {
			b.Fatal("claimed")
		}
	}
}

// BenchmarkVerifyCachedCrawler is a verified crawler's request after the
// first: a cache hit, no DNS.
func BenchmarkVerifyCachedCrawler(b *testing.B) {
	v, _ := NewVerifier(Config{Resolver: &DNSResolver{Server: "127.0.0.1:1"}})
	ip := netip.MustParseAddr("192.0.2.10")
	v.cache[cacheKey{0, ip}] = cacheEntry{res: Result{Outcome: Verified, Crawler: "googlebot"}, expires: now.Add(time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		if !v.Verify(context.Background(), uaGoogle, ip, now).Verified() {
			b.Fatal("not verified")
		}
	}
}

// BenchmarkWebBotAuth verifies one signed request (parse, base, Ed25519).
func BenchmarkWebBotAuth(b *testing.B) {
	s := newSigner(b, "https://agent.example")
	dir := NewDirectory()
	dir.AddJWKS(s.agent, s.jwks(true))
	v := &WebBotAuth{Dir: dir}
	t0 := time.Unix(1_800_000_000, 0)
	r := httptest.NewRequest("GET", "https://www.site.example/a", nil)
	r.TLS = &tls.ConnectionState{}
	s.sign(r, t0.Unix(), t0.Unix()+60, "www.site.example")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r, t0); err != nil {
			b.Fatal(err)
		}
	}
}
