package engine

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/waf"
)

// Record is the decision log's one line per request: written by Log, read
// by replay (and by anyone who parses the log). Its JSON names are the log's
// field names; RecordAttrs writes exactly these fields, and a test holds the
// two together.
type Record struct {
	RequestID string `json:"request_id"`
	Front     string `json:"front,omitempty"`
	Method    string `json:"method"`
	Host      string `json:"host,omitempty"`
	// Target is the request target as the client sent it.
	Target string `json:"target,omitempty"`
	// Path is the canonical path; empty when the request had none.
	Path     string `json:"path,omitempty"`
	Query    string `json:"query,omitempty"`
	ClientIP string `json:"client_ip,omitempty"`
	Peer     string `json:"peer,omitempty"`
	// Headers are the request headers rules read and replay needs:
	// User-Agent, Referer, Origin, Accept, and a trusted proxy's forwarding
	// headers. Credentials never appear here.
	Headers map[string]string `json:"headers,omitempty"`
	// Dropped are header names removed before any rule ran.
	Dropped []string `json:"dropped_headers,omitempty"`
	// Principal, Roles, Scopes: the caller, when known.
	Principal string   `json:"principal,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	Scopes    []string `json:"scopes,omitempty"`
	// Credentials: none, valid, invalid or unavailable, when a rule asked.
	Credentials string `json:"credentials,omitempty"`
	// Challenge is what a challenge rule found: none, valid, failed: why.
	Challenge string `json:"challenge,omitempty"`
	// Bot is the verified bot ("crawler:googlebot", "web-bot-auth:URL"),
	// or why a claim to be one failed.
	Bot     string          `json:"bot,omitempty"`
	Stage   string          `json:"stage"`
	Action  string          `json:"action"`
	Code    string          `json:"code,omitempty"`
	Status  int             `json:"status,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Rule    string          `json:"rule,omitempty"`
	RuleAt  string          `json:"rule_at,omitempty"`
	Detail  string          `json:"detail,omitempty"`
	Handler string          `json:"handler,omitempty"`
	Trace   []decision.Step `json:"trace,omitempty"`
	WAF     *WAFRecord      `json:"waf,omitempty"`
	// WouldDeny names the first report-only rule that would have refused.
	WouldDeny *WouldRecord `json:"would_deny,omitempty"`
	// RateLimits are the counters the request was charged against.
	RateLimits []RateLimitState `json:"rate_limits,omitempty"`
	Bytes      int64            `json:"bytes,omitempty"`
}

// WouldRecord is what a report-only rule would have done.
type WouldRecord struct {
	Rule   string `json:"rule"`
	RuleAt string `json:"rule_at,omitempty"`
	Code   string `json:"code"`
}

// WAFRecord is what the WAF found, for the operator.
type WAFRecord struct {
	Score      int      `json:"score"`
	WouldBlock bool     `json:"would_block,omitempty"`
	Blocked    bool     `json:"blocked,omitempty"`
	RuleIDs    []int    `json:"rule_ids,omitempty"`
	Matches    []string `json:"matches,omitempty"`
}

// recordedHeaders are the headers a record keeps: the ones matchers read
// (user_agent, referer_not_in, origin_not_in), the one refusals are
// rendered by, and those a trusted proxy names the client with.
var recordedHeaders = []string{"User-Agent", "Referer", "Origin", "Accept"}

// Record makes the outcome's record.
func (o *Outcome) Record() Record { return o.record(nil) }

// recordScratch is what Log builds a record in, recycled: the headers map,
// the trace's steps and the bytes of the strings Record would concatenate
// (client address, rule_at, the trace's notes). A record made with one is only good until the scratch is
// reused, so only Log, which encodes it at once, uses one.
type recordScratch struct {
	line    []byte
	headers map[string]string
	strs    []byte
	steps   []decision.Step
}

// str is b[start:] as a string sharing b's bytes: valid while the scratch
// is not reused (and b is only ever appended to meanwhile).
func (s *recordScratch) str(start int) string {
	if len(s.strs) == start {
		return ""
	}
	return unsafe.String(&s.strs[start], len(s.strs)-start)
}

var scratches = sync.Pool{New: func() any {
	return &recordScratch{line: make([]byte, 0, 1024), headers: make(map[string]string, 8), strs: make([]byte, 0, 512), steps: make([]decision.Step, 0, 16)}
}}

