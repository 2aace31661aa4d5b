package state

import (
	"context"
	"hash/maphash"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryOptions bounds the in-memory store. Each table is allocated whole
// when the store is made and never grows, so a flood of distinct addresses
// costs evictions, not memory.
type MemoryOptions struct {
	// MaxCounters is the number of rate-limit counters (16 bytes each).
	// Default 262,144 (4 MiB).
	MaxCounters int
	// MaxStrikes is the number of strike counters (32 bytes each).
	// Default 131,072 (4 MiB).
	MaxStrikes int
	// MaxBans is the number of ban records (72 bytes each plus the key).
	// Default 65,536 (4.5 MiB plus keys).
	MaxBans int
}

const (
	defaultMaxCounters = 1 << 18
	defaultMaxStrikes  = 1 << 17
	defaultMaxBans     = 1 << 16

	// ways is the associativity of every table: a key lives in one bucket of
	// eight slots, chosen by its hash. Eviction only ever compares those
	// eight, so it is O(1) and needs no global LRU list.
	ways = 8
	// stripes is the number of locks per table; a bucket's lock is its
	// index modulo stripes, so unrelated keys rarely contend.
	stripes = 256
)

// Memory is a Store in this process's memory: for a single instance, and as
// the local fallback of the Redis store. Every table is set-associative with
// a fixed number of slots. When a key's bucket is full the slot that holds
// the least information is evicted: an expired one first (a counter whose
// TAT has passed is the same as no counter), else the one closest to
// expiring. A client that is actually being limited or banned therefore
// outlives a flood of one-off addresses hashed into its bucket; the cost of
// an eviction under pressure is that the evicted key starts afresh.
//
// Keys are identified by a 64-bit hash with a per-store random seed
// (hash/maphash), so an outsider cannot choose addresses that collide;
// counters keep only the hash, ban records also keep the key for ListBans.
type Memory struct {
	seed     maphash.Seed
	counters table[counterSlot]
	strikes  table[strikeSlot]
	bans     table[banSlot]

	evictedCounters atomic.Uint64
	evictedStrikes  atomic.Uint64
	evictedBans     atomic.Uint64
}

type counterSlot struct {
	hash uint64 // 0 = empty
	tat  int64  // unix ns
}

type strikeSlot struct {
	hash      uint64
	start     int64 // unix ns start of the current fixed window
	expires   int64 // when both windows are over and the slot is worthless
	prev, cur uint32
}

type banSlot struct {
	hash   uint64
	key    string
	reason string
	until  int64 // unix ns; the ban is in force while now < until
	forget int64 // unix ns; the level is remembered while now < forget
	level  int32
}

type paddedMutex struct {
	sync.Mutex
	_ [64 - 8]byte // one cache line per lock: no false sharing between stripes
}

type table[S any] struct {
	buckets [][ways]S
	locks   *[stripes]paddedMutex
}

func newTable[S any](slots int) table[S] {
	n := (slots + ways - 1) / ways
	if n < 1 {
		n = 1
	}
	return table[S]{buckets: make([][ways]S, n), locks: new([stripes]paddedMutex)}
}

// at returns h's bucket and its lock. The bucket index uses Lemire's
// multiply-shift range reduction, so the bucket count need not be a power
// of two and the configured bound is the bound.
func (t *table[S]) at(h uint64) (*[ways]S, *sync.Mutex) {
	i, _ := bits.Mul64(h, uint64(len(t.buckets)))
	return &t.buckets[i], &t.locks[i%stripes].Mutex
}

func (t *table[S]) slots() int { return len(t.buckets) * ways }

// NewMemory makes an in-memory store; zero options take the defaults.
func NewMemory(o MemoryOptions) *Memory {
	if o.MaxCounters <= 0 {
		o.MaxCounters = defaultMaxCounters
	}
	if o.MaxStrikes <= 0 {
		o.MaxStrikes = defaultMaxStrikes
	}
	if o.MaxBans <= 0 {
		o.MaxBans = defaultMaxBans
	}
	return &Memory{
		seed:     maphash.MakeSeed(),
		counters: newTable[counterSlot](o.MaxCounters),
		strikes:  newTable[strikeSlot](o.MaxStrikes),
		bans:     newTable[banSlot](o.MaxBans),
	}
}

func (m *Memory) hash(key string) uint64 {
	h := maphash.String(m.seed, key)
	if h == 0 {
		h = 1 // 0 marks an empty slot
	}
	return h
}

// strikeHash separates a key's strike counters per policy.
func (m *Memory) strikeHash(key, policy string) uint64 {
	var h maphash.Hash
	h.SetSeed(m.seed)
	h.WriteString(policy)
	h.WriteByte(0)
	h.WriteString(key)
	s := h.Sum64()
	if s == 0 {
		s = 1
	}
	return s
}

// MemoryStats counts the slots and evictions of each table.
type MemoryStats struct {
	CounterSlots, StrikeSlots, BanSlots             int
	EvictedCounters, EvictedStrikes, EvictedBans    uint64
	LiveCounters, LiveStrikes, LiveBans, ActiveBans int
}

// Stats walks the tables (it takes every lock in turn; for tests and the
// admin endpoint, not the request path).
func (m *Memory) Stats(now time.Time) MemoryStats {
	n := now.UnixNano()
	s := MemoryStats{
		CounterSlots:    m.counters.slots(),
		StrikeSlots:     m.strikes.slots(),
		BanSlots:        m.bans.slots(),
		EvictedCounters: m.evictedCounters.Load(),
		EvictedStrikes:  m.evictedStrikes.Load(),
		EvictedBans:     m.evictedBans.Load(),
	}
	for i := range m.counters.buckets {
		mu := &m.counters.locks[i%stripes]
		mu.Lock()
		for _, c := range m.counters.buckets[i] {
			if c.hash != 0 && c.tat > n {
				s.LiveCounters++
			}
		}
		mu.Unlock()
	}
	for i := range m.strikes.buckets {
		mu := &m.strikes.locks[i%stripes]
		mu.Lock()
		for _, c := range m.strikes.buckets[i] {
			if c.hash != 0 && c.expires > n {
				s.LiveStrikes++
			}
		}
		mu.Unlock()
	}
	for i := range m.bans.buckets {
		mu := &m.bans.locks[i%stripes]
		mu.Lock()
		for _, b := range m.bans.buckets[i] {
			if b.hash != 0 && b.forget > n {
				s.LiveBans++
				if b.until > n {
					s.ActiveBans++
				}
			}
		}
		mu.Unlock()
	}
	return s
}

// Allow implements Store. It allocates nothing.
func (m *Memory) Allow(_ context.Context, key string, limit Limit, now time.Time) (Result, error) {
	return m.rate(key, limit, now, 1)
}

// Peek implements Store.
func (m *Memory) Peek(_ context.Context, key string, limit Limit, now time.Time) (Result, error) {
	return m.rate(key, limit, now, 0)
}

func (m *Memory) rate(key string, limit Limit, now time.Time, cost int64) (Result, error) {
	if limit.Rate <= 0 || limit.Per <= 0 || limit.Burst < 0 {
		// Validate's full message allocates; the policy compiler has
		// already called it, so this is only a guard against zero limits.
		return Result{}, limit.Validate()
	}
	interval, capacity := int64(limit.Interval()), int64(limit.Capacity())
	if interval <= 0 {
		return Result{}, limit.Validate()
	}
	n := now.UnixNano()
	h := m.hash(key)
	b, mu := m.counters.at(h)
	mu.Lock()
	for i := range b {
		if b[i].hash == h {
			tat, r := GCRA(b[i].tat, n, interval, capacity, cost)
			b[i].tat = tat
			mu.Unlock()
			return r, nil
		}
	}
	tat, r := GCRA(n, n, interval, capacity, cost)
	if cost > 0 {
		// Victim: an empty or expired slot, else the one whose TAT is
		// nearest (the client closest to having its full burst back anyway).
		v := 0
		for i := range b {
			if b[i].hash == 0 || b[i].tat <= n {
				v = i
				break
			}
			if b[i].tat < b[v].tat {
				v = i
			}
		}
		if b[v].hash != 0 && b[v].tat > n {
			m.evictedCounters.Add(1)
		}
		b[v] = counterSlot{hash: h, tat: tat}
	}
	mu.Unlock()
	return r, nil
}

// Strike implements Store.
func (m *Memory) Strike(_ context.Context, key string, p BanPolicy, now time.Time) (bool, time.Time, error) {
	if p.After < 1 || p.Within <= 0 || p.BanFor <= 0 {
		return false, time.Time{}, p.Validate()
	}
	n := now.UnixNano()
	w := int64(p.Within)
	h := m.strikeHash(key, p.Name)
	b, mu := m.strikes.at(h)
	mu.Lock()
	idx := -1
	for i := range b {
		if b[i].hash == h {
			idx = i
			break
		}
	}
	if idx < 0 {
		idx = 0
		for i := range b {
			if b[i].hash == 0 || b[i].expires <= n {
				idx = i
				break
			}
			if b[i].expires < b[idx].expires {
				idx = i
			}
		}
		if b[idx].hash != 0 && b[idx].expires > n {
			m.evictedStrikes.Add(1)
		}
		b[idx] = strikeSlot{hash: h, start: n - floorMod(n, w)}
	}
	s := &b[idx]
	s.prev, s.cur, s.start = roll(s.prev, s.cur, s.start, n, w)
	if s.cur < ^uint32(0) {
		s.cur++
	}
	s.expires = s.start + 2*w
	count := slidingCount(s.prev, s.cur, s.start, n, w)
	if count < int64(p.After) {
		mu.Unlock()
		return false, time.Time{}, nil
	}
	*s = strikeSlot{} // the ban answers for these strikes; start counting afresh
	mu.Unlock()
	until := m.escalate(key, p, n)
	return true, time.Unix(0, until), nil
}

// escalate records the next ban of key under p and returns its end.
func (m *Memory) escalate(key string, p BanPolicy, n int64) int64 {
	h := m.hash(key)
	b, mu := m.bans.at(h)
	mu.Lock()
	defer mu.Unlock()
	s := m.banSlotFor(b, h, key, n)
	level := int32(0)
	if s.forget > n {
		level = s.level
	}
	level++
	until := n + int64(p.BanLength(int(level)))
	if s.until > until {
		until = s.until // a longer ban already in force (say, set by hand) stays
	}
	*s = banSlot{hash: h, key: key, reason: p.Name, until: until, forget: until + int64(p.RememberFor()), level: level}
	return until
}

// banSlotFor finds key's ban slot in b, or makes room for it. Bans in force
// are evicted last, the one ending soonest first.
func (m *Memory) banSlotFor(b *[ways]banSlot, h uint64, key string, n int64) *banSlot {
	for i := range b {
		if b[i].hash == h && b[i].key == key {
			return &b[i]
		}
	}
	v := -1
	for i := range b {
		if b[i].hash == 0 || b[i].forget <= n {
			return clearBan(&b[i])
		}
		if b[i].until <= n && (v < 0 || b[v].until > n || b[i].forget < b[v].forget) {
			v = i // a remembered, no longer active ban: cheaper to lose
		}
	}
	if v < 0 {
		v = 0
		for i := range b {
			if b[i].until < b[v].until {
				v = i
			}
		}
	}
	if b[v].until > n {
		m.evictedBans.Add(1)
	}
	return clearBan(&b[v])
}

func clearBan(s *banSlot) *banSlot { *s = banSlot{}; return s }

// Strikes implements Store.
func (m *Memory) Strikes(_ context.Context, key string, p BanPolicy, now time.Time) (float64, error) {
	if p.Within <= 0 {
		return 0, p.Validate()
	}
	n := now.UnixNano()
	w := int64(p.Within)
	h := m.strikeHash(key, p.Name)
	b, mu := m.strikes.at(h)
	mu.Lock()
	defer mu.Unlock()
	for i := range b {
		if b[i].hash == h {
			prev, cur, start := roll(b[i].prev, b[i].cur, b[i].start, n, w)
			return float64(slidingCount(prev, cur, start, n, w)), nil
		}
	}
	return 0, nil
}

// Banned implements Store.
func (m *Memory) Banned(_ context.Context, key string, now time.Time) (time.Time, bool, error) {
	n := now.UnixNano()
	h := m.hash(key)
	b, mu := m.bans.at(h)
	mu.Lock()
	defer mu.Unlock()
	for i := range b {
		if b[i].hash == h && b[i].key == key {
			if b[i].until > n {
				return time.Unix(0, b[i].until), true, nil
			}
			return time.Time{}, false, nil
		}
	}
	return time.Time{}, false, nil
}

// Ban implements Store.
func (m *Memory) Ban(_ context.Context, key string, until time.Time, reason string, now time.Time) error {
	n := now.UnixNano()
	u := until.UnixNano()
	h := m.hash(key)
	b, mu := m.bans.at(h)
	mu.Lock()
	defer mu.Unlock()
	s := m.banSlotFor(b, h, key, n)
	level := int32(0)
	if s.forget > n {
		level = s.level
	}
	forget := s.forget
	if forget < u {
		forget = u
	}
	*s = banSlot{hash: h, key: key, reason: reason, until: u, forget: forget, level: level}
	return nil
}

// Unban implements Store.
func (m *Memory) Unban(_ context.Context, key string, now time.Time) (bool, error) {
	n := now.UnixNano()
	h := m.hash(key)
	b, mu := m.bans.at(h)
	mu.Lock()
	defer mu.Unlock()
	for i := range b {
		if b[i].hash == h && b[i].key == key {
			was := b[i].until > n
			b[i] = banSlot{}
			return was, nil
		}
	}
	return false, nil
}

// ListBans implements Store; bans come ordered by key.
func (m *Memory) ListBans(_ context.Context, now time.Time) ([]BanInfo, error) {
	n := now.UnixNano()
	var out []BanInfo
	for i := range m.bans.buckets {
		mu := &m.bans.locks[i%stripes]
		mu.Lock()
		for _, s := range m.bans.buckets[i] {
			if s.hash != 0 && s.until > n {
				out = append(out, BanInfo{Key: s.key, Until: time.Unix(0, s.until), Level: int(s.level), Reason: s.reason})
			}
		}
		mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Apply implements Store, one operation after another.
func (m *Memory) Apply(ctx context.Context, ops []Op, out []Outcome, now time.Time) error {
	return applyEach(ctx, m, ops, out, now)
}

// applyEach runs ops one by one through s's single-operation methods.
func applyEach(ctx context.Context, s Store, ops []Op, out []Outcome, now time.Time) error {
	if len(out) < len(ops) {
		return errShortOut(len(ops), len(out))
	}
	for i := range ops {
		op := &ops[i]
		var err error
		out[i] = Outcome{}
		switch op.Kind {
		case OpBanned:
			out[i].Until, out[i].Banned, err = s.Banned(ctx, op.Key, now)
		case OpAllow:
			out[i].Result, err = s.Allow(ctx, op.Key, op.Limit, now)
		case OpPeek:
			out[i].Result, err = s.Peek(ctx, op.Key, op.Limit, now)
		case OpStrike:
			if op.Policy == nil {
				return errNoPolicy
			}
			out[i].Banned, out[i].Until, err = s.Strike(ctx, op.Key, *op.Policy, now)
		default:
			return errOpKind(op.Kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Close implements Store; the memory store holds nothing to release.
func (m *Memory) Close() error { return nil }

var _ Store = (*Memory)(nil)
