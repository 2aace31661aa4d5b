package importer

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// IPSet is a set of IP addresses held as sorted, disjoint, non-adjacent
// ranges, IPv4 ranges before IPv6 ones. nginx's first-match allow/deny lists
// and Apache's Order/Allow/Deny and Require trees all reduce to unions,
// intersections and complements of address sets; computing them exactly is
// what lets one warden rule say "these addresses are refused" without
// reproducing the server's evaluation order.
type IPSet struct {
	rs []ipRange
}

type ipRange struct {
	lo, hi netip.Addr
}

var (
	v4First = netip.IPv4Unspecified()
	v4Last  = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	v6First = netip.IPv6Unspecified()
	v6Last  = netip.AddrFrom16([16]byte{255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
)

// AllAddrs is every IPv4 and IPv6 address.
func AllAddrs() IPSet {
	return IPSet{rs: []ipRange{{v4First, v4Last}, {v6First, v6Last}}}
}

// PrefixSet is the set of addresses in p.
func PrefixSet(p netip.Prefix) IPSet {
	p = p.Masked()
	return IPSet{rs: []ipRange{{p.Addr(), lastAddr(p)}}}
}

func (s IPSet) IsEmpty() bool { return len(s.rs) == 0 }

func (s IPSet) IsAll() bool { return s.Equal(AllAddrs()) }

func (s IPSet) Equal(o IPSet) bool {
	return slices.Equal(s.rs, o.rs)
}

// Contains reports whether a is in the set; IPv4-mapped IPv6 addresses are
// looked up as IPv4, as warden and both servers do.
func (s IPSet) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, r := range s.rs {
		if r.lo.Compare(a) <= 0 && a.Compare(r.hi) <= 0 {
			return true
		}
	}
	return false
}

// Union is s ∪ o.
func (s IPSet) Union(o IPSet) IPSet {
	all := make([]ipRange, 0, len(s.rs)+len(o.rs))
	all = append(all, s.rs...)
	all = append(all, o.rs...)
	slices.SortFunc(all, func(a, b ipRange) int { return a.lo.Compare(b.lo) })
	var out []ipRange
	for _, r := range all {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.hi.BitLen() == r.lo.BitLen() {
				next := last.hi.Next()
				if r.lo.Compare(last.hi) <= 0 || next.IsValid() && next == r.lo {
					if r.hi.Compare(last.hi) > 0 {
						last.hi = r.hi
					}
					continue
				}
			}
		}
		out = append(out, r)
	}
	return IPSet{rs: out}
}

// Complement is every address not in s.
func (s IPSet) Complement() IPSet {
	var out []ipRange
	for _, fam := range []ipRange{{v4First, v4Last}, {v6First, v6Last}} {
		cursor := fam.lo
		done := false
		for _, r := range s.rs {
			if r.lo.BitLen() != fam.lo.BitLen() {
				continue
			}
			if r.lo.Compare(cursor) > 0 {
				out = append(out, ipRange{cursor, r.lo.Prev()})
			}
			next := r.hi.Next()
			if !next.IsValid() || next.BitLen() != fam.lo.BitLen() {
				done = true
				break
			}
			cursor = next
		}
		if !done {
			out = append(out, ipRange{cursor, fam.hi})
		}
	}
	return IPSet{rs: out}
}

// Intersect is s ∩ o.
func (s IPSet) Intersect(o IPSet) IPSet {
	return s.Complement().Union(o.Complement()).Complement()
}

// Minus is s \ o.
func (s IPSet) Minus(o IPSet) IPSet {
	return s.Intersect(o.Complement())
}

// SubsetOf reports s ⊆ o.
func (s IPSet) SubsetOf(o IPSet) bool {
	return s.Minus(o).IsEmpty()
}

// Prefixes is the shortest list of CIDR Prefixes whose union is s.
func (s IPSet) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range s.rs {
		lo := r.lo
		for {
			var p netip.Prefix
			for bits := 0; bits <= lo.BitLen(); bits++ {
				cand := netip.PrefixFrom(lo, bits)
				if cand.Masked().Addr() != lo {
					continue
				}
				if lastAddr(cand).Compare(r.hi) <= 0 {
					p = cand
					break
				}
			}
			out = append(out, p)
			last := lastAddr(p)
			if last == r.hi {
				break
			}
			lo = last.Next()
		}
	}
	return out
}

// Strings renders the prefixes, single addresses without "/32" or "/128".
func (s IPSet) Strings() []string {
	var out []string
	for _, p := range s.Prefixes() {
		if p.Bits() == p.Addr().BitLen() {
			out = append(out, p.Addr().String())
		} else {
			out = append(out, p.String())
		}
	}
	return out
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		setHostBits(b[:], p.Bits())
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	setHostBits(b[:], p.Bits())
	return netip.AddrFrom16(b)
}

func setHostBits(b []byte, bits int) {
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
}

// ParseNginxAddr reads an allow/deny argument: "all", an address or a CIDR.
// nginx accepts a CIDR with host bits set and masks it (with a warning); so
// does this.
func ParseNginxAddr(s string) (IPSet, error) {
	if s == "all" {
		return AllAddrs(), nil
	}
	if strings.HasPrefix(s, "unix:") {
		return IPSet{}, fmt.Errorf("unix-socket clients have no IP address")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return IPSet{}, fmt.Errorf("%q is not an address or CIDR", s)
		}
		return PrefixSet(unmapPrefix(p)), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return IPSet{}, fmt.Errorf("%q is not an address or CIDR", s)
	}
	a = a.Unmap()
	return PrefixSet(netip.PrefixFrom(a, a.BitLen())), nil
}

// ParseApacheAddr reads an address argument of Require ip, Allow from and
// Deny from: a full address, a partial IPv4 address ("10.1" is 10.1.0.0/16),
// a CIDR, or an IPv4 network/netmask pair ("10.1.0.0/255.255.0.0").
// Host names are not addresses; the caller reports them.
func ParseApacheAddr(s string) (IPSet, error) {
	bad := func() (IPSet, error) {
		return IPSet{}, fmt.Errorf("%q is not an IP address, partial address or network (host names cannot be translated)", s)
	}
	if net, mask, ok := strings.Cut(s, "/"); ok {
		if strings.Contains(mask, ".") {
			a, err := netip.ParseAddr(net)
			m, err2 := netip.ParseAddr(mask)
			if err != nil || err2 != nil || !a.Is4() || !m.Is4() {
				return bad()
			}
			bits, ok := maskBits(m.As4())
			if !ok {
				return bad()
			}
			return PrefixSet(netip.PrefixFrom(a, bits)), nil
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return bad()
		}
		return PrefixSet(unmapPrefix(p)), nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return PrefixSet(netip.PrefixFrom(a, a.BitLen())), nil
	}
	// Partial IPv4: one to three leading octets, with or without a final dot.
	parts := strings.Split(strings.TrimSuffix(s, "."), ".")
	if len(parts) < 1 || len(parts) > 3 {
		return bad()
	}
	var b [4]byte
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 || p == "" || strings.HasPrefix(p, "+") {
			return bad()
		}
		b[i] = byte(n)
	}
	return PrefixSet(netip.PrefixFrom(netip.AddrFrom4(b), 8*len(parts))), nil
}

func maskBits(m [4]byte) (int, bool) {
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	bits := 0
	for bits < 32 && v&(1<<(31-bits)) != 0 {
		bits++
	}
	if bits < 32 && v<<bits != 0 {
		return 0, false // not contiguous
	}
	return bits, true
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}
