package geo

import "net/netip"

// LookupAddr returns ip in the form a geo table is searched with (an
// IPv4-mapped IPv6 address becomes plain IPv4, a zone is dropped) and reports
// whether it may be looked up at all. Unspecified, loopback, private (RFC 1918
// and unique-local), link-local, carrier-grade NAT, documentation,
// benchmarking, multicast and reserved addresses may not: no table can say
// which country they are in, so a country or ASN rule must treat them as
// unknown rather than trust whatever a table happens to hold for them.
func LookupAddr(ip netip.Addr) (netip.Addr, bool) {
	if !ip.IsValid() {
		return netip.Addr{}, false
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip, globalIPv4(ip.As4())
	}
	return ip, globalIPv6(ip)
}

// globalIPv4 is written as a switch on the octets rather than a loop over
// prefixes because it runs for every geo lookup.
func globalIPv4(a [4]byte) bool {
	switch a[0] {
	case 0: // "this network" (RFC 791), including the unspecified address
		return false
	case 10: // private (RFC 1918)
		return false
	case 100: // carrier-grade NAT 100.64.0.0/10 (RFC 6598)
		return a[1] < 64 || a[1] > 127
	case 127: // loopback
		return false
	case 169: // link-local 169.254.0.0/16
		return a[1] != 254
	case 172: // private 172.16.0.0/12
		return a[1] < 16 || a[1] > 31
	case 192: // private 192.168.0.0/16, TEST-NET-1 192.0.2.0/24 (RFC 5737)
		return a[1] != 168 && !(a[1] == 0 && a[2] == 2)
	case 198: // benchmarking 198.18.0.0/15 (RFC 2544), TEST-NET-2 198.51.100.0/24
		return a[1] != 18 && a[1] != 19 && !(a[1] == 51 && a[2] == 100)
	case 203: // TEST-NET-3 203.0.113.0/24
		return !(a[1] == 0 && a[2] == 113)
	}
	// 224.0.0.0/4 multicast, 240.0.0.0/4 reserved and the broadcast address.
	return a[0] < 224
}

func globalIPv6(ip netip.Addr) bool {
	if ip.IsUnspecified() || ip.IsLoopback() {
		return false
	}
	a := ip.As16()
	switch {
	case a[0]&0xfe == 0xfc: // unique local fc00::/7
		return false
	case a[0] == 0xfe && a[1] >= 0x80: // link-local fe80::/10, deprecated site-local fec0::/10
		return false
	case a[0] == 0xff: // multicast
		return false
	case a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8: // documentation 2001:db8::/32 (RFC 3849)
		return false
	case a[0] == 0x3f && a[1] == 0xff && a[2]&0xf0 == 0: // documentation 3fff::/20 (RFC 9637)
		return false
	}
	return true
}

// countryCode turns what a table stores into an ISO 3166-1 alpha-2 code, or
// "" when the value is not one. "ZZ" is the code tables (IP2Location, DB-IP)
// use for "unknown or unassigned" and therefore is never a country; names
// such as IPinfo Lite's "United States" in its `country` field are not codes.
func countryCode(s string) string {
	if len(s) != 2 {
		return ""
	}
	a, b := upperASCIILetter(s[0]), upperASCIILetter(s[1])
	if a == 0 || b == 0 {
		return ""
	}
	if a == 'Z' && b == 'Z' {
		return ""
	}
	if a == s[0] && b == s[1] {
		return s // already canonical: no allocation
	}
	return string([]byte{a, b})
}

func upperASCIILetter(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c
	case c >= 'a' && c <= 'z':
		return c - 'a' + 'A'
	}
	return 0
}
