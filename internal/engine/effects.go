package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/state/redisstore"

	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/state"
)

// The policy's effects, applied by the engine: bans checked before any
// costly stage, rate limits charged after the rules, strikes counted when
// an outcome is final. The store outlives policy swaps (a reload keeps the
// counters and the bans), and one store serves every front end.

// storeTimeout bounds one store round trip within a request: a shared store
// that is slow must not hold every request (the store's own circuit breaker
// then answers from its local fallback).
const storeTimeout = 250 * time.Millisecond

// SetStore installs the store the policy's rate limits and bans are kept
// in. Without one, a policy that needs it gets an in-memory store of its
// own on first use.
func (e *Engine) SetStore(s state.Store) { e.store.Store(&s) }

// Store is the store in use (nil when none was needed yet).
func (e *Engine) Store() state.Store {
	if p := e.store.Load(); p != nil {
		return *p
	}
	return nil
}

// storeContext bounds a call to a shared store; a store in this process
// needs no deadline (and a timer per request would be most of its cost).
func storeContext(s state.Store) (context.Context, context.CancelFunc) {
	if _, local := s.(*state.Memory); local {
		return context.Background(), func() {}
	}
	return context.WithTimeout(context.Background(), storeTimeout)
}

func (e *Engine) storeFor(rt *Runtime) state.Store {
	if s := e.Store(); s != nil {
		return s
	}
	var s state.Store = state.NewMemory(state.MemoryOptions{})
	if e.store.CompareAndSwap(nil, &s) {
		return s
	}
	return e.Store()
}

// failMode is the policy's default for a store that cannot answer.
func failMode(rt *Runtime) state.FailMode {
	if st := rt.Config.State; st != nil {
		m, _ := state.ParseFailMode(st.OnError.Value)
		return m
	}
	return state.FailClosed
}

// handBanV4Bits and handBanV6Bits are the network widths a hand-set CIDR
// ban (`warden bans add CIDR`) is checked at for every client, beside the
// widths the ban policies key by.
const handBanV4Bits, handBanV6Bits = 24, 64

// banKey is the key a ban policy bans this request's client by.
func banKey(b *policy.Ban, o *Outcome) string {
	return b.Key.Key(state.KeyInput{IP: o.Request.ClientIP})
}

// checkBans refuses a banned client before the rules run (no password is
// hashed, no WAF runs for it). It reports whether it refused.
func (e *Engine) checkBans(rt *Runtime, o *Outcome) bool {
	bans := rt.Policy.Bans()
	if len(bans) == 0 || o.SkipEffects {
		return false
	}
	store := e.storeFor(rt)
	var opsBuf [3]state.Op
	var outBuf [3]state.Outcome
	ops := opsBuf[:0]
	add := func(key string) {
		for _, op := range ops {
			if op.Key == key {
				return
			}
		}
		ops = append(ops, state.Op{Kind: state.OpBanned, Key: key})
	}
	for i := range bans {
		add(banKey(&bans[i], o))
	}
	// An operator's `warden bans add 198.51.100.0/24` bans the network a
	// client is in: the /24 (IPv4) or /64 (IPv6) is checked too, in the
	// same round trip.
	add(state.PrefixKey(o.Request.ClientIP, handBanV4Bits, handBanV6Bits))
	out := outBuf[:0]
	for range ops {
		out = append(out, state.Outcome{})
	}
	ctx, cancel := storeContext(store)
	err := store.Apply(ctx, ops, out, o.Now)
	cancel()
	if _, refuse := failMode(rt).Resolve(err); refuse != nil {
		o.refuse(StageBan, unavailable("bans cannot be checked right now", refuse))
		return true
	} else if err != nil {
		e.log.Warn("state store unavailable; bans checked against this instance's own", "error", err.Error())
	}
	for i, r := range out {
		if r.Banned {
			d := decision.Refuse(decision.Banned, "this address is banned for a while after repeated refusals")
			d.Rule = "(ban)"
			d.RetryAfter = retrySeconds(r.Until.Sub(o.Now))
			d.Detail = "banned: " + ops[i].Key + " until " + r.Until.UTC().Format(time.RFC3339)
			o.refuse(StageBan, d)
			o.header().Set("Retry-After", strconv.Itoa(d.RetryAfter))
			return true
		}
	}
	return false
}

