package importer

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// --- address sets ---

// TestIPSetAgainstBruteForce checks union, complement, intersection and the
// minimal prefix list against address-by-address evaluation over a /24.
func TestIPSetAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randomSet := func() (IPSet, [256]bool) {
		var s IPSet
		var in [256]bool
		for range rng.IntN(5) {
			bits := 24 + rng.IntN(9)
			a := netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(256))})
			p := netip.PrefixFrom(a, bits).Masked()
			s = s.Union(PrefixSet(p))
			for i := range 256 {
				if p.Contains(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})) {
					in[i] = true
				}
			}
		}
		return s, in
	}
	for range 500 {
		a, ain := randomSet()
		b, bin := randomSet()
		u, x, m, c := a.Union(b), a.Intersect(b), a.Minus(b), a.Complement()
		for i := range 256 {
			addr := netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
			if got, want := u.Contains(addr), ain[i] || bin[i]; got != want {
				t.Fatalf("union %v ∪ %v at %v: %v, want %v", a.Strings(), b.Strings(), addr, got, want)
			}
			if got, want := x.Contains(addr), ain[i] && bin[i]; got != want {
				t.Fatalf("intersect %v ∩ %v at %v: %v, want %v", a.Strings(), b.Strings(), addr, got, want)
			}
			if got, want := m.Contains(addr), ain[i] && !bin[i]; got != want {
				t.Fatalf("minus %v \\ %v at %v: %v, want %v", a.Strings(), b.Strings(), addr, got, want)
			}
			if got, want := c.Contains(addr), !ain[i]; got != want {
				t.Fatalf("complement of %v at %v: %v, want %v", a.Strings(), addr, got, want)
			}
		}
		// The prefix list describes the same set, without overlaps.
		var back IPSet
		for _, p := range u.Prefixes() {
			if !PrefixSet(p).Intersect(back).IsEmpty() {
				t.Fatalf("prefixes of %v overlap at %v", u.Strings(), p)
			}
			back = back.Union(PrefixSet(p))
		}
		if !back.Equal(u) {
			t.Fatalf("prefixes %v do not rebuild the set", u.Strings())
		}
	}
}

func TestIPSetComplementCoversBothFamilies(t *testing.T) {
	s, _ := ParseNginxAddr("10.0.0.0/8")
	c := s.Complement()
	for _, a := range []string{"0.0.0.0", "9.255.255.255", "11.0.0.0", "255.255.255.255", "::", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if !c.Contains(netip.MustParseAddr(a)) {
			t.Errorf("complement of 10.0.0.0/8 lacks %s", a)
		}
	}
	if c.Contains(netip.MustParseAddr("10.9.8.7")) || c.Contains(netip.MustParseAddr("::ffff:10.9.8.7")) {
		t.Error("complement of 10.0.0.0/8 holds 10.9.8.7 (or its IPv4-mapped form)")
	}
	if got := strings.Join(c.Complement().Strings(), " "); got != "10.0.0.0/8" {
		t.Errorf("double complement = %s", got)
	}
	if !AllAddrs().IsAll() || AllAddrs().Complement().IsEmpty() == false {
		t.Error("the full set is not its own double complement")
	}
	if got := strings.Join(AllAddrs().Strings(), " "); got != "0.0.0.0/0 ::/0" {
		t.Errorf("all addresses render as %q", got)
	}
}

func TestParseApacheAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.1":                       "10.1.0.0/16",
		"10.1.":                      "10.1.0.0/16",
		"192.168.1":                  "192.168.1.0/24",
		"10":                         "10.0.0.0/8",
		"10.1.2.3":                   "10.1.2.3",
		"10.1.0.0/255.255.0.0":       "10.1.0.0/16",
		"10.1.2.0/24":                "10.1.2.0/24",
		"2001:db8::/32":              "2001:db8::/32",
		"::ffff:10.1.2.3":            "10.1.2.3",
		"10.0.0.0/255.255.255.252":   "10.0.0.0/30",
		"172.16.0.0/255.240.0.0":     "172.16.0.0/12",
		"10.1.2.3/255.255.255.255":   "10.1.2.3",
		"10.1.2.128/255.255.255.128": "10.1.2.128/25",
	} {
		s, err := ParseApacheAddr(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := strings.Join(s.Strings(), " "); got != want {
			t.Errorf("%s = %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"example.com", "10.1.2.3.4", "300.1", "10.0.0.0/255.0.255.0", "1.2.3.4/33", ""} {
		if _, err := ParseApacheAddr(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseNginxAddr(t *testing.T) {
	s, err := ParseNginxAddr("10.1.2.3/8") // nginx masks the host bits
	if err != nil || strings.Join(s.Strings(), " ") != "10.0.0.0/8" {
		t.Errorf("10.1.2.3/8 = %v, %v", s.Strings(), err)
	}
	for _, bad := range []string{"unix:", "example.com", "10.0.0.0/40", "fe80::1%eth0"} {
		if _, err := ParseNginxAddr(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
