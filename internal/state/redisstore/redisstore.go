// Package redisstore is the state.Store that many warden replicas share: rate
// limits and bans kept in one Redis, so a ban earned through one replica is
// enforced by all, and a limit holds for the whole fleet rather than per
// replica.
//
// Every decision is one round trip: a single-key Lua script (EVALSHA, loaded
// on NOSCRIPT), or for several operations of one request, one pipeline of
// them (Apply). Keys expire by themselves (PX / PEXPIRE), so Redis holds no
// counter longer than it matters.
//
// When Redis cannot answer, the store answers from a local fallback (an
// in-memory state.Memory: this replica's own counters, and the bans it has
// seen) and says so with a *state.UnavailableError; the rule's on_error
// decides whether that answer is used (fail open) or the request is
// refused with 503 (fail closed). A circuit breaker keeps an outage from
// costing every request a timeout: after a failure Redis is not asked again
// for Cooldown; then the next request probes it (one at a time, everyone
// else stays on the fallback), and when it answers, the bans the fallback
// earned meanwhile are copied to Redis.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/warden-gateway/warden/internal/state"
)

// Options configures the store.
type Options struct {
	Addr     string // host:port
	Username string
	Password string
	DB       int
	// Prefix starts every key, so warden can share a Redis with others.
	// Default "warden:".
	Prefix string
	// Timeout bounds each call to Redis (write and read). A rate limit
	// sits in front of every request, so this is short: default 50ms.
	Timeout time.Duration
	// DialTimeout bounds connecting. A Redis that is down refuses at once;
	// this is for one that is unreachable, paid by one request per
	// Cooldown. Default 250ms.
	DialTimeout time.Duration
	// Cooldown is how long after a failure Redis is left alone and the
	// fallback answers. Default 2s.
	Cooldown time.Duration
	// Fallback answers while Redis cannot. Default: a state.Memory with
	// default bounds.
	Fallback state.Store
	// Logger gets one line when Redis becomes unavailable and one when it
	// is back (not one per request: the decision log carries those).
	// Default slog.Default().
	Logger *slog.Logger
	// PoolSize is the connection pool size; default go-redis' (10 per CPU).
	PoolSize int
}

// Store is a state.Store in Redis.
type Store struct {
	client   *redis.Client
	prefix   string
	cooldown int64
	timeout  time.Duration
	fallback state.Store
	log      *slog.Logger

	openUntil atomic.Int64 // request time (unix ns) before which Redis is not asked; 0 = closed
	probing   atomic.Bool
	syncing   sync.Mutex

	roundTrips atomic.Uint64
	failures   atomic.Uint64
	fallbacks  atomic.Uint64
}

