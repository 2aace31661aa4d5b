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
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
)

// liveServer is the gateway's listening side, replaceable while it serves:
// one accept loop per address hands each connection to the http.Server in
// service, so a reload that changes limits starts a new http.Server (new
// timeouts, header limit, connection limit) on the same socket without
// closing it, and connections already open finish under the old one. A
// reload that changes the address opens the new socket before the old one
// closes.
type liveServer struct {
	handler http.Handler
	logger  *slog.Logger

	mu     sync.Mutex
	raw    net.Listener // the socket
	addr   string       // as configured
	limits config.Limits
	cur    atomic.Pointer[generation]
	done   chan struct{} // closed by shutdown
	errc   chan error
}

// generation is one http.Server and the listener it accepts from.
type generation struct {
	hs   *http.Server
	feed *feedListener
}

// newLiveServer listens on addr and serves h with limits.
func newLiveServer(addr string, limits config.Limits, h http.Handler, logger *slog.Logger) (*liveServer, error) {
	raw, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &liveServer{handler: h, logger: logger, raw: raw, addr: addr, limits: limits, done: make(chan struct{}), errc: make(chan error, 1)}
	s.startGeneration()
	go s.acceptLoop(raw)
	return s, nil
}

// Addr is the address the socket is bound to.
func (s *liveServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw.Addr().String()
}

// Limits are the limits in service.
func (s *liveServer) Limits() config.Limits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits
}

// startGeneration puts a new http.Server with the current limits in
// service and returns the one it replaces (nil at first).
func (s *liveServer) startGeneration() *generation {
	l := s.limits
	feed := &feedListener{ch: make(chan net.Conn), closed: make(chan struct{}), addr: s.raw.Addr()}
	g := &generation{hs: gateway.NewHTTPServer(s.addr, s.handler, &l), feed: feed}
	ln := gateway.WrapListener(feed, &l)
	go func() {
		if err := g.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case s.errc <- err:
			default:
			}
		}
	}()
	return s.cur.Swap(g)
}

// acceptLoop hands every connection of raw to the generation in service.
// A generation closed while a connection was on its way hands it back, and
// it goes to the next one: no connection is dropped by a reload.
func (s *liveServer) acceptLoop(raw net.Listener) {
	for {
		c, err := raw.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return // closed: shutdown, or the address moved
		}
		for {
			g := s.cur.Load()
			if g.feed.give(c) {
				break
			}
			select {
			case <-s.done:
				c.Close()
				return
			default:
			}
		}
	}
}

// apply makes addr and limits those in service. What is unchanged is left
// alone; a new address is bound before the old socket closes, and an
// address that cannot be bound is an error with nothing changed.
func (s *liveServer) apply(addr string, limits config.Limits) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	addrChanged := addr != s.addr
	limitsChanged := !reflect.DeepEqual(stripPos(limits), stripPos(s.limits))
	if !addrChanged && !limitsChanged {
		return nil
	}
	var oldRaw net.Listener
	if addrChanged {
		raw, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w (still serving on %s)", addr, err, s.addr)
		}
		oldRaw, s.raw, s.addr = s.raw, raw, addr
	}
	s.limits = limits
	old := s.startGeneration()
	if addrChanged {
		go s.acceptLoop(s.raw)
		oldRaw.Close()
	}
	go retire(old)
	return nil
}