func (o *Outcome) record(s *recordScratch) Record {
	d := &o.Decision
	rec := Record{
		RequestID: o.ID,
		Front:     o.Front,
		Stage:     o.Stage.String(),
		Action:    d.Action.String(),
		Code:      string(d.Code),
		Reason:    d.Reason,
		Rule:      d.Rule,
		Detail:    d.Detail,
		Handler:   o.Handler,
		Bytes:     o.Bytes,
	}
	if d.Code != "" {
		rec.Status = d.Status
		if rec.Status == 0 {
			rec.Status = d.Code.Status()
		}
	}
	if o.Status != 0 {
		rec.Status = o.Status
	}
	if d.RuleLine > 0 && o.Runtime != nil {
		if s != nil {
			start := len(s.strs)
			s.strs = append(s.strs, o.Runtime.Policy.Source...)
			s.strs = append(s.strs, ':')
			s.strs = strconv.AppendInt(s.strs, int64(d.RuleLine), 10)
			rec.RuleAt = s.str(start)
		} else {
			rec.RuleAt = o.Runtime.Policy.Source + ":" + strconv.Itoa(d.RuleLine)
		}
	}
	if s != nil {
		rec.Headers = s.headers // empty: encoded only when something was set
	}
	if w := o.Wire; w != nil {
		rec.Method, rec.Host, rec.Target, rec.Peer = w.Method, w.Host, w.Target, w.RemoteAddr
		for _, h := range recordedHeaders {
			if v := w.Header.Get(h); v != "" {
				rec.setHeader(h, v)
			}
		}
		if o.refusedHeader != "" {
			rec.setHeader(o.refusedHeader, w.Header.Get(o.refusedHeader))
		}
	}
	rec.Dropped = o.Dropped
	if o.HasRequest {
		req := &o.Request
		rec.Path, rec.Query = req.Path, req.RawQuery
		if s != nil {
			start := len(s.strs)
			s.strs = req.ClientIP.AppendTo(s.strs)
			rec.ClientIP = s.str(start)
			if !req.ClientIP.IsValid() {
				rec.ClientIP = "invalid IP" // what Addr.String says
			}
		} else {
			rec.ClientIP = req.ClientIP.String()
		}
		if req.PeerTrusted && o.Runtime != nil {
			headers := o.Runtime.Policy.Canonical.ClientIPHeaders
			if headers == nil {
				headers = canonical.DefaultClientIPHeaders
			}
			for _, h := range headers {
				if v := o.Wire.Header.Values(h); len(v) > 0 {
					rec.setHeader(h, joinValues(v))
				}
			}
		}
	}
	caller := o.Caller
	if caller == nil {
		caller = d.Caller
	}
	if caller != nil {
		rec.Principal, rec.Roles, rec.Scopes = caller.ID, caller.Roles, caller.Scopes
	}
	rec.Credentials = d.Credentials.String()
	rec.Challenge = d.ChallengeState
	if o.Bot.Verified() {
		rec.Bot = o.Request.VerifiedBot
	} else if o.Bot.Detail != "" {
		rec.Bot = "not verified: " + o.Bot.Detail
	}
	if o.Stage >= StagePolicy {
		if s != nil && o.Runtime != nil && o.Trail.Len() > 0 {
			// What Steps says, into the scratch's slice and bytes.
			d := o.Decision
			if o.Stage != StagePolicy {
				d = decision.Decision{}
			}
			s.steps, s.strs = o.Runtime.Policy.AppendSteps(s.steps[:0], s.strs, &o.Trail, &o.Request, &d)
			rec.Trace = s.steps
		} else {
			rec.Trace = o.Steps()
		}
	}
	if w := d.Would; w.Code != "" {
		rec.WouldDeny = &WouldRecord{Rule: w.Rule, Code: string(w.Code)}
		if o.Runtime != nil && w.Line > 0 {
			rec.WouldDeny.RuleAt = o.Runtime.Policy.Source + ":" + strconv.Itoa(w.Line)
		}
	}
	rec.RateLimits = o.RateLimits
	if o.WAFRan && (o.WAF.Inspected && (len(o.WAF.Matches) > 0 || o.WAF.TooLarge)) {
		v := &o.WAF
		rec.WAF = &WAFRecord{Score: v.Score, WouldBlock: v.WouldBlock, Blocked: v.Blocked, RuleIDs: v.RuleIDs(), Matches: wafLines(v.Matches)}
	}
	return rec
}

func (rec *Record) setHeader(name, value string) {
	if rec.Headers == nil {
		rec.Headers = make(map[string]string, 4)
	}
	rec.Headers[name] = value
}

func joinValues(v []string) string {
	if len(v) == 1 {
		return v[0]
	}
	out := v[0]
	for _, s := range v[1:] {
		out += ", " + s
	}
	return out
}

func wafLines(ms []waf.Match) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ErrorLog
	}
	return out
}

