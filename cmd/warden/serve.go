package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/demo"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/state"
)

func cmdServe(args []string) int {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgPath := fl.String("config", "", "policy file (default: the built-in demo)")
	listen := fl.String("listen", "", "address to listen on (overrides the file's listen; default 127.0.0.1:8080)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	op := newOps()
	defer op.flushLog()
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
	store, err := engine.OpenStore(rt.Config, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden: %v\n", err)
		return 1
	}
	if store == nil {
		// No state section: the in-memory store the engine would make on
		// first use, made now so that the admin listener's ban API and the
		// gateway share one.
		store = state.NewMemory(state.MemoryOptions{})
	}
	// The store outlives reloads: counters and bans survive them.
	srv.SetStore(store)
	defer store.Close()
	srv.Swap(rt)
	rt.Start(context.Background())
	if err := op.start(rt, srv.Engine); err != nil {
		fmt.Fprintf(os.Stderr, "warden: %v\n", err)
		return 1
	}
	defer op.close()

	// A config with decision services and no listen runs only those.
	runGateway := *listen != "" || rt.Config.Listen != "" || !hasDecisionServices(rt)
	errc := make(chan error, 3)
	services, err := startDecisionServices(srv.Engine, rt, logger, errc)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden: %v\n", err)
		return 1
	}
	defer services.shutdown(context.Background())

	// The gateway: over plain HTTP a live server whose address and limits
	// a reload can change; over TLS the front door (certificates, ACME,
	// redirect), whose listener stays until a restart.
	var live *liveServer
	var hs *http.Server
	if runGateway {
		addr := listenAddr(rt.Config, *listen)
		var base string
		if rt.Config.TLS == nil {
			if live, err = newLiveServer(addr, rt.Config.Limits, srv, logger); err != nil {
				fmt.Fprintf(os.Stderr, "warden: listen: %v\n", err)
				return 1
			}
			base = "http://" + live.Addr()
			go func() { errc <- <-live.errc }()
		} else {
			hs = gateway.NewHTTPServer(addr, srv, &rt.Config.Limits)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				fmt.Fprintf(os.Stderr, "warden: listen: %v\n", err)
				return 1
			}
			front, err := openFrontDoor(rt.Config, hs, ln, logger)
			if err != nil {
				ln.Close()
				fmt.Fprintf(os.Stderr, "warden: %v\n", err)
				return 1
			}
			defer front.Close()
			base = front.Scheme + "://" + ln.Addr().String()
			go func() { errc <- front.Serve() }()
		}
		if d != nil {
			printDemo(base, d)
		} else {
			fmt.Fprintf(os.Stderr, "warden %s serving %s on %s (%d rules)\n", version, *cfgPath, base, rt.Policy.RuleCount())
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	first := rt.Config
	rl := &reloader{path: *cfgPath, listenFlag: *listen, load: load, srv: srv, live: live, ops: op, logger: logger,
		swapped: func(old, nrt *engine.Runtime) {
			if !reflect.DeepEqual(stateShape(nrt.Config), stateShape(first)) {
				logger.Warn("the state section changed; the store in use stays until a restart")
			}
			services.noteReload(old, nrt, logger)
		}}
	rl.start(ctx)
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "warden: %v\n", err)
			return 1
		}
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if live != nil {
			_ = live.shutdown(sctx)
		}
		if hs != nil {
			_ = hs.Shutdown(sctx)
		}
		services.shutdown(sctx)
	}
	return 0
}

// stateShape is what of the state section a reload cannot change.
func stateShape(c *config.Config) any {
	if c.State == nil {
		return nil
	}
	st := *c.State
	st.Pos = config.Pos{}
	if st.Redis != nil {
		r := *st.Redis
		r.Pos, r.Addr.Pos, r.Username.Pos, r.PasswordFile.Pos, r.Timeout.Pos = config.Pos{}, config.Pos{}, config.Pos{}, config.Pos{}, config.Pos{}
		st.Redis = &r
	}
	st.Store.Pos, st.OnError.Pos = config.Pos{}, config.Pos{}
	return st
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
