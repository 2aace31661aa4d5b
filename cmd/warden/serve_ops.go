package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/warden-gateway/warden/internal/admin"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/obs"
	"github.com/warden-gateway/warden/internal/obs/accesslog"
	"github.com/warden-gateway/warden/internal/obs/metrics"
	"github.com/warden-gateway/warden/internal/state/stateadmin"
)

// ops is what `warden serve` runs beside the gateway for the operator: the
// decision log's format, the access log, metrics and the admin listener.
type ops struct {
	// logWriter queues the log's lines for stderr: under a flood of
	// refusals a slow terminal or pipe drops (and counts) lines rather than
	// slowing the refusals (issue 17).
	logWriter  *obs.LogWriter
	logHandler *obs.SwitchHandler
	logger     *slog.Logger
	metrics    *metrics.Metrics
	access     *accesslog.Log
	admin      *adminListener
	stopUSR1   func()
}

// newOps makes the logger the gateway logs decisions with; its format
// follows log.format from the first config on.
func newOps() *ops {
	lw := obs.NewLogWriter(os.Stderr, 0)
	h := obs.NewSwitchHandler(lw)
	m := metrics.New()
	m.CountLogDrops(lw.Dropped)
	return &ops{logWriter: lw, logHandler: h, logger: slog.New(h), metrics: m, access: accesslog.New()}
}

// flushLog writes out the queued log lines; serve defers it first, so it
// runs last, whichever way serve returns.
func (p *ops) flushLog() { p.logWriter.Close() }

// start registers the observers on eng and starts the admin listener, for
// the first runtime; it must run before eng serves.
func (p *ops) start(rt *engine.Runtime, eng *engine.Engine) error {
	p.logHandler.SetFormat(rt.Config.Log.Format.Value)
	if err := p.access.Configure(accesslog.FromConfig(rt.Config)); err != nil {
		return err
	}
	eng.Observe(p.access.Observe)
	adm, err := startAdmin(rt.Config, eng, p.metrics, p.logger)
	if err != nil {
		p.access.Close()
		return err
	}
	p.admin = adm
	p.metrics.Loaded(rt, time.Now())
	// SIGUSR1 reopens the access log, as nginx does for logrotate.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			if err := p.access.Reopen(); err != nil {
				p.logger.Error("reopening the access log failed; lines go to the old file", "error", err.Error())
			} else {
				p.logger.Info("access log reopened")
			}
		}
	}()
	p.stopUSR1 = func() { signal.Stop(usr1); close(usr1) }
	return nil
}

// reloaded applies what a reload changed in the operator's settings; a
// failed reload (err) is only counted.
func (p *ops) reloaded(rt *engine.Runtime, err error) {
	p.metrics.Reloaded(rt, err, time.Now())
	if err != nil {
		return
	}
	p.logHandler.SetFormat(rt.Config.Log.Format.Value)
	if err := p.access.Configure(accesslog.FromConfig(rt.Config)); err != nil {
		p.logger.Error("the access log could not be reopened with the new settings; the old ones stay", "error", err.Error())
	}
}

func (p *ops) close() {
	if p.stopUSR1 != nil {
		p.stopUSR1()
	}
	p.admin.close()
	p.access.Close()
}

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
	if store := eng.Store(); store != nil {
		// The ban API (`warden bans`), behind the same token as the page.
		srv.HandleAuthorized("/v1/bans", stateadmin.Handler(store, time.Now))
		srv.Bans = func() []admin.Ban {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			bans, _ := store.ListBans(ctx, time.Now())
			out := make([]admin.Ban, 0, len(bans))
			for _, b := range bans {
				out = append(out, admin.Ban{Key: b.Key, Until: b.Until, Reason: b.Reason})
			}
			return out
		}
	}
	addr := admin.Listen(cfg)
	ln, err := listenAdmin(addr)
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
	if ln.Addr().Network() == "unix" {
		base = addr
	}
	if generated {
		// Printed once, to the operator's terminal, never to the log.
		fmt.Fprintf(os.Stderr, "warden admin on %s — token (set admin.token_file to keep one): %s\n  open %s/login?token=%s\n", base, token, base, token)
	} else {
		fmt.Fprintf(os.Stderr, "warden admin on %s (token from %s)\n", base, cfg.Admin.TokenFile.Value)
	}
	return &adminListener{srv: srv, http: hs, addr: ln.Addr().String()}, nil
}

// listenAdmin listens on addr: host:port, or "unix:/path" for a Unix
// socket that only its owner may connect to (mode 0600), the way the bans
// CLI on the same machine reaches it without a TCP port at all.
func listenAdmin(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if path == "" {
		return nil, fmt.Errorf("admin listen %q: unix: needs a socket path", addr)
	}
	// A socket left behind by a warden that was killed would refuse the
	// bind; remove it, but never a file that is not a socket.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("admin listen %q: %s exists and is not a socket", addr, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
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
