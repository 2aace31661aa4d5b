// Package gatewaytest runs a warden gateway on loopback for tests, exactly
// as `warden serve` runs it: the runtime built from a config, its background
// work started, the connection guard (limits, smuggling framer) around the
// listener, and the hardened http.Server around the handler.
package gatewaytest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
)

// Instance is one running gateway.
type Instance struct {
	// Addr is host:port of the listener.
	Addr    string
	Server  *gateway.Server
	Runtime *gateway.Runtime
	HTTP    *http.Server
}

// URL is the gateway's base URL.
func (in *Instance) URL() string { return "http://" + in.Addr }

// Start builds cfg, starts its background work and serves it on
// 127.0.0.1:0 until the test ends. tweak, when given, adjusts the
// http.Server before it serves (a ConnState hook must chain to the one
// already set: the framer needs it).
func Start(tb testing.TB, cfg *config.Config, logger *slog.Logger, tweak func(*http.Server)) *Instance {
	tb.Helper()
	srv, rt := Build(tb, cfg, logger)
	rt.Start(context.Background())
	return Serve(tb, srv, rt, &cfg.Limits, tweak)
}

// Build compiles cfg into a runtime installed in a new server, without
// starting its background work (for tests of what happens before it runs).
// The runtime is closed when the test ends.
func Build(tb testing.TB, cfg *config.Config, logger *slog.Logger) (*gateway.Server, *gateway.Runtime) {
	tb.Helper()
	srv := gateway.NewServer(logger)
	rt, err := gateway.Build(cfg, gateway.Options{}, srv.UpstreamError)
	if err != nil {
		tb.Fatalf("building the gateway: %v", err)
	}
	srv.Swap(rt)
	tb.Cleanup(rt.Close)
	return srv, rt
}

// Serve serves srv on 127.0.0.1:0 the way `warden serve` does until the
// test ends. rt may be nil (a server with no policy loaded).
func Serve(tb testing.TB, srv *gateway.Server, rt *gateway.Runtime, limits *config.Limits, tweak func(*http.Server)) *Instance {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hs := gateway.NewHTTPServer(ln.Addr().String(), srv, limits)
	if tweak != nil {
		tweak(hs)
	}
	// A tweak that sets a TLS config asks for HTTPS, served as `warden
	// serve` serves a tls section.
	var wl net.Listener
	if hs.TLSConfig != nil {
		wl = gateway.ServeTLSOn(hs, ln, limits)
	} else {
		wl = gateway.WrapListener(ln, limits)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(wl); !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("serve: %v", err)
		}
	}()
	tb.Cleanup(func() {
		_ = hs.Close()
		<-done
	})
	return &Instance{Addr: ln.Addr().String(), Server: srv, Runtime: rt, HTTP: hs}
}
