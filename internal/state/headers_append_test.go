package state

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// The per-request fast paths say exactly what the general functions say.
func TestPrecomputedHeadersAndKeysAgree(t *testing.T) {
	l := Limit{Rate: 100, Per: time.Minute, Burst: 20}
	for _, name := range []string{"api-rate", `we"ird\name`, "ünï"} {
		for _, r := range []Result{
			{Allowed: true, Remaining: 17, ResetAfter: 4200 * time.Millisecond},
			{Allowed: false, Remaining: 3, ResetAfter: time.Minute, RetryAfter: time.Second},
			{Allowed: true, Remaining: -1},
		} {
			p, c := RateLimitHeaders(name, l, r)
			if got := PolicyHeader(name, l); got != p {
				t.Errorf("PolicyHeader(%q) = %q, want %q", name, got, p)
			}
			if got := CurrentHeader(SFName(name), r); got != c {
				t.Errorf("CurrentHeader(%q, %+v) = %q, want %q", name, r, got, c)
			}
		}
	}
	h := http.Header{}
	h.Set("X-Tenant", "acme")
	for _, spec := range []string{"ip", "ip_prefix", "ip_prefix:16,48", "principal", "api_key", "header:X-Tenant"} {
		k, err := ParseKeySpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range []KeyInput{
			{IP: netip.MustParseAddr("203.0.113.9"), Principal: "alice", APIKeyID: "ci", Header: h},
			{IP: netip.MustParseAddr("::ffff:198.51.100.7")},
			{IP: netip.MustParseAddr("fe80::1%eth0")},
		} {
			if got, want := string(k.AppendKey([]byte("r|"), in)), "r|"+k.Key(in); got != want {
				t.Errorf("%s AppendKey = %q, want %q", spec, got, want)
			}
		}
	}
}
