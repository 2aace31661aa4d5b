package canonical

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/warden-gateway/warden/internal/match/ipmatch"
)

// ClientIPSource lists the headers a trusted proxy may report the client in,
// in the order they are consulted.
var DefaultClientIPHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Real-IP"}

// ClientIP finds the address that rules judge. Headers are read only when
// the TCP peer is a trusted proxy; from anyone else they are ignored, since a
// client can write whatever it likes there. Within a chain the rightmost
// address that is not itself a trusted proxy is the client: every address to
// its left was written by a party we have no reason to believe.
//
// A chain from a trusted proxy that cannot be parsed is an error (400): the
// proxy we trust said something we cannot read, so no answer is safe.
func ClientIP(peer netip.Addr, h http.Header, trusted *ipmatch.Set, headers []string) (netip.Addr, bool, error) {
	peer = peer.Unmap()
	if trusted == nil || !trusted.Contains(peer) {
		return peer, false, nil
	}
	for _, name := range headers {
		vals := h.Values(name)
		if len(vals) == 0 {
			continue
		}
		var chain []string
		switch http.CanonicalHeaderKey(name) {
		case "Forwarded":
			var err error
			chain, err = forwardedFor(vals)
			if err != nil {
				return netip.Addr{}, true, err
			}
		case "X-Real-Ip":
			if len(vals) > 1 {
				return netip.Addr{}, true, fmt.Errorf("X-Real-IP given %d times", len(vals))
			}
			chain = []string{strings.TrimSpace(vals[0])}
		default:
			for _, v := range vals {
				for _, part := range strings.Split(v, ",") {
					chain = append(chain, strings.TrimSpace(part))
				}
			}
		}
		if len(chain) == 0 {
			continue
		}
		client := peer
		for i := len(chain) - 1; i >= 0; i-- {
			a, err := parseNode(chain[i])
			if err != nil {
				return netip.Addr{}, true, fmt.Errorf("%s: %w", name, err)
			}
			client = a
			if !trusted.Contains(a) {
				break
			}
		}
		return client, true, nil
	}
	return peer, true, nil
}

// parseNode reads one hop: an address, "[v6]:port", "v4:port", or the quoted
// forms of RFC 7239.
func parseNode(s string) (netip.Addr, error) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	if s == "" {
		return netip.Addr{}, fmt.Errorf("empty address in chain")
	}
	a, ok := readNode(s)
	if !ok {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	// A zone names an interface of the proxy's host, not a client; in any
	// of the forms, it cannot be judged.
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("zoned address %q in chain", s)
	}
	return a.Unmap(), nil
}

func readNode(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	// "[v6]" without a port (RFC 7239 allows it); anything after the
	// bracket other than ":port" is not an address.
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// forwardedFor extracts the for= values of RFC 7239 Forwarded headers, in
// order. Obfuscated identifiers ("_hidden") and "unknown" cannot be judged.
func forwardedFor(vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "for") {
					continue
				}
				out = append(out, strings.TrimSpace(val))
			}
		}
	}
	return out, nil
}
