package state

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Keys name what a counter or ban belongs to: "ip:203.0.113.9",
// "net:2001:db8:1:2::/64", "user:alice", "key:ci-bot", "hdr:x-tenant=acme".
// They are pure functions of the request's facts, bounded in length (a
// client cannot make a counter key, a Redis key or a log line as long as a
// 64 KiB header), and printable: a value that is long, or holds anything
// but printable ASCII, is replaced by "~" and a SHA-256 prefix of it, so
// keys are safe in logs, in `warden bans list`, and as Redis keys (no
// spaces, no braces to upset Redis Cluster hash tags).

// MaxValueLen is the longest value kept verbatim in a key.
const MaxValueLen = 64

// Default prefix lengths for ip_prefix keys: an IPv4 /24 is one typical
// customer or cloud subnet; an IPv6 /64 is one LAN (RFC 4291 §2.5.1), which
// a single host can fill with as many addresses as it likes (RFC 8981
// temporary addresses), so per-address IPv6 keys are no limit at all.
const (
	DefaultV4Prefix = 24
	DefaultV6Prefix = 64
)

// IPKey is the key of one client address. IPv4-mapped IPv6 addresses are
// the IPv4 address, and zones are dropped, so one client has one key.
func IPKey(a netip.Addr) string {
	return "ip:" + a.Unmap().WithZone("").String()
}

// PrefixKey is the key of the network around a client address: v4Bits for
// IPv4, v6Bits for IPv6 (0 takes the defaults).
func PrefixKey(a netip.Addr, v4Bits, v6Bits int) string {
	a = a.Unmap().WithZone("")
	bits := v6Bits
	if bits <= 0 {
		bits = DefaultV6Prefix
	}
	if a.Is4() {
		bits = v4Bits
		if bits <= 0 {
			bits = DefaultV4Prefix
		}
	}
	if bits > a.BitLen() {
		bits = a.BitLen()
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return "net:invalid"
	}
	return "net:" + p.String()
}

// PrincipalKey is the key of an authenticated caller.
func PrincipalKey(name string) string { return "user:" + BoundedValue(name) }

// APIKeyKey is the key of an API key, by its configured id (never the
// secret).
func APIKeyKey(id string) string { return "key:" + BoundedValue(id) }

// HeaderKey is the key of a header's value; the name is case-insensitive.
func HeaderKey(name, value string) string {
	return "hdr:" + BoundedValue(strings.ToLower(name)) + "=" + BoundedValue(value)
}

// RuleKey scopes a subject key to one rule, so two rate-limited rules keep
// separate counters for the same client.
func RuleKey(rule, subject string) string { return BoundedValue(rule) + "|" + subject }

// BoundedValue returns v when it is short and plainly printable, else "~"
// and the first 128 bits of its SHA-256 in hex.
func BoundedValue(v string) string {
	if len(v) <= MaxValueLen && plain(v) {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return "~" + hex.EncodeToString(sum[:16])
}

// plain reports whether every byte is printable ASCII other than space and
// the characters keys use as separators or Redis Cluster uses for hash tags.
// "~" is excluded so that a literal value can never look like a hashed one.
func plain(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f {
			return false
		}
		switch c {
		case '{', '}', '|', '~', '"', '\\':
			return false
		}
	}
	return true
}

// KeyKind is what a rate limit or ban counts by.
type KeyKind uint8

const (
	KeyIP KeyKind = iota
	KeyIPPrefix
	KeyPrincipal
	KeyAPIKey
	KeyHeader
)

// KeySpec is a parsed `key:` value of a rate limit.
type KeySpec struct {
	Kind           KeyKind
	V4Bits, V6Bits int    // KeyIPPrefix
	Header         string // KeyHeader, canonical form
}

// ParseKeySpec reads ip | ip_prefix | ip_prefix:V4,V6 | principal | api_key
// | header:NAME. The empty string is ip.
func ParseKeySpec(s string) (KeySpec, error) {
	switch {
	case s == "" || s == "ip":
		return KeySpec{Kind: KeyIP}, nil
	case s == "ip_prefix":
		return KeySpec{Kind: KeyIPPrefix, V4Bits: DefaultV4Prefix, V6Bits: DefaultV6Prefix}, nil
	case strings.HasPrefix(s, "ip_prefix:"):
		v4s, v6s, ok := strings.Cut(strings.TrimPrefix(s, "ip_prefix:"), ",")
		v4, err4 := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(v4s), "/"))
		v6, err6 := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(v6s), "/"))
		if !ok || err4 != nil || err6 != nil || v4 < 1 || v4 > 32 || v6 < 1 || v6 > 128 {
			return KeySpec{}, fmt.Errorf("key %q: want ip_prefix:V4,V6 with V4 in 1..32 and V6 in 1..128, e.g. ip_prefix:24,64", s)
		}
		return KeySpec{Kind: KeyIPPrefix, V4Bits: v4, V6Bits: v6}, nil
	case s == "principal":
		return KeySpec{Kind: KeyPrincipal}, nil
	case s == "api_key":
		return KeySpec{Kind: KeyAPIKey}, nil
	case strings.HasPrefix(s, "header:"):
		name := strings.TrimSpace(strings.TrimPrefix(s, "header:"))
		if name == "" || !validHeaderName(name) {
			return KeySpec{}, fmt.Errorf("key %q: header: needs a header name, e.g. header:X-Tenant", s)
		}
		return KeySpec{Kind: KeyHeader, Header: http.CanonicalHeaderKey(name)}, nil
	}
	return KeySpec{}, fmt.Errorf("key %q: want ip, ip_prefix, ip_prefix:V4,V6, principal, api_key or header:NAME", s)
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func (k KeySpec) String() string {
	switch k.Kind {
	case KeyIPPrefix:
		return fmt.Sprintf("ip_prefix:%d,%d", k.V4Bits, k.V6Bits)
	case KeyPrincipal:
		return "principal"
	case KeyAPIKey:
		return "api_key"
	case KeyHeader:
		return "header:" + k.Header
	}
	return "ip"
}

// KeyInput is what a key can be made from.
type KeyInput struct {
	IP        netip.Addr
	Principal string // the identified caller, "" when anonymous
	APIKeyID  string // the id of the API key used, "" when none
	Header    http.Header
}

// AppendKey appends Key(in) to dst. For a per-address key it formats the
// address in place, so that a caller with a buffer on its stack pays one
// allocation for the whole rule key instead of three.
func (k KeySpec) AppendKey(dst []byte, in KeyInput) []byte {
	if k.Kind == KeyIP {
		dst = append(dst, "ip:"...)
		return in.IP.Unmap().WithZone("").AppendTo(dst)
	}
	return append(dst, k.Key(in)...)
}

// Key makes the key for in. When the kind's value is missing (an anonymous
// caller under a per-principal limit, a request without the header) the
// client's address is the key instead: leaving out the credential or the
// header must not be a way out of the limit.
func (k KeySpec) Key(in KeyInput) string {
	switch k.Kind {
	case KeyIPPrefix:
		return PrefixKey(in.IP, k.V4Bits, k.V6Bits)
	case KeyPrincipal:
		if in.Principal != "" {
			return PrincipalKey(in.Principal)
		}
	case KeyAPIKey:
		if in.APIKeyID != "" {
			return APIKeyKey(in.APIKeyID)
		}
	case KeyHeader:
		if vals := in.Header.Values(k.Header); len(vals) > 0 {
			// All values, in order: a second copy of the header must not
			// select a different counter than the first alone would.
			return HeaderKey(k.Header, strings.Join(vals, ","))
		}
	}
	return IPKey(in.IP)
}
