package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/match/bot"
	"github.com/warden-gateway/warden/internal/obs"
	"github.com/warden-gateway/warden/internal/policy"
	"github.com/warden-gateway/warden/internal/refusal"
	"github.com/warden-gateway/warden/internal/state"
	"github.com/warden-gateway/warden/internal/waf"
)

// Engine judges requests under the Runtime in service and logs the
// outcome. Runtimes are swapped atomically, so a failed reload leaves the
// old one serving and a request in flight finishes under the runtime it
// started with. It is safe for concurrent use.
type Engine struct {
	rt        atomic.Pointer[Runtime]
	store     atomic.Pointer[state.Store]
	log       *slog.Logger
	observers []func(*Outcome)
	// Now is the clock, read once per request; tests replace it.
	Now func() time.Time
}

// New makes an engine with no runtime yet; call Swap before judging.
func New(logger *slog.Logger) *Engine {
	if logger == nil {
		logger = slog.Default()
	}
	return &Engine{log: logger, Now: time.Now}
}

// Swap installs a new runtime and returns the old one.
func (e *Engine) Swap(rt *Runtime) *Runtime { return e.rt.Swap(rt) }

// Runtime returns the runtime in service.
func (e *Engine) Runtime() *Runtime { return e.rt.Load() }

// Observe adds f to what sees every finished outcome (metrics, the access
// log, the admin page's recent refusals), whatever log.decisions says. Call
// it before the engine serves; f must not keep o.
func (e *Engine) Observe(f func(o *Outcome)) { e.observers = append(e.observers, f) }

// Logger is where decision records go.
func (e *Engine) Logger() *slog.Logger { return e.log }

// Stage is the step of the pipeline that decided.
type Stage uint8

const (
	StageNone      Stage = iota
	StagePreRule         // framing, header names, override headers, body size
	StageCanonical       // the request has no single safe meaning
	StageBan             // the client is banned
	StagePolicy          // the rules
	StageWAF             // the WAF, on the request
	StageHandler         // the file server or routing (not found, listing off)
	StageUpstream        // the upstream failed, or the WAF judged its response
)

var stageWords = [...]string{"", "prerule", "canonical", "ban", "policy", "waf", "handler", "upstream"}

func (s Stage) String() string {
	if int(s) < len(stageWords) {
		return stageWords[s]
	}
	return ""
}

func parseStage(w string) Stage {
	for i, s := range stageWords {
		if s == w {
			return Stage(i)
		}
	}
	return StageNone
}

// Outcome is one request's judgement: what was decided, at which stage, on
// which facts, and what the front end must do next. A front end keeps one
// per request (it is large, to spare allocations; reuse it with Reset).
type Outcome struct {
	// ID is the request id, shown to the client and in every log line.
	ID string
	// Front names the front end, for the record ("gateway", "middleware").
	Front   string
	Runtime *Runtime
	Now     time.Time
	// Wire is the request as handed over (its header after Judge dropped
	// what must not go on).
	Wire *Wire
	// Request is the canonical request; valid when Stage > StageCanonical
	// or the decision was an allow.
	Request    canonical.Request
	HasRequest bool
	Decision   decision.Decision
	Stage      Stage
	// Trail is the policy's record of the rules it looked at, for exactly
	// the decision made (words on demand: Steps).
	Trail policy.Trail
	// WAF is the WAF's verdict when it ran (WAFRan).
	WAF    waf.Verdict
	WAFRan bool
	// Body is what to forward in place of the request's body: the bytes the
	// WAF inspected, bounded by the body limit.
	Body io.ReadCloser
	// Caller is who is calling, for the upstream's identity headers: the
	// caller a rule verified, or, when no rule asked, whoever the
	// credentials name.
	Caller *identity.Principal
	// Dropped are header names removed before any rule ran.
	Dropped []string
	// struck: the outcome was counted towards the ban policies.
	struck bool
	// refusedHeader is the header the request was refused for, which its
	// record keeps so that replay judges the same request.
	refusedHeader string
	// Known, when set before Judge, is taken as the caller instead of the
	// request's credentials (replay).
	Known *identity.Result
	// SkipWAF, when set before Judge, leaves the WAF out (replay: the
	// record does not hold what the WAF judged).
	SkipWAF bool
	// SkipEffects, when set before Judge, neither checks bans nor charges
	// rate limits (replay); PeekOnly reads them without charging (explain).
	SkipEffects bool
	PeekOnly    bool
	charges     policy.Charges
	// Bot is the verified-bot identity, when a rule asked.
	Bot bot.Identity
	// RateLimits are what the request's rate limits said.
	RateLimits []RateLimitState
	// Header holds response headers the outcome adds (RateLimit,
	// Retry-After), for an allowed response as for a refusal.
	Header http.Header
	// CloseConn asks the front end to close the connection after answering
	// (the request's body was not read).
	CloseConn bool
	// Handler names the handler that served (gateway) or would (explain).
	Handler string
	// Status and Bytes are what was sent, when the front end knows.
	Status int
	Bytes  int64
	// Duration is the time from Judge to Log.
	Duration time.Duration
}

