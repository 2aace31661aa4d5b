// Package forwardauth is warden as a forward-auth decision service: nginx
// (auth_request), Traefik (ForwardAuth) and Caddy (forward_auth) send it a
// sub-request describing each request they received, and it answers 200
// with identity headers to allow, or warden's refusal to deny. The request
// is judged by the engine, exactly as the gateway judges it; this package
// only reads the proxy's description into an engine.Wire and writes the
// outcome back.
//
// The description is believed only from forward_auth.peers: from anyone
// else the sub-request is refused (403) and logged, since whoever can reach
// the service could otherwise describe an allowed request.
//
// nginx's auth_request passes on only 401 and 403 (any other status becomes
// a 500) and never the body. For the X-Original-URI convention a refusal
// with another status is answered 403 (X-Warden-Status names the real one),
// and the refusal is kept for a short while under its request id, so that
// the documented error_page location can fetch it from /refusal and show
// the client warden's own status, page and headers.
package forwardauth

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/warden-gateway/warden/internal/authz"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/obs"
	"github.com/warden-gateway/warden/internal/proxy"
	"github.com/warden-gateway/warden/internal/refusal"
)

// Front names this front end in decision records.
const Front = "forward_auth"

// RefusalPath is where nginx's error_page location fetches a refusal again.
const RefusalPath = "/refusal"

// RefusalIDHeader names the refusal wanted from RefusalPath (the request id
// auth_request_set took from the sub-request's X-Request-Id).
const RefusalIDHeader = "X-Warden-Request-Id"

// StatusHeader carries a refusal's real status when the answer to nginx had
// to be 403.
const StatusHeader = "X-Warden-Status"

// Server is the forward-auth http.Handler. It judges with an engine shared
// with the other front ends, so a reload (engine.Swap) reaches it too.
type Server struct {
	eng  *engine.Engine
	kept *keptRefusals
}

// New makes the service over eng.
func New(eng *engine.Engine) *Server {
	return &Server{eng: eng, kept: newKeptRefusals(4096, time.Minute)}
}

// ServeHTTP answers one sub-request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := s.eng.Runtime()
	var svc *authz.Service
	if rt != nil && rt.Services != nil {
		svc = rt.Services.ForwardAuth
	}
	if !svc.PeerAllowed(r.RemoteAddr) {
		// Checked before anything is read from the headers.
		d := decision.Refuse(decision.PolicyDenied, "this decision service answers only its configured peers (forward_auth.peers)")
		d.Detail = "peer " + r.RemoteAddr + " is not in forward_auth.peers"
		s.refuseSubrequest(w, r, rt, d)
		return
	}
	if r.URL.Path == RefusalPath {
		if id := r.Header.Get(RefusalIDHeader); id != "" {
			if res, ok := s.kept.get(id, s.eng.Now()); ok {
				write(w, r, &res)
				return
			}
		}
		s.judge(w, r, false)
		return
	}
	s.judge(w, r, true)
}

