package state

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func TestGCRASteadyAndBurst(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	ctx := context.Background()
	lim := Limit{Rate: 10, Per: time.Second, Burst: 5}
	for i := 0; i < 5; i++ {
		r, err := m.Allow(ctx, "k", lim, t0)
		if err != nil || !r.Allowed {
			t.Fatalf("request %d of the burst refused: %+v %v", i+1, r, err)
		}
		if r.Remaining != 4-i {
			t.Errorf("request %d: remaining %d, want %d", i+1, r.Remaining, 4-i)
		}
	}
	r, _ := m.Allow(ctx, "k", lim, t0)
	if r.Allowed || r.RetryAfter != 100*time.Millisecond || r.Remaining != 0 {
		t.Fatalf("6th request at once: %+v, want refused with RetryAfter 100ms", r)
	}
	if r.ResetAfter != 500*time.Millisecond {
		t.Errorf("ResetAfter %s, want 500ms (five intervals queued)", r.ResetAfter)
	}
	// One interval later exactly one more passes.
	if r, _ := m.Allow(ctx, "k", lim, t0.Add(100*time.Millisecond)); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("after one interval: %+v, want allowed with 0 remaining", r)
	}
	if r, _ := m.Allow(ctx, "k", lim, t0.Add(100*time.Millisecond)); r.Allowed {
		t.Fatal("a second request in the same interval passed")
	}
	// Over a long run at twice the rate, half pass: the steady rate holds.
	allowed := 0
	for i := 0; i < 2000; i++ {
		now := t0.Add(time.Second + time.Duration(i)*50*time.Millisecond)
		if r, _ := m.Allow(ctx, "steady", lim, now); r.Allowed {
			allowed++
		}
	}
	// 100 s at 10/s plus the burst of 5.
	if allowed < 1000 || allowed > 1006 {
		t.Errorf("2000 requests at 20/s over 100s: %d allowed, want 1000..1006", allowed)
	}
	// Peek does not charge.
	p1, _ := m.Peek(ctx, "fresh", lim, t0)
	p2, _ := m.Peek(ctx, "fresh", lim, t0)
	if !p1.Allowed || p1.Remaining != 5 || p2.Remaining != 5 {
		t.Errorf("peek on a fresh key: %+v then %+v, want 5 remaining both times", p1, p2)
	}
}

