package bot

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// zone is a local DNS server on a loopback port answering from maps: the
// tests never ask the internet.
type zone struct {
	addr     string
	ptr      map[string][]string // reverse name -> PTR targets
	a        map[string][]string // name -> A/AAAA addresses
	cname    map[string]string
	silent   map[string]bool // names the server never answers (a timeout)
	servfail map[string]bool
	queries  atomic.Int32
	mu       sync.Mutex
}

func startZone(t *testing.T) *zone {
	t.Helper()
	z := &zone{ptr: map[string][]string{}, a: map[string][]string{}, cname: map[string]string{}, silent: map[string]bool{}, servfail: map[string]bool{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(z.serve)}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return z
}

// The zone is changed by the test while the server goroutines read it.
func (z *zone) edit(f func()) {
	z.mu.Lock()
	defer z.mu.Unlock()
	f()
}

func (z *zone) addPTR(ip, name string) {
	rev, _ := dns.ReverseAddr(ip)
	z.edit(func() { z.ptr[rev] = append(z.ptr[rev], dns.Fqdn(name)) })
}

func (z *zone) addAddr(name, ip string) {
	z.edit(func() { z.a[dns.Fqdn(name)] = append(z.a[dns.Fqdn(name)], ip) })
}

func (z *zone) serve(w dns.ResponseWriter, req *dns.Msg) {
	z.queries.Add(1)
	z.mu.Lock()
	defer z.mu.Unlock()
	q := req.Question[0]
	if z.silent[q.Name] {
		return // no answer: the client times out
	}
	m := new(dns.Msg)
	m.SetReply(req)
	if z.servfail[q.Name] {
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	}
	name := q.Name
	found := false
	switch q.Qtype {
	case dns.TypePTR:
		for _, p := range z.ptr[name] {
			m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 300}, Ptr: p})
			found = true
		}
	case dns.TypeA, dns.TypeAAAA:
		if target, ok := z.cname[name]; ok {
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: target})
			name = target
			found = true
		}
		for _, s := range z.a[name] {
			ip := net.ParseIP(s)
			found = true
			if ip.To4() != nil && q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: ip})
			} else if ip.To4() == nil && q.Qtype == dns.TypeAAAA {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 300}, AAAA: ip})
			}
		}
	}
	if !found {
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

const (
	uaGoogle = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaBing   = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
	uaPerson = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
)

var now = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func newTestVerifier(t *testing.T, z *zone) *Verifier {
	t.Helper()
	v, err := NewVerifier(Config{Resolver: &DNSResolver{Server: z.addr, Timeout: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCrawlerVerification(t *testing.T) {
	z := startZone(t)
	// A real-looking Googlebot: PTR in googlebot.com, forward confirms.
	z.addPTR("192.0.2.10", "crawl-192-0-2-10.googlebot.com")
	z.addAddr("crawl-192-0-2-10.googlebot.com", "192.0.2.10")
	// Spoofed PTR: the address holder wrote a googlebot.com name into its
	// reverse zone, but googlebot.com's forward zone says another address.
	z.addPTR("203.0.113.5", "crawl-203-0-113-5.googlebot.com")
	z.addAddr("crawl-203-0-113-5.googlebot.com", "192.0.2.99")
	// Spoofed PTR whose forward name does not exist at all.
	z.addPTR("203.0.113.4", "crawl-fake.googlebot.com")
	// PTR in the wrong domain: looks like Google, is not under it.
	z.addPTR("203.0.113.6", "crawl.googlebot.com.evil.example")
	z.addAddr("crawl.googlebot.com.evil.example", "203.0.113.6")
	z.addPTR("203.0.113.9", "evilgooglebot.com")
	z.addAddr("evilgooglebot.com", "203.0.113.9")
	// Bing over IPv6, with a CNAME on the forward side and a second PTR
	// name outside the domain listed first.
	z.addPTR("2001:db8::b1", "host.example.net")
	z.addPTR("2001:db8::b1", "msnbot-2001-db8--b1.search.msn.com")
	z.edit(func() { z.cname["msnbot-2001-db8--b1.search.msn.com."] = "edge.search.msn.com." })
	z.addAddr("edge.search.msn.com", "2001:db8::b1")
	// A Google PTR for Bing's claim: right forward, wrong crawler.
	z.addPTR("192.0.2.11", "crawl-192-0-2-11.googlebot.com")
	z.addAddr("crawl-192-0-2-11.googlebot.com", "192.0.2.11")
	// A DNS server that does not answer, and one that fails.
	silentRev, _ := dns.ReverseAddr("203.0.113.8")
	z.edit(func() { z.silent[silentRev] = true })
	failRev, _ := dns.ReverseAddr("203.0.113.7")
	z.edit(func() { z.servfail[failRev] = true })

	v := newTestVerifier(t, z)
	ctx := context.Background()
	cases := []struct {
		name, ua, ip string
		want         Outcome
		host         string
	}{
		{"googlebot", uaGoogle, "192.0.2.10", Verified, "crawl-192-0-2-10.googlebot.com."},
		{"ipv4-mapped peer", uaGoogle, "::ffff:192.0.2.10", Verified, "crawl-192-0-2-10.googlebot.com."},
		{"spoofed PTR, forward lookup elsewhere", uaGoogle, "203.0.113.5", ForwardMismatch, "crawl-203-0-113-5.googlebot.com."},
		{"spoofed PTR, forward NXDOMAIN", uaGoogle, "203.0.113.4", ForwardMismatch, "crawl-fake.googlebot.com."},
		{"PTR in the wrong domain", uaGoogle, "203.0.113.6", WrongDomain, ""},
		{"PTR only a suffix of the domain's text", uaGoogle, "203.0.113.9", WrongDomain, ""},
		{"NXDOMAIN", uaGoogle, "198.51.100.1", NoPTR, ""},
		{"timeout", uaGoogle, "203.0.113.8", LookupFailed, ""},
		{"SERVFAIL", uaGoogle, "203.0.113.7", LookupFailed, ""},
		{"bingbot over IPv6 via CNAME", uaBing, "2001:db8::b1", Verified, "msnbot-2001-db8--b1.search.msn.com."},
		{"bing claim from a google host", uaBing, "192.0.2.11", WrongDomain, ""},
		{"a person", uaPerson, "192.0.2.10", NotClaimed, ""},
	}
	for _, c := range cases {
		got := v.Verify(ctx, c.ua, netip.MustParseAddr(c.ip), now)
		if got.Outcome != c.want || got.Host != c.host {
			t.Errorf("%s: got %v host %q, want %v host %q", c.name, got.Outcome, got.Host, c.want, c.host)
		}
	}
}

func TestCrawlerCache(t *testing.T) {
	z := startZone(t)
	z.addPTR("192.0.2.10", "crawl-192-0-2-10.googlebot.com")
	z.addAddr("crawl-192-0-2-10.googlebot.com", "192.0.2.10")
	v, err := NewVerifier(Config{
		Resolver:    &DNSResolver{Server: z.addr, Timeout: 300 * time.Millisecond},
		PositiveTTL: time.Hour, NegativeTTL: 10 * time.Minute, MaxEntries: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.10")
	if r := v.Verify(ctx, uaGoogle, ip, now); !r.Verified() || r.Cached {
		t.Fatalf("first: %+v", r)
	}
	q := z.queries.Load()
	if q != 2 {
		t.Fatalf("%d queries for one verification, want 2 (PTR, A)", q)
	}
	if r := v.Verify(ctx, uaGoogle, ip, now.Add(59*time.Minute)); !r.Verified() || !r.Cached || z.queries.Load() != q {
		t.Fatalf("within the TTL: %+v, %d queries", r, z.queries.Load()-q)
	}
	// Past the TTL the answer is asked again; the zone has changed meanwhile.
	z.edit(func() { delete(z.a, "crawl-192-0-2-10.googlebot.com.") })
	if r := v.Verify(ctx, uaGoogle, ip, now.Add(61*time.Minute)); r.Outcome != ForwardMismatch || r.Cached {
		t.Fatalf("after the TTL: %+v", r)
	}
	// Negative answers are cached too.
	nx := netip.MustParseAddr("198.51.100.1")
	v.Verify(ctx, uaGoogle, nx, now)
	q = z.queries.Load()
	if r := v.Verify(ctx, uaGoogle, nx, now.Add(time.Minute)); r.Outcome != NoPTR || !r.Cached || z.queries.Load() != q {
		t.Fatalf("negative cache: %+v", r)
	}
	// Bounded: many addresses never grow the cache past MaxEntries.
	for i := range 20 {
		v.Verify(ctx, uaGoogle, netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}), now)
	}
	if v.Len() > 3 {
		t.Fatalf("cache holds %d, bound 3", v.Len())
	}
	// A person's request costs no lookup at all.
	q = z.queries.Load()
	v.Verify(ctx, uaPerson, netip.MustParseAddr("198.51.100.200"), now)
	if z.queries.Load() != q {
		t.Fatal("a User-Agent that claims no crawler caused a lookup")
	}
}

func TestConcurrentClaimsShareOneLookup(t *testing.T) {
	z := startZone(t)
	z.addPTR("192.0.2.10", "crawl-192-0-2-10.googlebot.com")
	z.addAddr("crawl-192-0-2-10.googlebot.com", "192.0.2.10")
	v := newTestVerifier(t, z)
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v.Verify(context.Background(), uaGoogle, netip.MustParseAddr("192.0.2.10"), now).Verified() {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 16 {
		t.Fatalf("%d of 16 verified", ok.Load())
	}
	if q := z.queries.Load(); q > 4 {
		t.Fatalf("%d queries for 16 concurrent identical claims", q)
	}
}

func TestInDomains(t *testing.T) {
	d := []string{"googlebot.com", "google.com"}
	for host, want := range map[string]bool{
		"crawl-1.googlebot.com.":      true,
		"CRAWL-1.GOOGLEBOT.COM":       true,
		"googlebot.com":               true,
		"googlebot.com.evil.example.": false,
		"evilgooglebot.com":           false,
		"google.com.au":               false,
	} {
		if inDomains(host, d) != want {
			t.Errorf("inDomains(%q) = %v", host, !want)
		}
	}
	if !strings.Contains(DefaultCrawlers()[0].Domains[0], "googlebot") {
		t.Fatal("googlebot first")
	}
}
