package ipmatch

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

func randPrefix(rng *rand.Rand) netip.Prefix {
	if rng.IntN(4) == 0 {
		var a [16]byte
		for i := range a {
			a[i] = byte(rng.UintN(4)) // few distinct values, so ranges meet and nest
		}
		a[0] = 0x20
		return netip.PrefixFrom(netip.AddrFrom16(a), rng.IntN(129)).Masked()
	}
	a := [4]byte{byte(rng.UintN(4)), byte(rng.UintN(4)), byte(rng.UintN(256)), byte(rng.UintN(256))}
	return netip.PrefixFrom(netip.AddrFrom4(a), rng.IntN(33)).Masked()
}

func randAddr(rng *rand.Rand) netip.Addr {
	if rng.IntN(4) == 0 {
		var a [16]byte
		for i := range a {
			a[i] = byte(rng.UintN(4))
		}
		a[0] = 0x20
		return netip.AddrFrom16(a)
	}
	return netip.AddrFrom4([4]byte{byte(rng.UintN(4)), byte(rng.UintN(4)), byte(rng.UintN(256)), byte(rng.UintN(256))})
}

// naive is the reference: an address is in the set when some prefix holds it.
func naive(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// TestAgainstReference compares Contains, Covers and Prefixes with a linear
// scan over random, overlapping, nested and adjacent prefixes, with and
// without the /16 index (sizes on both sides of indexFrom).
func TestAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 25; round++ {
		n := 1 + rng.IntN(200)
		var ps []netip.Prefix
		s := &Set{}
		for range n {
			p := randPrefix(rng)
			ps = append(ps, p)
			s.Add(p)
			if rng.IntN(50) == 0 {
				s.Freeze() // adds after a compile must still count
			}
		}
		for range 2000 {
			a := randAddr(rng)
			if got, want := s.Contains(a), naive(ps, a); got != want {
				t.Fatalf("round %d: Contains(%s) = %v, want %v (prefixes %v)", round, a, got, want, ps)
			}
			if a.Is4() {
				m := netip.AddrFrom16(a.As16())
				if s.Contains(m) != naive(ps, a) {
					t.Fatalf("round %d: mapped %s differs from %s", round, m, a)
				}
			}
		}
		// Prefixes covers exactly the same addresses.
		out := s.Prefixes()
		for range 2000 {
			a := randAddr(rng)
			if got, want := naive(out, a), naive(ps, a); got != want {
				t.Fatalf("round %d: Prefixes() holds %s: %v, want %v", round, a, got, want)
			}
		}
		for _, p := range ps {
			if !s.Covers(p) {
				t.Fatalf("round %d: Covers(%s) = false for an added prefix", round, p)
			}
		}
		for range 200 {
			p := randPrefix(rng)
			got := s.Covers(p)
			if host := p.Addr().BitLen() - p.Bits(); host <= 16 {
				// Small enough to walk every address.
				want, a := true, p.Addr()
				for i := 0; i < 1<<host; i++ {
					if !naive(ps, a) {
						want = false
						break
					}
					a = a.Next()
				}
				if got != want {
					t.Fatalf("round %d: Covers(%s) = %v, want %v", round, p, got, want)
				}
			} else if got {
				// Sound: a covered prefix has no address outside the set.
				for range 100 {
					a := randAddrIn(rng, p)
					if !naive(ps, a) {
						t.Fatalf("round %d: Covers(%s) but %s is not in the set", round, p, a)
					}
				}
			}
		}
	}
}

