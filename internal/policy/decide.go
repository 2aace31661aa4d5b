package policy

import (
	"errors"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/match/pathmatch"
)

// Decide evaluates the request. Rules are tried in file order; the first
// rule that decides wins; when none does, the policy default applies. tr may
// be nil; when given, every rule looked at is recorded.
//
// Decide does no I/O and reads no clock: the same request, policy and now
// always give the same Decision, which is what lets `explain` and `replay`
// answer for the gateway.
func (p *Policy) Decide(req *canonical.Request, now time.Time, tr *decision.Trace) (d decision.Decision) {
	ctx, _ := p.scratch.Get().(*evalCtx)
	if ctx == nil {
		ctx = new(evalCtx)
	}
	*ctx = evalCtx{req: req, now: now, p: p}
	defer p.releaseCtx(ctx)
	defer func() {
		// The caller is handed on only when a rule asked who it is, so a
		// public path never pays for (or leaks) credential checks.
		if ctx.idDone {
			d.Caller = ctx.id.Principal
		}
	}()
	var cand pathmatch.Candidates
	p.index.Lookup(req.Path, req.LowerPath, &cand)
	next := -1
	for {
		if cand.Overflow {
			next++
			if next >= len(p.rules) {
				break
			}
		} else if next = cand.Next(); next < 0 {
			break
		}
		r := &p.rules[next]
		var why string
		var whyp *string
		if tr != nil {
			whyp = &why
		}
		if !r.matches(ctx, whyp) {
			if tr != nil {
				tr.Add(decision.Step{Rule: r.name, Line: r.line, Matched: false, Note: why})
			}
			continue
		}
		if r.require != nil {
			if d, refused := r.require.check(ctx, r); refused {
				if tr != nil {
					tr.Add(decision.Step{Rule: r.name, Line: r.line, Matched: true, Note: "requirement not met: " + d.Reason})
				}
				return d
			}
			if r.gate {
				if tr != nil {
					tr.Add(decision.Step{Rule: r.name, Line: r.line, Matched: true, Note: "requirement met; going on"})
				}
				continue
			}
		}
		if r.action == decision.Deny && r.needsIdentity {
			// A deny that turned on who is calling (an expression on the
			// principal, an authenticated matcher) must not answer 403 to
			// a caller it could not identify: signing in, or fixing the
			// credentials, may change the answer, so that is a 401.
			if d, refused := unknownCaller(ctx, r); refused {
				if tr != nil {
					tr.Add(decision.Step{Rule: r.name, Line: r.line, Matched: true, Note: "decides: deny, but the caller is not known: " + d.Reason})
				}
				return d
			}
		}
		if tr != nil {
			tr.Add(decision.Step{Rule: r.name, Line: r.line, Matched: true, Note: "decides: " + r.action.String()})
		}
		return r.decision()
	}
	if p.defaultDeny {
		if tr != nil {
			tr.Add(decision.Step{Rule: "(default)", Matched: true, Note: "no rule decided; default is deny"})
		}
		return decision.Decision{Action: decision.Deny, Code: decision.PathForbidden, Status: 403,
			Reason: "no rule allows this request", Rule: "(default)"}
	}
	if tr != nil {
		tr.Add(decision.Step{Rule: "(default)", Matched: true, Note: "no rule decided; default is allow"})
	}
	return decision.Decision{Action: decision.Allow, Rule: "(default)"}
}

// releaseCtx clears what the evaluation memoized (the request, the caller)
// so the pool does not keep them alive, and recycles the value.
func (p *Policy) releaseCtx(ctx *evalCtx) {
	*ctx = evalCtx{}
	p.scratch.Put(ctx)
}

func (r *rule) decision() decision.Decision {
	return decision.Decision{Action: r.action, Code: r.code, Status: r.status, Reason: r.reason, Rule: r.name, RuleLine: r.line}
}

// requirement is a compiled `require` block.
type requirement struct {
	authenticated bool
	rolesAny      []string
	rolesAll      []string
	scopesAny     []string
	scopesAll     []string
}

// check decides the 401/403 line: no credentials → 401 unauthenticated; bad
// credentials → 401 invalid_credentials; a known caller without the right
// role or scope → 403 role_required, since signing in again will not help.
func (q *requirement) check(ctx *evalCtx, r *rule) (decision.Decision, bool) {
	if d, refused := unknownCaller(ctx, r); refused {
		return d, true
	}
	pr := ctx.identity().Principal
	for _, role := range q.rolesAll {
		if !pr.HasRole(role) {
			return refusal(r, decision.RoleRequired, "account lacks role: "+role), true
		}
	}
	if len(q.rolesAny) > 0 {
		ok := false
		for _, role := range q.rolesAny {
			if pr.HasRole(role) {
				ok = true
				break
			}
		}
		if !ok {
			if len(q.rolesAny) == 1 {
				return refusal(r, decision.RoleRequired, "account lacks role: "+q.rolesAny[0]), true
			}
			return refusal(r, decision.RoleRequired, "account lacks any of the roles: "+strings.Join(q.rolesAny, ", ")), true
		}
	}
	for _, s := range q.scopesAll {
		if !pr.HasScope(s) {
			return refusal(r, decision.RoleRequired, "token lacks scope: "+s), true
		}
	}
	if len(q.scopesAny) > 0 {
		ok := false
		for _, s := range q.scopesAny {
			if pr.HasScope(s) {
				ok = true
				break
			}
		}
		if !ok {
			return refusal(r, decision.RoleRequired, "token lacks any of the scopes: "+strings.Join(q.scopesAny, ", ")), true
		}
	}
	return decision.Decision{}, false
}

// unknownCaller is the 401 side of the line: no credentials → 401
// unauthenticated; bad credentials → 401 invalid_credentials; credentials
// that cannot be checked right now → 503. It refuses nothing when the
// caller is known.
func unknownCaller(ctx *evalCtx, r *rule) (decision.Decision, bool) {
	res := ctx.identity()
	chain := ctx.p.identity
	if res.Err != nil {
		if errors.Is(res.Err, identity.ErrUnavailable) {
			d := refusal(r, decision.Unavailable, "credentials cannot be verified right now")
			d.Detail = res.Err.Error()
			d.RetryAfter = 30
			return d, true
		}
		d := refusal(r, decision.InvalidCredentials, "the credentials given are not valid")
		d.Detail = res.Err.Error()
		d.WWWAuthenticate = strings.Join(chain.Challenges(res.By), ", ")
		return d, true
	}
	if res.Principal == nil {
		d := refusal(r, decision.Unauthenticated, "sign in to access this resource")
		d.WWWAuthenticate = strings.Join(chain.Challenges(nil), ", ")
		return d, true
	}
	return decision.Decision{}, false
}

func refusal(r *rule, code decision.ReasonCode, reason string) decision.Decision {
	d := decision.Refuse(code, reason)
	d.Rule, d.RuleLine = r.name, r.line
	return d
}

// Principal resolves the caller for a request the way rules would, for
// handlers that pass identity upstream. It costs nothing when the policy has
// no authenticators.
func (p *Policy) Principal(req *canonical.Request, now time.Time) *identity.Principal {
	if len(p.identity) == 0 {
		return nil
	}
	return p.identity.Authenticate(req, now).Principal
}