// New connects lazily: it does not fail when Redis is down at start; the
// first requests find out and use the fallback.
func New(o Options) (*Store, error) {
	if o.Addr == "" {
		return nil, errors.New("redis: addr is required, e.g. 127.0.0.1:6379")
	}
	if o.Prefix == "" {
		o.Prefix = "warden:"
	}
	if o.Timeout <= 0 {
		o.Timeout = 50 * time.Millisecond
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 250 * time.Millisecond
	}
	if o.Cooldown <= 0 {
		o.Cooldown = 2 * time.Second
	}
	if o.Fallback == nil {
		o.Fallback = state.NewMemory(state.MemoryOptions{})
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := redis.NewClient(&redis.Options{
		Addr:     o.Addr,
		Username: o.Username,
		Password: o.Password,
		DB:       o.DB,
		PoolSize: o.PoolSize,
		// One try per call, each bounded: the breaker, not a retry loop,
		// handles a Redis that does not answer.
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.Timeout,
		WriteTimeout:          o.Timeout,
		PoolTimeout:           o.Timeout,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	s := &Store{
		client:   c,
		prefix:   o.Prefix,
		cooldown: int64(o.Cooldown),
		timeout:  o.Timeout,
		fallback: o.Fallback,
		log:      o.Logger,
	}
	c.AddHook(countingHook{&s.roundTrips})
	return s, nil
}

// countingHook counts round trips: one per command sent alone, one per
// pipeline however many commands it holds.
type countingHook struct{ n *atomic.Uint64 }

func (h countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !connSetup(cmd) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if !connSetup(c) {
				h.n.Add(1)
				break
			}
		}
		return next(ctx, cmds)
	}
}

// connSetup tells the commands go-redis sends once per new connection
// (HELLO, AUTH, SELECT, CLIENT SETNAME), which are not a decision's cost.
func connSetup(c redis.Cmder) bool {
	switch c.Name() {
	case "hello", "auth", "select", "client":
		return true
	}
	return false
}

// Stats counts what the store did since it was made.
type Stats struct {
	RoundTrips uint64 // requests sent to Redis (a pipeline is one)
	Failures   uint64 // calls that failed and tripped the breaker
	Fallbacks  uint64 // operations answered by the local fallback
	Open       bool   // the breaker is open now
}

// Stats reports the counters.
func (s *Store) Stats() Stats {
	return Stats{
		RoundTrips: s.roundTrips.Load(),
		Failures:   s.failures.Load(),
		Fallbacks:  s.fallbacks.Load(),
		Open:       s.openUntil.Load() != 0,
	}
}

// Fallback is the local store that answers during an outage.
func (s *Store) Fallback() state.Store { return s.fallback }

func (s *Store) rateKey(key string) string { return s.prefix + "rl:" + key }

// The ban record and a key's strike counters share the hash tag {key}, so
// the strike script's two keys live in one Redis Cluster slot.
func (s *Store) banKey(key string) string { return s.prefix + "{" + key + "}:ban" }
func (s *Store) strikeKey(key, policy string) string {
	return s.prefix + "{" + key + "}:st:" + state.BoundedValue(policy)
}

func micros(t time.Time) int64         { return t.UnixMicro() }
func microsD(d time.Duration) int64    { return int64(d / time.Microsecond) }
func fromMicros(us int64) time.Time    { return time.UnixMicro(us) }
func durMicros(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

// gate says whether this call may use Redis, and whether it is the probe
// that tests a Redis the breaker had given up on.
func (s *Store) gate(now int64) (use, probe bool) {
	u := s.openUntil.Load()
	if u == 0 {
		return true, false
	}
	if now < u {
		return false, false
	}
	if s.probing.CompareAndSwap(false, true) {
		return true, true
	}
	return false, false
}

// settle records a call's outcome in the breaker.
func (s *Store) settle(ctx context.Context, now int64, probe bool, err error) {
	if err != nil {
		s.failures.Add(1)
		if prev := s.openUntil.Swap(now + s.cooldown); prev == 0 {
			s.log.Warn("state store: redis unavailable; answering from the local fallback",
				"err", err, "cooldown", time.Duration(s.cooldown))
		}
		if probe {
			s.probing.Store(false)
		}
		return
	}
	if probe {
		s.openUntil.Store(0)
		s.probing.Store(false)
		s.log.Info("state store: redis is back; copying the bans made during the outage")
		go s.syncBans(time.Unix(0, now))
	}
}

// syncBans copies the fallback's bans to Redis after an outage, only ever
// lengthening a ban, so a ban earned while Redis was away is enforced by
// every replica once it is back.
func (s *Store) syncBans(now time.Time) {
	if !s.syncing.TryLock() {
		return
	}
	defer s.syncing.Unlock()
	all, err := s.fallback.ListBans(context.Background(), now)
	if err != nil {
		return
	}
	var bans []state.BanInfo
	for _, b := range all {
		if b.Reason != mirrored {
			bans = append(bans, b)
		}
	}
	if len(bans) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*s.timeout+time.Second)
	defer cancel()
	fill := func(p redis.Pipeliner) {
		for _, b := range bans {
			banScript.EvalSha(ctx, p, []string{s.banKey(b.Key)}, micros(now), micros(b.Until), b.Reason, b.Key, "max")
		}
	}
	pipe := s.client.Pipeline()
	fill(pipe)
	if _, err := s.execPipe(ctx, pipe, fill); err != nil {
		s.log.Warn("state store: copying bans to redis after the outage failed", "err", err, "bans", len(bans))
		return
	}
	s.log.Info("state store: bans copied to redis", "bans", len(bans))
}

// execPipe runs a pipeline; when Redis has lost the scripts (a restart, a
// SCRIPT FLUSH) it loads them and runs the pipeline again, rebuilt by fill.
func (s *Store) execPipe(ctx context.Context, pipe redis.Pipeliner, fill func(redis.Pipeliner)) ([]redis.Cmder, error) {
	cmds, _ := pipe.Exec(ctx)
	if noScript(cmds) {
		if err := s.loadScripts(ctx); err != nil {
			return nil, err
		}
		pipe = s.client.Pipeline()
		fill(pipe)
		cmds, _ = pipe.Exec(ctx)
	}
	return cmds, firstErr(cmds)
}

// firstErr is the first failed command's error. Exec reports redis.Nil (an
// HGET of a key without a ban) as a failure too; it is an answer.
func firstErr(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}

func (s *Store) loadScripts(ctx context.Context) error {
	p := s.client.Pipeline()
	for _, src := range scriptSources {
		p.ScriptLoad(ctx, src)
	}
	_, err := p.Exec(ctx)
	return err
}

func noScript(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			return true
		}
	}
	return false
}