// Refused reports whether the request must not go on.
func (o *Outcome) Refused() bool { return !o.Decision.Allowed() }

// refuse sets a refusal made at stage.
func (o *Outcome) refuse(stage Stage, d decision.Decision) {
	o.Stage, o.Decision = stage, d
}

// Judge runs the pipeline on w into o: the checks that hold before any rule,
// the canonical request, the policy and, for an allowed request, the WAF.
// o.ID, o.Front, o.Known, o.SkipWAF, o.SkipEffects and o.PeekOnly are
// kept when set; everything else is filled.
//
// When the request is allowed and the WAF inspected its body, o.Body must
// be forwarded (and closed) in its place; when response inspection is on,
// the front end must finish the verdict (o.WAF.Finish).
func (e *Engine) Judge(w *Wire, o *Outcome) {
	*o = Outcome{ID: o.ID, Front: o.Front, Known: o.Known, SkipWAF: o.SkipWAF, SkipEffects: o.SkipEffects, PeekOnly: o.PeekOnly, Wire: w}
	if o.ID == "" {
		o.ID = obs.NewRequestID()
	}
	rt := e.rt.Load()
	o.Runtime = rt
	o.Now = e.Now()
	o.Body = w.Body
	if rt == nil {
		o.refuse(StagePreRule, decision.Refuse(decision.Unavailable, "the gateway has no policy loaded"))
		return
	}
	if e.preRule(rt, w, o) {
		return
	}
	req := &o.Request
	if err := canonical.FillFromParts(req, w.Method, w.Target, w.Host, w.RemoteAddr, w.Header, w.TLS, &rt.Policy.Canonical); err != nil {
		var he *canonical.HeaderError
		if errors.As(err, &he) {
			// A header some upstream reads as the path or method.
			o.refuse(StagePreRule, decision.Refuse(decision.BadRequest, err.Error()))
			o.refusedHeader = he.Name
			return
		}
		o.refuse(StageCanonical, decision.Refuse(decision.BadRequest, err.Error()))
		return
	}
	o.HasRequest = true
	req.ClientCerts = w.ClientCerts
	o.Dropped = append(o.Dropped, req.StrippedHeaders...)
	if e.afterCanonical(rt, w, o) || e.checkBans(rt, o) {
		return
	}
	e.identifyBot(rt, w, o)
	o.Stage = StagePolicy
	o.Decision = rt.Policy.Evaluate(req, o.Now, &policy.Eval{Known: o.Known, Trail: &o.Trail, Charges: &o.charges})
	o.Caller = o.Decision.Caller
	e.chargeRateLimits(rt, o)
	if o.Refused() {
		return
	}
	if o.Caller == nil && o.Known != nil {
		o.Caller = o.Known.Principal
	}
	if o.Caller == nil && o.Known == nil {
		// No rule asked who is calling; the upstream is still told, so it
		// can personalise public pages. Verified credentials are cached,
		// so this costs little after the first request.
		o.Caller = rt.Policy.Principal(req, o.Now)
	}
	if rt.WAF != nil && !o.SkipWAF {
		e.inspect(rt, w, o)
	}
}

