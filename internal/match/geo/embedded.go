package geo

import (
	"net/netip"

	"github.com/phuslu/iploc"
)

// Embedded is the country table compiled into the binary, so that country
// rules work with no database to download. Its data is IP2Location LITE
// (CC BY-SA 4.0, attribution in the repository's NOTICE file), packaged by
// github.com/phuslu/iploc. It has no ASN data.
//
// The table is as fresh as the module version it was built with
// (EmbeddedVersion); operators who need current data configure a database
// file instead.
type Embedded struct{}

// EmbeddedVersion identifies the embedded country data (the iploc release,
// whose date is the IP2Location LITE snapshot it carries).
const EmbeddedVersion = iploc.Version

// Default returns the embedded country table.
func Default() Embedded { return Embedded{} }

// Country looks ip up in the embedded table. iploc answers "ZZ" for
// addresses it has no country for; that is reported as unknown.
//
// The first IPv6 lookup in a process decompresses the IPv6 part of the table
// (once, a few milliseconds); IPv4 lookups never allocate.
func (Embedded) Country(ip netip.Addr) (string, bool) {
	ip, ok := LookupAddr(ip)
	if !ok {
		return "", false
	}
	code := countryCode(iploc.IPCountry(ip))
	return code, code != ""
}

// ASN always reports unknown: the embedded table carries countries only.
func (Embedded) ASN(netip.Addr) (uint32, string, bool) { return 0, "", false }
