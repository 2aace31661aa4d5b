// Package gateway is warden as a server: the engine judges each request,
// and the gateway routes what it allows to the file server or the reverse
// proxy, answers redirects, and renders refusals. It owns the connection
// layer too: the connection limit and the framing (smuggling) check of
// WrapListener, the timeouts of NewHTTPServer.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/obs"
	"github.com/warden-gateway/warden/internal/proxy"
)

// Runtime is one compiled config (see engine.Runtime).
type Runtime = engine.Runtime

// Options are what the CLI adds to a config (see engine.Options).
type Options = engine.Options

// Build compiles a config for the gateway: upstream failures render through
// onUpstreamError (the Server's UpstreamError).
func Build(cfg *config.Config, opt Options, onUpstreamError proxy.ErrorFunc) (*Runtime, error) {
	opt.OnUpstreamError = onUpstreamError
	return engine.Build(cfg, opt)
}

// Server is the gateway's http.Handler. The engine it embeds holds the
// runtime in service (Swap, Runtime) and the clock (Now).
type Server struct {
	*engine.Engine
}

// NewServer makes a gateway with no runtime yet; call Swap before serving.
func NewServer(logger *slog.Logger) *Server {
	return &Server{Engine: engine.New(logger)}
}

// outcomeOf is the outcome of the request being served, for the proxy's
// error callback: serve hands it to the proxy as its tag.
func outcomeOf(r *http.Request) *engine.Outcome {
	o, _ := proxy.Tag(r).(*engine.Outcome)
	return o
}

// UpstreamError is the proxy's error callback: upstream failures render as
// refusals in the same formats, with the cause kept for the log only.
func (s *Server) UpstreamError(w http.ResponseWriter, r *http.Request, code decision.ReasonCode, err error) {
	o := outcomeOf(r)
	if o == nil {
		// Not a request this server judged (a test driving the proxy).
		o = &engine.Outcome{ID: w.Header().Get("X-Request-Id"), Wire: &engine.Wire{Method: r.Method, Header: r.Header}}
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		// A chunked body cut off at max_body_bytes surfaces here: it is the
		// client's request that was too large, not the upstream failing.
		d := decision.Refuse(decision.BadRequest, "request body too large")
		d.Status = http.StatusRequestEntityTooLarge
		d.Detail = err.Error()
		o.Replace(engine.StagePreRule, d)
		o.CloseConn = true
		s.Respond(w, o)
		return
	}
	d := decision.Refuse(code, "the upstream server failed to answer")
	if code == decision.UpstreamTimeout {
		d.Reason = "the upstream server did not answer in time"
	}
	d.Detail = err.Error()
	o.Replace(engine.StageUpstream, d)
	s.Respond(w, o)
}

var _ proxy.ErrorFunc = (*Server)(nil).UpstreamError

// ServeHTTP judges the request with the engine and serves what it allows.
// The outcome is logged once, when it is final (after the handler, whose
// refusal or failure replaces an allow). Any panic becomes a 500 refusal,
// never an allow.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.VerifyEndpoint(r); h != nil {
		// The answer to a challenge: served before any rule (and logged by
		// nothing here: it decides nothing).
		h.ServeHTTP(w, r)
		return
	}
	st := states.Get().(*requestState)
	o := &st.o
	// The id comes as its header value, cut from a batch like the id
	// itself: setting X-Request-Id then costs no allocation (issue 17).
	idValue := obs.NewRequestIDValue()
	*o = engine.Outcome{Front: "gateway", ID: idValue[0]}
	st.wire = engine.FromHTTP(r)
	wire := &st.wire
	if r.ProtoMajor == 1 {
		wire.Framing = framingVerdict(r)
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			d := decision.Refuse(decision.InternalError, "warden failed while handling this request")
			d.Detail = fmt.Sprintf("panic: %v\n%s", v, debug.Stack())
			o.Replace(o.Stage, d)
			if o.Wire == nil {
				o.Wire = wire
			}
			s.Respond(w, o)
		}
		s.Log(o)
		st.release()
	}()
	s.Judge(wire, o)
	if o.ID == idValue[0] {
		w.Header()["X-Request-Id"] = idValue
	} else {
		w.Header().Set("X-Request-Id", o.ID)
	}
	if o.Refused() {
		if !s.ServeChallenge(w, r, o) {
			s.Respond(w, o)
		}
		return
	}
	st.rec = recorder{ResponseWriter: w, o: o}
	s.serve(&st.rec, r, o)
}