// Apply implements state.Store: all ops in one pipeline, one round trip.
func (s *Store) Apply(ctx context.Context, ops []state.Op, out []state.Outcome, now time.Time) error {
	if len(out) < len(ops) {
		return fmt.Errorf("state: %d operations but room for %d outcomes", len(ops), len(out))
	}
	if len(ops) == 0 {
		return nil
	}
	for i := range ops {
		if err := validate(&ops[i]); err != nil {
			return err
		}
	}
	n := now.UnixNano()
	use, probe := s.gate(n)
	if !use {
		return s.fromFallback(ctx, "apply", nil, ops, out, now)
	}
	fill := func(p redis.Pipeliner) {
		for i := range ops {
			s.queue(ctx, p, &ops[i], now)
		}
	}
	pipe := s.client.Pipeline()
	fill(pipe)
	cmds, err := s.execPipe(ctx, pipe, fill)
	if err == nil {
		for i := range ops {
			if out[i], err = parse(&ops[i], cmds[i]); err != nil {
				break
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up (the client went away): not Redis' fault.
			if probe {
				s.probing.Store(false)
			}
			return ctx.Err()
		}
		s.settle(ctx, n, probe, err)
		return s.fromFallback(ctx, "apply", err, ops, out, now)
	}
	s.settle(ctx, n, probe, nil)
	s.mirror(ctx, ops, out, now)
	return nil
}

func validate(op *state.Op) error {
	switch op.Kind {
	case state.OpAllow, state.OpPeek:
		return op.Limit.Validate()
	case state.OpStrike:
		if op.Policy == nil {
			return errors.New("state: a strike needs a ban policy")
		}
		return op.Policy.Validate()
	case state.OpBanned:
		return nil
	}
	return fmt.Errorf("state: unknown operation kind %d", op.Kind)
}

func (s *Store) queue(ctx context.Context, p redis.Pipeliner, op *state.Op, now time.Time) {
	switch op.Kind {
	case state.OpBanned:
		p.HGet(ctx, s.banKey(op.Key), "until")
	case state.OpAllow, state.OpPeek:
		cost := 1
		if op.Kind == state.OpPeek {
			cost = 0
		}
		rateScript.EvalSha(ctx, p, []string{s.rateKey(op.Key)},
			micros(now), microsD(op.Limit.Interval()), op.Limit.Capacity(), cost)
	case state.OpStrike:
		pol := op.Policy
		factor := pol.Factor
		if factor < 1 {
			factor = 1
		}
		maxBan := pol.MaxBan
		if maxBan <= 0 {
			maxBan = pol.BanLength(1 << 20) // the store's own ceiling
		}
		strikeScript.EvalSha(ctx, p, []string{s.strikeKey(op.Key, pol.Name), s.banKey(op.Key)},
			micros(now), microsD(pol.Within), pol.After, microsD(pol.BanFor),
			strconv.FormatFloat(factor, 'g', -1, 64), microsD(maxBan), microsD(pol.RememberFor()),
			pol.Name, op.Key)
	}
}

func parse(op *state.Op, c redis.Cmder) (state.Outcome, error) {
	var o state.Outcome
	switch op.Kind {
	case state.OpBanned:
		v, err := c.(*redis.StringCmd).Result()
		if errors.Is(err, redis.Nil) {
			return o, nil
		}
		if err != nil {
			return o, err
		}
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return o, fmt.Errorf("redis: ban record of %s: until %q: %w", op.Key, v, err)
		}
		o.Until = fromMicros(us)
		return o, nil // Banned is decided against now by the caller below
	case state.OpAllow, state.OpPeek:
		vals, err := c.(*redis.Cmd).Int64Slice()
		if err != nil {
			return o, err
		}
		if len(vals) != 4 {
			return o, fmt.Errorf("redis: rate script returned %d values", len(vals))
		}
		o.Result = state.Result{Allowed: vals[0] == 1, Remaining: int(vals[1]),
			RetryAfter: durMicros(vals[2]), ResetAfter: durMicros(vals[3])}
		return o, nil
	case state.OpStrike:
		vals, err := c.(*redis.Cmd).Int64Slice()
		if err != nil {
			return o, err
		}
		if len(vals) != 2 {
			return o, fmt.Errorf("redis: strike script returned %d values", len(vals))
		}
		if vals[0] == 1 {
			o.Banned, o.Until = true, fromMicros(vals[1])
		}
		return o, nil
	}
	return o, fmt.Errorf("state: unknown operation kind %d", op.Kind)
}

