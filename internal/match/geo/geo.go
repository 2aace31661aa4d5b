// Package geo answers two questions about a client address: which country it
// is in and which autonomous system (network operator) announces it. Answers
// come from MaxMind-format (.mmdb) databases — MaxMind GeoIP2/GeoLite2, DB-IP
// and IPinfo files alike — or, with no download at all, from an embedded
// country table (Default).
//
// "Unknown" is always reported as ok=false, never as a made-up country: an
// address that is private, loopback, link-local, carrier-grade NAT or
// documentation is not looked up at all, a record without a country is
// unknown, and the placeholder code "ZZ" is unknown.
package geo

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	maxminddb "github.com/oschwald/maxminddb-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// Source is what country and ASN rules consult. *DB, *Reloading and
// Embedded all implement it, so a policy can take a downloaded database, one
// that follows its file on disk, or the embedded table.
type Source interface {
	// Country returns the ISO 3166-1 alpha-2 code (upper case) of the
	// country ip is located in, or ok=false when that is unknown.
	Country(ip netip.Addr) (code string, ok bool)
	// ASN returns the autonomous system number announcing ip and, when the
	// source has it, the organisation's name; ok=false when unknown.
	ASN(ip netip.Addr) (asn uint32, org string, ok bool)
}

// DB is one opened MaxMind-format database. It is safe for concurrent use and
// immutable; Reloading swaps whole DBs when the file changes.
type DB struct {
	path   string
	reader *maxminddb.Reader
}

// Open reads the database at path into memory and opens it.
//
// The file is read rather than memory-mapped on purpose: databases are
// replaced in place by update tools, and a mapped file that is truncated or
// rewritten under a running reader crashes the process (SIGBUS). A copy in
// memory costs the file's size (a few MB for country and ASN tables) and
// makes the DB independent of what later happens to the file.
func Open(path string) (*DB, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("geo: read database: %w", err)
	}
	return openBytes(path, data)
}

func openBytes(path string, data []byte) (*DB, error) {
	reader, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("geo: open database %s: %w", path, err)
	}
	return &DB{path: path, reader: reader}, nil
}

// Path is the file the database was read from.
func (d *DB) Path() string { return d.path }

// DatabaseType is the database_type from the file's metadata, for example
// "GeoLite2-Country", "DBIP-ASN-Lite (compat=GeoLite2-ASN)" or "ipinfo lite".
func (d *DB) DatabaseType() string { return d.reader.Metadata.DatabaseType }

// BuildTime is when the database was built, from its metadata; operators use
// it to notice a table that has stopped being updated.
func (d *DB) BuildTime() time.Time { return d.reader.Metadata.BuildTime() }

// Country returns the country ip is located in. The code comes from
// `country.iso_code` (MaxMind, DB-IP) or from a top-level `country_code` or
// two-letter `country` string (IPinfo). Only the located country counts:
// `registered_country` and `represented_country` are deliberately not used as
// fallbacks, because "registered in the US" is not "located in the US".
func (d *DB) Country(ip netip.Addr) (string, bool) {
	ip, ok := LookupAddr(ip)
	if !ok {
		return "", false
	}
	result := d.reader.Lookup(ip)
	if !result.Found() {
		return "", false
	}
	// Fast path for the MaxMind/DB-IP layout: follow country → iso_code and
	// stop, instead of walking past the rest of the record (City records
	// carry names in eight languages that a country rule never needs).
	var iso string
	if err := result.DecodePath(&iso, "country", "iso_code"); err == nil {
		if code := countryCode(iso); code != "" {
			return code, true
		}
	}
	// Other layouts (IPinfo), or a record without a usable code.
	var rec countryRecord
	if err := result.Decode(&rec); err != nil {
		// A record that cannot be decoded says nothing about the address.
		return "", false
	}
	code := rec.code()
	return code, code != ""
}

// ASN returns the autonomous system announcing ip. The number comes from
// `autonomous_system_number` (MaxMind, DB-IP) or from IPinfo's `asn` string
// ("AS15169"); the organisation from `autonomous_system_organization`,
// IPinfo's `as_name`, or IPinfo's `name`, and is "" when the record has none.
// AS 0 is reserved for "no AS" and is reported as unknown.
func (d *DB) ASN(ip netip.Addr) (uint32, string, bool) {
	ip, ok := LookupAddr(ip)
	if !ok {
		return 0, "", false
	}
	var rec asnRecord
	if err := d.reader.Lookup(ip).Decode(&rec); err != nil {
		return 0, "", false
	}
	if rec.number == 0 {
		return 0, "", false
	}
	return rec.number, rec.organisation(), true
}

// maxStringBytes bounds every string decoded from a record. Country codes and
// organisation names are short; a longer value means a damaged or hostile
// file, and the lookup then reports "unknown" instead of allocating.
const maxStringBytes = 1024

// countryRecord decodes only the fields that can carry a country code,
// skipping everything else in the record (names in many languages,
// subdivisions, coordinates) without allocating for it.
type countryRecord struct {
	isoCode     string // country.iso_code
	countryCode string // top-level country_code (IPinfo Lite)
	country     string // top-level country string (IPinfo legacy: a code; IPinfo Lite: a name)
}

