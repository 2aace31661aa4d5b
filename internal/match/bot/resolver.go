package bot

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ErrNotFound is a definite "no such record" (NXDOMAIN, or no answer of the
// type asked): an answer that can be cached as negative.
var ErrNotFound = errors.New("no such record")

// Resolver answers the two questions verification asks.
type Resolver interface {
	// LookupPTR returns the PTR names of ip.
	LookupPTR(ctx context.Context, ip netip.Addr) ([]string, error)
	// LookupAddrs returns the A (v6 false) or AAAA (v6 true) addresses of host.
	LookupAddrs(ctx context.Context, host string, v6 bool) ([]netip.Addr, error)
}

// DNSResolver asks one DNS server (a recursive resolver the operator
// chooses, "127.0.0.1:53" or "[::1]:5353") directly, over UDP with a TCP
// retry for truncated answers. It does not read /etc/hosts or
// nsswitch.conf, which would let a local file vouch for a crawler, and it
// tells NXDOMAIN (cacheable) from a timeout or SERVFAIL (not).
type DNSResolver struct {
	Server  string
	Timeout time.Duration // per query; default 2s
}

func (r *DNSResolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	c := &dns.Client{Net: "udp", Timeout: timeout}
	in, _, err := c.ExchangeContext(ctx, m, r.Server)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, r.Server)
	}
	if err != nil {
		return nil, fmt.Errorf("dns %s %s via %s: %w", dns.TypeToString[qtype], name, r.Server, err)
	}
	if in.Id != m.Id {
		return nil, fmt.Errorf("dns %s %s: answer to another query", dns.TypeToString[qtype], name)
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, ErrNotFound
	default:
		return nil, fmt.Errorf("dns %s %s via %s: %s", dns.TypeToString[qtype], name, r.Server, dns.RcodeToString[in.Rcode])
	}
	return in.Answer, nil
}

// LookupPTR implements Resolver.
func (r *DNSResolver) LookupPTR(ctx context.Context, ip netip.Addr) ([]string, error) {
	rev, err := dns.ReverseAddr(ip.Unmap().String())
	if err != nil {
		return nil, err
	}
	ans, err := r.query(ctx, rev, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, rr := range ans {
		if p, ok := rr.(*dns.PTR); ok && strings.EqualFold(p.Hdr.Name, rev) {
			names = append(names, p.Ptr)
		}
	}
	if len(names) == 0 {
		return nil, ErrNotFound
	}
	return names, nil
}

// LookupAddrs implements Resolver. CNAMEs are followed within the answer:
// only addresses owned by host or by a name its CNAME chain leads to count.
func (r *DNSResolver) LookupAddrs(ctx context.Context, host string, v6 bool) ([]netip.Addr, error) {
	qtype := dns.TypeA
	if v6 {
		qtype = dns.TypeAAAA
	}
	ans, err := r.query(ctx, host, qtype)
	if err != nil {
		return nil, err
	}
	owners := map[string]bool{strings.ToLower(dns.Fqdn(host)): true}
	for range 8 { // CNAME chains are short; the bound stops a loop
		grew := false
		for _, rr := range ans {
			if c, ok := rr.(*dns.CNAME); ok && owners[strings.ToLower(c.Hdr.Name)] && !owners[strings.ToLower(c.Target)] {
				owners[strings.ToLower(c.Target)] = true
				grew = true
			}
		}
		if !grew {
			break
		}
	}
	var addrs []netip.Addr
	for _, rr := range ans {
		if !owners[strings.ToLower(rr.Header().Name)] {
			continue
		}
		switch a := rr.(type) {
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
				addrs = append(addrs, ip)
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(a.AAAA.To16()); ok {
				addrs = append(addrs, ip.Unmap())
			}
		}
	}
	if len(addrs) == 0 {
		return nil, ErrNotFound
	}
	return addrs, nil
}
