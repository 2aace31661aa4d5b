// Package state keeps what rules charge against a client between requests:
// rate-limit counters (GCRA) and fail2ban-style bans. The policy's pure
// decision core never touches a Store; it returns charges ("rate-limit rule
// api-rate for key ip:203.0.113.9", "an invalid_credentials strike for ban
// policy brute-force") and the engine applies them, passing the request's
// time in. Two implementations exist: Memory (this package, one instance,
// bounded) and internal/state/redisstore (many replicas sharing one Redis,
// with Memory as its local fallback while Redis is away).
package state

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Store is what the engine charges. Every method takes the request's time:
// no implementation reads a clock to decide, so a decision can be replayed and
// two replicas that pass the same time agree.
type Store interface {
	// Allow charges one request against key's rate limit and says whether
	// it may pass.
	Allow(ctx context.Context, key string, limit Limit, now time.Time) (Result, error)
	// Peek is Allow without the charge: what `explain` shows.
	Peek(ctx context.Context, key string, limit Limit, now time.Time) (Result, error)

	// Strike records one offence by key under policy. When the offences in
	// policy.Within reach policy.After the key is banned, for a duration that
	// grows for repeat offenders, and Strike reports the ban.
	Strike(ctx context.Context, key string, policy BanPolicy, now time.Time) (banned bool, until time.Time, err error)
	// Strikes is the current (sliding-window) offence count of key under
	// policy, without adding one: what `explain` shows.
	Strikes(ctx context.Context, key string, policy BanPolicy, now time.Time) (float64, error)
	// Banned reports whether key is banned at now, and until when.
	Banned(ctx context.Context, key string, now time.Time) (until time.Time, banned bool, err error)
	// Ban bans key until the given time (the admin CLI); reason is shown in
	// ListBans. A ban set by hand keeps the key's escalation level.
	Ban(ctx context.Context, key string, until time.Time, reason string, now time.Time) error
	// Unban lifts key's ban and forgets its escalation level; it reports
	// whether a ban was in force.
	Unban(ctx context.Context, key string, now time.Time) (bool, error)
	// ListBans lists the bans in force at now.
	ListBans(ctx context.Context, now time.Time) ([]BanInfo, error)

	// Apply runs several operations for one request as one unit: for Redis
	// one round trip. out must have len(ops) elements.
	Apply(ctx context.Context, ops []Op, out []Outcome, now time.Time) error

	Close() error
}

// Limit is a rate limit: Rate requests per Per, of which up to Burst may
// come at once. Burst 0 means Rate (the whole quota at once, the way a
// fixed window of Per would allow).
type Limit struct {
	Rate  int
	Per   time.Duration
	Burst int
}

// maxTolerance bounds interval×burst so the arithmetic in ns (and in µs in
// Redis' Lua doubles) cannot overflow or lose precision.
const maxTolerance = 10 * 366 * 24 * time.Hour

// Validate reports a limit the GCRA cannot represent.
func (l Limit) Validate() error {
	switch {
	case l.Rate <= 0:
		return fmt.Errorf("rate limit: requests must be at least 1, got %d", l.Rate)
	case l.Per <= 0:
		return fmt.Errorf("rate limit: per must be a positive duration, got %s", l.Per)
	case l.Burst < 0:
		return fmt.Errorf("rate limit: burst must not be negative, got %d", l.Burst)
	}
	t := l.Interval()
	if t < time.Microsecond {
		return fmt.Errorf("rate limit: %d per %s is more than one request per microsecond", l.Rate, l.Per)
	}
	if int64(l.Capacity()) > int64(maxTolerance/t) {
		return fmt.Errorf("rate limit: burst %d of %d per %s spans more than 10 years", l.Capacity(), l.Rate, l.Per)
	}
	return nil
}

// Interval is the GCRA emission interval T: the steady spacing of
// requests, rounded down to a whole microsecond, the unit of the Redis
// store, so that both stores make exactly the same decisions.
func (l Limit) Interval() time.Duration {
	if l.Rate <= 0 {
		return l.Per
	}
	return (l.Per / time.Duration(l.Rate)).Truncate(time.Microsecond)
}

// Capacity is how many requests may arrive at once.
func (l Limit) Capacity() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return l.Rate
}

// Result is the answer to a rate-limit charge.
type Result struct {
	Allowed bool
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// RetryAfter is, for a refused request, how long until one would pass.
	RetryAfter time.Duration
	// ResetAfter is how long until the full burst is available again.
	ResetAfter time.Duration
}

// BanPolicy says how offences turn into a ban (fail2ban's maxretry, findtime
// and bantime, plus escalation for repeat offenders).
type BanPolicy struct {
	// Name identifies the policy: strike counters are kept per policy and
	// key, and a ban records which policy earned it.
	Name string
	// After offences within Within ban the key.
	After  int
	Within time.Duration
	// BanFor is the first ban's length. Each further ban within Remember of
	// the previous one's end is Factor times longer, up to MaxBan.
	BanFor   time.Duration
	Factor   float64
	MaxBan   time.Duration
	Remember time.Duration
}

// DefaultRemember is how long a ban's level is remembered after it ends
// when a policy does not say.
const DefaultRemember = 24 * time.Hour