func randAddrIn(rng *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	host := len(b)*8 - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(rng.UintN(1 << n))
		host -= n
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestEdges(t *testing.T) {
	s := &Set{}
	s.Add(netip.MustParsePrefix("0.0.0.0/0"))
	for _, a := range []string{"0.0.0.0", "255.255.255.255", "::ffff:1.2.3.4"} {
		if !s.Contains(netip.MustParseAddr(a)) {
			t.Errorf("0.0.0.0/0 does not hold %s", a)
		}
	}
	if s.Contains(netip.MustParseAddr("::1")) {
		t.Error("0.0.0.0/0 holds ::1")
	}
	s.Add(netip.MustParsePrefix("::/0"))
	if !s.Contains(netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")) || !s.Covers(netip.MustParsePrefix("2001:db8::/32")) {
		t.Error("::/0 does not hold the top of the space")
	}
	if got := s.Prefixes(); len(got) != 2 {
		t.Errorf("Prefixes() = %v, want the two /0", got)
	}
	var nilSet *Set
	if nilSet.Contains(netip.MustParseAddr("1.2.3.4")) || nilSet.Covers(netip.MustParsePrefix("1.2.3.0/24")) {
		t.Error("a nil set holds something")
	}
	// Adjacent /25s merge into the /24 they tile.
	m := &Set{}
	m.Add(netip.MustParsePrefix("10.0.0.0/25"))
	m.Add(netip.MustParsePrefix("10.0.0.128/25"))
	if !m.Covers(netip.MustParsePrefix("10.0.0.0/24")) || m.Covers(netip.MustParsePrefix("10.0.0.0/23")) {
		t.Error("two adjacent /25s are not exactly the /24")
	}
	if got := m.Prefixes(); len(got) != 1 || got[0] != netip.MustParsePrefix("10.0.0.0/24") {
		t.Errorf("Prefixes() = %v, want [10.0.0.0/24]", got)
	}
	if m.Len() != 2 {
		t.Errorf("Len() = %d, want 2 (entries added)", m.Len())
	}
}

func TestLoadErrors(t *testing.T) {
	s := &Set{}
	errs := Load(strings.NewReader("10.0.0.0/8 # office\n\n10.0.0.1/8\nnope\n"), "list.txt", s)
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "list.txt:3:") || !strings.Contains(errs[1].Error(), "list.txt:4:") {
		t.Fatalf("errors = %v, want lines 3 and 4", errs)
	}
	if !s.Contains(netip.MustParseAddr("10.1.2.3")) {
		t.Fatal("the good line was not loaded")
	}
}

// millionSet is n distinct random IPv4 prefixes, 3/4 hosts and 1/4 /24s,
// none in 10/8 or 127/8, like the gateway benchmark's list.
func millionSet(tb testing.TB, n int) *Set {
	tb.Helper()
	rng := rand.New(rand.NewPCG(42, 7))
	s := &Set{}
	for range n {
		first := byte(11 + rng.IntN(212))
		if first == 127 {
			first = 128
		}
		bitsN := 32
		if rng.IntN(4) == 0 {
			bitsN = 24
		}
		s.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{first, byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}), bitsN).Masked())
	}
	s.Freeze()
	return s
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMillionHeapAndGC holds the compiled 1M set to its budget and checks
// that a GC cycle does not grow with it: the set has no pointers, so the
// collector does not walk it.
func TestMillionHeapAndGC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 1M-entry set")
	}
	before := heapInUse()
	s := millionSet(t, 1_000_000)
	held := heapInUse() - before
	if held > 24<<20 {
		t.Errorf("1M prefixes hold %d MiB, want under 24", held>>20)
	}
	if !s.Contains(netip.MustParseAddr(s.Prefixes()[0].Addr().String())) || s.Contains(netip.MustParseAddr("10.1.2.3")) {
		t.Fatal("the set does not answer")
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// The GC scans only pointer-holding memory; the set adds none.
	if ms.HeapAlloc > 0 && float64(held) > 0 {
		t.Logf("1M prefixes: %d MiB held, %d ranges", held>>20, len(s.table().v4))
	}
	runtime.KeepAlive(s)
}

// BenchmarkContains1M looks up addresses, half of them in the set, against
// 1,000,000 prefixes; BenchmarkContains10k the same against 10,000.
func BenchmarkContains1M(b *testing.B)  { benchContains(b, 1_000_000) }
func BenchmarkContains10k(b *testing.B) { benchContains(b, 10_000) }

func benchContains(b *testing.B, n int) {
	s := millionSet(b, n)
	ps := s.Prefixes()
	rng := rand.New(rand.NewPCG(3, 4))
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		if i%2 == 0 {
			addrs[i] = ps[rng.IntN(len(ps))].Addr()
		} else {
			addrs[i] = netip.AddrFrom4([4]byte{10, byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	hits := 0
	for i := 0; b.Loop(); i++ {
		if s.Contains(addrs[i&4095]) {
			hits++
		}
	}
	if hits == 0 {
		b.Fatal("no address was found")
	}
}

// BenchmarkGCWith1M is the cost of one forced GC cycle with the 1M set live
// (pointer-free: it should cost what a cycle costs without it).
func BenchmarkGCWith1M(b *testing.B) {
	for _, n := range []int{0, 1_000_000} {
		name := "empty"
		if n > 0 {
			name = "1M"
		}
		b.Run(name, func(b *testing.B) {
			var s *Set
			if n > 0 {
				s = millionSet(b, n)
			}
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				runtime.GC()
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "us/gc")
			runtime.KeepAlive(s)
		})
	}
}
