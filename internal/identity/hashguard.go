package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Password hashes such as bcrypt cost milliseconds of CPU on purpose, and an
// HTTP Basic client sends its password with every request. Left alone, a few
// dozen connections repeating a wrong password keep every core hashing and
// starve every other request the gateway serves (issue 10 measured a public
// page falling from 30,000 to 2,300 req/s, p99 476 ms, under 32 such
// connections; OWASP's Authentication Cheat Sheet and CWE-400/CWE-405 name
// this asymmetric cost). hashGuard puts three bounds around the hashing:
//
//   - a verdict cache: the outcome of a (user, stored hash, password) triple,
//     success or failure, is remembered for a short time under an HMAC keyed
//     with a per-process random key, so a repeated credential costs an HMAC
//     and a lookup. The password is never stored, and the stored hash is part
//     of the key, so an edited htpasswd entry matches no old verdict;
//   - concurrent requests with the same credential share one computation;
//   - at most max(1, GOMAXPROCS/2) hashes run at once, so hashing never holds
//     every core; a request that cannot get a slot within a short wait (or
//     finds the queue full) is refused at once with ErrUnavailable (503
//     unavailable with Retry-After) rather than queued behind the flood.

// Defaults of the hash guard.
const (
	// DefaultVerdictTTL is how long a verdict is remembered. Short: a
	// password changed or revoked in the file takes effect at reload anyway
	// (the stored hash is in the key), and an expired success costs one hash.
	DefaultVerdictTTL = time.Minute
	// DefaultVerdictCacheSize is the number of slots of each verdict cache
	// (successes and failures apart, so a flood of failures never evicts
	// the successes of real users).
	DefaultVerdictCacheSize = 8192
	// DefaultHashWait is the longest a request waits for a hashing slot.
	DefaultHashWait = 75 * time.Millisecond
	// busyTTL is how long a credential refused for want of a slot stays
	// refused (well under the Retry-After the refusal carries).
	busyTTL = time.Second
)

// hashGuardOptions tunes a hashGuard; zero fields take the defaults.
type hashGuardOptions struct {
	// Slots is the number of hashes that may run at once (default
	// max(1, GOMAXPROCS/2)).
	Slots int
	// MaxWaiting is how many requests may wait for a slot; the next is
	// refused at once (default 32 × Slots: an ordinary burst of sign-ins
	// waits; the Wait bound, not the count, turns a flood away).
	MaxWaiting int
	// Wait bounds the time a request waits for a slot (default 75 ms).
	Wait time.Duration
	// TTL is how long verdicts are remembered (default 1 min).
	TTL time.Duration
	// CacheSize is the slot count of each verdict cache (default 8192).
	CacheSize int
}

// hashGuard bounds the cost of password verification; see above.
type hashGuard struct {
	opts   hashGuardOptions
	macKey [32]byte
	// ipad and opad are the HMAC key blocks (RFC 2104) of macKey.
	ipad, opad [sha256.BlockSize]byte
	slots      chan struct{}
	waiting    atomic.Int64
	successes  *verdictCache
	failures   *verdictCache
	// busy remembers, for busyTTL, credentials refused for want of a slot:
	// the gateway evaluates a refused request a second time to log its
	// trace, and that second look must give the same answer (evaluation
	// is pure) without waiting for a slot again.
	busy *verdictCache

	flightMu sync.Mutex
	inFlight map[verdictKey]*flight

	// computed counts the hashes actually computed (cache misses that got
	// a slot), refused those turned away: for tests and metrics.
	computed atomic.Int64
	refused  atomic.Int64
}

type verdictKey [32]byte

// flight is one computation that concurrent requests with the same
// credential wait for.
type flight struct {
	done chan struct{}
	ok   bool
	err  error
}

func newHashGuard(opts hashGuardOptions) (*hashGuard, error) {
	if opts.Slots <= 0 {
		opts.Slots = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if opts.MaxWaiting <= 0 {
		opts.MaxWaiting = 32 * opts.Slots
	}
	if opts.Wait <= 0 {
		opts.Wait = DefaultHashWait
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultVerdictTTL
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultVerdictCacheSize
	}
	g := &hashGuard{
		opts:      opts,
		slots:     make(chan struct{}, opts.Slots),
		successes: newVerdictCache(opts.CacheSize),
		failures:  newVerdictCache(opts.CacheSize),
		busy:      newVerdictCache(1024),
		inFlight:  make(map[verdictKey]*flight),
	}
	if _, err := rand.Read(g.macKey[:]); err != nil {
		return nil, fmt.Errorf("password guard: random key: %w", err)
	}
	for i := range g.ipad {
		g.ipad[i], g.opad[i] = 0x36, 0x5c
	}
	for i, b := range g.macKey {
		g.ipad[i] ^= b
		g.opad[i] ^= b
	}
	return g, nil
}

// key is HMAC-SHA256 (RFC 2104) under the per-process key of
// len(user) user len(stored) stored len(password) password: the lengths
// make the encoding unambiguous even when a field holds a NUL. It is
// computed with sha256.Sum256 over stack buffers, since a remembered
// verdict is the common case and should cost no allocation.
func (g *hashGuard) key(user, stored, password string) verdictKey {
	var stack [512]byte
	inner := append(stack[:0], g.ipad[:]...)
	var n [8]byte
	for _, s := range [...]string{user, stored, password} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		inner = append(inner, n[:]...)
		inner = append(inner, s...)
	}
	innerSum := sha256.Sum256(inner)
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], g.opad[:])
	copy(outer[sha256.BlockSize:], innerSum[:])
	return verdictKey(sha256.Sum256(outer[:]))
}

