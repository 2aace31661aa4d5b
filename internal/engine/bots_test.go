package engine_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startDNS serves a small zone on a loopback port: the test never asks the
// internet. ptr maps an address to its PTR name, a a name to its address.
func startDNS(t *testing.T, ptr, a map[string]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		for ip, name := range ptr {
			if rev, _ := dns.ReverseAddr(ip); q.Qtype == dns.TypePTR && rev == q.Name {
				m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: dns.Fqdn(name)})
			}
		}
		if ip, ok := a[strings.TrimSuffix(q.Name, ".")]; ok && q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)})
		}
		if len(m.Answer) == 0 {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestVerifiedBotIsAFactTheRulesRead(t *testing.T) {
	resolver := startDNS(t,
		map[string]string{"66.249.66.1": "crawl-66-249-66-1.googlebot.com", "203.0.113.5": "crawl-203-0-113-5.googlebot.com"},
		map[string]string{"crawl-66-249-66-1.googlebot.com": "66.249.66.1", "crawl-203-0-113-5.googlebot.com": "198.51.100.1"})
	now := time.Unix(1_800_000_000, 0)
	e, _ := newEngine(t, `
verified_bots: { resolver: "`+resolver+`" }
rules:
  - name: verified-bots
    when: { verified_bot: true }
    action: allow
  - name: claimed-crawlers
    when: { user_agent: { substring: [Googlebot] } }
    action: deny
`, &now)
	const ua = "User-Agent: Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	o := judge(e, "GET", "/", "66.249.66.1", ua)
	if o.Refused() || o.Decision.Rule != "verified-bots" || o.Request.VerifiedBot != "crawler:googlebot" {
		t.Fatalf("the real crawler: %+v (bot %q)", o.Decision, o.Request.VerifiedBot)
	}
	if rec := o.Record(); rec.Bot != "crawler:googlebot" {
		t.Errorf("record bot %q", rec.Bot)
	}
	// A PTR in the right domain whose forward lookup names another address.
	o = judge(e, "GET", "/", "203.0.113.5", ua)
	if o.Decision.Rule != "claimed-crawlers" || o.Request.VerifiedBot != "" {
		t.Fatalf("the spoofed PTR: %+v", o.Decision)
	}
	if rec := o.Record(); !strings.Contains(rec.Bot, "forward_mismatch") {
		t.Errorf("record bot %q, want why the claim failed", rec.Bot)
	}
	// No PTR at all.
	if o := judge(e, "GET", "/", "192.0.2.9", ua); o.Decision.Rule != "claimed-crawlers" {
		t.Fatalf("no PTR: %+v", o.Decision)
	}
	// Not claiming to be a crawler: no lookup, no match either way.
	if o := judge(e, "GET", "/", "192.0.2.9", "User-Agent: curl/8"); o.Refused() || o.Bot.Detail != "" {
		t.Fatalf("a plain client: %+v %+v", o.Decision, o.Bot)
	}
}
