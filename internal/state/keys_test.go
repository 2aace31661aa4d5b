package state

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestKeys(t *testing.T) {
	cases := []struct{ got, want string }{
		{IPKey(netip.MustParseAddr("203.0.113.9")), "ip:203.0.113.9"},
		{IPKey(netip.MustParseAddr("::ffff:203.0.113.9")), "ip:203.0.113.9"},
		{IPKey(netip.MustParseAddr("fe80::1%eth0")), "ip:fe80::1"},
		{PrefixKey(netip.MustParseAddr("203.0.113.9"), 0, 0), "net:203.0.113.0/24"},
		{PrefixKey(netip.MustParseAddr("2001:db8:1:2:3:4:5:6"), 0, 0), "net:2001:db8:1:2::/64"},
		{PrefixKey(netip.MustParseAddr("2001:db8:1:2:3:4:5:6"), 16, 48), "net:2001:db8:1::/48"},
		{PrefixKey(netip.MustParseAddr("::ffff:198.51.100.7"), 16, 48), "net:198.51.0.0/16"},
		{PrincipalKey("alice"), "user:alice"},
		{APIKeyKey("ci-bot"), "key:ci-bot"},
		{HeaderKey("X-Tenant", "acme"), "hdr:x-tenant=acme"},
		{RuleKey("api-rate", "ip:192.0.2.1"), "api-rate|ip:192.0.2.1"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestKeysAreBoundedAndPrintable(t *testing.T) {
	long := strings.Repeat("a", 64<<10)
	for _, v := range []string{long, "évil", "a b", "line\nbreak", "{tag}", "x|y", "~fake", ""} {
		k := HeaderKey("X-Tenant", v)
		if len(k) > 64 {
			t.Errorf("key for %.20q is %d bytes", v, len(k))
		}
		if !strings.HasPrefix(k, "hdr:x-tenant=~") {
			t.Errorf("%.20q was kept verbatim: %q", v, k)
		}
		for i := 0; i < len(k); i++ {
			if k[i] <= ' ' || k[i] >= 0x7f {
				t.Errorf("key %q has byte %#x", k, k[i])
			}
		}
	}
	if HeaderKey("X", long) == HeaderKey("X", long+"b") {
		t.Error("two long values share a key")
	}
}

func TestKeySpec(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8::5")
	h := http.Header{}
	h.Add("X-Tenant", "acme")
	h.Add("X-Tenant", "evil")
	in := KeyInput{IP: ip, Principal: "bob", APIKeyID: "k1", Header: h}
	for spec, want := range map[string]string{
		"":                  "ip:2001:db8::5",
		"ip":                "ip:2001:db8::5",
		"ip_prefix":         "net:2001:db8::/64",
		"ip_prefix:24,48":   "net:2001:db8::/48",
		"ip_prefix:/16,/32": "net:2001:db8::/32",
		"principal":         "user:bob",
		"api_key":           "key:k1",
		"header:x-tenant":   "hdr:x-tenant=acme,evil",
	} {
		k, err := ParseKeySpec(spec)
		if err != nil {
			t.Fatalf("%q: %v", spec, err)
		}
		if got := k.Key(in); got != want {
			t.Errorf("%q: key %q, want %q", spec, got, want)
		}
		if again, err := ParseKeySpec(k.String()); err != nil || again != k {
			t.Errorf("%q does not round-trip through %q", spec, k.String())
		}
	}
	// Missing values fall back to the address.
	anon := KeyInput{IP: ip, Header: http.Header{}}
	for _, spec := range []string{"principal", "api_key", "header:X-Tenant"} {
		k, _ := ParseKeySpec(spec)
		if got := k.Key(anon); got != "ip:2001:db8::5" {
			t.Errorf("%q without a value: %q, want the client address", spec, got)
		}
	}
	for _, bad := range []string{"ipv4", "ip_prefix:33,64", "ip_prefix:24", "header:", "header:X Tenant", "principal:x"} {
		if _, err := ParseKeySpec(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestRateLimitHeaders(t *testing.T) {
	l := Limit{Rate: 100, Per: time.Minute, Burst: 20}
	p, c := RateLimitHeaders("api-rate", l, Result{Allowed: true, Remaining: 17, ResetAfter: 1800 * time.Millisecond})
	if p != `"api-rate";q=100;w=60` || c != `"api-rate";r=17;t=2` {
		t.Fatalf("got %s / %s", p, c)
	}
	h := http.Header{}
	SetRateLimitHeaders(h, `we"ird\name`+"\n", l, Result{Allowed: false, Remaining: 3, RetryAfter: 10 * time.Millisecond, ResetAfter: 12 * time.Second})
	if got := h.Get("RateLimit"); got != `"we\"ird\\name_";r=0;t=12` {
		t.Errorf("RateLimit %q", got)
	}
	if got := h.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1 (never 0)", got)
	}
	h = http.Header{}
	SetRateLimitHeaders(h, "x", l, Result{Allowed: true, Remaining: 1})
	if h.Get("Retry-After") != "" {
		t.Error("Retry-After on an allowed request")
	}
}

func TestParseEscalation(t *testing.T) {
	for in, want := range map[string]struct {
		f float64
		m time.Duration
	}{
		"2x, max 24h": {2, 24 * time.Hour}, "1.5x max 7d": {1.5, 7 * 24 * time.Hour}, "3x": {3, 0}, "": {1, 0}, "none": {1, 0},
	} {
		f, m, err := ParseEscalation(in)
		if err != nil || f != want.f || m != want.m {
			t.Errorf("%q: %g %s %v", in, f, m, err)
		}
	}
	for _, bad := range []string{"2", "0.5x", "twice", "2x, max", "2x, max forever", "1000x"} {
		if _, _, err := ParseEscalation(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
