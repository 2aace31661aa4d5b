package policy

import (
	"fmt"
	"strings"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/state"
)

// The policy's effects: what a decision charges against state that lives
// between requests (rate-limit counters, strikes towards a ban). Decide
// stays pure: it says which limits the request is charged against, and the
// engine applies the charges to its store and refuses when one is over.

// RateLimit is a rule's compiled rate limit.
type RateLimit struct {
	Rule    string
	Line    int
	Limit   state.Limit
	Key     state.KeySpec
	OnError state.FailMode
	// KeyPrefix is the rule's part of every counter key (state.RuleKey's
	// "rule|"), PolicyHeader the RateLimit-Policy value and SFName the
	// rule as the sf-string RateLimit starts with: computed once here
	// rather than for every request.
	KeyPrefix    string
	PolicyHeader []string
	SFName       string
}

// Ban is a compiled ban policy.
type Ban struct {
	Policy state.BanPolicy
	Line   int
	Key    state.KeySpec
	codes  []decision.ReasonCode
	paths  []string
}

// Counts reports whether a refusal with code on path counts towards the
// ban.
func (b *Ban) Counts(code decision.ReasonCode, path string) bool {
	found := false
	for _, c := range b.codes {
		if c == code {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	if len(b.paths) == 0 {
		return true
	}
	for _, p := range b.paths {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// Charges are the rate limits a request was charged against, in the order
// the rules were looked at. Recording them costs no allocation for a few.
type Charges struct {
	buf  [4]*RateLimit
	list []*RateLimit
}

func (c *Charges) add(r *RateLimit) {
	if c == nil {
		return
	}
	if c.list == nil {
		c.list = c.buf[:0]
	}
	c.list = append(c.list, r)
}

// List returns the charged limits.
func (c *Charges) List() []*RateLimit { return c.list }

// Bans are the policy's ban policies.
func (p *Policy) Bans() []Ban { return p.bans }

// HasEffects reports whether the policy needs a state store.
func (p *Policy) HasEffects() bool { return len(p.bans) > 0 || p.rateLimited }

func (c *compiler) compileRateLimit(r *rule, rc *config.Rule) {
	rl := rc.RateLimit
	if rl == nil {
		return
	}
	spec := &RateLimit{Rule: r.name, Line: r.line, Limit: state.Limit{Rate: rl.Requests, Per: rl.Per.Duration, Burst: rl.Burst}}
	if err := spec.Limit.Validate(); err != nil {
		c.errf(rl.Pos, "for example rate_limit: { requests: 100, per: 1m, burst: 20 }", "rule %q: %v", r.name, err)
	}
	key, err := state.ParseKeySpec(rl.Key.Value)
	if err != nil {
		c.errf(rl.Key.Pos, "", "rule %q: rate_limit %v", r.name, err)
	}
	spec.Key = key
	onErr := rl.OnError
	if onErr.Value == "" && c.cfg.State != nil {
		onErr = c.cfg.State.OnError
	}
	if spec.OnError, err = state.ParseFailMode(onErr.Value); err != nil {
		c.errf(onErr.Pos, "", "rule %q: %v", r.name, err)
	}
	spec.KeyPrefix = state.RuleKey(r.name, "")
	spec.PolicyHeader = []string{state.PolicyHeader(r.name, spec.Limit)}
	spec.SFName = state.SFName(r.name)
	r.rate = spec
	c.p.rateLimited = true
}

func (c *compiler) compileBans() {
	names := map[string]int{}
	for _, b := range c.cfg.Bans {
		name := b.Name.Value
		if name == "" {
			c.errf(b.Pos, "give each ban policy a name", "ban: no name")
		} else if line, dup := names[name]; dup {
			c.errf(b.Name.Pos, "", "ban %q already defined at line %d", name, line)
		}
		names[name] = b.Pos.Line
		pol := state.BanPolicy{Name: name, After: b.After, Within: b.Within.Duration, BanFor: b.BanFor.Duration}
		if b.Escalate.Value != "" {
			f, max, err := state.ParseEscalation(b.Escalate.Value)
			if err != nil {
				c.errf(b.Escalate.Pos, `for example escalate: "2x, max 24h"`, "ban %q: %v", name, err)
			}
			pol.Factor, pol.MaxBan = f, max
		}
		if err := pol.Validate(); err != nil {
			c.errf(b.Pos, "for example { name: brute-force, count: [invalid_credentials], after: 10, within: 1m, ban_for: 10m }", "%v", err)
		}
		key, err := state.ParseKeySpec(b.Key.Value)
		if err != nil {
			c.errf(b.Key.Pos, "", "ban %q: %v", name, err)
		} else if key.Kind != state.KeyIP && key.Kind != state.KeyIPPrefix {
			c.errf(b.Key.Pos, "", "ban %q: a ban is by ip or ip_prefix, not %s: it is checked before anyone is identified", name, key)
		}
		spec := Ban{Policy: pol, Line: b.Pos.Line, Key: key}
		if len(b.Count) == 0 {
			c.errf(b.Pos, "for example count: [invalid_credentials, waf_blocked]", "ban %q: no refusal codes to count", name)
		}
		for _, s := range b.Count {
			code := decision.ReasonCode(s.Value)
			switch {
			case !code.Known():
				c.errf(s.Pos, "see the reason codes in the README", "ban %q: unknown code %q", name, s.Value)
			case code == decision.Banned:
				c.errf(s.Pos, "", "ban %q: counting banned refusals would extend a ban forever", name)
			}
			spec.codes = append(spec.codes, code)
		}
		for _, p := range b.Paths {
			if !strings.HasPrefix(p.Value, "/") {
				c.errf(p.Pos, "", "ban %q: path %q must start with /", name, p.Value)
			}
			spec.paths = append(spec.paths, p.Value)
		}
		c.p.bans = append(c.p.bans, spec)
	}
	if st := c.cfg.State; st != nil {
		switch st.Store.Value {
		case "", "memory":
		case "redis":
			if st.Redis == nil || st.Redis.Addr.Value == "" {
				c.errf(st.Pos, "for example redis: { addr: 127.0.0.1:6379 }", "state.store is redis but no redis.addr is given")
			}
		default:
			c.errf(st.Store.Pos, "", "state.store must be memory or redis, not %q", st.Store.Value)
		}
		if _, err := state.ParseFailMode(st.OnError.Value); err != nil {
			c.errf(st.OnError.Pos, "", "state: %v", err)
		}
		if st.MaxEntries < 0 {
			c.errf(st.Pos, "", "state.max_entries must not be negative")
		}
	}
}

// wouldNote is the trace's note for a report-only rule.
func wouldNote(code decision.ReasonCode) string {
	return fmt.Sprintf("report only: would refuse with %s; going on", code)
}
