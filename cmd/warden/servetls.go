package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/tlsconf"
)

// frontDoor is how the gateway's listener speaks: plain HTTP, or, when the
// policy has a tls section, HTTPS on that same listen address (so a policy
// never serves its site in plaintext by accident), with an optional
// plain-HTTP listener that only redirects and answers ACME challenges.
// The tls section is read at start; a reload keeps it (certificate files
// are reloaded on their own when they change).
type frontDoor struct {
	Scheme   string
	hs       *http.Server
	ln       net.Listener
	tls      *tlsconf.Manager
	redirect *http.Server
	redirLn  net.Listener
}

// openFrontDoor wraps the bound listener ln for hs. With TLS it sets
// hs.TLSConfig and wraps hs.Handler with HSTS.
func openFrontDoor(cfg *config.Config, hs *http.Server, ln net.Listener, logger *slog.Logger) (*frontDoor, error) {
	fd := &frontDoor{Scheme: "http", hs: hs}
	if cfg.TLS == nil {
		fd.ln = gateway.WrapListener(ln, &cfg.Limits)
		return fd, nil
	}
	t := cfg.TLS
	opt := tlsconf.Options{Base: filepath.Dir(cfg.Pos.File), Logger: logger, TLSPort: portOf(ln.Addr())}
	if t.RedirectHTTP.Value != "" {
		rl, err := net.Listen("tcp", t.RedirectHTTP.Value)
		if err != nil {
			return nil, fmt.Errorf("tls.redirect_http: %w", err)
		}
		fd.redirLn = rl
		opt.HTTPPort = portOf(rl.Addr())
	}
	opt.RequestClientCert = cfg.Identity.ClientCert != nil
	m, err := tlsconf.New(t, opt)
	if err != nil {
		fd.Close()
		return nil, err
	}
	fd.tls, fd.Scheme = m, "https"
	hs.TLSConfig = m.TLSConfig()
	if !m.HTTP2() {
		// A non-nil empty map is how net/http is told not to speak h2.
		hs.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	hs.Handler = m.WrapHSTS(hs.Handler)
	fd.ln = gateway.ServeTLSOn(hs, ln, &cfg.Limits)
	if fd.redirLn != nil {
		fd.redirect = &http.Server{
			Handler:           m.RedirectHandler(opt.TLSPort),
			ReadHeaderTimeout: gateway.DefaultReadHeaderTimeout,
			ReadTimeout:       gateway.DefaultReadHeaderTimeout,
			WriteTimeout:      gateway.DefaultReadHeaderTimeout,
			IdleTimeout:       gateway.DefaultReadHeaderTimeout,
			MaxHeaderBytes:    gateway.DefaultMaxHeaderBytes,
		}
		go func() {
			if err := fd.redirect.Serve(fd.redirLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("redirect listener stopped", "error", err.Error())
			}
		}()
	}
	if err := m.Start(context.Background()); err != nil {
		fd.Close()
		return nil, fmt.Errorf("tls.acme: %w", err)
	}
	return fd, nil
}

// Serve serves the gateway until it is shut down.
func (fd *frontDoor) Serve() error { return fd.hs.Serve(fd.ln) }

// Close stops the redirect listener and the certificate work; the gateway
// itself is shut down by its caller.
func (fd *frontDoor) Close() {
	if fd.redirect != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = fd.redirect.Shutdown(ctx)
		cancel()
	} else if fd.redirLn != nil {
		fd.redirLn.Close()
	}
	if fd.tls != nil {
		fd.tls.Close()
	}
}

func portOf(a net.Addr) int {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.Port
	}
	return 0
}