// preRule is what must hold before the request is even made canonical. It
// reports whether it refused.
func (e *Engine) preRule(rt *Runtime, w *Wire, o *Outcome) bool {
	if w.Framing != "" {
		d := decision.Refuse(decision.BadRequest, "the request's framing is ambiguous: "+w.Framing)
		o.refuse(StagePreRule, d)
		o.CloseConn = true
		return true
	}
	for name := range w.Header {
		if strings.IndexByte(name, '_') >= 0 {
			// CGI, PHP and WSGI read "X_Real_IP" as X-Real-IP and
			// "X_Original_URL" as X-Original-URL: such a header would pose
			// as one warden sets, strips or refuses. Dropped before any
			// rule, as nginx does by default (underscores_in_headers off).
			delete(w.Header, name)
			o.Dropped = append(o.Dropped, name)
		}
	}
	if rt.MaxBody > 0 && w.Body != nil && w.Body != http.NoBody {
		if w.ContentLength > rt.MaxBody {
			// Close the connection: the unread body must not be taken for
			// the next request, and reading it would be the cost we refuse.
			d := decision.Refuse(decision.BadRequest, "request body too large")
			d.Status = http.StatusRequestEntityTooLarge
			d.Detail = "Content-Length is over limits.max_body_bytes"
			o.refuse(StagePreRule, d)
			o.CloseConn = true
			return true
		}
		// A chunked body is cut off at the limit while it is read; the
		// reader's *http.MaxBytesError surfaces where it is read (the WAF,
		// the proxy) and is answered 413 there.
		o.Body = http.MaxBytesReader(nil, w.Body, rt.MaxBody)
	}
	return false
}

// afterCanonical holds the checks that need to know whether the peer is a
// trusted proxy. It reports whether it refused.
func (e *Engine) afterCanonical(rt *Runtime, w *Wire, o *Outcome) bool {
	if misdirected(rt, w, o) {
		return true
	}
	if !o.Request.PeerTrusted {
		// Identity headers are believed only from trusted proxies; never
		// pass a client's own copy on to the upstream either.
		for _, h := range rt.Policy.IdentityHeaders() {
			if _, present := w.Header[h]; present {
				delete(w.Header, h)
				o.Dropped = append(o.Dropped, h)
			}
		}
	}
	return false
}

// botLookupTimeout bounds proving a crawler by DNS within a request; the
// verifier caches answers, so only a crawler's first visit waits.
const botLookupTimeout = 2 * time.Second

// identifyBot proves a verified bot when a rule asks (the DNS lookups and
// signature checks are I/O, done here at the edge of the pure decision).
func (e *Engine) identifyBot(rt *Runtime, w *Wire, o *Outcome) {
	ids := rt.Policy.Bots()
	if ids == nil {
		return
	}
	// Most requests claim to be no bot: they cost one look at two headers,
	// not a request built for the verifier.
	signed := ids.Signed != nil && len(w.Header["Signature-Input"]) > 0
	claims := ids.Crawlers != nil && ids.Crawlers.Claimed(w.Header.Get("User-Agent")) != ""
	if !signed && !claims {
		return
	}
	scheme := "http"
	if w.TLS {
		scheme = "https"
	}
	u, err := url.Parse(scheme + "://" + w.Host + o.Request.EscapedPath)
	if err != nil {
		return
	}
	u.RawQuery = o.Request.RawQuery
	r := &http.Request{Method: w.Method, URL: u, Host: w.Host, Header: w.Header, RequestURI: w.Target}
	ctx, cancel := context.WithTimeout(context.Background(), botLookupTimeout)
	o.Bot = ids.Identify(ctx, r, o.Request.ClientIP, o.Now)
	cancel()
	if o.Bot.Verified() {
		o.Request.VerifiedBot = o.Bot.Kind.String() + ":" + o.Bot.Name
	}
}

// misdirected refuses, before any rule, a request for a host no handler
// serves (when every handler names its hosts), and, on warden's own TLS,
// one whose Host is not the name the connection was opened for: the
// certificate and the client-certificate policy were chosen for that name,
// and serving another site's content on it is domain fronting.
func misdirected(rt *Runtime, w *Wire, o *Outcome) bool {
	host := o.Request.Host
	if rt.Config.TLS != nil && w.ServerName != "" && !strings.EqualFold(strings.TrimSuffix(w.ServerName, "."), host) {
		o.refuse(StagePreRule, decision.Refuse(decision.MisdirectedRequest, "this connection is for "+strings.ToLower(w.ServerName)+", not "+host))
		return true
	}
	if rt.OnlyNamedHosts && !rt.ServesHost(host) {
		if host == "" {
			host = "(none)"
		}
		o.refuse(StagePreRule, decision.Refuse(decision.MisdirectedRequest, "this server does not serve the host "+host))
		return true
	}
	return false
}

