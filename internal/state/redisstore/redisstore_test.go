package redisstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/state"
	"github.com/warden-gateway/warden/internal/state/redistest"
)

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// syncBuffer is a log sink the breaker's goroutines can write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// replica makes one warden replica's store on srv, with its own fallback.
func replica(t testing.TB, addr string, o Options) (*Store, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	o.Addr = addr
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

var bruteForce = state.BanPolicy{Name: "brute-force", After: 5, Within: time.Minute, BanFor: 10 * time.Minute, Factor: 2, MaxBan: time.Hour, Remember: 24 * time.Hour}

func TestBanEarnedThroughAIsEnforcedByB(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := replica(t, srv.Addr, Options{Timeout: time.Second})
	b, _ := replica(t, srv.Addr, Options{Timeout: time.Second})
	ctx := context.Background()
	key := state.IPKey(netip.MustParseAddr("203.0.113.9"))

	// Strikes alternate between the replicas: the count is shared.
	now := t0
	for i := 1; i <= 5; i++ {
		r := a
		if i%2 == 0 {
			r = b
		}
		banned, until, err := r.Strike(ctx, key, bruteForce, now)
		if err != nil {
			t.Fatal(err)
		}
		if banned != (i == 5) {
			t.Fatalf("strike %d: banned=%v", i, banned)
		}
		if i == 5 && !until.Equal(now.Add(10*time.Minute)) {
			t.Fatalf("ban until %s, want %s", until, now.Add(10*time.Minute))
		}
		now = now.Add(time.Second)
	}
	if c, err := b.Strikes(ctx, key, bruteForce, now); err != nil || c != 0 {
		t.Errorf("strikes after the ban: %g %v (the ban answers for them)", c, err)
	}
	until, banned, err := b.Banned(ctx, key, now)
	if err != nil || !banned || !until.Equal(t0.Add(4*time.Second+10*time.Minute)) {
		t.Fatalf("replica B: banned=%v until=%s err=%v", banned, until, err)
	}
	if _, banned, _ := b.Banned(ctx, "ip:203.0.113.10", now); banned {
		t.Fatal("a neighbour is banned")
	}
	bans, err := b.ListBans(ctx, now)
	if err != nil || len(bans) != 1 || bans[0].Key != key || bans[0].Level != 1 || bans[0].Reason != "brute-force" {
		t.Fatalf("ListBans on B: %+v %v", bans, err)
	}
	// Escalation is shared too: the second ban, earned through B, is 20m.
	now = until.Add(time.Minute)
	for i := 0; i < 5; i++ {
		banned, u, _ := b.Strike(ctx, key, bruteForce, now)
		if i == 4 && (!banned || u.Sub(now) != 20*time.Minute) {
			t.Fatalf("second ban: banned=%v for %s, want 20m", banned, u.Sub(now))
		}
	}
	// Lifted through A, it is gone on B.
	if was, err := a.Unban(ctx, key, now); err != nil || !was {
		t.Fatalf("Unban through A: %v %v", was, err)
	}
	if _, banned, _ := b.Banned(ctx, key, now); banned {
		t.Fatal("still banned on B after Unban through A")
	}
	// A manual ban through B is enforced by A and listed with its reason.
	if err := b.Ban(ctx, "net:198.51.100.0/24", now.Add(48*time.Hour), "abuse report #12", now); err != nil {
		t.Fatal(err)
	}
	if u, banned, _ := a.Banned(ctx, "net:198.51.100.0/24", now); !banned || !u.Equal(now.Add(48*time.Hour)) {
		t.Fatalf("manual ban on A: %v %s", banned, u)
	}
	if bans, _ := a.ListBans(ctx, now); len(bans) != 1 || bans[0].Reason != "abuse report #12" {
		t.Fatalf("ListBans on A: %+v", bans)
	}
	if st := a.Stats(); st.Failures != 0 || st.Fallbacks != 0 {
		t.Fatalf("a healthy Redis used the fallback: %+v", st)
	}
}

// TestRateLimitHoldsAcrossReplicas sends the same load, from 8 goroutines
// through two replicas, that a single in-memory store judges; the replicas
// together must allow within 3% of what one store allows, and far fewer than
// two unshared stores would.
func TestRateLimitHoldsAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := replica(t, srv.Addr, Options{Timeout: time.Second})
	b, _ := replica(t, srv.Addr, Options{Timeout: time.Second})
	ctx := context.Background()
	lim := state.Limit{Rate: 100, Per: 10 * time.Second, Burst: 100}
	const requests = 2000
	// Requests are spread over 5 seconds of request time: a burst of 100
	// plus 5 s at 10/s = 150 may pass.
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 5 * time.Second / requests) }

	single := state.NewMemory(state.MemoryOptions{})
	want := 0
	for i := 0; i < requests; i++ {
		if r, _ := single.Allow(ctx, "api|ip:192.0.2.1", lim, at(i)); r.Allowed {
			want++
		}
	}
	// Load the scripts (the first EVALSHA of each replica may meet
	// NOSCRIPT), then count round trips from here.
	for _, r := range []*Store{a, b} {
		if _, err := r.Peek(ctx, "warm", lim, t0); err != nil {
			t.Fatal(err)
		}
	}
	rt0 := a.Stats().RoundTrips + b.Stats().RoundTrips
	var got atomic.Int64
	var wg sync.WaitGroup
	var next atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		r := a
		if g%2 == 1 {
			r = b
		}
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= requests {
					return
				}
				res, err := r.Allow(ctx, "api|ip:192.0.2.1", lim, at(i))
				if err != nil {
					t.Error(err)
					return
				}
				if res.Allowed {
					got.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	diff := float64(got.Load()-int64(want)) / float64(want)
	t.Logf("two replicas allowed %d of %d; one store allows %d (%+.1f%%)", got.Load(), requests, want, 100*diff)
	if diff < -0.03 || diff > 0.03 {
		t.Fatalf("two replicas allowed %d, one store %d: more than 3%% apart", got.Load(), want)
	}
	// Each decision was one round trip.
	st := a.Stats()
	st2 := b.Stats()
	if rt := st.RoundTrips + st2.RoundTrips - rt0; rt != requests {
		t.Fatalf("%d round trips for %d decisions", rt, requests)
	}
}

func TestApplyIsOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := replica(t, srv.Addr, Options{Timeout: time.Second})
	ctx := context.Background()
	pol := bruteForce
	ops := []state.Op{
		{Kind: state.OpBanned, Key: "ip:192.0.2.7"},
		{Kind: state.OpAllow, Key: "api|ip:192.0.2.7", Limit: state.Limit{Rate: 2, Per: time.Minute}},
		{Kind: state.OpAllow, Key: "login|net:192.0.2.0/24", Limit: state.Limit{Rate: 1, Per: time.Minute}},
		{Kind: state.OpStrike, Key: "ip:192.0.2.7", Policy: &pol},
	}
	out := make([]state.Outcome, len(ops))
	// The first call may load the scripts (NOSCRIPT); afterwards one
	// round trip per Apply.
	if err := a.Apply(ctx, ops, out, t0); err != nil {
		t.Fatal(err)
	}
	before := a.Stats().RoundTrips
	for i := 0; i < 10; i++ {
		if err := a.Apply(ctx, ops, out, t0); err != nil {
			t.Fatal(err)
		}
	}
	if rt := a.Stats().RoundTrips - before; rt != 10 {
		t.Fatalf("10 Applies of 4 operations took %d round trips", rt)
	}
	// 11 strikes: banned at the 5th and 10th; the ban check ran first in
	// each Apply, so the last one saw the ban of the 10th.
	if !out[0].Banned || out[1].Result.Allowed || out[2].Result.Allowed {
		t.Fatalf("outcomes after 11 Applies: %+v", out)
	}
	// Peek matches what the store holds without charging.
	p1, _ := a.Peek(ctx, "fresh", state.Limit{Rate: 5, Per: time.Second}, t0)
	p2, _ := a.Peek(ctx, "fresh", state.Limit{Rate: 5, Per: time.Second}, t0)
	if p1.Remaining != 5 || p2.Remaining != 5 {
		t.Fatalf("peek charged: %+v %+v", p1, p2)
	}
}