// Validate reports a policy that cannot work.
func (p BanPolicy) Validate() error {
	switch {
	case p.Name == "":
		return errors.New("ban: a policy needs a name")
	case p.After < 1:
		return fmt.Errorf("ban %s: after must be at least 1, got %d", p.Name, p.After)
	case p.Within < time.Millisecond:
		return fmt.Errorf("ban %s: within must be at least 1ms, got %s", p.Name, p.Within)
	case p.BanFor < time.Millisecond:
		return fmt.Errorf("ban %s: ban_for must be at least 1ms, got %s", p.Name, p.BanFor)
	case p.Factor != 0 && (p.Factor < 1 || p.Factor > 100 || math.IsNaN(p.Factor)):
		return fmt.Errorf("ban %s: escalation factor must be between 1 and 100, got %g", p.Name, p.Factor)
	case p.MaxBan != 0 && p.MaxBan < p.BanFor:
		return fmt.Errorf("ban %s: max %s is shorter than ban_for %s", p.Name, p.MaxBan, p.BanFor)
	case p.Within > maxTolerance || p.BanFor > maxTolerance || p.MaxBan > maxTolerance || p.Remember > maxTolerance:
		return fmt.Errorf("ban %s: durations above 10 years are not supported", p.Name)
	}
	return nil
}

// BanLength is how long the level-th ban (1 = first) lasts.
func (p BanPolicy) BanLength(level int) time.Duration {
	d := float64(p.BanFor)
	if p.Factor > 1 && level > 1 {
		d *= math.Pow(p.Factor, float64(level-1))
	}
	limit := float64(maxTolerance)
	if p.MaxBan > 0 {
		limit = float64(p.MaxBan)
	}
	if d > limit || math.IsInf(d, 0) || math.IsNaN(d) {
		d = limit
	}
	return time.Duration(d)
}

// RememberFor is how long after a ban ends its level still counts.
func (p BanPolicy) RememberFor() time.Duration {
	if p.Remember > 0 {
		return p.Remember
	}
	return DefaultRemember
}

// BanInfo is one ban in force.
type BanInfo struct {
	Key   string    `json:"key"`
	Until time.Time `json:"until"`
	// Level counts the bans this key earned while its record lasted
	// (1 = first); manual bans keep the level they found.
	Level int `json:"level"`
	// Reason is the ban policy that earned it, or the reason given by hand.
	Reason string `json:"reason"`
}

// OpKind is what an Op does.
type OpKind uint8

const (
	OpBanned OpKind = iota // is Key banned?
	OpAllow                // charge Key's rate limit
	OpPeek                 // read Key's rate limit without charging
	OpStrike               // record an offence by Key under Policy
)

// Op is one charge or check of a request, for Apply.
type Op struct {
	Kind   OpKind
	Key    string
	Limit  Limit      // OpAllow, OpPeek
	Policy *BanPolicy // OpStrike
}

// Outcome is what one Op found.
type Outcome struct {
	Result Result    // OpAllow, OpPeek
	Banned bool      // OpBanned, OpStrike
	Until  time.Time // OpBanned, OpStrike: the ban's end
}

// ErrUnavailable marks an answer the shared store could not give. It comes
// wrapped in an *UnavailableError.
var ErrUnavailable = errors.New("state store unavailable")

// UnavailableError says the shared store could not answer. The values
// returned alongside it are the local fallback's answer (this replica's own
// counters and the bans it knows): a rule that fails open uses them, a rule
// that fails closed answers 503 unavailable. Ignoring the values and
// treating every error as a refusal is therefore the fail-closed behaviour.
type UnavailableError struct {
	Op  string
	Err error // the cause; nil when the circuit was already open
	// Fallback is true when the values returned are the local fallback's.
	Fallback bool
}

func (e *UnavailableError) Error() string {
	cause := "circuit open after an earlier failure"
	if e.Err != nil {
		cause = e.Err.Error()
	}
	if e.Fallback {
		return fmt.Sprintf("state %s: shared store unavailable (%s); answered from local fallback", e.Op, cause)
	}
	return fmt.Sprintf("state %s: shared store unavailable (%s)", e.Op, cause)
}

func (e *UnavailableError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.Err}
}

// FailMode is what a rule does when the shared store cannot answer.
type FailMode uint8

const (
	// FailClosed refuses the request with 503 unavailable: a limit that
	// cannot be checked is not assumed to be met. The default.
	FailClosed FailMode = iota
	// FailOpen answers from the local fallback (this replica's counters and
	// known bans), so the service stays up with per-replica limits.
	FailOpen
)

func (m FailMode) String() string {
	if m == FailOpen {
		return "open"
	}
	return "closed"
}

// ParseFailMode reads the policy's on_error value.
func ParseFailMode(s string) (FailMode, error) {
	switch s {
	case "", "closed":
		return FailClosed, nil
	case "open":
		return FailOpen, nil
	}
	return FailClosed, fmt.Errorf("on_error must be open or closed, got %q", s)
}

// Resolve turns a store error into what the caller does under mode m: use
// the returned answer (err nil, degraded telling whether it came from the
// local fallback), or refuse with the returned error (503 for an
// unavailable store).
func (m FailMode) Resolve(err error) (degraded bool, refuse error) {
	if err == nil {
		return false, nil
	}
	var ue *UnavailableError
	if m == FailOpen && errors.As(err, &ue) && ue.Fallback {
		return true, nil
	}
	return false, err
}

var errNoPolicy = errors.New("state: a strike needs a ban policy")

func errShortOut(ops, out int) error {
	return fmt.Errorf("state: %d operations but room for %d outcomes", ops, out)
}

func errOpKind(k OpKind) error { return fmt.Errorf("state: unknown operation kind %d", k) }
