// Package policy compiles a config into an immutable Policy and decides
// requests against it. Compile does every piece of work that can be done
// ahead of time; Decide is pure: it reads the canonical request, the compiled
// policy and the time passed in, and does no I/O.
package policy

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/challenge"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/match/bot"
	"github.com/warden-gateway/warden/internal/match/ipmatch"
	"github.com/warden-gateway/warden/internal/match/pathmatch"
)

// Policy is a compiled policy. It is immutable and safe for concurrent use.
type Policy struct {
	rules       []rule
	index       pathmatch.Index
	defaultDeny bool
	identity    identity.Chain
	// Canonical holds the options requests are made canonical with.
	Canonical canonical.Options
	// Source is the config file the policy came from.
	Source string
	// Extras are the parts other stages compile from the same config
	// (handlers, WAF, limits); the gateway reads them.
	geo      geoSources
	starters []func(context.Context)
	primers  []func(context.Context) error
	// identityHeaders are set by a trusted upstream authenticator.
	identityHeaders []string
	// bans and rate limits: the policy's effects (effects.go).
	bans        []Ban
	rateLimited bool
	challenger  *challenge.Challenger
	bots        *bot.Identifier
	// scratch recycles the per-request evalCtx. Conditions receive it
	// through an interface, so the compiler cannot keep it on Decide's
	// stack; without the pool every decision would allocate one.
	scratch sync.Pool
}

// Identity returns the authenticator chain, for the gateway's upstream
// identity headers.
func (p *Policy) Identity() identity.Chain { return p.identity }

// RuleCount is the number of compiled rules.
func (p *Policy) RuleCount() int { return len(p.rules) }

type rule struct {
	name   string
	line   int
	action decision.Action
	// gate is a rule with require and no action: a caller who passes goes
	// on to the next rule.
	gate    bool
	status  int
	code    decision.ReasonCode
	reason  string
	paths   []pathmatch.Pattern
	methods []string
	hosts   []hostPattern
	ip      *ipmatch.Set
	ipSrc   string
	notIP   *ipmatch.Set
	notSrc  string
	exts    []string
	conds   []cond
	require *requirement
	// needsIdentity is set when matching or gating needs the caller.
	needsIdentity bool
	// report: the rule logs what it would have refused and never decides.
	report bool
	// rate is the rule's rate limit, charged whenever the rule matches.
	rate *RateLimit
	// difficulty is a challenge rule's proof of work.
	difficulty int
}

// cond is a matcher family beyond the built-in ones: user agent, referer,
// geo, expressions. Each lives with its family and is adapted here.
type cond interface {
	match(ctx *evalCtx) bool
	describe() string
}

type hostPattern struct {
	suffix string // "*.example.com" → ".example.com"
	exact  string
}

func (h hostPattern) match(host string) bool {
	if h.suffix != "" {
		return strings.HasSuffix(host, h.suffix) && len(host) > len(h.suffix)
	}
	return host == h.exact
}

// evalCtx is the per-request scratch state of one evaluation. Decide takes
// it from Policy.scratch and clears it before putting it back.
type evalCtx struct {
	req    *canonical.Request
	now    time.Time
	p      *Policy
	idDone bool
	id     identity.Result
	// would is the first report-only rule that would have refused.
	would decision.Would
	// challenge is the state of the last challenge rule looked at.
	challenge string
	// geo memo
	geoDone bool
	country string
	asn     uint32
}

func (c *evalCtx) identity() *identity.Result {
	if !c.idDone {
		c.id = c.p.identity.Authenticate(c.req, c.now)
		c.idDone = true
	}
	return &c.id
}

// miss says which matcher of a rule did not match: a kind, and for
// conditions their index. It is what a trace records instead of a sentence,
// so that recording costs no allocation; Steps turns it into words.
type miss struct {
	kind missKind
	cond int16
}

type missKind uint8

const (
	matched missKind = iota
	missPath
	missMethod
	missHost
	missExt
	missIP
	missNotIP
	missCond
)

func (r *rule) matches(ctx *evalCtx) miss {
	req := ctx.req
	if len(r.paths) > 0 {
		ok := false
		for i := range r.paths {
			if r.paths[i].Match(req.Path, req.LowerPath) {
				ok = true
				break
			}
		}
		if !ok {
			return miss{kind: missPath}
		}
	}
	if len(r.methods) > 0 && !slices.Contains(r.methods, req.Method) {
		return miss{kind: missMethod}
	}
	if len(r.hosts) > 0 {
		ok := false
		for _, h := range r.hosts {
			if h.match(req.Host) {
				ok = true
				break
			}
		}
		if !ok {
			return miss{kind: missHost}
		}
	}
	if len(r.exts) > 0 && !pathmatch.HasExtension(req.LowerPath, r.exts, r.action != decision.Allow || r.require != nil) {
		return miss{kind: missExt}
	}
	if r.ip != nil && !r.ip.Contains(req.ClientIP) {
		return miss{kind: missIP}
	}
	if r.notIP != nil && r.notIP.Contains(req.ClientIP) {
		return miss{kind: missNotIP}
	}
	for i, c := range r.conds {
		if !c.match(ctx) {
			return miss{kind: missCond, cond: int16(i)}
		}
	}
	return miss{}
}

// appendWhy appends the sentence for a miss, built only when a trace is
// shown.
func (r *rule) appendWhy(b []byte, m miss, req *canonical.Request) []byte {
	switch m.kind {
	case missPath:
		return append(b, "path does not match"...)
	case missMethod:
		return append(append(append(b, "method "...), req.Method...), " not listed"...)
	case missHost:
		return append(append(append(b, "host "...), req.Host...), " not listed"...)
	case missExt:
		return append(b, "extension not listed"...)
	case missIP:
		b = appendAddr(append(b, "client "...), req.ClientIP)
		return append(append(b, " not in "...), r.ipSrc...)
	case missNotIP:
		b = appendAddr(append(b, "client "...), req.ClientIP)
		return append(append(b, " is in "...), r.notSrc...)
	case missCond:
		return append(append(b, r.conds[m.cond].describe()...), " does not match"...)
	}
	return b
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, "(none)"...)
	}
	return a.AppendTo(b)
}