// retire ends a generation no connection is handed to any more, without
// dropping a request. Shutdown at once would: net/http drops, unanswered,
// a request it reads after Shutdown began, and a client that connected
// just before the swap and sends its first request just after would get
// EOF on a fresh connection, which no client retries. So keep-alives go
// off first (idle connections close; the clients retry those, RFC 9112
// 9.3.1; active ones close after their response), and Shutdown follows once
// every new connection has had the time the old limits give to send its
// headers.
func retire(old *generation) {
	old.hs.SetKeepAlivesEnabled(false)
	grace := old.hs.ReadHeaderTimeout
	if grace <= 0 || grace > 30*time.Second {
		grace = 30 * time.Second
	}
	time.Sleep(grace + time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = old.hs.Shutdown(ctx)
}

// stripPos drops positions, so only values are compared.
func stripPos(l config.Limits) config.Limits {
	for _, d := range []*config.Duration{&l.ReadHeaderTimeout, &l.ReadTimeout, &l.WriteTimeout, &l.IdleTimeout} {
		d.Pos = config.Pos{}
	}
	return l
}

// shutdown stops accepting and waits up to ctx for requests in flight.
func (s *liveServer) shutdown(ctx context.Context) error {
	s.mu.Lock()
	close(s.done)
	s.raw.Close()
	g := s.cur.Load()
	s.mu.Unlock()
	return g.hs.Shutdown(ctx)
}

// feedListener is a net.Listener fed connections by the accept loop.
type feedListener struct {
	ch        chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	addr      net.Addr
}

// give hands c to the server behind l; false when l is closed (c is not
// taken).
func (l *feedListener) give(c net.Conn) bool {
	select {
	case <-l.closed:
		return false
	default:
	}
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *feedListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *feedListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *feedListener) Addr() net.Addr { return l.addr }

// reloader reloads the whole config on SIGHUP and when the policy file
// changes: the policy, the operator's settings (log format, access log,
// metrics), and the listener (address and limits). Only a config that
// loads, compiles and binds replaces the one in service.
type reloader struct {
	path string // the policy file; "" for the demo (no file to watch)
	// listenFlag is --listen: when set, it overrides the file's listen on
	// every reload too.
	listenFlag string
	load       func() (*gateway.Runtime, error)
	srv        *gateway.Server
	live       *liveServer
	ops        *ops
	logger     *slog.Logger
	// swapped, when set, hears of every runtime swapped in (the decision
	// services take the new peers; the store notes what it cannot change).
	swapped func(old, cur *gateway.Runtime)
	mu      sync.Mutex
}

// listenAddr is the gateway address a config asks for.
func listenAddr(cfg *config.Config, flagAddr string) string {
	switch {
	case flagAddr != "":
		return flagAddr
	case cfg.Listen != "":
		return cfg.Listen
	}
	return "127.0.0.1:8080"
}

// reload loads the config again and applies it; the error says why the
// previous config keeps serving.
func (r *reloader) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	nrt, err := r.load()
	if err == nil && r.live != nil {
		err = r.live.apply(listenAddr(nrt.Config, r.listenFlag), nrt.Config.Limits)
		if err != nil {
			nrt.Close()
		}
	}
	if r.ops != nil {
		r.ops.reloaded(nrt, err)
	}
	if err != nil {
		r.logger.Error("reload failed; the previous policy keeps serving", "error", err.Error())
		return err
	}
	// Fetch the new policy's keys before it replaces the old one.
	if err := nrt.Prime(context.Background(), 10*time.Second); err != nil {
		r.logger.Warn("reloaded policy starts without some keys", "error", err.Error())
	}
	nrt.Start(context.Background())
	old := r.srv.Swap(nrt)
	if r.swapped != nil {
		r.swapped(old, nrt)
	}
	if old != nil {
		if fixed := fixedChanges(old.Config, nrt.Config); len(fixed) > 0 {
			r.logger.Warn("reloaded; these settings change only on restart", "keys", fixed)
		}
		old.Close()
	}
	if r.live != nil {
		r.logger.Info("policy reloaded", "rules", nrt.Policy.RuleCount(), "listen", r.live.Addr())
	} else {
		r.logger.Info("policy reloaded", "rules", nrt.Policy.RuleCount())
	}
	return nil
}

// fixedChanges names the settings that changed but apply only at start:
// the listeners beside the gateway's.
func fixedChanges(old, cur *config.Config) []string {
	var out []string
	if !reflect.DeepEqual(listenerOf(old.Admin), listenerOf(cur.Admin)) {
		out = append(out, "admin")
	}
	if (old.TLS == nil) != (cur.TLS == nil) {
		// The TLS front door is set up at start (its certificate files
		// reload by themselves).
		out = append(out, "tls")
	}
	if (old.ForwardAuth == nil) != (cur.ForwardAuth == nil) || old.ForwardAuth != nil && old.ForwardAuth.Listen.Value != cur.ForwardAuth.Listen.Value {
		out = append(out, "forward_auth.listen")
	}
	if (old.ExtAuthz == nil) != (cur.ExtAuthz == nil) || old.ExtAuthz != nil && old.ExtAuthz.Listen.Value != cur.ExtAuthz.Listen.Value {
		out = append(out, "ext_authz.listen")
	}
	return out
}

func listenerOf(a *config.Admin) [2]string {
	if a == nil {
		return [2]string{"-", "-"}
	}
	return [2]string{a.Listen.Value, a.TokenFile.Value}
}

// start reloads on SIGHUP and on changes of the policy file until ctx
// ends. The watch is in place when start returns.
func (r *reloader) start(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	changed := r.watch(ctx)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = r.reload()
			case <-changed:
				_ = r.reload()
			}
		}
	}()
}

// watch reports changes of the policy file. It watches the file's folder,
// not the file: editors and config managers replace a file by renaming
// another over it, which a watch on the file itself would lose. Bursts of
// events (a write in several parts) are settled for a moment first.
func (r *reloader) watch(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	if r.path == "" {
		return out
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		r.logger.Warn("cannot watch the policy file; reload with SIGHUP", "error", err.Error())
		return out
	}
	abs, _ := filepath.Abs(r.path)
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		r.logger.Warn("cannot watch the policy file; reload with SIGHUP", "error", err.Error())
		return out
	}
	const settle = 100 * time.Millisecond
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if p, _ := filepath.Abs(ev.Name); p == abs && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					timer = time.After(settle)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				r.logger.Warn("watching the policy file", "error", err.Error())
			case <-timer:
				timer = nil
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}
