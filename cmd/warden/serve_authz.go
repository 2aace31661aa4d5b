package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/warden-gateway/warden/internal/authz/extauthz"
	"github.com/warden-gateway/warden/internal/authz/forwardauth"
	"github.com/warden-gateway/warden/internal/engine"
)

// decisionServices are the forward-auth and ext_authz listeners `warden
// serve` runs beside (or instead of) the gateway. They judge with the
// gateway's engine, so a reload (SIGHUP) swaps the runtime under all of
// them at once. Their addresses are read once, at start: a reload that
// changes one is logged and waits for a restart.
type decisionServices struct {
	forward *http.Server
	check   interface{ GracefulStop() }
	addrs   []string
}

// hasDecisionServices reports whether the config asks for any.
func hasDecisionServices(rt *engine.Runtime) bool {
	s := rt.Services
	return s != nil && (s.ForwardAuth != nil || s.ExtAuthz != nil)
}

// startDecisionServices listens on each configured address and serves until
// shutdown; a listener that stops with an error reports on errc.
func startDecisionServices(eng *engine.Engine, rt *engine.Runtime, logger *slog.Logger, errc chan<- error) (*decisionServices, error) {
	ds := &decisionServices{}
	if rt.Services == nil {
		return ds, nil
	}
	if fa := rt.Services.ForwardAuth; fa != nil {
		ln, err := net.Listen("tcp", fa.Listen)
		if err != nil {
			return nil, fmt.Errorf("forward_auth.listen: %w", err)
		}
		ds.forward = forwardauth.NewHTTPServer(fa.Listen, forwardauth.New(eng), logger)
		ds.addrs = append(ds.addrs, "forward-auth http://"+ln.Addr().String())
		go func() {
			if err := ds.forward.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("forward_auth: %w", err)
			}
		}()
	}
	if ea := rt.Services.ExtAuthz; ea != nil {
		ln, err := net.Listen("tcp", ea.Listen)
		if err != nil {
			ds.shutdown(context.Background())
			return nil, fmt.Errorf("ext_authz.listen: %w", err)
		}
		gs := extauthz.NewGRPCServer(extauthz.New(eng), ea.MaxRequestBytes)
		ds.check = gs
		ds.addrs = append(ds.addrs, "ext_authz grpc://"+ln.Addr().String())
		go func() {
			if err := gs.Serve(ln); err != nil {
				errc <- fmt.Errorf("ext_authz: %w", err)
			}
		}()
	}
	for _, a := range ds.addrs {
		fmt.Fprintf(os.Stderr, "warden: decision service %s\n", a)
	}
	return ds, nil
}

// noteReload logs a reload that changed a decision service's address,
// which only a restart applies.
func (ds *decisionServices) noteReload(old, next *engine.Runtime, logger *slog.Logger) {
	addr := func(rt *engine.Runtime, ext bool) string {
		if rt == nil || rt.Services == nil {
			return ""
		}
		if ext {
			if rt.Services.ExtAuthz != nil {
				return rt.Services.ExtAuthz.Listen
			}
			return ""
		}
		if rt.Services.ForwardAuth != nil {
			return rt.Services.ForwardAuth.Listen
		}
		return ""
	}
	for _, ext := range []bool{false, true} {
		if a, b := addr(old, ext), addr(next, ext); a != b {
			name := "forward_auth"
			if ext {
				name = "ext_authz"
			}
			logger.Warn("a decision service's address changed; it applies at the next restart", "service", name, "serving", a, "configured", b)
		}
	}
}

// shutdown stops the listeners, letting answers in flight finish.
func (ds *decisionServices) shutdown(ctx context.Context) {
	if ds == nil {
		return
	}
	if ds.forward != nil {
		_ = ds.forward.Shutdown(ctx)
	}
	if ds.check != nil {
		ds.check.GracefulStop()
	}
}