// mirrored is the reason of a ban the fallback holds only because Redis
// showed it. Such bans are not copied back to Redis after an outage: one
// lifted meanwhile through another replica would come back.
const mirrored = "mirrored from redis"

// mirror keeps the fallback's picture of bans current while Redis answers,
// so the bans this replica has seen stay enforced through an outage.
func (s *Store) mirror(ctx context.Context, ops []state.Op, out []state.Outcome, now time.Time) {
	for i := range ops {
		switch ops[i].Kind {
		case state.OpBanned:
			out[i].Banned = out[i].Until.After(now)
			if !out[i].Banned {
				out[i].Until = time.Time{}
			} else {
				s.fallback.Ban(ctx, ops[i].Key, out[i].Until, mirrored, now)
			}
		case state.OpStrike:
			if out[i].Banned {
				s.fallback.Ban(ctx, ops[i].Key, out[i].Until, mirrored, now)
			}
		}
	}
}

func (s *Store) fromFallback(ctx context.Context, op string, cause error, ops []state.Op, out []state.Outcome, now time.Time) error {
	s.fallbacks.Add(uint64(len(ops)))
	if err := s.fallback.Apply(ctx, ops, out, now); err != nil {
		return &state.UnavailableError{Op: op, Err: errors.Join(cause, err)}
	}
	return &state.UnavailableError{Op: op, Err: cause, Fallback: true}
}

// one runs a single op through Apply.
func (s *Store) one(ctx context.Context, op state.Op, now time.Time) (state.Outcome, error) {
	var out [1]state.Outcome
	err := s.Apply(ctx, []state.Op{op}, out[:], now)
	return out[0], err
}

// Allow implements state.Store.
func (s *Store) Allow(ctx context.Context, key string, limit state.Limit, now time.Time) (state.Result, error) {
	o, err := s.one(ctx, state.Op{Kind: state.OpAllow, Key: key, Limit: limit}, now)
	return o.Result, err
}

// Peek implements state.Store.
func (s *Store) Peek(ctx context.Context, key string, limit state.Limit, now time.Time) (state.Result, error) {
	o, err := s.one(ctx, state.Op{Kind: state.OpPeek, Key: key, Limit: limit}, now)
	return o.Result, err
}

// Strike implements state.Store.
func (s *Store) Strike(ctx context.Context, key string, p state.BanPolicy, now time.Time) (bool, time.Time, error) {
	o, err := s.one(ctx, state.Op{Kind: state.OpStrike, Key: key, Policy: &p}, now)
	return o.Banned, o.Until, err
}

// Banned implements state.Store.
func (s *Store) Banned(ctx context.Context, key string, now time.Time) (time.Time, bool, error) {
	o, err := s.one(ctx, state.Op{Kind: state.OpBanned, Key: key}, now)
	return o.Until, o.Banned, err
}

