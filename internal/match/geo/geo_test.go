package geo

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testdataDir is the folder of MaxMind's fictional test databases,
// vendored with their licence (see testdata/README.md), so the tests need
// nothing beside the repository.
func testdataDir(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join("testdata", "GeoIP2-Country-Test.mmdb")); err != nil {
		t.Fatalf("test databases missing: %v", err)
	}
	return "testdata"
}

func openTestDB(t testing.TB, name string) *DB {
	t.Helper()
	db, err := Open(filepath.Join(testdataDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

var countryFiles = []string{
	"GeoIP2-Country-Test.mmdb",
	"GeoLite2-Country-Test.mmdb",
	"GeoIP2-City-Test.mmdb",
	"GeoLite2-City-Test.mmdb",
}

func TestCountryFactsInEveryCountryFile(t *testing.T) {
	facts := []struct {
		ip   string
		want string // "" = unknown
	}{
		{"81.2.69.142", "GB"},
		{"81.2.69.160", "GB"},
		{"2.125.160.216", "GB"}, // registered in FR: the located country wins
		{"216.160.83.56", "US"}, // registered in GB
		{"89.160.20.112", "SE"},
		{"67.43.156.1", "BT"},
		{"202.196.224.1", "PH"}, // represented_country US is not the country
		{"::ffff:81.2.69.142", "GB"},
		{"2002:5102:458e::1", "GB"},
		{"2001:218::1", "JP"},
		{"2a02:cf40::1", "NO"},
		{"2a02:d3c0::1", "GB"},
		{"2a02:d500::1", ""}, // record with only a continent
		{"2001:220::1", "KR"},
		// No record anywhere.
		{"1.1.1.1", ""},
		{"8.8.8.8", ""},
		// Never looked up.
		{"10.0.0.1", ""},
		{"127.0.0.1", ""},
		{"192.168.1.1", ""},
		{"::1", ""},
		{"2001:db8::1", ""},
	}
	for _, file := range countryFiles {
		db := openTestDB(t, file)
		for _, f := range facts {
			code, ok := db.Country(netip.MustParseAddr(f.ip))
			if code != f.want || ok != (f.want != "") {
				t.Errorf("%s: Country(%s) = %q, %v; want %q", file, f.ip, code, ok, f.want)
			}
		}
	}
}

func TestCountryFactsThatDifferBetweenFiles(t *testing.T) {
	// ip → country per file, in the order of countryFiles; "" = unknown.
	facts := map[string][4]string{
		"111.235.160.1": {"CN", "CN", "", ""},
		"217.65.48.1":   {"GI", "GI", "", ""},
		"50.114.0.1":    {"US", "US", "", ""},
		"175.16.199.1":  {"CN", "", "CN", "CN"},
		"214.1.1.1":     {"", "", "", ""}, // found in GeoIP2 files, but without a country
		"2001:220::":    {"SE", "KR", "KR", "KR"},
	}
	for i, file := range countryFiles {
		db := openTestDB(t, file)
		for ip, want := range facts {
			code, ok := db.Country(netip.MustParseAddr(ip))
			if code != want[i] || ok != (want[i] != "") {
				t.Errorf("%s: Country(%s) = %q, %v; want %q", file, ip, code, ok, want[i])
			}
		}
	}
}

func TestASNFacts(t *testing.T) {
	db := openTestDB(t, "GeoLite2-ASN-Test.mmdb")
	facts := []struct {
		ip  string
		asn uint32
		org string
	}{
		{"1.0.0.1", 15169, "Google Inc."},
		{"1.128.0.1", 1221, "Telstra Pty Ltd"},
		{"12.81.92.1", 7018, "AT&T Services"},
		{"12.81.96.1", 7018, ""},
		{"18.1.2.3", 3, "Massachusetts Institute of Technology"},
		{"89.160.20.112", 29518, "Bredband2 AB"},
		{"149.101.100.1", 6167, "CELLCO-PART"},
		{"214.1.1.1", 721, "DoD Network Information Center"},
		{"216.160.83.56", 209, ""},
		{"2001:8000::1", 1221, "Telstra Pty Ltd"},
		{"2600:7000::1", 6939, "Hurricane Electric, Inc."},
		{"::ffff:1.128.0.1", 1221, "Telstra Pty Ltd"},
	}
	for _, f := range facts {
		asn, org, ok := db.ASN(netip.MustParseAddr(f.ip))
		if !ok || asn != f.asn || org != f.org {
			t.Errorf("ASN(%s) = %d, %q, %v; want %d, %q", f.ip, asn, org, ok, f.asn, f.org)
		}
	}
	for _, ip := range []string{"81.2.69.142", "2.125.160.216", "8.8.8.8", "1.1.1.1", "10.0.0.1", "2a02:d3c0::1"} {
		if asn, org, ok := db.ASN(netip.MustParseAddr(ip)); ok {
			t.Errorf("ASN(%s) = %d, %q; want unknown", ip, asn, org)
		}
	}
	// A country file has no ASN fields: unknown, not AS0.
	if asn, _, ok := openTestDB(t, "GeoIP2-Country-Test.mmdb").ASN(netip.MustParseAddr("81.2.69.142")); ok {
		t.Errorf("country database answered ASN %d", asn)
	}
	// And an ASN file has no country.
	if code, ok := db.Country(netip.MustParseAddr("1.0.0.1")); ok {
		t.Errorf("ASN database answered country %q", code)
	}
}

func TestLookupAddr(t *testing.T) {
	never := []string{
		"0.0.0.0", "0.1.2.3", "::", "127.0.0.1", "127.255.0.1", "::1",
		"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.0.1", "fc00::1", "fd12:3456::1",
		"169.254.1.1", "fe80::1", "fe80::1%eth0",
		"100.64.0.1", "100.127.255.254",
		"192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1", "3fff::1",
		"198.18.0.1", "224.0.0.1", "ff02::1", "255.255.255.255", "240.0.0.1",
		"::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:100.64.0.1",
	}
	for _, s := range never {
		if _, ok := LookupAddr(netip.MustParseAddr(s)); ok {
			t.Errorf("LookupAddr(%s) = ok, want never looked up", s)
		}
	}
	if _, ok := LookupAddr(netip.Addr{}); ok {
		t.Error("the zero Addr may be looked up")
	}
	public := map[string]string{
		"8.8.8.8":              "8.8.8.8",
		"::ffff:81.2.69.142":   "81.2.69.142",
		"100.63.255.255":       "100.63.255.255", // just below CGNAT
		"100.128.0.0":          "100.128.0.0",    // just above
		"172.32.0.1":           "172.32.0.1",
		"2001:4860:4860::8888": "2001:4860:4860::8888",
	}
	for in, want := range public {
		got, ok := LookupAddr(netip.MustParseAddr(in))
		if !ok || got != netip.MustParseAddr(want) {
			t.Errorf("LookupAddr(%s) = %s, %v; want %s, true", in, got, ok, want)
		}
	}
}

func TestCountryCode(t *testing.T) {
	cases := map[string]string{
		"US": "US", "gb": "GB", "De": "DE",
		"ZZ": "", "zz": "", "": "", "U": "", "USA": "", "A1": "", "--": "",
		"United States": "",
	}
	for in, want := range cases {
		if got := countryCode(in); got != want {
			t.Errorf("countryCode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDefaultEmbeddedTable(t *testing.T) {
	src := Default()
	// Addresses whose country is stable in every IP2Location LITE release.
	known := map[string]string{
		"8.8.8.8":            "US", // Google public DNS
		"::ffff:8.8.8.8":     "US",
		"2001:4860:4860::88": "US",
	}
	for ip, want := range known {
		if code, ok := src.Country(netip.MustParseAddr(ip)); !ok || code != want {
			t.Errorf("Default().Country(%s) = %q, %v; want %q", ip, code, ok, want)
		}
	}
	for _, ip := range []string{"10.0.0.1", "192.168.1.1", "127.0.0.1", "::1", "100.64.0.1", "fe80::1"} {
		if code, ok := src.Country(netip.MustParseAddr(ip)); ok {
			t.Errorf("Default().Country(%s) = %q; private addresses are never looked up", ip, code)
		}
	}
	// The table's own "unknown": 0.0.0.0/8 is filtered before the lookup,
	// so ask for an address the table itself has as ZZ (unallocated IPv6).
	if code, ok := src.Country(netip.MustParseAddr("2001::6ca0:a535")); ok {
		t.Errorf("Default().Country(2001::6ca0:a535) = %q; iploc's ZZ must read as unknown", code)
	}
	if _, _, ok := src.ASN(netip.MustParseAddr("8.8.8.8")); ok {
		t.Error("embedded table answered an ASN")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	// Write a temporary file and rename it over the target, as update tools do.
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, to); err != nil {
		t.Fatal(err)
	}
}

func TestReloadingSwapsOnChangeAndKeepsOldOnFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "country.mmdb")
	copyFile(t, filepath.Join(testdataDir(t), "GeoIP2-Country-Test.mmdb"), path)

	var mu sync.Mutex
	var failures []error
	var reloads int
	r, err := OpenReloading(path, ReloadOptions{
		OnError:  func(_ string, err error) { mu.Lock(); failures = append(failures, err); mu.Unlock() },
		OnReload: func(*DB) { mu.Lock(); reloads++; mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	probe := netip.MustParseAddr("111.235.160.1") // CN in Country-Test, absent from City-Test
	if code, ok := r.Country(probe); !ok || code != "CN" {
		t.Fatalf("before reload: Country = %q, %v; want CN", code, ok)
	}

	// Unchanged file: nothing happens.
	if reloaded, err := r.CheckNow(); reloaded || err != nil {
		t.Fatalf("CheckNow on an unchanged file = %v, %v", reloaded, err)
	}

	// Replace with the City database: the probe disappears, others stay.
	copyFile(t, filepath.Join(testdataDir(t), "GeoIP2-City-Test.mmdb"), path)
	if reloaded, err := r.CheckNow(); !reloaded || err != nil {
		t.Fatalf("CheckNow after replacement = %v, %v; want reloaded", reloaded, err)
	}
	if code, ok := r.Country(probe); ok {
		t.Errorf("after reload: Country(%s) = %q; want unknown (not in City-Test)", probe, code)
	}
	if code, ok := r.Country(netip.MustParseAddr("81.2.69.142")); !ok || code != "GB" {
		t.Errorf("after reload: Country(81.2.69.142) = %q, %v; want GB", code, ok)
	}
	if got := r.DB().DatabaseType(); got != "GeoIP2-City" {
		t.Errorf("DatabaseType after reload = %q", got)
	}

	// A broken file: the error is reported once, the City database stays.
	if err := os.WriteFile(path+".tmp", []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	if reloaded, err := r.CheckNow(); reloaded || err == nil {
		t.Fatalf("CheckNow on a broken file = %v, %v; want an error", reloaded, err)
	}
	if _, err := r.CheckNow(); err == nil {
		t.Fatal("second CheckNow on the same broken file reported no error")
	}
	if code, ok := r.Country(netip.MustParseAddr("81.2.69.142")); !ok || code != "GB" {
		t.Errorf("after failed reload: Country = %q, %v; want the old database's GB", code, ok)
	}

	// A missing file: reported, old database kept.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CheckNow(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CheckNow on a missing file: err = %v, want not-exist", err)
	}

	// Back to a good file: loaded again.
	copyFile(t, filepath.Join(testdataDir(t), "GeoIP2-Country-Test.mmdb"), path)
	if reloaded, err := r.CheckNow(); !reloaded || err != nil {
		t.Fatalf("CheckNow after repair = %v, %v", reloaded, err)
	}
	if code, ok := r.Country(probe); !ok || code != "CN" {
		t.Errorf("after repair: Country = %q, %v; want CN", code, ok)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(failures) != 2 {
		t.Errorf("OnError called %d times (%v); want 2 (broken once, missing once)", len(failures), failures)
	}
	if reloads != 2 {
		t.Errorf("OnReload called %d times; want 2", reloads)
	}
}

func TestReloadingInPlaceRewrite(t *testing.T) {
	// Update tools that truncate and rewrite the same file keep the inode;
	// size and mtime still give the change away.
	dir := t.TempDir()
	path := filepath.Join(dir, "country.mmdb")
	country, err := os.ReadFile(filepath.Join(testdataDir(t), "GeoLite2-Country-Test.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	city, err := os.ReadFile(filepath.Join(testdataDir(t), "GeoLite2-City-Test.mmdb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, country, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReloading(path, ReloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, city, 0o644); err != nil {
		t.Fatal(err)
	}
	if reloaded, err := r.CheckNow(); !reloaded || err != nil {
		t.Fatalf("CheckNow after in-place rewrite = %v, %v", reloaded, err)
	}
	if _, ok := r.Country(netip.MustParseAddr("111.235.160.1")); ok {
		t.Error("old database still answering after an in-place rewrite")
	}
}

func TestReloadingStartPollsInBackground(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "country.mmdb")
	copyFile(t, filepath.Join(testdataDir(t), "GeoIP2-Country-Test.mmdb"), path)
	reloaded := make(chan string, 4)
	r, err := OpenReloading(path, ReloadOptions{
		Interval: 10 * time.Millisecond,
		OnReload: func(db *DB) { reloaded <- db.DatabaseType() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.Start(ctx)
	r.Start(ctx) // a second Start must not start a second poller

	// Lookups run concurrently with the reload (go test -race checks the swap).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				r.Country(netip.MustParseAddr("81.2.69.142"))
			}
		}
	}()

	copyFile(t, filepath.Join(testdataDir(t), "GeoIP2-City-Test.mmdb"), path)
	select {
	case typ := <-reloaded:
		if typ != "GeoIP2-City" {
			t.Errorf("reloaded %q, want GeoIP2-City", typ)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the poller did not pick up the new file within 5s")
	}
	close(stop)
	wg.Wait()
	if _, ok := r.Country(netip.MustParseAddr("111.235.160.1")); ok {
		t.Error("old database still in use after the background reload")
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing.mmdb")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) err = %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.mmdb")
	if err := os.WriteFile(bad, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Open(bad) err = %v, want an error naming the file", err)
	}
	if _, err := OpenReloading(bad, ReloadOptions{}); err == nil {
		t.Error("OpenReloading(bad) succeeded")
	}
}

// --- IPinfo and DB-IP layouts, with databases written by the test ---------

// mmdbValue encodes values in the MaxMind DB data-section format (the
// subset needed here: maps with string keys, strings, uint16/uint32).
type mmdbValue interface{ encode(b []byte) []byte }

type mStr string
type mU32 uint32
type mU64 uint64
type mMap []mPair
type mPair struct {
	key string
	val mmdbValue
}

func ctrl(b []byte, typ byte, size int) []byte {
	var sizeByte byte
	var extra []byte
	switch {
	case size < 29:
		sizeByte = byte(size)
	case size < 29+256:
		sizeByte, extra = 29, []byte{byte(size - 29)}
	default:
		panic("test encoder: value too large")
	}
	if typ <= 7 {
		b = append(b, typ<<5|sizeByte)
	} else {
		b = append(b, sizeByte, typ-7) // extended type
	}
	return append(b, extra...)
}

func (s mStr) encode(b []byte) []byte { return append(ctrl(b, 2, len(s)), s...) }
func (u mU32) encode(b []byte) []byte {
	var buf [4]byte
	binary.BigEndian.PutUint32(buf[:], uint32(u))
	return append(ctrl(b, 6, 4), buf[:]...)
}
func (u mU64) encode(b []byte) []byte {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(u))
	return append(ctrl(b, 9, 8), buf[:]...)
}
func (m mMap) encode(b []byte) []byte {
	b = ctrl(b, 7, len(m))
	for _, p := range m {
		b = mStr(p.key).encode(b)
		b = p.val.encode(b)
	}
	return b
}

// writeMMDB writes an IPv4 database in which exactly prefix carries record.
func writeMMDB(t *testing.T, prefix netip.Prefix, record mMap, dbType string) string {
	t.Helper()
	bits := prefix.Bits()
	nodeCount := uint32(bits)
	addr := binary.BigEndian.Uint32(prefix.Addr().AsSlice())
	var tree []byte
	put24 := func(v uint32) { tree = append(tree, byte(v>>16), byte(v>>8), byte(v)) }
	noData := nodeCount
	dataPointer := nodeCount + 16 // data offset 0
	for i := 0; i < bits; i++ {
		bit := addr >> (31 - i) & 1
		next := uint32(i + 1)
		if i == bits-1 {
			next = dataPointer
		}
		left, right := noData, noData
		if bit == 0 {
			left = next
		} else {
			right = next
		}
		put24(left)
		put24(right)
	}
	file := append([]byte{}, tree...)
	file = append(file, make([]byte, 16)...)
	file = record.encode(file)
	file = append(file, "\xab\xcd\xefMaxMind.com"...)
	file = mMap{
		{"binary_format_major_version", mU32(2)},
		{"binary_format_minor_version", mU32(0)},
		{"build_epoch", mU64(1770245369)},
		{"database_type", mStr(dbType)},
		{"ip_version", mU32(4)},
		{"node_count", mU32(nodeCount)},
		{"record_size", mU32(24)},
	}.encode(file)
	path := filepath.Join(t.TempDir(), "test.mmdb")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOtherVendorLayouts(t *testing.T) {
	ip := netip.MustParseAddr("8.8.8.8")
	prefix := netip.MustParsePrefix("8.8.8.0/24")
	cases := []struct {
		name    string
		record  mMap
		country string
		asn     uint32
		org     string
	}{
		{
			name: "ipinfo lite",
			record: mMap{
				{"as_domain", mStr("google.com")},
				{"as_name", mStr("Google LLC")},
				{"asn", mStr("AS15169")},
				{"continent", mStr("North America")},
				{"continent_code", mStr("NA")},
				{"country", mStr("United States")},
				{"country_code", mStr("US")},
			},
			country: "US", asn: 15169, org: "Google LLC",
		},
		{
			name: "ipinfo country_asn (legacy free)",
			record: mMap{
				{"as_name", mStr("Google LLC")},
				{"asn", mStr("AS15169")},
				{"country", mStr("US")},
				{"country_name", mStr("United States")},
			},
			country: "US", asn: 15169, org: "Google LLC",
		},
		{
			name: "ipinfo asn",
			record: mMap{
				{"asn", mStr("AS15169")},
				{"domain", mStr("google.com")},
				{"name", mStr("Google LLC")},
			},
			asn: 15169, org: "Google LLC",
		},
		{
			name: "db-ip country lite",
			record: mMap{
				{"continent", mMap{{"code", mStr("NA")}}},
				{"country", mMap{{"iso_code", mStr("US")}, {"names", mMap{{"en", mStr("United States")}}}}},
			},
			country: "US",
		},
		{
			name: "db-ip asn lite",
			record: mMap{
				{"autonomous_system_number", mU32(15169)},
				{"autonomous_system_organization", mStr("Google LLC")},
			},
			asn: 15169, org: "Google LLC",
		},
		{
			name:   "unknown country placeholder",
			record: mMap{{"country", mMap{{"iso_code", mStr("ZZ")}}}},
		},
		{
			name:   "a name is not a code",
			record: mMap{{"country", mStr("Peru")}, {"asn", mStr("ASxyz")}},
		},
		{
			name: "unexpected kinds degrade to absent",
			record: mMap{
				{"country_code", mU32(7)},
				{"autonomous_system_number", mStr("not a number")},
				{"autonomous_system_organization", mU32(1)},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, err := Open(writeMMDB(t, prefix, c.record, c.name))
			if err != nil {
				t.Fatal(err)
			}
			code, ok := db.Country(ip)
			if code != c.country || ok != (c.country != "") {
				t.Errorf("Country = %q, %v; want %q", code, ok, c.country)
			}
			asn, org, ok := db.ASN(ip)
			if asn != c.asn || org != c.org || ok != (c.asn != 0) {
				t.Errorf("ASN = %d, %q, %v; want %d, %q", asn, org, ok, c.asn, c.org)
			}
			if _, ok := db.Country(netip.MustParseAddr("8.8.9.1")); ok {
				t.Error("an address outside the prefix has a country")
			}
		})
	}
}

func TestParseASNString(t *testing.T) {
	cases := map[string]uint32{
		"AS15169": 15169, "as7018": 7018, "15169": 15169, "AS4294967295": 4294967295,
		"AS4294967296": 0, "AS": 0, "": 0, "AS-1": 0, "AS+1": 0, "ASN1": 0,
	}
	for in, want := range cases {
		if got := parseASNString(in); got != want {
			t.Errorf("parseASNString(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestLookupsDoNotAllocate(t *testing.T) {
	country := openTestDB(t, "GeoIP2-City-Test.mmdb")
	asn := openTestDB(t, "GeoLite2-ASN-Test.mmdb")
	gb := netip.MustParseAddr("81.2.69.142")
	google := netip.MustParseAddr("1.0.0.1")
	if n := testing.AllocsPerRun(200, func() { country.Country(gb) }); n > 1 {
		t.Errorf("Country allocates %.1f times per lookup", n)
	}
	if n := testing.AllocsPerRun(200, func() { asn.ASN(google) }); n > 2 {
		t.Errorf("ASN allocates %.1f times per lookup", n)
	}
	emb := Default()
	us := netip.MustParseAddr("8.8.8.8")
	if n := testing.AllocsPerRun(200, func() { emb.Country(us) }); n != 0 {
		t.Errorf("Embedded.Country allocates %.1f times per lookup", n)
	}
}

func BenchmarkCountryCity(b *testing.B) {
	db := openTestDB(b, "GeoIP2-City-Test.mmdb")
	ip := netip.MustParseAddr("81.2.69.142")
	b.ReportAllocs()
	for b.Loop() {
		db.Country(ip)
	}
}

func BenchmarkASN(b *testing.B) {
	db := openTestDB(b, "GeoLite2-ASN-Test.mmdb")
	ip := netip.MustParseAddr("1.0.0.1")
	b.ReportAllocs()
	for b.Loop() {
		db.ASN(ip)
	}
}

func BenchmarkEmbeddedCountry(b *testing.B) {
	src := Default()
	ip := netip.MustParseAddr("81.2.69.142")
	b.ReportAllocs()
	for b.Loop() {
		src.Country(ip)
	}
}

// referenceNotGlobal is LookupAddr's rule written the slow, obvious way.
var referenceNotGlobal = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("224.0.0.0/3"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fec0::/10"),
	netip.MustParsePrefix("ff00::/8"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("3fff::/20"),
}

func referenceGlobal(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range referenceNotGlobal {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

func TestLookupAddrAgreesWithPrefixList(t *testing.T) {
	var probes []netip.Addr
	// Both edges of every block, and their outside neighbours.
	for _, p := range referenceNotGlobal {
		first := p.Masked().Addr()
		probes = append(probes, first, first.Prev(), lastAddr(p), lastAddr(p).Next())
	}
	// And a deterministic spread over the whole IPv4 space and the
	// interesting IPv6 leading bytes.
	for i := uint32(0); i < 1<<20; i++ {
		v := i * 4099 // an odd step, wrapping around: 2^20 distinct addresses spread over all of IPv4
		probes = append(probes, netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
	}
	for b0 := 0; b0 < 256; b0++ {
		for b1 := 0; b1 < 256; b1 += 3 {
			probes = append(probes, netip.AddrFrom16([16]byte{byte(b0), byte(b1), 0x0d, 0xb8, 15: 1}))
		}
	}
	for _, ip := range probes {
		if !ip.IsValid() {
			continue
		}
		_, got := LookupAddr(ip)
		if want := referenceGlobal(ip); got != want {
			t.Errorf("LookupAddr(%s) ok = %v, want %v", ip, got, want)
		}
	}
}

// lastAddr is the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	if p.Addr().Is4() {
		a := p.Addr().As4()
		v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
		binary.BigEndian.PutUint32(a[:], v)
		return netip.AddrFrom4(a)
	}
	a := p.Addr().As16()
	for bit := p.Bits(); bit < 128; bit++ {
		a[bit/8] |= 0x80 >> (bit % 8)
	}
	return netip.AddrFrom16(a)
}