// verify returns whether password is right for user, whose stored hash is
// stored ("" for an unknown user), calling check only when no fresh verdict
// is remembered and no identical check is under way. It returns an error
// wrapping ErrUnavailable when no hashing slot came free in time.
func (g *hashGuard) verify(user, stored, password string, now time.Time, check func() bool) (bool, error) {
	k := g.key(user, stored, password)
	if g.successes.get(k, now) {
		return true, nil
	}
	if g.failures.get(k, now) {
		return false, nil
	}
	if g.busy.get(k, now) {
		return false, errSaturated(g)
	}

	g.flightMu.Lock()
	if f, ok := g.inFlight[k]; ok {
		g.flightMu.Unlock()
		<-f.done
		return f.ok, f.err
	}
	f := &flight{done: make(chan struct{})}
	g.inFlight[k] = f
	g.flightMu.Unlock()
	defer func() {
		g.flightMu.Lock()
		delete(g.inFlight, k)
		g.flightMu.Unlock()
		close(f.done)
	}()

	if err := g.acquire(); err != nil {
		g.refused.Add(1)
		g.busy.put(k, now.Add(busyTTL))
		f.err = err
		return false, err
	}
	g.computed.Add(1)
	ok := func() bool {
		defer func() { <-g.slots }() // released even if check panics
		return check()
	}()
	f.ok = ok
	if ok {
		g.successes.put(k, now.Add(g.opts.TTL))
	} else {
		g.failures.put(k, now.Add(g.opts.TTL))
	}
	return ok, nil
}

// acquire takes a hashing slot, waiting at most opts.Wait and only when
// fewer than opts.MaxWaiting requests wait already.
func (g *hashGuard) acquire() error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	if g.waiting.Add(1) > int64(g.opts.MaxWaiting) {
		g.waiting.Add(-1)
		return errSaturated(g)
	}
	defer g.waiting.Add(-1)
	timer := time.NewTimer(g.opts.Wait)
	defer timer.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return fmt.Errorf("%w: no password-check slot free within %v; try again shortly", ErrUnavailable, g.opts.Wait)
	}
}

func errSaturated(g *hashGuard) error {
	return fmt.Errorf("%w: password checks are saturated (%d running, %d waiting); try again shortly", ErrUnavailable, g.opts.Slots, g.opts.MaxWaiting)
}

// verdictCache remembers keys until their expiry in a fixed array of slots
// (direct-mapped, like a CPU cache): a key lives in the slot its first
// bytes select, and a new key there evicts the old one. Memory is fixed at
// construction, lookups are O(1), and an attacker who floods it with fresh
// keys only evicts other entries (which then cost one hash again) — the
// bound holds whatever is sent. Keys are HMACs under a secret key, so
// nobody can aim at a chosen slot.
type verdictCache struct {
	mask  uint64
	locks [64]sync.Mutex
	slots []verdictSlot
}

type verdictSlot struct {
	key     verdictKey
	expires int64 // unix nanoseconds; 0: empty
}

func newVerdictCache(size int) *verdictCache {
	n := 64
	for n < size {
		n <<= 1
	}
	return &verdictCache{mask: uint64(n - 1), slots: make([]verdictSlot, n)}
}

func (c *verdictCache) index(k verdictKey) uint64 { return binary.BigEndian.Uint64(k[:8]) & c.mask }

func (c *verdictCache) get(k verdictKey, now time.Time) bool {
	i := c.index(k)
	mu := &c.locks[i%uint64(len(c.locks))]
	mu.Lock()
	s := c.slots[i]
	mu.Unlock()
	return s.expires != 0 && s.key == k && now.UnixNano() < s.expires
}

func (c *verdictCache) put(k verdictKey, expires time.Time) {
	i := c.index(k)
	mu := &c.locks[i%uint64(len(c.locks))]
	mu.Lock()
	c.slots[i] = verdictSlot{key: k, expires: expires.UnixNano()}
	mu.Unlock()
}

// len counts the live entries (for tests).
func (c *verdictCache) len(now time.Time) int {
	n := 0
	for i := range c.slots {
		mu := &c.locks[uint64(i)%uint64(len(c.locks))]
		mu.Lock()
		if c.slots[i].expires != 0 && now.UnixNano() < c.slots[i].expires {
			n++
		}
		mu.Unlock()
	}
	return n
}

// HashStats reports, since the authenticator was made, how many password
// hashes were computed (verdict-cache misses that got a slot) and how many
// checks were refused for want of a slot (answered 503 unavailable).
func (h *Htpasswd) HashStats() (computed, refused int64) {
	return h.guard.computed.Load(), h.guard.refused.Load()
}