// judge reads the original request, has the engine judge it and answers.
// asked is false when nginx's error location asks for a refusal again and
// it was no longer kept: then the real status is answered, not 403.
func (s *Server) judge(w http.ResponseWriter, r *http.Request, asked bool) {
	o := &engine.Outcome{Front: Front}
	var wire engine.Wire
	conv, err := original(r, &wire)
	if err != nil {
		s.refuseSubrequest(w, r, s.eng.Runtime(), decision.Refuse(decision.BadRequest, err.Error()))
		return
	}
	s.eng.Judge(&wire, o)
	defer s.eng.Log(o)
	if !o.Refused() {
		if o.WAFRan {
			// Nothing is served through this service: end the WAF's
			// transaction (its logging phase) now.
			o.WAF.Finish()
		}
		if !asked {
			// The first answer refused; this one would allow (a reload in
			// between). The proxy has already refused; say so plainly.
			o.Replace(engine.StagePreRule, decision.Refuse(decision.Unavailable, "the decision changed while it was being shown; retry"))
		} else {
			h := w.Header()
			h.Set("X-Request-Id", o.ID)
			h.Set("Cache-Control", "no-store")
			if p := o.Caller; p != nil {
				proxy.SetIdentityHeaders(h, p.ID, p.Roles)
			}
			// Both are always sent, empty for no caller: a proxy that copies
			// them upstream then replaces a client's own copy with nothing
			// (Caddy 2.6 copies a missing one as its placeholder's name).
			for _, name := range []string{proxy.UserHeader, proxy.RolesHeader} {
				if _, ok := h[name]; !ok {
					h[name] = []string{""}
				}
			}
			w.WriteHeader(http.StatusOK)
			o.Status = http.StatusOK
			return
		}
	}
	res := o.Response()
	o.Status, o.Bytes = res.Status, int64(len(res.Body))
	if asked && conv == Original {
		// nginx shows the client only the status; its error_page location
		// fetches the whole refusal from RefusalPath by request id.
		s.kept.put(o.ID, res, s.eng.Now())
		if res.Status != http.StatusUnauthorized && res.Status != http.StatusForbidden {
			// auth_request turns any other status into a 500.
			res.Header = res.Header.Clone()
			res.Header.Set(StatusHeader, strconv.Itoa(res.Status))
			res.Status = http.StatusForbidden
		}
	}
	write(w, r, &res)
}

// refuseSubrequest refuses a sub-request that cannot be judged (from a peer
// not configured, or not describing one request), and logs it: the record
// names the sub-request itself, since there is no original request.
func (s *Server) refuseSubrequest(w http.ResponseWriter, r *http.Request, rt *engine.Runtime, d decision.Decision) {
	o := &engine.Outcome{
		ID: obs.NewRequestID(), Front: Front, Runtime: rt, Now: s.eng.Now(),
		Wire: &engine.Wire{Method: r.Method, Target: r.RequestURI, Host: r.Host, RemoteAddr: r.RemoteAddr, Header: r.Header},
	}
	o.Replace(engine.StagePreRule, d)
	res := o.Response()
	o.Status, o.Bytes = res.Status, int64(len(res.Body))
	write(w, r, &res)
	s.eng.Log(o)
}

// write sends a rendered refusal. Its Content-Length is the refusal's own
// unless the original request was a HEAD and the sub-request is not: then
// the body is empty and so is the length.
func write(w http.ResponseWriter, r *http.Request, res *refusal.Response) {
	h := w.Header()
	for k, v := range res.Header {
		h[k] = v
	}
	if r.Method != http.MethodHead {
		h.Set("Content-Length", strconv.Itoa(len(res.Body)))
	}
	w.WriteHeader(res.Status)
	if len(res.Body) > 0 {
		w.Write(res.Body)
	}
}

// keptRefusals holds the latest refusals answered to nginx, by request id,
// for a short time: bounded in count, the oldest dropped first.
type keptRefusals struct {
	mu    sync.Mutex
	ttl   time.Duration
	byID  map[string]keptRefusal
	order []string // ring of ids, oldest at next
	next  int
}

type keptRefusal struct {
	res refusal.Response
	at  time.Time
}

func newKeptRefusals(n int, ttl time.Duration) *keptRefusals {
	return &keptRefusals{ttl: ttl, byID: make(map[string]keptRefusal, n), order: make([]string, n)}
}

func (k *keptRefusals) put(id string, res refusal.Response, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if old := k.order[k.next]; old != "" {
		delete(k.byID, old)
	}
	k.order[k.next] = id
	k.next = (k.next + 1) % len(k.order)
	k.byID[id] = keptRefusal{res: res, at: now}
}

func (k *keptRefusals) get(id string, now time.Time) (refusal.Response, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.byID[id]
	if !ok || now.Sub(e.at) > k.ttl {
		return refusal.Response{}, false
	}
	return e.res, true
}

// NewHTTPServer is the http.Server the service runs in: header limits and
// timeouts for sub-requests, which carry no body.
func NewHTTPServer(addr string, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