// TestScriptsSurviveScriptFlush: a Redis restart or SCRIPT FLUSH forgets
// the scripts; EVALSHA gets NOSCRIPT and the store loads them again.
func TestScriptsSurviveScriptFlush(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := replica(t, srv.Addr, Options{Timeout: time.Second})
	ctx := context.Background()
	lim := state.Limit{Rate: 3, Per: time.Minute}
	for i := 0; i < 2; i++ {
		if _, err := a.Allow(ctx, "k", lim, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r, err := a.Allow(ctx, "k", lim, t0)
	if err != nil || !r.Allowed || r.Remaining != 0 {
		t.Fatalf("after SCRIPT FLUSH: %+v %v", r, err)
	}
	if r, _ := a.Allow(ctx, "k", lim, t0); r.Allowed {
		t.Fatal("the counter was lost with the scripts")
	}
}

// TestRedisAgreesWithMemory runs the same deterministic sequence through
// Redis and the in-memory store: the Lua scripts mirror the Go code.
func TestRedisAgreesWithMemory(t *testing.T) {
	srv := redistest.Start(t)
	r, _ := replica(t, srv.Addr, Options{Timeout: time.Second})
	m := state.NewMemory(state.MemoryOptions{})
	ctx := context.Background()
	lim := state.Limit{Rate: 7, Per: 3 * time.Second, Burst: 4}
	pol := state.BanPolicy{Name: "p", After: 4, Within: 20 * time.Second, BanFor: time.Minute, Factor: 3, MaxBan: 5 * time.Minute}
	now := t0
	for i := 0; i < 400; i++ {
		now = now.Add(time.Duration(37+(i*7919)%900) * time.Millisecond)
		rr, err := r.Allow(ctx, "k", lim, now)
		if err != nil {
			t.Fatal(err)
		}
		mr, _ := m.Allow(ctx, "k", lim, now)
		if rr != mr {
			t.Fatalf("step %d: redis %+v, memory %+v", i, rr, mr)
		}
		if i%3 == 0 {
			rb, ru, _ := r.Strike(ctx, "s", pol, now)
			mb, mu, _ := m.Strike(ctx, "s", pol, now)
			if rb != mb || !ru.Equal(mu) {
				t.Fatalf("strike at step %d: redis %v %s, memory %v %s", i, rb, ru, mb, mu)
			}
		}
	}
}

// TestOutageFailsOverAndRecovers plays a Redis that hangs (SIGSTOP: the
// kernel accepts connections, nothing answers) and one that is gone
// (killed), and checks: every call during the outage returns the local
// fallback's answer with an UnavailableError; only the first call and one
// probe per cooldown wait for the timeout; a fail-closed caller refuses,
// a fail-open one serves; a ban earned during the outage is copied to Redis
// when it returns, and B enforces it.
func TestOutageFailsOverAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 100 * time.Millisecond
	const cooldown = 500 * time.Millisecond
	a, logs := replica(t, srv.Addr, Options{Timeout: timeout, Cooldown: cooldown})
	b, _ := replica(t, srv.Addr, Options{Timeout: timeout, Cooldown: cooldown})
	ctx := context.Background()
	lim := state.Limit{Rate: 5, Per: time.Minute}
	now := t0
	if _, err := a.Allow(ctx, "api|ip:192.0.2.1", lim, now); err != nil {
		t.Fatal(err)
	}
	// A ban known before the outage stays enforced through it.
	if err := a.Ban(ctx, "ip:192.0.2.66", now.Add(time.Hour), "before", now); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	const calls = 300
	start := time.Now()
	allowed, slow := 0, 0
	for i := 0; i < calls; i++ {
		now = now.Add(5 * time.Millisecond) // 1.5 s of request time: 3 cooldowns
		callStart := time.Now()
		r, err := a.Allow(ctx, "api|ip:192.0.2.1", lim, now)
		if time.Since(callStart) > timeout/2 {
			slow++
		}
		var ue *state.UnavailableError
		if !errors.As(err, &ue) || !ue.Fallback || !errors.Is(err, state.ErrUnavailable) {
			t.Fatalf("call %d during the outage: %v, want an UnavailableError with a fallback answer", i, err)
		}
		if _, refuse := state.FailClosed.Resolve(err); refuse == nil {
			t.Fatal("fail closed served during the outage")
		}
		if degraded, refuse := state.FailOpen.Resolve(err); refuse != nil || !degraded {
			t.Fatalf("fail open refused: %v", refuse)
		}
		if r.Allowed {
			allowed++
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d calls against a hung Redis took %s; %d waited for the %s timeout", calls, elapsed, slow, timeout)
	// Without the breaker every call would wait: calls × timeout = 30 s.
	if slow > 5 || elapsed > 10*timeout {
		t.Fatalf("%d of %d calls waited for the timeout (%s in all): the breaker does not hold", slow, calls, elapsed)
	}
	if allowed != 5 {
		t.Fatalf("the local fallback allowed %d, want its own burst of 5", allowed)
	}
	if _, banned, _ := a.Banned(ctx, "ip:192.0.2.66", now); !banned {
		t.Fatal("a ban known before the outage was forgotten during it")
	}
	if !strings.Contains(logs.String(), "redis unavailable") {
		t.Fatalf("no log line for the outage: %q", logs.String())
	}
	if n := strings.Count(logs.String(), "redis unavailable"); n != 1 {
		t.Fatalf("%d outage log lines, want one per outage", n)
	}

	// Now gone entirely; a brute-force attack meets replica A meanwhile.
	srv.Resume()
	srv.Stop()
	key := "ip:203.0.113.50"
	var until time.Time
	for i := 0; i < 5; i++ {
		banned, u, err := a.Strike(ctx, key, bruteForce, now)
		if !errors.Is(err, state.ErrUnavailable) {
			t.Fatalf("strike during the outage: %v", err)
		}
		if banned {
			until = u
		}
	}
	if until.IsZero() {
		t.Fatal("the fallback did not ban during the outage")
	}

	srv.Restart()
	// After the cooldown the next call probes, finds Redis, and closes the
	// breaker; the outage's bans are copied over in the background.
	now = now.Add(cooldown + time.Millisecond)
	if _, err := a.Allow(ctx, "api|ip:192.0.2.9", lim, now); err != nil {
		t.Fatalf("first call after Redis returned: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if u, banned, err := b.Banned(ctx, key, now); err == nil && banned {
			if !u.Equal(until) {
				t.Fatalf("copied ban ends %s, want %s", u, until)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a ban earned during the outage was not copied to Redis; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
		now = now.Add(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "redis is back") {
		t.Fatalf("no log line for the recovery: %q", logs.String())
	}
	if st := a.Stats(); st.Open {
		t.Fatalf("breaker still open after recovery: %+v", st)
	}
}

// TestConcurrentOutageNoPileUp: 16 goroutines hammer a replica whose Redis
// hangs. Only calls already in flight and the probes wait.
func TestConcurrentOutageNoPileUp(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 100 * time.Millisecond
	a, _ := replica(t, srv.Addr, Options{Timeout: timeout, Cooldown: time.Hour})
	ctx := context.Background()
	lim := state.Limit{Rate: 1000, Per: time.Second}
	if _, err := a.Allow(ctx, "warm", lim, t0); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	var slow atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				c := time.Now()
				a.Allow(ctx, fmt.Sprintf("k%d", g), lim, t0.Add(time.Duration(i)*time.Millisecond))
				if time.Since(c) >= timeout*9/10 {
					slow.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	t.Logf("3200 calls from 16 goroutines against a hung Redis: %s, %d waited", time.Since(start), slow.Load())
	// Only the calls in flight when Redis hung (one per goroutine) should
	// wait; twice that leaves room for a loaded scheduler. Without the
	// breaker all 3200 would.
	if slow.Load() > 32 {
		t.Fatalf("%d calls waited for the timeout; about 16 (the first in flight) should", slow.Load())
	}
}

// TestLiftedBanStaysLifted: A has seen a ban (and mirrored it locally); B
// lifts it; then A goes through an outage and its recovery. The copy of
// A's local bans to Redis must not bring the lifted ban back.
func TestLiftedBanStaysLifted(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := replica(t, srv.Addr, Options{Timeout: 200 * time.Millisecond, Cooldown: time.Second})
	b, _ := replica(t, srv.Addr, Options{Timeout: time.Second})
	ctx := context.Background()
	now := t0
	for i := 0; i < 5; i++ {
		a.Strike(ctx, "ip:192.0.2.80", bruteForce, now) // earned through A
	}
	if err := b.Ban(ctx, "ip:192.0.2.81", now.Add(time.Hour), "by hand", now); err != nil {
		t.Fatal(err)
	}
	if _, banned, _ := a.Banned(ctx, "ip:192.0.2.81", now); !banned {
		t.Fatal("A does not see B's ban")
	}
	for _, k := range []string{"ip:192.0.2.80", "ip:192.0.2.81"} {
		if was, err := b.Unban(ctx, k, now); err != nil || !was {
			t.Fatalf("Unban %s through B: %v %v", k, was, err)
		}
	}
	srv.Stop()
	if _, _, err := a.Banned(ctx, "ip:192.0.2.1", now); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("with Redis stopped: %v", err)
	}
	srv.Restart()
	now = now.Add(2 * time.Second)
	if _, _, err := a.Banned(ctx, "ip:192.0.2.1", now); err != nil {
		t.Fatalf("after Redis returned: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // the copy runs in the background
	for _, k := range []string{"ip:192.0.2.80", "ip:192.0.2.81"} {
		if _, banned, _ := b.Banned(ctx, k, now); banned {
			t.Fatalf("%s, lifted through B, came back after A's outage", k)
		}
	}
}

// TestPasswordFloodAcrossReplicas: 30 wrong passwords from one address in
// half a second, fired concurrently through two replicas, while other
// addresses strike once each. The scripts are atomic, so the flooder is
// banned at exactly the 10th strike, then (counting afresh) the 20th and
// 30th, each ban twice as long; nobody else is banned.
func TestPasswordFloodAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a, _ := replica(t, srv.Addr, Options{Timeout: time.Second})
	b, _ := replica(t, srv.Addr, Options{Timeout: time.Second})
	ctx := context.Background()
	pol := state.BanPolicy{Name: "brute-force", After: 10, Within: time.Minute, BanFor: 10 * time.Minute, Factor: 2, MaxBan: 24 * time.Hour}
	flooder := "ip:203.0.113.66"
	var bans atomic.Int64
	var longest atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(2)
		r := a
		if i%2 == 1 {
			r = b
		}
		now := t0.Add(time.Duration(i) * 16 * time.Millisecond)
		go func() {
			defer wg.Done()
			banned, until, err := r.Strike(ctx, flooder, pol, now)
			if err != nil {
				t.Error(err)
			}
			if banned {
				bans.Add(1)
				for {
					l := longest.Load()
					if int64(until.Sub(now)) <= l || longest.CompareAndSwap(l, int64(until.Sub(now))) {
						break
					}
				}
			}
		}()
		go func(i int) {
			defer wg.Done()
			if banned, _, _ := r.Strike(ctx, fmt.Sprintf("ip:198.51.100.%d", i), pol, now); banned {
				t.Errorf("a client with one wrong password was banned")
			}
		}(i)
	}
	wg.Wait()
	if bans.Load() != 3 {
		t.Fatalf("30 concurrent strikes with after: 10 gave %d bans, want 3", bans.Load())
	}
	bl, _ := b.ListBans(ctx, t0.Add(time.Second))
	if len(bl) != 1 || bl[0].Key != flooder || bl[0].Level != 3 {
		t.Fatalf("bans: %+v, want the flooder alone at level 3", bl)
	}
	if got := time.Duration(longest.Load()); got < 39*time.Minute || got > 40*time.Minute {
		t.Fatalf("third ban lasts %s, want about 40m (10m, 20m, 40m)", got)
	}
}

func TestNewNeedsAddr(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without addr succeeded")
	}
}
