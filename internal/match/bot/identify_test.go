package bot

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestIdentify(t *testing.T) {
	z := startZone(t)
	z.addPTR("192.0.2.10", "crawl-192-0-2-10.googlebot.com")
	z.addAddr("crawl-192-0-2-10.googlebot.com", "192.0.2.10")
	s := newSigner(t, "https://agent.example")
	path := filepath.Join(t.TempDir(), "agent.jwks")
	os.WriteFile(path, s.jwks(true), 0o644)
	dir, err := LoadDirectory([]AgentKeys{{Agent: s.agent, JWKSFile: path}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDirectory([]AgentKeys{{Agent: s.agent, JWKSFile: path + ".missing"}}); err == nil {
		t.Fatal("a missing JWKS file loaded")
	}
	id := &Identifier{Crawlers: newTestVerifier(t, z), Signed: &WebBotAuth{Dir: dir}}
	ctx := context.Background()
	at := time.Unix(1_800_000_000, 0)

	r := httptest.NewRequest("GET", "https://site.example/", nil)
	r.TLS = &tls.ConnectionState{}
	s.sign(r, at.Unix(), at.Unix()+60, "site.example")
	if got := id.Identify(ctx, r, netip.MustParseAddr("198.51.100.1"), at); got.Kind != KindWebBotAuth || got.Name != "https://agent.example" {
		t.Fatalf("signed agent: %+v", got)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("User-Agent", uaGoogle)
	if got := id.Identify(ctx, r, netip.MustParseAddr("192.0.2.10"), at); got.Kind != KindCrawler || got.Name != "googlebot" {
		t.Fatalf("crawler: %+v", got)
	}
	if got := id.Identify(ctx, r, netip.MustParseAddr("198.51.100.2"), at); got.Verified() || got.Detail != "googlebot: no_ptr" {
		t.Fatalf("fake crawler: %+v", got)
	}
	// An expired signature from a fake Googlebot: neither proof holds.
	r = httptest.NewRequest("GET", "https://site.example/", nil)
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("User-Agent", uaPerson)
	s.sign(r, at.Unix()-120, at.Unix()-60, "site.example")
	if got := id.Identify(ctx, r, netip.MustParseAddr("198.51.100.3"), at); got.Verified() || !strings.Contains(got.Detail, "expired") {
		t.Fatalf("expired signature: %+v", got)
	}
}

func TestInflightBound(t *testing.T) {
	z := startZone(t)
	for i := range 4 {
		rev := netip.AddrFrom4([4]byte{203, 0, 113, byte(100 + i)}).String()
		r, _ := dns.ReverseAddr(rev)
		z.edit(func() { z.silent[r] = true })
	}
	v, _ := NewVerifier(Config{Resolver: &DNSResolver{Server: z.addr, Timeout: 2 * time.Second}, MaxInflight: 2})
	done := make(chan Result, 4)
	for i := range 4 {
		go func() {
			done <- v.Verify(context.Background(), uaGoogle, netip.AddrFrom4([4]byte{203, 0, 113, byte(100 + i)}), now)
		}()
	}
	for range 4 {
		if r := <-done; r.Outcome != LookupFailed {
			t.Fatalf("%+v", r)
		}
	}
	if q := z.queries.Load(); q > 2 {
		t.Fatalf("%d lookups ran with a bound of 2", q)
	}
}
