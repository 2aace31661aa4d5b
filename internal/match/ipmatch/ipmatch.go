// Package ipmatch holds client-IP lists: inline CIDRs and files of one CIDR a
// line, millions of lines, in a BART prefix table (github.com/gaissmai/bart),
// so a lookup costs the same tens of nanoseconds for ten entries or ten
// million.
package ipmatch

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/gaissmai/bart"
)

// Set is an immutable set of prefixes once built.
type Set struct {
	table bart.Lite
	n     int
}

// Contains reports whether ip lies in any prefix of the set. IPv4-mapped
// IPv6 addresses are looked up as IPv4, so ::ffff:10.0.0.1 cannot slip past
// a rule on 10.0.0.0/8.
func (s *Set) Contains(ip netip.Addr) bool {
	if s == nil || !ip.IsValid() {
		return false
	}
	return s.table.Contains(ip.Unmap())
}

// Len is the number of entries added (before aggregation).
func (s *Set) Len() int { return s.n }

// Add inserts one prefix.
func (s *Set) Add(p netip.Prefix) {
	s.table.Insert(p.Masked())
	s.n++
}

// AddSet inserts every prefix of o.
func (s *Set) AddSet(o *Set) {
	s.table.Union(&o.table)
	s.n += o.n
}

// Prefixes lists the prefixes, for tests and shadowing checks.
func (s *Set) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	for p := range s.table.All() {
		out = append(out, p)
	}
	return out
}

// Covers reports whether every address of p lies in the set.
func (s *Set) Covers(p netip.Prefix) bool {
	if s == nil {
		return false
	}
	return s.table.LookupPrefix(p.Masked())
}

// ParsePrefix reads "10.0.0.0/8", "2001:db8::/32" or a bare address (as a
// host prefix). A prefix with host bits set ("10.0.0.1/8") is an error: it
// almost always means a typo, and nginx warns about it too.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a valid CIDR", s)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: IPv4-mapped prefix shorter than /96", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}

// LineError is a bad line in a CIDR file.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

// LoadFile reads a file of one CIDR or address a line; '#' starts a comment.
// Every bad line is reported (up to maxErrs), none is skipped silently.
func LoadFile(path string, into *Set) []error {
	f, err := os.Open(path)
	if err != nil {
		return []error{fmt.Errorf("ip list: %w", err)}
	}
	defer f.Close()
	return Load(f, path, into)
}

const maxErrs = 20

// Load reads CIDR lines from r; name is used in error positions.
func Load(r io.Reader, name string, into *Set) []error {
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		p, err := ParsePrefix(text)
		if err != nil {
			if len(errs) < maxErrs {
				errs = append(errs, &LineError{name, line, err})
			}
			continue
		}
		into.Add(p)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	if len(errs) == maxErrs {
		errs = append(errs, fmt.Errorf("%s: more errors not shown", name))
	}
	return errs
}