// ShouldLog reports whether the runtime's log settings ask for this
// outcome's record: refusals by default, everything with decisions: all,
// nothing with off. An allowed request the WAF found something in is logged
// too: that is the "would block" record of detect mode.
func (o *Outcome) ShouldLog() bool {
	rt := o.Runtime
	if rt == nil {
		return true
	}
	if rt.LogOff {
		return false
	}
	// A request that lost headers before the rules is logged too: the
	// upstream got less than was sent, and the operator should see why.
	return rt.LogAll || o.Refused() || len(o.Dropped) > 0 || o.Decision.Would.Code != "" || o.WAFRan && (len(o.WAF.Matches) > 0 || o.WAF.TooLarge)
}

// Log ends a request: every observer sees the outcome, and its record is
// written when the log settings ask for it. Front ends call it once per
// request, when the outcome is final.
func (e *Engine) Log(o *Outcome) {
	if !o.Now.IsZero() {
		o.Duration = e.Now().Sub(o.Now)
	}
	e.strike(o)
	for _, f := range e.observers {
		f(o)
	}
	if !o.ShouldLog() || !e.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	if lw, ok := e.log.Handler().(JSONLineHandler); ok {
		if w := lw.JSONLines(); w != nil {
			s := scratches.Get().(*recordScratch)
			s.strs = s.strs[:0]
			clear(s.headers)
			rec := o.record(s)
			s.line = rec.AppendJSON(s.line[:0], time.Now())
			w.Write(s.line)
			if cap(s.line) <= 64<<10 && cap(s.strs) <= 64<<10 && len(s.headers) <= 64 && cap(s.steps) <= 1024 { // a huge record's buffers are not kept
				scratches.Put(s)
			}
			return
		}
	}
	rec := o.Record()
	e.log.LogAttrs(context.Background(), slog.LevelInfo, "decision", rec.Attrs()...)
}

// JSONLineHandler is a slog.Handler that can take the decision log's JSON
// lines whole: JSONLines is the writer its JSON output goes to, or nil when
// it does not write JSON now (text format). Log then writes the line made
// by Record.AppendJSON there, one Write per record, instead of going
// through slog: the same bytes at a fraction of the cost (issue 17). The
// writer must accept concurrent Writes (obs.SwitchHandler's does).
type JSONLineHandler interface {
	slog.Handler
	JSONLines() io.Writer
}

// Attrs are the record's fields as log attributes, under their JSON names.
func (rec *Record) Attrs() []slog.Attr {
	a := make([]slog.Attr, 0, 24)
	str := func(k, v string) {
		if v != "" {
			a = append(a, slog.String(k, v))
		}
	}
	a = append(a, slog.String("request_id", rec.RequestID))
	str("front", rec.Front)
	a = append(a, slog.String("method", rec.Method))
	str("host", rec.Host)
	str("target", rec.Target)
	str("path", rec.Path)
	str("query", rec.Query)
	str("client_ip", rec.ClientIP)
	str("peer", rec.Peer)
	if len(rec.Headers) > 0 {
		a = append(a, slog.Any("headers", rec.Headers))
	}
	if len(rec.Dropped) > 0 {
		a = append(a, slog.Any("dropped_headers", rec.Dropped))
	}
	str("principal", rec.Principal)
	if len(rec.Roles) > 0 {
		a = append(a, slog.Any("roles", rec.Roles))
	}
	if len(rec.Scopes) > 0 {
		a = append(a, slog.Any("scopes", rec.Scopes))
	}
	str("credentials", rec.Credentials)
	str("challenge", rec.Challenge)
	str("bot", rec.Bot)
	a = append(a, slog.String("stage", rec.Stage), slog.String("action", rec.Action))
	str("code", rec.Code)
	if rec.Status != 0 {
		a = append(a, slog.Int("status", rec.Status))
	}
	str("reason", rec.Reason)
	str("rule", rec.Rule)
	str("rule_at", rec.RuleAt)
	str("detail", rec.Detail)
	str("handler", rec.Handler)
	if len(rec.Trace) > 0 {
		a = append(a, slog.Any("trace", rec.Trace))
	}
	if rec.WAF != nil {
		a = append(a, slog.Any("waf", rec.WAF))
	}
	if rec.WouldDeny != nil {
		a = append(a, slog.Any("would_deny", rec.WouldDeny))
	}
	if len(rec.RateLimits) > 0 {
		a = append(a, slog.Any("rate_limits", rec.RateLimits))
	}
	if rec.Bytes != 0 {
		a = append(a, slog.Int64("bytes", rec.Bytes))
	}
	return a
}
