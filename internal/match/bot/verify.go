package bot

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"
)

// Outcome of a crawler check.
type Outcome uint8

const (
	// NotClaimed: the User-Agent names no known crawler.
	NotClaimed Outcome = iota
	// Verified: the claim holds (PTR in the crawler's domains, forward
	// lookup returns the client's address).
	Verified
	// NoPTR: the address has no PTR name (NXDOMAIN or empty).
	NoPTR
	// WrongDomain: no PTR name is in the crawler's domains.
	WrongDomain
	// ForwardMismatch: a PTR name is in the domains, but its A/AAAA records
	// do not contain the address: the PTR was set by whoever holds the
	// address block, not by the crawler (a spoofed PTR).
	ForwardMismatch
	// LookupFailed: a DNS query timed out or failed; the claim is not
	// believed (fail closed) and the result is cached only briefly.
	LookupFailed
)

var outcomeCode = [...]string{
	NotClaimed:      "not_claimed",
	Verified:        "verified",
	NoPTR:           "no_ptr",
	WrongDomain:     "ptr_wrong_domain",
	ForwardMismatch: "forward_mismatch",
	LookupFailed:    "lookup_failed",
}

func (o Outcome) String() string {
	if int(o) < len(outcomeCode) {
		return outcomeCode[o]
	}
	return "unknown"
}

// Result is the verdict on one request's crawler claim.
type Result struct {
	Outcome Outcome
	// Crawler is the claimed crawler's name ("" when NotClaimed).
	Crawler string
	// Host is the verified PTR name (when Verified or ForwardMismatch).
	Host string
	// Cached says the verdict came from the cache.
	Cached bool
}

// Verified reports whether the claim holds.
func (r Result) Verified() bool { return r.Outcome == Verified }

// Config configures a Verifier.
type Config struct {
	Crawlers []Crawler // default DefaultCrawlers()
	Resolver Resolver
	// PositiveTTL is how long a verified (crawler, address) is believed
	// without asking again; NegativeTTL how long a refuted one stays
	// refuted; FailureTTL how long a failed lookup is not retried (short,
	// so a DNS hiccup does not lock a crawler out, long enough that a flood
	// of fake "Googlebot" requests does not become a flood of DNS queries).
	PositiveTTL, NegativeTTL, FailureTTL time.Duration
	// MaxEntries bounds the cache.
	MaxEntries int
	// MaxInflight bounds the lookups running at once. A flood of fake
	// "Googlebot" requests from many addresses would otherwise become as
	// many DNS queries; past the bound a claim is not believed
	// (LookupFailed, fail closed) until lookups drain.
	MaxInflight int
}

// Verifier checks crawler claims, with a bounded cache of verdicts.
type Verifier struct {
	cfg      Config
	mu       sync.Mutex
	cache    map[cacheKey]cacheEntry
	inflight map[cacheKey]*call
}

type cacheKey struct {
	crawler int
	ip      netip.Addr
}

type cacheEntry struct {
	res     Result
	expires time.Time
}

type call struct {
	done chan struct{}
	res  Result
}

// NewVerifier returns a verifier.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Resolver == nil {
		return nil, errors.New("bot: no resolver (set a DNS server)")
	}
	if cfg.Crawlers == nil {
		cfg.Crawlers = DefaultCrawlers()
	}
	if cfg.PositiveTTL <= 0 {
		cfg.PositiveTTL = 6 * time.Hour
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = time.Hour
	}
	if cfg.FailureTTL <= 0 {
		cfg.FailureTTL = 30 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	if cfg.MaxInflight <= 0 {
		cfg.MaxInflight = 64
	}
	return &Verifier{cfg: cfg, cache: map[cacheKey]cacheEntry{}, inflight: map[cacheKey]*call{}}, nil
}

// Claimed returns the name of the crawler the User-Agent claims to be, or "".
func (v *Verifier) Claimed(userAgent string) string {
	if i := claimed(v.cfg.Crawlers, userAgent); i >= 0 {
		return v.cfg.Crawlers[i].Name
	}
	return ""
}

// Verify checks the crawler claim of a request from ip with userAgent at
// now. A User-Agent that claims no crawler costs no lookup. Concurrent
// checks of the same (crawler, address) share one lookup.
func (v *Verifier) Verify(ctx context.Context, userAgent string, ip netip.Addr, now time.Time) Result {
	ci := claimed(v.cfg.Crawlers, userAgent)
	if ci < 0 {
		return Result{}
	}
	ip = ip.Unmap()
	key := cacheKey{ci, ip}
	v.mu.Lock()
	if e, ok := v.cache[key]; ok {
		if now.Before(e.expires) {
			v.mu.Unlock()
			e.res.Cached = true
			return e.res
		}
		delete(v.cache, key)
	}
	if c, ok := v.inflight[key]; ok {
		v.mu.Unlock()
		select {
		case <-c.done:
			return c.res
		case <-ctx.Done():
			return Result{Outcome: LookupFailed, Crawler: v.cfg.Crawlers[ci].Name}
		}
	}
	if len(v.inflight) >= v.cfg.MaxInflight {
		v.mu.Unlock()
		return Result{Outcome: LookupFailed, Crawler: v.cfg.Crawlers[ci].Name}
	}
	c := &call{done: make(chan struct{})}
	v.inflight[key] = c
	v.mu.Unlock()

	res := v.lookup(ctx, ci, ip)

	ttl := v.cfg.NegativeTTL
	switch res.Outcome {
	case Verified:
		ttl = v.cfg.PositiveTTL
	case LookupFailed:
		ttl = v.cfg.FailureTTL
	}
	v.mu.Lock()
	v.store(key, cacheEntry{res: res, expires: now.Add(ttl)}, now)
	delete(v.inflight, key)
	c.res = res
	close(c.done)
	v.mu.Unlock()
	return res
}

// store adds an entry, making room first: expired entries go, and when none
// has expired an arbitrary one (Go's map order is random) is dropped. A
// dropped verdict is only a repeated lookup later, never a wrong answer.
func (v *Verifier) store(key cacheKey, e cacheEntry, now time.Time) {
	if len(v.cache) >= v.cfg.MaxEntries {
		scanned := 0
		for k, old := range v.cache {
			if !now.Before(old.expires) {
				delete(v.cache, k)
			}
			if scanned++; scanned >= 64 {
				break
			}
		}
		for k := range v.cache {
			if len(v.cache) < v.cfg.MaxEntries {
				break
			}
			delete(v.cache, k)
		}
	}
	v.cache[key] = e
}

// Len is the number of cached verdicts.
func (v *Verifier) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.cache)
}

func (v *Verifier) lookup(ctx context.Context, ci int, ip netip.Addr) Result {
	cr := &v.cfg.Crawlers[ci]
	res := Result{Crawler: cr.Name}
	names, err := v.cfg.Resolver.LookupPTR(ctx, ip)
	if errors.Is(err, ErrNotFound) {
		res.Outcome = NoPTR
		return res
	}
	if err != nil {
		res.Outcome = LookupFailed
		return res
	}
	res.Outcome = WrongDomain
	for _, name := range names {
		if !inDomains(name, cr.Domains) {
			continue
		}
		addrs, err := v.cfg.Resolver.LookupAddrs(ctx, name, ip.Is6())
		if err != nil && !errors.Is(err, ErrNotFound) {
			res.Outcome = LookupFailed
			return res
		}
		for _, a := range addrs {
			if a.Unmap() == ip {
				res.Outcome, res.Host = Verified, name
				return res
			}
		}
		res.Outcome, res.Host = ForwardMismatch, name
	}
	return res
}
