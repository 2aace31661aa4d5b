package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/obs"
	"github.com/warden-gateway/warden/internal/proxy"
	"github.com/warden-gateway/warden/internal/refusal"
	"github.com/warden-gateway/warden/internal/waf"
)

// Server is the gateway's http.Handler.
type Server struct {
	rt  atomic.Pointer[Runtime]
	log *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// NewServer makes a gateway with no runtime yet; call Swap before serving.
func NewServer(logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{log: logger, Now: time.Now}
}

// Swap installs a new runtime and returns the old one.
func (s *Server) Swap(rt *Runtime) *Runtime { return s.rt.Swap(rt) }

// Runtime returns the runtime in service.
func (s *Server) Runtime() *Runtime { return s.rt.Load() }

// UpstreamError is the proxy's error callback: upstream failures render as
// refusals in the same formats, with the cause kept for the log only.
func (s *Server) UpstreamError(w http.ResponseWriter, r *http.Request, code decision.ReasonCode, err error) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		// A chunked body cut off at max_body_bytes surfaces here: it is the
		// client's request that was too large, not the upstream failing.
		d := decision.Refuse(decision.BadRequest, "request body too large")
		d.Status = http.StatusRequestEntityTooLarge
		s.refuse(w, r, &d, nil, requestID(w))
		return
	}
	d := decision.Refuse(code, "the upstream server failed to answer")
	if code == decision.UpstreamTimeout {
		d.Reason = "the upstream server did not answer in time"
	}
	d.Detail = err.Error()
	s.refuse(w, r, &d, nil, requestID(w))
}

var _ proxy.ErrorFunc = (*Server)(nil).UpstreamError

func requestID(w http.ResponseWriter) string { return w.Header().Get("X-Request-Id") }

// ServeHTTP is the pipeline: canonical request → decision → refusal or
// handler. Any panic becomes a 500 refusal, never an allow.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := obs.NewRequestID()
	w.Header().Set("X-Request-Id", id)
	rt := s.rt.Load()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			d := decision.Refuse(decision.InternalError, "warden failed while handling this request")
			d.Detail = fmt.Sprintf("panic: %v\n%s", v, debug.Stack())
			s.refuse(w, r, &d, nil, id)
		}
	}()
	if rt == nil {
		d := decision.Refuse(decision.Unavailable, "the gateway has no policy loaded")
		s.refuse(w, r, &d, nil, id)
		return
	}
	var req canonical.Request
	if err := canonical.FillFrom(&req, r, &rt.Policy.Canonical); err != nil {
		d := decision.Refuse(decision.BadRequest, err.Error())
		s.refuse(w, r, &d, nil, id)
		return
	}
	now := s.Now()
	d := rt.Policy.Decide(&req, now, nil)
	if !d.Allowed() {
		s.refuseWith(w, r, &d, &req, id, rt, now)
		return
	}
	if rt.LogAll || len(req.StrippedHeaders) > 0 && !rt.LogOff {
		// A request whose override headers were stripped is logged even
		// when only refusals are: the upstream got less than was sent.
		s.logDecision(r, &req, &d, id, nil)
	}
	if rt.waf != nil {
		// The WAF runs last among the checks, so requests refused by
		// cheaper rules never cost it anything.
		v, body, err := rt.waf.Inspect(waf.RequestFrom(r, id, req.EscapedPath, req.RawQuery, req.ClientIP))
		if err != nil {
			bd := decision.Refuse(decision.BadRequest, "the request body could not be read")
			bd.Detail = err.Error()
			s.refuse(w, r, &bd, &req, id)
			return
		}
		if len(v.Matches) > 0 || v.TooLarge {
			s.logWAF(r, &req, id, &v)
		}
		if wd, refused := v.Refusal(); refused {
			s.refuse(w, r, &wd, &req, id)
			v.Finish()
			return
		}
		r.Body = body
		inner := w
		w = v.WrapResponse(w)
		// A held response starts with empty headers; the id must be on it
		// too, for refusals written through it (UpstreamError reads it).
		w.Header().Set("X-Request-Id", id)
		defer func() {
			rv, _ := v.Finish()
			if len(rv.Matches) > 0 {
				s.log.LogAttrs(context.Background(), slog.LevelInfo, "waf response",
					slog.String("request_id", id), slog.Int("score", rv.Score), slog.Bool("would_block", rv.WouldBlock),
					slog.Any("matches", wafLines(rv.Matches)))
			}
			if rd, refused := rv.Refusal(); refused {
				s.refuse(inner, r, &rd, &req, id)
			}
		}()
	}
	route := rt.routeFor(req.Path)
	if route == nil {
		nf := decision.Refuse(decision.NotFound, "not found")
		s.refuse(w, r, &nf, &req, id)
		return
	}
	if route.proxy != nil && len(route.prefix) > 1 && req.Path+"/" == route.prefix {
		// "/api" for a handler on "/api/": answer with the folder's address,
		// as nginx does for a proxied prefix, rather than send upstream a
		// path outside the prefix it serves.
		target := canonical.Escape(route.prefix)
		if req.RawQuery != "" {
			target += "?" + req.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	}
	if route.files != nil {
		if ref := route.files.Serve(w, r, req.Path); ref != nil {
			fd := ref.Decision()
			s.refuse(w, r, &fd, &req, id)
		}
		return
	}
	if !req.PeerTrusted {
		// Identity headers are believed only from trusted proxies; never
		// pass a client's own copy on to the upstream either.
		for _, h := range rt.Policy.IdentityHeaders() {
			r.Header.Del(h)
		}
	}
	// The upstream sees warden's request id, not one the client made up,
	// so its logs and warden's decision log line up.
	r.Header.Set("X-Request-Id", id)
	caller := d.Caller
	if caller == nil {
		// No rule asked who is calling; the upstream is still told, so it
		// can personalise public pages. Verified credentials are cached,
		// so this costs little after the first request.
		caller = rt.Policy.Principal(&req, now)
	}
	if p := caller; p != nil {
		route.proxy.ServeAs(w, r, &req, p.ID, p.Roles)
		return
	}
	route.proxy.Serve(w, r, &req)
}