func TestLimitBurstDefaultsToRate(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	lim := Limit{Rate: 3, Per: time.Minute}
	n := 0
	for i := 0; i < 10; i++ {
		if r, _ := m.Allow(context.Background(), "k", lim, t0); r.Allowed {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("burst 0: %d allowed at once, want the rate, 3", n)
	}
}

func TestLimitValidate(t *testing.T) {
	bad := []Limit{{}, {Rate: 1}, {Per: time.Second}, {Rate: -1, Per: time.Second}, {Rate: 1, Per: time.Second, Burst: -1},
		{Rate: 1e9, Per: time.Millisecond}, {Rate: 1, Per: 24 * time.Hour * 365, Burst: 100}}
	for _, l := range bad {
		if l.Validate() == nil {
			t.Errorf("%+v validated", l)
		}
		if _, err := NewMemory(MemoryOptions{MaxCounters: 8}).Allow(context.Background(), "k", l, t0); err == nil && (l.Rate <= 0 || l.Per <= 0 || l.Burst < 0) {
			t.Errorf("Allow with %+v gave no error", l)
		}
	}
	if err := (Limit{Rate: 100, Per: time.Minute, Burst: 20}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestConcurrentChargesAreExact(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	lim := Limit{Rate: 1000, Per: time.Hour, Burst: 250}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if r, _ := m.Allow(context.Background(), "shared", lim, t0); r.Allowed {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 250 {
		t.Fatalf("1600 concurrent requests against a burst of 250: %d allowed", allowed.Load())
	}
}

var bruteForce = BanPolicy{Name: "brute-force", After: 3, Within: time.Minute, BanFor: 10 * time.Minute, Factor: 2, MaxBan: 35 * time.Minute, Remember: time.Hour}

func TestStrikesBanAndEscalate(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	ctx := context.Background()
	key := IPKey(netip.MustParseAddr("203.0.113.9"))
	now := t0
	strike := func(want bool) time.Time {
		t.Helper()
		banned, until, err := m.Strike(ctx, key, bruteForce, now)
		if err != nil || banned != want {
			t.Fatalf("strike at %s: banned=%v err=%v, want banned=%v", now.Sub(t0), banned, err, want)
		}
		return until
	}
	strike(false)
	now = now.Add(time.Second)
	if c, _ := m.Strikes(ctx, key, bruteForce, now); c != 1 {
		t.Errorf("count after one strike: %g", c)
	}
	strike(false)
	now = now.Add(time.Second)
	until := strike(true)
	if want := now.Add(10 * time.Minute); !until.Equal(want) {
		t.Fatalf("first ban until %s, want %s", until, want)
	}
	if u, b, _ := m.Banned(ctx, key, now.Add(9*time.Minute)); !b || !u.Equal(until) {
		t.Fatalf("9 minutes into a 10-minute ban: banned=%v until=%s", b, u)
	}
	if _, b, _ := m.Banned(ctx, key, now.Add(10*time.Minute)); b {
		t.Fatal("still banned when the ban ended")
	}
	if _, b, _ := m.Banned(ctx, "ip:203.0.113.10", now); b {
		t.Fatal("a neighbour is banned too")
	}
	// A repeat offender within the remember time: 20m, then capped at 35m.
	for _, want := range []time.Duration{20 * time.Minute, 35 * time.Minute, 35 * time.Minute} {
		now = until.Add(time.Minute)
		strike(false)
		strike(false)
		until = strike(true)
		if got := until.Sub(now); got != want {
			t.Fatalf("repeat ban lasts %s, want %s", got, want)
		}
	}
	bans, _ := m.ListBans(ctx, now)
	if len(bans) != 1 || bans[0].Key != key || bans[0].Level != 4 || bans[0].Reason != "brute-force" {
		t.Fatalf("ListBans: %+v", bans)
	}
	// After the remember time the level is forgotten: back to 10 minutes.
	now = until.Add(time.Hour + time.Second)
	strike(false)
	strike(false)
	if until = strike(true); until.Sub(now) != 10*time.Minute {
		t.Fatalf("after the level was forgotten the ban lasts %s, want 10m", until.Sub(now))
	}
	// Unban lifts it; the list is empty.
	if was, _ := m.Unban(ctx, key, now); !was {
		t.Fatal("Unban of a banned key reported no ban")
	}
	if _, b, _ := m.Banned(ctx, key, now); b {
		t.Fatal("banned after Unban")
	}
	if bans, _ := m.ListBans(ctx, now); len(bans) != 0 {
		t.Fatalf("ListBans after Unban: %+v", bans)
	}
}

func TestStrikesOutsideWindowDoNotBan(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	ctx := context.Background()
	// One strike every 50 s with a 1-minute window and after: 3 never
	// reaches 3 in any minute.
	for i := 0; i < 20; i++ {
		if banned, _, _ := m.Strike(ctx, "k", bruteForce, t0.Add(time.Duration(i)*50*time.Second)); banned {
			// The two-counter estimate may count the previous window's
			// strike in part; with one strike per 50 s it stays below 3.
			t.Fatalf("strike %d banned a client striking once per 50s", i+1)
		}
	}
}

func TestStrikesStraddlingAWindowBoundaryCountInFull(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	ctx := context.Background()
	p := BanPolicy{Name: "p", After: 10, Within: time.Minute, BanFor: time.Minute}
	boundary := t0.Truncate(time.Minute).Add(time.Minute)
	n := 0
	for i := -5; i < 5; i++ {
		n++
		banned, _, _ := m.Strike(ctx, "k", p, boundary.Add(time.Duration(i)*100*time.Millisecond))
		if banned != (n == 10) {
			t.Fatalf("strike %d across the window boundary: banned=%v", n, banned)
		}
	}
}

func TestManualBanKeepsLevelAndLongerBanStays(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	ctx := context.Background()
	if err := m.Ban(ctx, "ip:198.51.100.1", t0.Add(48*time.Hour), "by hand: abuse report", t0); err != nil {
		t.Fatal(err)
	}
	// Earning a 10-minute ban does not shorten the 48-hour one.
	m.Strike(ctx, "ip:198.51.100.1", bruteForce, t0)
	m.Strike(ctx, "ip:198.51.100.1", bruteForce, t0)
	_, until, _ := m.Strike(ctx, "ip:198.51.100.1", bruteForce, t0)
	if !until.Equal(t0.Add(48 * time.Hour)) {
		t.Fatalf("an earned ban shortened a manual one to %s", until.Sub(t0))
	}
}

func TestBanPolicyValidate(t *testing.T) {
	good := bruteForce
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mod := range []func(*BanPolicy){
		func(p *BanPolicy) { p.Name = "" },
		func(p *BanPolicy) { p.After = 0 },
		func(p *BanPolicy) { p.Within = 0 },
		func(p *BanPolicy) { p.BanFor = 0 },
		func(p *BanPolicy) { p.Factor = 0.5 },
		func(p *BanPolicy) { p.MaxBan = time.Minute },
	} {
		p := good
		mod(&p)
		if p.Validate() == nil {
			t.Errorf("%+v validated", p)
		}
	}
}

func TestApplyRunsEveryOp(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	ctx := context.Background()
	m.Ban(ctx, "ip:192.0.2.1", t0.Add(time.Hour), "x", t0)
	pol := bruteForce
	ops := []Op{
		{Kind: OpBanned, Key: "ip:192.0.2.1"},
		{Kind: OpAllow, Key: "r|ip:192.0.2.1", Limit: Limit{Rate: 1, Per: time.Minute}},
		{Kind: OpAllow, Key: "r|ip:192.0.2.1", Limit: Limit{Rate: 1, Per: time.Minute}},
		{Kind: OpStrike, Key: "ip:192.0.2.2", Policy: &pol},
	}
	out := make([]Outcome, len(ops))
	if err := m.Apply(ctx, ops, out, t0); err != nil {
		t.Fatal(err)
	}
	if !out[0].Banned || !out[1].Result.Allowed || out[2].Result.Allowed || out[3].Banned {
		t.Fatalf("outcomes: %+v", out)
	}
	if err := m.Apply(ctx, ops, out[:1], t0); err == nil {
		t.Fatal("Apply with too small an outcome slice gave no error")
	}
	if err := m.Apply(ctx, []Op{{Kind: OpStrike, Key: "k"}}, out, t0); err == nil {
		t.Fatal("a strike without a policy gave no error")
	}
}

func TestFailModeResolve(t *testing.T) {
	fallback := &UnavailableError{Op: "allow", Err: errors.New("dial tcp: refused"), Fallback: true}
	if d, err := FailOpen.Resolve(fmt.Errorf("wrapped: %w", fallback)); !d || err != nil {
		t.Errorf("fail open with a fallback answer: degraded=%v err=%v", d, err)
	}
	if _, err := FailClosed.Resolve(fallback); !errors.Is(err, ErrUnavailable) {
		t.Errorf("fail closed: %v, want ErrUnavailable", err)
	}
	if _, err := FailOpen.Resolve(&UnavailableError{Op: "allow"}); err == nil {
		t.Error("fail open without a fallback answer must still refuse")
	}
	if _, err := FailOpen.Resolve(errors.New("script bug")); err == nil {
		t.Error("fail open must not swallow errors other than unavailability")
	}
	if m, err := ParseFailMode("sideways"); err == nil {
		t.Errorf("ParseFailMode(sideways) = %v", m)
	}
}

// TestMillionAddressesStayBounded floods the store with 1,000,000 distinct
// client addresses (rate charges, strikes and bans for each) and checks that
// the heap grows by no more than the tables' fixed size, documented in
// MemoryOptions, plus 1 MiB; and that a client that was being limited before
// the flood is still limited after it.
func TestMillionAddressesStayBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const flood = 1_000_000
	opts := MemoryOptions{MaxCounters: 1 << 18, MaxStrikes: 1 << 17, MaxBans: 1 << 16}
	tables := uint64(opts.MaxCounters)*uint64(unsafe.Sizeof(counterSlot{})) +
		uint64(opts.MaxStrikes)*uint64(unsafe.Sizeof(strikeSlot{})) +
		uint64(opts.MaxBans)*uint64(unsafe.Sizeof(banSlot{})) +
		3*uint64(unsafe.Sizeof([stripes]paddedMutex{}))
	// Ban slots hold their key: "ip:" + up to 15 characters, in a 24-byte
	// size class at most.
	keys := uint64(opts.MaxBans) * 24
	bound := tables + keys + 1<<20

	before := heapAfterGC()
	m := NewMemory(opts)
	ctx := context.Background()
	lim := Limit{Rate: 10, Per: time.Minute, Burst: 10}
	heavy := "api|ip:10.0.0.1"
	for i := 0; i < 50; i++ {
		m.Allow(ctx, heavy, lim, t0)
	}
	strikeOnce := BanPolicy{Name: "probe", After: 1, Within: time.Minute, BanFor: time.Hour}
	strikeTwice := BanPolicy{Name: "login", After: 2, Within: time.Minute, BanFor: time.Hour}
	for i := 0; i < flood; i++ {
		a := netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)})
		k := IPKey(a)
		m.Allow(ctx, "api|"+k, lim, t0)
		m.Strike(ctx, k, strikeTwice, t0)
		if i%4 == 0 {
			m.Strike(ctx, k, strikeOnce, t0) // a ban for a quarter of them
		}
	}
	runtime.KeepAlive(m)
	after := heapAfterGC()
	grew := after - before
	if after < before {
		grew = 0
	}
	t.Logf("heap grew %.1f MiB for %d distinct addresses (bound %.1f MiB: tables %.1f MiB + ban keys %.1f MiB + 1 MiB)",
		mib(grew), flood, mib(bound), mib(tables), mib(keys))
	if grew > bound {
		t.Fatalf("heap grew %.1f MiB, over the documented bound of %.1f MiB", mib(grew), mib(bound))
	}
	st := m.Stats(t0)
	if st.LiveCounters > st.CounterSlots || st.LiveBans > st.BanSlots || st.EvictedCounters == 0 || st.EvictedBans == 0 {
		t.Fatalf("stats after the flood: %+v", st)
	}
	if r, _ := m.Allow(ctx, heavy, lim, t0); r.Allowed {
		t.Fatal("the flood evicted the counter of a client that was being limited")
	}
	// A second flood of other addresses adds nothing.
	for i := 0; i < flood/4; i++ {
		m.Allow(ctx, IPKey(netip.AddrFrom4([4]byte{101, byte(i >> 16), byte(i >> 8), byte(i)})), lim, t0)
	}
	if again := heapAfterGC(); again > after+1<<20 {
		t.Fatalf("a second flood grew the heap by %.1f MiB", mib(again-after))
	}
	runtime.KeepAlive(m)
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
