package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/warden-gateway/warden/internal/admin"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/obs/metrics"
)

// adminListener is the running admin listener of `warden serve`.
type adminListener struct {
	srv  *admin.Server
	http *http.Server
	addr string
}

// startAdmin starts the admin listener when the config has an admin:
// section: metrics, health, the admin page. It registers its observers on
// eng, so it must run before the gateway serves. m counts reloads too.
func startAdmin(cfg *config.Config, eng *engine.Engine, m *metrics.Metrics, logger *slog.Logger) (*adminListener, error) {
	if cfg.Admin == nil {
		// Metrics are still counted (reloads, decisions) but not served.
		eng.Observe(m.Observe)
		return nil, nil
	}
	token, generated, err := admin.Token(cfg)
	if err != nil {
		return nil, err
	}
	srv, err := admin.New(eng, m, token)
	if err != nil {
		return nil, err
	}
	addr := admin.Listen(cfg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	if !admin.Loopback(ln.Addr().String()) {
		logger.Warn("the admin listener is not on loopback; it is protected by its token only", "listen", ln.Addr().String())
	}
	hs := admin.NewHTTPServer(srv)
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("admin listener stopped", "error", err.Error())
		}
	}()
	base := "http://" + ln.Addr().String()
	if generated {
		// Printed once, to the operator's terminal, never to the log.
		fmt.Fprintf(os.Stderr, "warden admin on %s — token (set admin.token_file to keep one): %s\n  open %s/login?token=%s\n", base, token, base, token)
	} else {
		fmt.Fprintf(os.Stderr, "warden admin on %s (token from %s)\n", base, cfg.Admin.TokenFile.Value)
	}
	return &adminListener{srv: srv, http: hs, addr: ln.Addr().String()}, nil
}

// close stops the admin listener, giving requests in flight a moment.
func (a *adminListener) close() {
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.http.Shutdown(ctx)
}