// requestState is what ServeHTTP needs per request, recycled: the outcome
// is large and, with the wire and the recorder, would otherwise be three
// allocations on every request. Nothing keeps them after ServeHTTP returns:
// observers must not keep the outcome, and the decision log's handler
// formats the record before Log returns.
type requestState struct {
	o    engine.Outcome
	wire engine.Wire
	rec  recorder
}

var states = sync.Pool{New: func() any { return new(requestState) }}

// release clears what points into this request (so the pool keeps no
// bodies, headers or callers alive) and recycles the state.
func (st *requestState) release() {
	st.o = engine.Outcome{}
	st.wire = engine.Wire{}
	st.rec = recorder{}
	states.Put(st)
}

// serve hands an allowed request to its handler.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, o *engine.Outcome) {
	req := &o.Request
	for k, v := range o.Header {
		w.Header()[k] = v
	}
	if o.WAFRan {
		inner := w
		w = o.WAF.WrapResponse(w)
		// A held response starts with empty headers; the id must be on it
		// too, for refusals written through it.
		w.Header().Set("X-Request-Id", o.ID)
		defer func() {
			rv, _ := o.WAF.Finish()
			if rd, refused := rv.Refusal(); refused {
				o.Replace(engine.StageUpstream, rd)
				s.Respond(inner, o)
				return
			}
			if len(rv.Matches) > 0 {
				lines := make([]string, len(rv.Matches))
				for i, m := range rv.Matches {
					lines[i] = m.ErrorLog
				}
				s.Logger().LogAttrs(context.Background(), slog.LevelInfo, "waf response",
					slog.String("request_id", o.ID), slog.Int("score", rv.Score), slog.Bool("would_block", rv.WouldBlock),
					slog.Any("matches", lines))
			}
		}()
	}
	route, redirect := o.Route()
	if route == nil {
		s.Respond(w, o)
		return
	}
	if redirect != "" {
		http.Redirect(w, r, redirect, http.StatusMovedPermanently)
		o.Status = http.StatusMovedPermanently
		return
	}
	if route.Files != nil {
		if ref := route.Files.Serve(w, r, req.Path); ref != nil {
			o.Replace(engine.StageHandler, ref.Decision())
			s.Respond(w, o)
		}
		return
	}
	r.Body = o.Body
	// The upstream sees warden's request id, not one the client made up,
	// so its logs and warden's decision log line up.
	r.Header.Set("X-Request-Id", o.ID)
	if p := o.Caller; p != nil {
		route.Proxy.ServeTagged(w, r, req, p.ID, p.Roles, o)
	} else {
		route.Proxy.ServeTagged(w, r, req, "", nil, o)
	}
}

// recorder notes the status and size of what a handler sends, for the
// outcome's record. It keeps the writer's optional powers reachable:
// Unwrap for http.ResponseController (flush, hijack), and ReadFrom so the
// file server still sends files with sendfile.
type recorder struct {
	http.ResponseWriter
	o *engine.Outcome
}

func (r *recorder) WriteHeader(status int) {
	if r.o.Status == 0 || r.o.Status < 200 {
		r.o.Status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.o.Status == 0 {
		r.o.Status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.o.Bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.o.Status == 0 {
		r.o.Status = http.StatusOK
	}
	n, err := io.Copy(r.ResponseWriter, src)
	r.o.Bytes += n
	return n, err
}

func (r *recorder) Flush() { http.NewResponseController(r.ResponseWriter).Flush() }

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
