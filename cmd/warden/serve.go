package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/demo"
	"github.com/warden-gateway/warden/internal/gateway"
)

func cmdServe(args []string) int {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgPath := fl.String("config", "", "policy file (default: the built-in demo)")
	listen := fl.String("listen", "", "address to listen on (overrides the file's listen; default 127.0.0.1:8080)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	srv := gateway.NewServer(logger)

	var d *demo.Demo
	load := func() (*gateway.Runtime, error) {
		var cfg *config.Config
		var site fs.FS
		if *cfgPath == "" {
			var err error
			if d == nil {
				if d, err = demo.New(); err != nil {
					return nil, err
				}
			}
			cfg, site = d.Config, demo.Site()
		} else {
			var err error
			if cfg, err = config.Load(*cfgPath); err != nil {
				return nil, err
			}
		}
		return gateway.Build(cfg, gateway.Options{SiteFS: site, Logger: logger}, srv.UpstreamError)
	}
	rt, err := load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden: the policy does not compile; not serving:\n%v\n", err)
		return 1
	}
	srv.Swap(rt)
	rt.Start(context.Background())

	addr := rt.Config.Listen
	if *listen != "" {
		addr = *listen
	}
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	hs := gateway.NewHTTPServer(addr, srv, &rt.Config.Limits)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden: listen: %v\n", err)
		return 1
	}
	base := "http://" + ln.Addr().String()
	if d != nil {
		printDemo(base, d)
	} else {
		fmt.Fprintf(os.Stderr, "warden %s serving %s on %s (%d rules)\n", version, *cfgPath, base, rt.Policy.RuleCount())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			// Load, compile and validate first; only a policy that compiles
			// replaces the one in service.
			nrt, err := load()
			if err != nil {
				logger.Error("reload failed; the previous policy keeps serving", "error", err.Error())
				continue
			}
			nrt.Start(context.Background())
			if old := srv.Swap(nrt); old != nil {
				old.Close()
			}
			logger.Info("policy reloaded", "rules", nrt.Policy.RuleCount())
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "warden: %v\n", err)
			return 1
		}
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}
	return 0
}

func printDemo(base string, d *demo.Demo) {
	fmt.Fprintf(os.Stderr, `warden %s — built-in demo on %s

  admin API key: %s
  user API key:  %s

Try:
  curl %s/                                   public page
  curl %s/admin/                             401 unauthenticated (no key)
  curl -H 'X-API-Key: %s' %s/admin/   403 role_required
  curl -H 'X-API-Key: %s' %s/admin/  200, admin area
  curl -H 'Referer: https://elsewhere.example/' %s/images/logo.svg   403 hotlink_blocked
  curl %s/private/                           403 directory_listing_disabled
  curl %s/pub/                               a listing
  curl %s/internal/                          404, concealed
  curl %s/.env                               403 path_forbidden (dotfile)
  curl -H 'X-Forwarded-For: 203.0.113.7' %s/  403 ip_blocked
  curl '%s/%%2e%%2e/etc/passwd'                400 bad_request
  curl -H 'Accept: application/json' %s/admin/   the same refusal as problem+json
Open %s/ in a browser for the HTML refusal pages.
`, version, base, d.AdminKey, d.UserKey, base, base, d.UserKey, base, d.AdminKey, base, base, base, base, base, base, base, base, base, base)
}