// chargeRateLimits applies the rate limits the rules charged, in one round
// trip; the first that is over refuses the request with 429.
func (e *Engine) chargeRateLimits(rt *Runtime, o *Outcome) {
	limits := o.charges.List()
	if len(limits) == 0 || o.SkipEffects {
		return
	}
	store := e.storeFor(rt)
	in := state.KeyInput{IP: o.Request.ClientIP, Header: o.Wire.Header}
	if c := o.Caller; c != nil {
		in.Principal = c.ID
		if c.Method == "api_key" {
			in.APIKeyID = c.ID
		}
	}
	var opsBuf [4]state.Op
	var outBuf [4]state.Outcome
	ops, out := opsBuf[:0], outBuf[:0]
	kind := state.OpAllow
	if o.PeekOnly {
		kind = state.OpPeek
	}
	for _, l := range limits {
		// The key is built in a buffer on the stack: one allocation for
		// "rule|ip:203.0.113.9", not one per part.
		var keyBuf [128]byte
		key := append(keyBuf[:0], l.KeyPrefix...)
		key = l.Key.AppendKey(key, in)
		ops = append(ops, state.Op{Kind: kind, Key: string(key), Limit: l.Limit})
		out = append(out, state.Outcome{})
	}
	ctx, cancel := storeContext(store)
	err := store.Apply(ctx, ops, out, o.Now)
	cancel()
	if err != nil {
		// The first limit's rule says what to do: a rule that fails open
		// takes the local fallback's answer.
		if _, refuse := limits[0].OnError.Resolve(err); refuse != nil {
			d := unavailable("the rate limit cannot be checked right now", refuse)
			d.Rule, d.RuleLine = limits[0].Rule, limits[0].Line
			o.refuse(StagePolicy, d)
			return
		}
		e.log.Warn("state store unavailable; rate limits counted by this instance alone", "error", err.Error())
	}
	for i, l := range limits {
		r := out[i].Result
		// Canonical keys written directly (Header.Set would canonicalize
		// "RateLimit-Policy" anew each time); the policy value is the
		// compiled limit's, shared and never written to.
		h := o.header()
		h["Ratelimit-Policy"] = l.PolicyHeader
		h["Ratelimit"] = []string{state.CurrentHeader(l.SFName, r)}
		if !r.Allowed {
			h["Retry-After"] = []string{state.RetryAfterValue(r.RetryAfter)}
		}
		o.RateLimits = append(o.RateLimits, RateLimitState{Rule: l.Rule, Key: ops[i].Key, Remaining: r.Remaining, Allowed: r.Allowed})
		if !r.Allowed && !o.PeekOnly {
			d := decision.Refuse(decision.RateLimited, "too many requests; slow down and retry later")
			d.Rule, d.RuleLine = l.Rule, l.Line
			d.RetryAfter = retrySeconds(r.RetryAfter)
			d.Detail = "rate limit " + strconv.Itoa(l.Limit.Rate) + " per " + l.Limit.Per.String() + " exceeded for " + ops[i].Key
			o.refuse(StagePolicy, d)
			return
		}
	}
}

// strike counts a final refusal towards the ban policies that count its
// code, and logs the ban it earns.
func (e *Engine) strike(o *Outcome) {
	rt := o.Runtime
	if o.struck || rt == nil || !o.HasRequest || o.SkipEffects || o.PeekOnly || !o.Refused() || o.Stage == StageBan {
		return
	}
	o.struck = true
	bans := rt.Policy.Bans()
	for i := range bans {
		b := &bans[i]
		if !b.Counts(o.Decision.Code, o.Request.Path) {
			continue
		}
		key := banKey(b, o)
		store := e.storeFor(rt)
		ctx, cancel := storeContext(store)
		banned, until, err := store.Strike(ctx, key, b.Policy, o.Now)
		cancel()
		if err != nil && !errors.Is(err, state.ErrUnavailable) {
			e.log.Warn("counting a strike failed", "ban", b.Policy.Name, "key", key, "error", err.Error())
		}
		if banned {
			e.log.LogAttrs(context.Background(), slog.LevelWarn, "ban",
				slog.String("request_id", o.ID), slog.String("ban", b.Policy.Name), slog.String("key", key),
				slog.String("until", until.UTC().Format(time.RFC3339)), slog.String("code", string(o.Decision.Code)))
		}
	}
}

// RateLimitState is what a request's rate limits said, for the record and
// explain.
type RateLimitState struct {
	Rule      string `json:"rule"`
	Key       string `json:"key"`
	Remaining int    `json:"remaining"`
	Allowed   bool   `json:"allowed"`
}

func unavailable(reason string, err error) decision.Decision {
	d := decision.Refuse(decision.Unavailable, reason)
	d.Detail = err.Error()
	d.RetryAfter = 5
	return d
}

func retrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// header is the outcome's extra response headers, made on first use.
func (o *Outcome) header() http.Header {
	if o.Header == nil {
		o.Header = make(http.Header, 3)
	}
	return o.Header
}

// OpenStore makes the store a config asks for: in memory (bounded by
// state.max_entries), or Redis with this instance's memory as its fallback.
// A config without state gets nil (the engine makes a memory store when a
// policy first needs one).
func OpenStore(cfg *config.Config, logger *slog.Logger) (state.Store, error) {
	st := cfg.State
	if st == nil {
		return nil, nil
	}
	mem := state.NewMemory(state.MemoryOptions{MaxCounters: st.MaxEntries, MaxStrikes: st.MaxEntries / 2, MaxBans: st.MaxEntries / 4})
	if st.Store.Value != "redis" {
		return mem, nil
	}
	r := st.Redis
	o := redisstore.Options{Addr: r.Addr.Value, Username: r.Username.Value, DB: r.DB, Timeout: r.Timeout.Duration, Fallback: mem, Logger: logger}
	if f := r.PasswordFile.Value; f != "" {
		if !filepath.IsAbs(f) {
			f = filepath.Join(filepath.Dir(cfg.Pos.File), f)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%s: state.redis.password_file: %w", r.PasswordFile.Pos, err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	s, err := redisstore.New(o)
	if err != nil {
		return nil, fmt.Errorf("%s: state.redis: %w", r.Pos, err)
	}
	return s, nil
}