// inspect runs the WAF on an allowed request. The WAF runs last among the
// checks, so requests refused by cheaper rules never cost it anything.
func (e *Engine) inspect(rt *Runtime, w *Wire, o *Outcome) {
	req := &o.Request
	wr := waf.Request{
		ID: o.ID, Method: w.Method, Proto: w.Proto, Host: w.Host,
		Path: req.EscapedPath, RawQuery: req.RawQuery, RawTarget: w.Target, Header: w.Header,
		TransferEncoding: w.TransferEncoding, Body: o.Body, ContentLength: w.ContentLength,
		ClientIP: req.ClientIP, ClientPort: waf.ClientPort(w.RemoteAddr, req.ClientIP),
	}
	if wr.Proto == "" {
		wr.Proto = "HTTP/1.1"
	}
	v, body, err := rt.WAF.Inspect(&wr)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			d := decision.Refuse(decision.BadRequest, "request body too large")
			d.Status = http.StatusRequestEntityTooLarge
			d.Detail = err.Error()
			o.refuse(StagePreRule, d)
			o.CloseConn = true
			return
		}
		d := decision.Refuse(decision.BadRequest, "the request body could not be read")
		d.Detail = err.Error()
		o.refuse(StageWAF, d)
		return
	}
	o.WAF, o.WAFRan, o.Body = v, true, body
	if wd, refused := v.Refusal(); refused {
		o.refuse(StageWAF, wd)
		v.Finish()
	}
}

// Steps is the trace of the policy decision, in words; nil when the policy
// did not run.
func (o *Outcome) Steps() []decision.Step {
	if o.Runtime == nil || o.Trail.Len() == 0 {
		return nil
	}
	// The trail explains the policy's own decision; a later stage's
	// refusal does not change what the rules said.
	d := o.Decision
	if o.Stage != StagePolicy {
		d = decision.Decision{}
	}
	return o.Runtime.Policy.Steps(&o.Trail, &o.Request, &d)
}

// Response renders the refusal for the client that sent the request.
func (o *Outcome) Response() refusal.Response {
	var opts refusal.Options
	if o.Runtime != nil {
		opts = o.Runtime.Refusals
	}
	var h http.Header
	method := ""
	if o.Wire != nil {
		h, method = o.Wire.Header, o.Wire.Method
	}
	res := refusal.Render(&o.Decision, refusal.NegotiateHeader(h), method == http.MethodHead, o.ID, opts)
	for k, v := range o.Header {
		if _, set := res.Header[k]; !set {
			res.Header[k] = v
		}
	}
	if o.CloseConn {
		res.Header.Set("Connection", "close")
	}
	return res
}

// Respond renders the refusal to w (the outcome's record is written
// separately, by Log, once the outcome is final).
func (e *Engine) Respond(w http.ResponseWriter, o *Outcome) {
	// The strike is counted before the client hears the refusal, so that
	// its next request already meets the ban it earned.
	e.strike(o)
	if len(o.Header) == 0 && !o.CloseConn && o.Wire != nil && o.Runtime != nil {
		// The common refusal: rendered once per kind, the id spliced in.
		status, n := refusal.WriteCached(w, &o.Decision, refusal.NegotiateHeader(o.Wire.Header), o.Wire.Method == http.MethodHead, o.ID, o.Runtime.Refusals)
		o.Status, o.Bytes = status, int64(n)
		return
	}
	res := o.Response()
	o.Status, o.Bytes = res.Status, int64(len(res.Body))
	res.WriteTo(w)
}

// Write is Respond and Log: the whole of what a front end with a
// ResponseWriter does with a refused request.
func (e *Engine) Write(w http.ResponseWriter, o *Outcome) {
	e.Respond(w, o)
	e.Log(o)
}

// Replace makes o a refusal decided after the policy allowed the request (a
// file the server may not read, an upstream that failed): the record then
// names that stage, and the policy's trail stays as it was.
func (o *Outcome) Replace(stage Stage, d decision.Decision) { o.refuse(stage, d) }
