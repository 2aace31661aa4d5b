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
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("zoned address %q in chain", s)
		}
		return a.Unmap(), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	if strings.HasPrefix(s, "[") {
		if end := strings.IndexByte(s, ']'); end > 0 {
			if a, err := netip.ParseAddr(s[1:end]); err == nil {
				return a.Unmap(), nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
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