// refuse logs and renders a refusal.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, d *decision.Decision, req *canonical.Request, id string) {
	// The clock is read only if a trace is recomputed: the refusal of a
	// panic (perhaps in the clock itself) must not read it again.
	s.refuseWith(w, r, d, req, id, s.rt.Load(), time.Time{})
}

// refuseWith is refuse for a decision made under rt at now: the trace in the
// log is recomputed with the same policy and the same time, so it explains
// exactly the decision that was rendered, even across a reload.
func (s *Server) refuseWith(w http.ResponseWriter, r *http.Request, d *decision.Decision, req *canonical.Request, id string, rt *Runtime, now time.Time) {
	opts := refusal.Options{}
	if rt != nil {
		opts = rt.Refusals
	}
	if rt == nil || !rt.LogOff {
		var tr *decision.Trace
		if req != nil && rt != nil && d.Rule != "" {
			// Evaluation is pure, so the trace is recomputed only for the
			// refusals that get logged, keeping the allow path free of it.
			t := decision.Trace{}
			if now.IsZero() {
				now = s.Now()
			}
			rt.Policy.Decide(req, now, &t)
			tr = &t
		}
		s.logDecision(r, req, d, id, tr)
	}
	refusal.Write(w, r, d, id, opts)
}

func (s *Server) logDecision(r *http.Request, req *canonical.Request, d *decision.Decision, id string, tr *decision.Trace) {
	if !s.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", id),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("action", d.Action.String()),
	}
	if req != nil {
		attrs = append(attrs, slog.String("path", req.Path), slog.String("client_ip", req.ClientIP.String()))
		if len(req.StrippedHeaders) > 0 {
			attrs = append(attrs, slog.Any("stripped_headers", req.StrippedHeaders))
		}
	} else {
		attrs = append(attrs, slog.String("raw_uri", r.RequestURI), slog.String("peer", r.RemoteAddr))
	}
	if d.Code != "" {
		status := d.Status
		if status == 0 {
			status = d.Code.Status()
		}
		attrs = append(attrs, slog.String("code", string(d.Code)), slog.Int("status", status), slog.String("reason", d.Reason))
	}
	if d.Rule != "" {
		attrs = append(attrs, slog.String("rule", d.Rule))
		if d.RuleLine > 0 {
			attrs = append(attrs, slog.String("rule_at", rtSource(s)+":"+strconv.Itoa(d.RuleLine)))
		}
	}
	if d.Detail != "" {
		attrs = append(attrs, slog.String("detail", d.Detail))
	}
	if tr != nil {
		attrs = append(attrs, slog.Any("trace", tr.Steps))
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "decision", attrs...)
}

func rtSource(s *Server) string {
	if rt := s.rt.Load(); rt != nil {
		return rt.Policy.Source
	}
	return ""
}

// logWAF writes what the WAF matched: the rule ids, messages, score and the
// offending variables, each as Coraza's ModSecurity-style line. In detect
// mode this is the "would block" record; the request is still served.
func (s *Server) logWAF(r *http.Request, req *canonical.Request, id string, v *waf.Verdict) {
	if !s.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "waf",
		slog.String("request_id", id),
		slog.String("method", r.Method),
		slog.String("path", req.Path),
		slog.String("client_ip", req.ClientIP.String()),
		slog.Int("score", v.Score),
		slog.Bool("would_block", v.WouldBlock),
		slog.Bool("blocked", v.Blocked),
		slog.Any("rule_ids", v.RuleIDs()),
		slog.Any("matches", wafLines(v.Matches)),
	)
}

func wafLines(ms []waf.Match) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ErrorLog
	}
	return out
}
