package challenge

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testKey(t testing.TB, b byte) Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{b}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testRing(t testing.TB) *Keyring {
	t.Helper()
	kr, err := NewKeyring(testKey(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

var (
	t0      = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	ipA     = netip.MustParseAddr("198.51.100.7")
	ipA2    = netip.MustParseAddr("198.51.100.200") // same /24
	ipB     = netip.MustParseAddr("198.51.101.7")   // next /24
	ip6A    = netip.MustParseAddr("2001:db8:1:2::10")
	ip6A2   = netip.MustParseAddr("2001:db8:1:2:ffff::1") // same /64
	ip6B    = netip.MustParseAddr("2001:db8:1:3::10")
	uaFF    = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	uaOther = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

func TestClearanceRoundTrip(t *testing.T) {
	kr := testRing(t)
	tok := kr.IssueClearance(ipA, uaFF, 12, t0.Add(time.Hour))
	if len(tok) != ClearanceLen {
		t.Fatalf("len %d, want %d", len(tok), ClearanceLen)
	}
	cl, err := kr.Verify(tok, ipA2, uaFF, t0, 12)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if cl.Difficulty != 12 || !cl.Expires.Equal(t0.Add(time.Hour)) || cl.KeyID != kr.Current().ID {
		t.Fatalf("clearance %+v", cl)
	}
	tok6 := kr.IssueClearance(ip6A, uaFF, 4, t0.Add(time.Hour))
	if _, err := kr.Verify(tok6, ip6A2, uaFF, t0, 4); err != nil {
		t.Fatalf("v6 same /64: %v", err)
	}
	if _, err := kr.Verify(tok6, ip6B, uaFF, t0, 4); err != ReasonWrongIP {
		t.Fatalf("v6 other /64: %v", err)
	}
	// An IPv4-mapped IPv6 peer is the same client as its IPv4 address.
	if _, err := kr.Verify(tok, netip.MustParseAddr("::ffff:198.51.100.9"), uaFF, t0, 0); err != nil {
		t.Fatalf("mapped: %v", err)
	}
}

func TestClearanceRefusals(t *testing.T) {
	kr := testRing(t)
	tok := kr.IssueClearance(ipA, uaFF, 12, t0.Add(time.Hour))
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	other, _ := NewKeyring(testKey(t, 2))
	ch := kr.IssueChallenge(ipA, uaFF, "GET", "/", 4, t0.Add(time.Minute), [16]byte{})
	cases := []struct {
		name string
		tok  string
		ip   netip.Addr
		ua   string
		now  time.Time
		min  int
		want Reason
	}{
		{"empty", "", ipA, uaFF, t0, 0, ReasonMalformed},
		{"truncated", tok[:len(tok)-1], ipA, uaFF, t0, 0, ReasonMalformed},
		{"not base64", strings.Repeat("!", ClearanceLen), ipA, uaFF, t0, 0, ReasonMalformed},
		{"a challenge is not a clearance", ch, ipA, uaFF, t0, 0, ReasonMalformed},
		{"type byte changed", flip(offType), ipA, uaFF, t0, 0, ReasonMalformed},
		{"other deployment's key", other.IssueClearance(ipA, uaFF, 12, t0.Add(time.Hour)), ipA, uaFF, t0, 0, ReasonUnknownKey},
		{"difficulty raised by the client", flip(offDifficulty), ipA, uaFF, t0, 0, ReasonForged},
		{"expiry extended by the client", flip(offExpires + 6), ipA, uaFF, t0, 0, ReasonForged},
		{"ip binding edited", flip(offIP + 3), ipB, uaFF, t0, 0, ReasonForged},
		{"mac edited", flip(clearanceSize - 1), ipA, uaFF, t0, 0, ReasonForged},
		{"expired", tok, ipA, uaFF, t0.Add(time.Hour), 0, ReasonExpired},
		{"other network", tok, ipB, uaFF, t0, 0, ReasonWrongIP},
		{"ipv6 client with ipv4 token", tok, ip6A, uaFF, t0, 0, ReasonWrongIP},
		{"invalid client address", tok, netip.Addr{}, uaFF, t0, 0, ReasonWrongIP},
		{"other user agent", tok, ipA, uaOther, t0, 0, ReasonWrongUserAgent},
		{"difficulty raised by the rule", tok, ipA, uaFF, t0, 13, ReasonDifficultyTooLow},
	}
	for _, c := range cases {
		_, err := kr.Verify(c.tok, c.ip, c.ua, c.now, c.min)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey := testKey(t, 1), testKey(t, 2)
	before, _ := NewKeyring(oldKey)
	tok := before.IssueClearance(ipA, uaFF, 8, t0.Add(time.Hour))
	rotated, err := NewKeyring(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Verify(tok, ipA, uaFF, t0, 8); err != nil {
		t.Fatalf("old key's token after rotation: %v", err)
	}
	fresh := rotated.IssueClearance(ipA, uaFF, 8, t0.Add(time.Hour))
	if _, err := before.Verify(fresh, ipA, uaFF, t0, 8); err != ReasonUnknownKey {
		t.Fatalf("new token on a replica without the new key: %v", err)
	}
	dropped, _ := NewKeyring(newKey)
	if _, err := dropped.Verify(tok, ipA, uaFF, t0, 8); err != ReasonUnknownKey {
		t.Fatalf("old key dropped: %v", err)
	}
	if _, err := NewKeyring(oldKey, oldKey); err == nil {
		t.Fatal("the same key twice was accepted")
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "clearance.key")
	k1, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", info.Mode().Perm())
	}
	// A second replica (or a restart) reads the same key.
	k2, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID != k2.ID || k1.ipad != k2.ipad {
		t.Fatal("reloaded key differs")
	}
	r1, _ := NewKeyring(k1)
	r2, _ := NewKeyring(k2)
	if _, err := r2.Verify(r1.IssueClearance(ipA, uaFF, 1, t0.Add(time.Hour)), ipA, uaFF, t0, 1); err != nil {
		t.Fatalf("replica: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadOrCreateKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	bad := filepath.Join(dir, "short.key")
	os.WriteFile(bad, []byte("c2hvcnQ\n"), 0o600)
	if _, err := LoadOrCreateKeyFile(bad); err == nil {
		t.Fatal("short key accepted")
	}
	// A key from config: the same text gives the same key.
	secret := make([]byte, KeySize)
	rand.Read(secret)
	a, err := ParseKey(base64.StdEncoding.EncodeToString(secret))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseKey(base64.RawURLEncoding.EncodeToString(secret))
	if err != nil || a.ID != b.ID {
		t.Fatalf("std and url base64 of one secret: %v", err)
	}
}

func TestVerifyAllocatesNothing(t *testing.T) {
	kr := testRing(t)
	tok := kr.IssueClearance(ipA, uaOther, 12, t0.Add(time.Hour))
	forged := tok[:10] + "A" + tok[11:]
	n := testing.AllocsPerRun(100, func() {
		if _, err := kr.Verify(tok, ipA, uaOther, t0, 12); err != nil {
			t.Fatal(err)
		}
		kr.Verify(forged, ipA, uaOther, t0, 12)
	})
	if n != 0 {
		t.Fatalf("%v allocations per verify", n)
	}
}

func BenchmarkVerifyClearance(b *testing.B) {
	kr := testRing(b)
	tok := kr.IssueClearance(ipA, uaOther, 12, t0.Add(time.Hour))
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if _, err := kr.Verify(tok, ipA, uaOther, t0, 12); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, processCPU()-cpu)
}
