package policy

import (
	"errors"
	"strings"
	"time"
	"unsafe"

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
func (p *Policy) Decide(req *canonical.Request, now time.Time, tr *decision.Trace) decision.Decision {
	if tr == nil {
		return p.DecideTrail(req, now, nil, nil)
	}
	var trail Trail
	d := p.DecideTrail(req, now, nil, &trail)
	tr.Steps = append(tr.Steps, p.Steps(&trail, req, &d)...)
	return d
}

// Trail is the compact record of one evaluation: which rules were looked
// at, and why each did or did not decide, as numbers. Recording it costs no
// allocation for up to len(buf) rules, so every decision can carry the
// trail of exactly the evaluation that made it; Steps puts it into words
// only when someone reads it (a log line, explain).
type Trail struct {
	buf   [24]trailStep
	steps []trailStep
}

type trailStep struct {
	rule int32 // index in Policy.rules; -1 for the default
	miss miss
	hit  hitKind
	// would is what a report-only rule would have refused with.
	would decision.ReasonCode
}

type hitKind uint8

const (
	notHit      hitKind = iota
	hitRefused          // a requirement refused
	hitGatePass         // a gate's requirement met; evaluation goes on
	hitUnknown          // a deny that turned on the caller, who is not known
	hitDecides          // the rule's action applies
	hitDefault          // no rule decided
	hitReport           // a report-only rule would have refused
	hitCleared          // a challenge rule found a valid clearance
)

func (t *Trail) add(s trailStep) {
	if t == nil {
		return
	}
	if t.steps == nil {
		t.steps = t.buf[:0]
	}
	t.steps = append(t.steps, s)
}

// Reset empties the trail for reuse.
func (t *Trail) Reset() { t.steps = t.buf[:0] }

// Len is the number of rules looked at.
func (t *Trail) Len() int { return len(t.steps) }

// Steps puts a trail into words: d is the decision the evaluation returned
// (its reason is the note of a refusing step), req the request judged.
func (p *Policy) Steps(t *Trail, req *canonical.Request, d *decision.Decision) []decision.Step {
	out, _ := p.AppendSteps(make([]decision.Step, 0, len(t.steps)), nil, t, req, d)
	return out
}

// AppendSteps is Steps appending to dst, with the notes it has to compose
// written into notes (both returned grown): the decision log reuses both
// and so puts a trail into words without allocating (issue 17). The notes
// share notes' bytes, so they are good only while the caller does not
// write into notes again; Steps passes a fresh buffer.
func (p *Policy) AppendSteps(dst []decision.Step, notes []byte, t *Trail, req *canonical.Request, d *decision.Decision) ([]decision.Step, []byte) {
	for _, s := range t.steps {
		if s.rule < 0 {
			note := "no rule decided; default is allow"
			if p.defaultDeny {
				note = "no rule decided; default is deny"
			}
			dst = append(dst, decision.Step{Rule: "(default)", Matched: true, Note: note})
			continue
		}
		r := &p.rules[s.rule]
		st := decision.Step{Rule: r.name, Line: r.line, Matched: s.hit != notHit}
		start := len(notes)
		composed := true
		switch s.hit {
		case notHit:
			notes = r.appendWhy(notes, s.miss, req)
		case hitRefused:
			if r.action == decision.Challenge && r.require == nil {
				notes = append(notes, "decides: challenge ("...)
				notes = append(notes, d.ChallengeState...)
				notes = append(notes, ')')
			} else {
				notes = append(notes, "requirement not met: "...)
				notes = append(notes, d.Reason...)
			}
		case hitUnknown:
			notes = append(notes, "decides: deny, but the caller is not known: "...)
			notes = append(notes, d.Reason...)
		case hitDecides:
			notes = append(notes, "decides: "...)
			notes = append(notes, r.action.String()...)
		default:
			composed = false
			switch s.hit {
			case hitGatePass:
				st.Note = "requirement met; going on"
				if r.require == nil {
					st.Note = "charged against its rate limit; going on"
				}
			case hitReport:
				st.Note = wouldNote(s.would)
			case hitCleared:
				st.Note = "valid clearance; going on"
			}
		}
		if composed && len(notes) > start {
			st.Note = unsafe.String(&notes[start], len(notes)-start)
		}
		dst = append(dst, st)
	}
	return dst, notes
}

// Eval is what an evaluation records and is given beyond the request.
type Eval struct {
	// Known, when not nil, is taken as the caller instead of authenticating
	// the request's credentials: replay judges a recorded request as the
	// caller the log names, whose credentials it never saw.
	Known *identity.Result
	// Trail, when not nil, records the rules looked at.
	Trail *Trail
	// Charges, when not nil, receives the rate limits the request is
	// charged against; the caller applies them.
	Charges *Charges
}

// DecideTrail is Decide with the trail recorded into tr (nil: none) and
// the caller known (see Eval.Known).
func (p *Policy) DecideTrail(req *canonical.Request, now time.Time, known *identity.Result, tr *Trail) decision.Decision {
	return p.Evaluate(req, now, &Eval{Known: known, Trail: tr})
}

// Evaluate is Decide with what ev asks for.
func (p *Policy) Evaluate(req *canonical.Request, now time.Time, ev *Eval) (d decision.Decision) {
	var known *identity.Result
	var tr *Trail
	var charges *Charges
	if ev != nil {
		known, tr, charges = ev.Known, ev.Trail, ev.Charges
	}
	ctx, _ := p.scratch.Get().(*evalCtx)
	if ctx == nil {
		ctx = new(evalCtx)
	}
	*ctx = evalCtx{req: req, now: now, p: p}
	if known != nil {
		ctx.id, ctx.idDone = *known, true
	}
	defer p.releaseCtx(ctx)
	defer func() {
		// The caller is handed on only when a rule asked who it is, so a
		// public path never pays for (or leaks) credential checks.
		if ctx.idDone {
			d.Caller = ctx.id.Principal
			d.Credentials = credentialsOf(&ctx.id)
		}
		if ctx.would.Code != "" {
			d.Would = ctx.would
		}
		if ctx.challenge != "" && d.ChallengeState == "" {
			d.ChallengeState = ctx.challenge
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
		if m := r.matches(ctx); m.kind != matched {
			tr.add(trailStep{rule: int32(next), miss: m})
			continue
		}
		if r.rate != nil {
			charges.add(r.rate)
		}
		if r.report {
			if code := r.wouldRefuse(ctx); code != "" {
				if ctx.would.Code == "" {
					ctx.would = decision.Would{Rule: r.name, Line: r.line, Code: code}
				}
				tr.add(trailStep{rule: int32(next), hit: hitReport, would: code})
			} else {
				tr.add(trailStep{rule: int32(next), hit: hitGatePass})
			}
			continue
		}
		if r.require != nil {
			if d, refused := r.require.check(ctx, r); refused {
				tr.add(trailStep{rule: int32(next), hit: hitRefused})
				return d
			}
		}
		if r.gate {
			tr.add(trailStep{rule: int32(next), hit: hitGatePass})
			continue
		}
		if r.action == decision.Challenge {
			d, state, challenged := r.checkChallenge(ctx)
			ctx.challenge = state
			if challenged {
				tr.add(trailStep{rule: int32(next), hit: hitRefused})
				return d
			}
			tr.add(trailStep{rule: int32(next), hit: hitCleared})
			continue
		}
		if r.action == decision.Deny && r.needsIdentity {
			// A deny that turned on who is calling (an expression on the
			// principal, an authenticated matcher) must not answer 403 to
			// a caller it could not identify: signing in, or fixing the
			// credentials, may change the answer, so that is a 401.
			if d, refused := unknownCaller(ctx, r); refused {
				tr.add(trailStep{rule: int32(next), hit: hitUnknown})
				return d
			}
		}
		tr.add(trailStep{rule: int32(next), hit: hitDecides})
		return r.decision()
	}
	tr.add(trailStep{rule: -1, hit: hitDefault})
	if p.defaultDeny {
		return decision.Decision{Action: decision.Deny, Code: decision.PathForbidden, Status: 403,
			Reason: "no rule allows this request", Rule: "(default)"}
	}
	return decision.Decision{Action: decision.Allow, Rule: "(default)"}
}

// wouldRefuse is the code a report-only rule would refuse a request it
// matched with ("" when it would let it pass).
func (r *rule) wouldRefuse(ctx *evalCtx) decision.ReasonCode {
	if r.require != nil {
		if d, refused := r.require.check(ctx, r); refused {
			return d.Code
		}
		if r.gate || r.action == decision.Allow {
			return ""
		}
	}
	if r.action == decision.Deny && r.needsIdentity {
		if d, refused := unknownCaller(ctx, r); refused {
			return d.Code
		}
	}
	if r.action == decision.Allow {
		return ""
	}
	return r.code
}

// credentialsOf says what became of the caller's credentials, for the
// decision record.
func credentialsOf(res *identity.Result) decision.Credentials {
	switch {
	case res.Err != nil && errors.Is(res.Err, identity.ErrUnavailable):
		return decision.CredentialsUnavailable
	case res.Err != nil:
		return decision.CredentialsInvalid
	case res.Principal != nil:
		return decision.CredentialsValid
	}
	return decision.CredentialsNone
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
	clientCert    bool
}

// check decides the 401/403 line: no credentials → 401 unauthenticated; bad
// credentials → 401 invalid_credentials; a known caller without the right
// role or scope → 403 role_required, since signing in again will not help.
func (q *requirement) check(ctx *evalCtx, r *rule) (decision.Decision, bool) {
	if q.clientCert {
		if d, refused := noClientCert(ctx, r); refused {
			return d, true
		}
	}
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
		d.WWWAuthenticate = strings.Join(chain.Challenges(res.By, bearerGiven(ctx.req)), ", ")
		return d, true
	}
	if res.Principal == nil {
		d := refusal(r, decision.Unauthenticated, "sign in to access this resource")
		d.WWWAuthenticate = strings.Join(chain.Challenges(nil, false), ", ")
		return d, true
	}
	return decision.Decision{}, false
}

// bearerGiven reports whether the request's credentials came as a bearer
// token with a JWT's three segments ("Authorization: Bearer a.b.c"): one the
// client meant as a token, even when it is too broken to be read as one.
func bearerGiven(req *canonical.Request) bool {
	v := req.Header.Get("Authorization")
	return len(v) > 7 && strings.EqualFold(v[:7], "bearer ") && strings.Count(v[7:], ".") == 2
}

// noClientCert refuses a caller a rule wants identified by a TLS client
// certificate when there is none, or it is not accepted; the reason says
// which.
func noClientCert(ctx *evalCtx, r *rule) (decision.Decision, bool) {
	res := ctx.identity()
	var ce *identity.CertError
	switch {
	case len(ctx.req.ClientCerts) == 0:
		return refusal(r, decision.ClientCertificateRequired, "no client certificate was presented"), true
	case errors.As(res.Err, &ce):
		d := refusal(r, decision.ClientCertificateRequired, ce.Reason)
		d.Detail = ce.Error()
		return d, true
	case res.Principal == nil || res.Principal.Method != identity.MethodClientCert:
		return refusal(r, decision.ClientCertificateRequired, "the client certificate was not accepted"), true
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