func (r *countryRecord) code() string {
	if c := countryCode(r.isoCode); c != "" {
		return c
	}
	if c := countryCode(r.countryCode); c != "" {
		return c
	}
	return countryCode(r.country)
}

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler.
func (r *countryRecord) UnmarshalMaxMindDBCursor(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	entries, err := c.Map()
	if err != nil {
		return mmdbdata.Cursor{}, mmdbdata.NormalizeUnmarshalError[countryRecord](err)
	}
	var next mmdbdata.Cursor
	for {
		key, value, ok := entries.Next(next)
		if !ok {
			break
		}
		switch string(key) {
		case "country":
			// A map in MaxMind/DB-IP layouts, a string in IPinfo's.
			var kind mmdbdata.Kind
			kind, err = value.Kind()
			if err != nil {
				return mmdbdata.Cursor{}, err
			}
			switch kind {
			case mmdbdata.KindMap:
				r.isoCode, next, err = readISOCode(value)
			case mmdbdata.KindString:
				r.country, next, err = value.ReadStringMaxSize(maxStringBytes)
			default:
				next, err = value.Skip()
			}
		case "country_code":
			r.countryCode, next, err = readOptionalString(value)
		default:
			next, err = value.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	return entries.End()
}

// readISOCode reads `iso_code` out of a MaxMind-style country map.
func readISOCode(c mmdbdata.Cursor) (string, mmdbdata.Cursor, error) {
	entries, err := c.Map()
	if err != nil {
		return "", mmdbdata.Cursor{}, mmdbdata.NormalizeUnmarshalError[countryRecord](err)
	}
	var code string
	var next mmdbdata.Cursor
	for {
		key, value, ok := entries.Next(next)
		if !ok {
			break
		}
		if string(key) == "iso_code" {
			code, next, err = readOptionalString(value)
		} else {
			next, err = value.Skip()
		}
		if err != nil {
			return "", mmdbdata.Cursor{}, err
		}
	}
	next, err = entries.End()
	return code, next, err
}

// readOptionalString reads a string, or skips a value of another kind so
// that an unexpected layout degrades to "field absent" instead of failing the
// whole record.
func readOptionalString(c mmdbdata.Cursor) (string, mmdbdata.Cursor, error) {
	kind, err := c.Kind()
	if err != nil {
		return "", mmdbdata.Cursor{}, err
	}
	if kind != mmdbdata.KindString {
		next, err := c.Skip()
		return "", next, err
	}
	return c.ReadStringMaxSize(maxStringBytes)
}

// asnRecord decodes the autonomous-system fields of MaxMind/DB-IP
// (`autonomous_system_number`, `autonomous_system_organization`) and IPinfo
// (`asn` as "AS15169", `as_name` or `name`) layouts.
type asnRecord struct {
	number        uint32
	mmOrg         string // autonomous_system_organization
	ipinfoASName  string // as_name (IPinfo Lite, country_asn)
	ipinfoName    string // name (IPinfo asn database)
	fromIPinfoASN bool   // number came from IPinfo's `asn`, so `name` means the AS name
}

func (r *asnRecord) organisation() string {
	switch {
	case r.mmOrg != "":
		return r.mmOrg
	case r.ipinfoASName != "":
		return r.ipinfoASName
	case r.fromIPinfoASN:
		return r.ipinfoName
	}
	return ""
}

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler.
func (r *asnRecord) UnmarshalMaxMindDBCursor(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	entries, err := c.Map()
	if err != nil {
		return mmdbdata.Cursor{}, mmdbdata.NormalizeUnmarshalError[asnRecord](err)
	}
	var next mmdbdata.Cursor
	var mmNumber, ipinfoNumber uint32
	for {
		key, value, ok := entries.Next(next)
		if !ok {
			break
		}
		switch string(key) {
		case "autonomous_system_number":
			mmNumber, next, err = readASNumber(value)
		case "asn":
			ipinfoNumber, next, err = readASNumber(value)
		case "autonomous_system_organization":
			r.mmOrg, next, err = readOptionalString(value)
		case "as_name":
			r.ipinfoASName, next, err = readOptionalString(value)
		case "name":
			r.ipinfoName, next, err = readOptionalString(value)
		default:
			next, err = value.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	switch {
	case mmNumber != 0:
		r.number = mmNumber
	case ipinfoNumber != 0:
		r.number = ipinfoNumber
		r.fromIPinfoASN = true
	}
	return entries.End()
}

// readASNumber accepts an unsigned integer or a string "AS15169" / "15169".
// Anything else (or a number out of the 32-bit AS range) reads as 0, unknown.
func readASNumber(c mmdbdata.Cursor) (uint32, mmdbdata.Cursor, error) {
	kind, err := c.Kind()
	if err != nil {
		return 0, mmdbdata.Cursor{}, err
	}
	switch kind {
	case mmdbdata.KindUint16, mmdbdata.KindUint32, mmdbdata.KindUint64:
		n, next, err := c.ReadUint()
		if err != nil || n > 1<<32-1 {
			return 0, next, err
		}
		return uint32(n), next, nil
	case mmdbdata.KindString:
		s, next, err := c.ReadStringMaxSize(32)
		if err != nil {
			return 0, next, err
		}
		return parseASNString(s), next, nil
	}
	next, err := c.Skip()
	return 0, next, err
}

// parseASNString parses "AS15169", "as15169" or "15169"; 0 when it is none.
func parseASNString(s string) uint32 {
	if len(s) >= 2 && strings.EqualFold(s[:2], "AS") {
		s = s[2:]
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}
