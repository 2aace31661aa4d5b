// Package gatewaytest runs a warden gateway on loopback for tests, exactly
// as `warden serve` runs it: the runtime built from a config, its background
// work started, the connection guard (limits, smuggling framer) around the
// listener, and the hardened http.Server around the handler.
package gatewaytest

import (
	"context"
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

// Start builds cfg and serves it on 127.0.0.1:0 until the test ends. tweak,
// when given, adjusts the http.Server before it serves (a ConnState hook
// must chain to the one already set: the framer needs it).
func Start(tb testing.TB, cfg *config.Config, logger *slog.Logger, tweak func(*http.Server)) *Instance {
	tb.Helper()
	srv := gateway.NewServer(logger)
	rt, err := gateway.Build(cfg, gateway.Options{}, srv.UpstreamError)
	if err != nil {
		tb.Fatalf("building the gateway: %v", err)
	}
	srv.Swap(rt)
	rt.Start(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		rt.Close()
		tb.Fatal(err)
	}
	hs := gateway.NewHTTPServer(ln.Addr().String(), srv, &cfg.Limits)
	if tweak != nil {
		tweak(hs)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(gateway.WrapListener(ln, &cfg.Limits))
	}()
	tb.Cleanup(func() {
		_ = hs.Close()
		<-done
		rt.Close()
	})
	return &Instance{Addr: ln.Addr().String(), Server: srv, Runtime: rt, HTTP: hs}
}