// Strikes implements state.Store (for explain; not on the request path).
func (s *Store) Strikes(ctx context.Context, key string, p state.BanPolicy, now time.Time) (float64, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	return withRedis(s, ctx, "strikes", now, func(ctx context.Context) (float64, error) {
		v, err := s.client.HMGet(ctx, s.strikeKey(key, p.Name), "s", "p", "c").Result()
		if err != nil {
			return 0, err
		}
		start, _ := strconv.ParseInt(str(v[0]), 10, 64)
		prev, _ := strconv.ParseUint(str(v[1]), 10, 32)
		cur, _ := strconv.ParseUint(str(v[2]), 10, 32)
		return strikeCount(uint32(prev), uint32(cur), start, micros(now), microsD(p.Within)), nil
	}, func() (float64, error) { return s.fallback.Strikes(ctx, key, p, now) })
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// strikeCount is state's two-counter estimate in microseconds, as the
// strike script computes it.
func strikeCount(prev, cur uint32, start, now, w int64) float64 {
	if w <= 0 {
		return 0
	}
	ws := now - ((now%w)+w)%w
	switch {
	case start == ws:
	case start == ws-w:
		prev, cur = cur, 0
	default:
		prev, cur = 0, 0
	}
	elapsed := now - ws
	if prev == 0 || elapsed >= w {
		return float64(cur)
	}
	return float64(int64(float64(prev)*float64(w-elapsed)/float64(w)+0.5) + int64(cur))
}

// Ban implements state.Store.
func (s *Store) Ban(ctx context.Context, key string, until time.Time, reason string, now time.Time) error {
	_, err := withRedis(s, ctx, "ban", now, func(ctx context.Context) (bool, error) {
		if err := banScript.Run(ctx, s.client, []string{s.banKey(key)}, micros(now), micros(until), reason, key, "set").Err(); err != nil {
			return false, err
		}
		return true, s.fallback.Ban(ctx, key, until, mirrored, now)
	}, func() (bool, error) {
		// Set while Redis is away: copied to Redis when it is back.
		return true, s.fallback.Ban(ctx, key, until, reason, now)
	})
	return err
}

// Unban implements state.Store.
func (s *Store) Unban(ctx context.Context, key string, now time.Time) (bool, error) {
	local, _ := s.fallback.Unban(ctx, key, now)
	return withRedis(s, ctx, "unban", now, func(ctx context.Context) (bool, error) {
		v, err := unbanScript.Run(ctx, s.client, []string{s.banKey(key)}, micros(now)).Int64()
		return v == 1 || local, err
	}, func() (bool, error) { return local, nil })
}

// ListBans implements state.Store: a SCAN over the ban records (admin
// only; Redis answers other clients between SCAN steps).
func (s *Store) ListBans(ctx context.Context, now time.Time) ([]state.BanInfo, error) {
	return withRedis(s, ctx, "list bans", now, func(ctx context.Context) ([]state.BanInfo, error) {
		var keys []string
		iter := s.client.Scan(ctx, 0, s.prefix+"{*}:ban", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return nil, err
		}
		pipe := s.client.Pipeline()
		cmds := make([]*redis.SliceCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.HMGet(ctx, k, "key", "until", "level", "reason")
		}
		if len(keys) > 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				return nil, err
			}
		}
		nowUS := micros(now)
		var out []state.BanInfo
		for _, c := range cmds {
			v := c.Val()
			if len(v) != 4 {
				continue
			}
			until, err := strconv.ParseInt(str(v[1]), 10, 64)
			if err != nil || until <= nowUS {
				continue
			}
			level, _ := strconv.Atoi(str(v[2]))
			out = append(out, state.BanInfo{Key: str(v[0]), Until: fromMicros(until), Level: level, Reason: str(v[3])})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
		return out, nil
	}, func() ([]state.BanInfo, error) { return s.fallback.ListBans(ctx, now) })
}

// withRedis runs f against Redis under the breaker, or g against the
// fallback when Redis is not to be asked or fails.
func withRedis[T any](s *Store, ctx context.Context, op string, now time.Time, f func(context.Context) (T, error), g func() (T, error)) (T, error) {
	n := now.UnixNano()
	use, probe := s.gate(n)
	if use {
		v, err := f(ctx)
		if err == nil || errors.Is(err, redis.Nil) {
			s.settle(ctx, n, probe, nil)
			return v, nil
		}
		if ctx.Err() != nil {
			if probe {
				s.probing.Store(false)
			}
			return v, ctx.Err()
		}
		s.settle(ctx, n, probe, err)
		s.fallbacks.Add(1)
		fv, ferr := g()
		if ferr != nil {
			return fv, &state.UnavailableError{Op: op, Err: errors.Join(err, ferr)}
		}
		return fv, &state.UnavailableError{Op: op, Err: err, Fallback: true}
	}
	s.fallbacks.Add(1)
	fv, ferr := g()
	if ferr != nil {
		return fv, &state.UnavailableError{Op: op, Err: ferr}
	}
	return fv, &state.UnavailableError{Op: op, Fallback: true}
}

// Close closes the connections (not the fallback, which the caller may
// share).
func (s *Store) Close() error { return s.client.Close() }

var _ state.Store = (*Store)(nil)
