package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"strings"
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
	op := newOps()
	logger := op.logger
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
	defer func() {
		if d != nil {
			d.Close()
		}
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden: the policy does not compile; not serving:\n%v\n", err)
		return 1
	}
	if err := rt.Prime(context.Background(), 10*time.Second); err != nil {
		logger.Warn("starting without some keys; rules that need them answer 503 until they load", "error", err.Error())
	}
	srv.Swap(rt)
	rt.Start(context.Background())
	if err := op.start(rt, srv.Engine); err != nil {
		fmt.Fprintf(os.Stderr, "warden: %v\n", err)
		return 1
	}
	defer op.close()

	live, err := newLiveServer(listenAddr(rt.Config, *listen), rt.Config.Limits, srv, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden: listen: %v\n", err)
		return 1
	}
	base := "http://" + live.Addr()
	if d != nil {
		printDemo(base, d)
	} else {
		fmt.Fprintf(os.Stderr, "warden %s serving %s on %s (%d rules)\n", version, *cfgPath, base, rt.Policy.RuleCount())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rl := &reloader{path: *cfgPath, listenFlag: *listen, load: load, srv: srv, live: live, ops: op, logger: logger}
	rl.start(ctx)
	select {
	case err := <-live.errc:
		fmt.Fprintf(os.Stderr, "warden: %v\n", err)
		return 1
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = live.shutdown(sctx)
	}
	return 0
}

func printDemo(base string, d *demo.Demo) {
	userTok, _ := d.Token("alice", []string{"user"}, 12*time.Hour)
	adminTok, _ := d.Token("root", []string{"admin"}, 12*time.Hour)
	b := base
	lines := []string{
		fmt.Sprintf("warden %s — built-in demo on %s", version, b),
		"",
		"  admin API key: " + d.AdminKey,
		"  user API key:  " + d.UserKey,
		"  JWT (user):    " + userTok,
		"  JWT (admin):   " + adminTok,
		"  more tokens:   warden token --key " + d.SigningKeyFile + " --sub bob --role admin",
		"",
		"Try:",
		"  curl " + b + "/                                 public page",
		"  curl " + b + "/admin/                           401 unauthenticated (no key)",
		"  curl -H 'X-API-Key: " + d.UserKey + "' " + b + "/admin/    403 role_required",
		"  curl -H 'X-API-Key: " + d.AdminKey + "' " + b + "/admin/   200, the admin area",
		"  curl " + b + "/api/hello.json                   401 unauthenticated",
		"  curl -H 'Authorization: Bearer <JWT (user)>' " + b + "/api/hello.json         200",
		"  curl -H 'Authorization: Bearer <JWT (user)>' " + b + "/api/admin/stats.json   403 role_required",
		"  curl -H 'Authorization: Bearer a.b.c' " + b + "/api/hello.json                401 invalid_credentials",
		"  curl -H 'Referer: https://elsewhere.example/' " + b + "/images/logo.svg   403 hotlink_blocked",
		"  curl " + b + "/private/                         403 directory_listing_disabled",
		"  curl " + b + "/pub/                             a directory listing",
		"  curl " + b + "/internal/                        404, concealed",
		"  curl " + b + "/.env                             403 path_forbidden (dotfile)",
		"  curl -H 'X-Forwarded-For: 203.0.113.7' " + b + "/   403 ip_blocked",
		"  curl '" + b + "/%2e%2e/etc/passwd'              400 bad_request",
		"  curl -H 'Accept: application/json' " + b + "/admin/   the same refusal as problem+json",
		"Open " + b + "/ in a browser for the HTML refusal pages.",
	}
	fmt.Fprintln(os.Stderr, strings.Join(lines, "\n"))
}
