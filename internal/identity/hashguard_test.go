package identity

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// At most Slots checks run at once, however many requests arrive.
func TestHashGuardBoundsConcurrentChecks(t *testing.T) {
	g, err := newHashGuard(hashGuardOptions{Slots: 2, MaxWaiting: 1000, Wait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var running, peak atomic.Int64
	check := func() bool {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		return false
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if _, err := g.verify("u", "h", fmt.Sprint("pw", i), t0, check); err != nil {
				t.Errorf("check %d refused: %v", i, err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 2 || p < 1 {
		t.Fatalf("peak concurrent checks = %d, want 1..2", p)
	}
	if n := g.computed.Load(); n != 40 {
		t.Fatalf("computed %d checks, want 40 (distinct passwords)", n)
	}
}

// The default never lets hashing hold every core.
func TestHashGuardDefaultLeavesCoresFree(t *testing.T) {
	g, err := newHashGuard(hashGuardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	procs := runtime.GOMAXPROCS(0)
	if want := max(1, procs/2); cap(g.slots) != want {
		t.Fatalf("slots = %d with GOMAXPROCS %d, want %d", cap(g.slots), procs, want)
	}
	if procs > 1 && cap(g.slots) >= procs {
		t.Fatalf("hashing may hold all %d cores", procs)
	}
}

// A wrong credential is hashed once; repeated within the TTL it costs a
// lookup; after the TTL it is hashed again. Successes likewise.
func TestHashGuardRemembersVerdicts(t *testing.T) {
	g, err := newHashGuard(hashGuardOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	right := func(pw string) func() bool { return func() bool { calls++; return pw == "right" } }
	for i := range 100 {
		if ok, err := g.verify("alice", "H1", "wrong", t0.Add(time.Duration(i)*100*time.Millisecond), right("wrong")); ok || err != nil {
			t.Fatalf("wrong password: ok=%v err=%v", ok, err)
		}
	}
	if calls != 1 {
		t.Fatalf("100 identical wrong passwords cost %d hashes, want 1", calls)
	}
	for range 100 {
		if ok, err := g.verify("alice", "H1", "right", t0, right("right")); !ok || err != nil {
			t.Fatalf("right password: ok=%v err=%v", ok, err)
		}
	}
	if calls != 2 {
		t.Fatalf("100 identical right passwords cost %d hashes in all, want 2", calls)
	}
	// Expiry: both verdicts are recomputed after the TTL.
	later := t0.Add(time.Minute + time.Second)
	g.verify("alice", "H1", "wrong", later, right("wrong"))
	g.verify("alice", "H1", "right", later, right("right"))
	if calls != 4 {
		t.Fatalf("after the TTL: %d hashes, want 4", calls)
	}
	// A changed stored hash (the file was edited) matches no old verdict:
	// the password refused under H1 is checked afresh under H2.
	if ok, _ := g.verify("alice", "H2", "wrong", later, func() bool { calls++; return true }); !ok || calls != 5 {
		t.Fatalf("verdict under the old hash reused: ok=%v calls=%d", ok, calls)
	}
	// Other users and passwords do not share verdicts.
	if ok, _ := g.verify("bob", "H1", "right", later, func() bool { calls++; return false }); ok || calls != 6 {
		t.Fatalf("bob reused alice's verdict: ok=%v calls=%d", ok, calls)
	}
}

// Verdicts are keyed by an HMAC under a per-process key: two guards (two
// processes) derive different keys, and the key does not contain the
// password in any readable form.
func TestHashGuardKeyIsSecretAndUnambiguous(t *testing.T) {
	g1, _ := newHashGuard(hashGuardOptions{})
	g2, _ := newHashGuard(hashGuardOptions{})
	if g1.key("a", "h", "p") == g2.key("a", "h", "p") {
		t.Fatal("two guards derive the same key: the HMAC key is not random")
	}
	if g1.key("a", "h", "p") != g1.key("a", "h", "p") {
		t.Fatal("key not deterministic")
	}
	// The hand-rolled HMAC is RFC 2104 HMAC-SHA256, long fields included.
	long := strings.Repeat("x", 1000)
	for _, f := range [][3]string{{"alice", "$2y$10$abc", "pw"}, {"", "", ""}, {long, long, long}} {
		mac := hmac.New(sha256.New, g1.macKey[:])
		for _, s := range f {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(s)))
			mac.Write(n[:])
			mac.Write([]byte(s))
		}
		if got := g1.key(f[0], f[1], f[2]); !bytes.Equal(got[:], mac.Sum(nil)) {
			t.Errorf("key(%.20q...) differs from crypto/hmac", f[0])
		}
	}
	// Field boundaries count: ("a:b","","") and ("a",":b","") differ, and
	// so do triples that differ only in where a NUL falls.
	pairs := [][2][3]string{
		{{"ab", "", "c"}, {"a", "b", "c"}},
		{{"a\x00", "h", "p"}, {"a", "\x00h", "p"}},
		{{"a", "h", "p\x00"}, {"a", "h", "p"}},
	}
	for _, p := range pairs {
		if g1.key(p[0][0], p[0][1], p[0][2]) == g1.key(p[1][0], p[1][1], p[1][2]) {
			t.Errorf("%q and %q share a key", p[0], p[1])
		}
	}
}

// The caches never hold more than their fixed size, however many
// credentials are sent.
func TestVerdictCacheIsBounded(t *testing.T) {
	g, err := newHashGuard(hashGuardOptions{CacheSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20000 {
		g.verify("u", "h", fmt.Sprint(i), t0, func() bool { return i%2 == 0 })
	}
	size := len(g.failures.slots)
	if size != 128 || len(g.successes.slots) != 128 {
		t.Fatalf("cache sizes %d/%d, want 128 (100 rounded up to a power of two)", size, len(g.successes.slots))
	}
	if n := g.failures.len(t0); n > size || n < size/2 {
		t.Fatalf("failure cache holds %d live entries of %d slots", n, size)
	}
	// The newest verdict is present.
	calls := 0
	g.verify("u", "h", "19999", t0, func() bool { calls++; return false })
	if calls != 0 {
		t.Fatal("the newest failure was not remembered")
	}
}

// With every slot busy, the excess is refused quickly with ErrUnavailable
// rather than queued: after the short wait, or at once when the queue is
// full.
func TestHashGuardRefusesTheExcess(t *testing.T) {
	g, err := newHashGuard(hashGuardOptions{Slots: 1, MaxWaiting: 1, Wait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{})
	go g.verify("u", "h", "slow", t0, func() bool { close(started); <-release; return false })
	<-started
	defer close(release)

	// One waiter is allowed; it gives up after Wait.
	waited := make(chan error, 1)
	begin := time.Now()
	go func() {
		_, err := g.verify("u", "h", "second", t0, func() bool { return false })
		waited <- err
	}()
	// Give the waiter time to queue, then a third finds the queue full.
	for g.waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	_, err = g.verify("u", "h", "third", t0, func() bool { t.Error("third check ran"); return false })
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("queue full: err = %v, want ErrUnavailable", err)
	}
	err = <-waited
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("waiter: err = %v, want ErrUnavailable", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Fatalf("the waiter was held %v; the bound is 50 ms", d)
	}
	if g.refused.Load() != 2 || g.computed.Load() != 1 {
		t.Fatalf("refused %d computed %d, want 2 and 1", g.refused.Load(), g.computed.Load())
	}
	// The same credential asked again at once (the gateway's second look
	// for the log) gets the same answer without waiting or hashing.
	again := time.Now()
	if _, err := g.verify("u", "h", "second", t0, func() bool { t.Error("hashed"); return false }); !errors.Is(err, ErrUnavailable) || time.Since(again) > 40*time.Millisecond {
		t.Fatalf("second look: err = %v after %v", err, time.Since(again))
	}
	// A remembered verdict needs no slot: it is answered even now.
	g.failures.put(g.key("u", "h", "known-bad"), t0.Add(time.Minute))
	if ok, err := g.verify("u", "h", "known-bad", t0, func() bool { t.Error("hashed"); return true }); ok || err != nil {
		t.Fatalf("remembered failure while saturated: ok=%v err=%v", ok, err)
	}
}

// Concurrent requests with the same credential share one computation.
func TestHashGuardSharesInFlightChecks(t *testing.T) {
	g, err := newHashGuard(hashGuardOptions{Slots: 1, MaxWaiting: 100, Wait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			ok, err := g.verify("u", "h", "same", t0, func() bool { calls.Add(1); <-gate; return false })
			if ok || err != nil {
				t.Errorf("ok=%v err=%v", ok, err)
			}
		})
	}
	for g.computed.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others join the flight
	close(gate)
	wg.Wait()
	if n := calls.Load(); n > 2 {
		t.Fatalf("16 concurrent identical credentials cost %d hashes", n)
	}
}

// Through the authenticator: a repeated wrong password for a bcrypt user is
// hashed once, an unknown user's likewise, and a correct password still
// gets in after a cached failure of another password.
func TestHtpasswdRepeatedWrongPasswordIsHashedOnce(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(file, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := NewHtpasswd(file, HtpasswdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err := h.Authenticate(basicRequest("alice", "wrong"), t0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v", err)
		}
		if _, err := h.Authenticate(basicRequest("nobody", "wrong"), t0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v", err)
		}
	}
	if n := h.guard.computed.Load(); n != 2 {
		t.Fatalf("100 repeated wrong credentials cost %d hashes, want 2", n)
	}
	for range 50 {
		if p, err := h.Authenticate(basicRequest("alice", "right"), t0); err != nil || p.ID != "alice" {
			t.Fatalf("p=%v err=%v", p, err)
		}
	}
	if n := h.guard.computed.Load(); n != 3 {
		t.Fatalf("50 correct logins cost %d more hashes, want 1", n-2)
	}
}
