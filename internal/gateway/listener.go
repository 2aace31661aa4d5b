package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"

	"github.com/warden-gateway/warden/internal/config"
)

// Limits that have no default in net/http.
const (
	// DefaultMaxConnections bounds the open client connections when
	// limits.max_connections is not set; negative means no limit. Each
	// proxied connection can hold two file descriptors (client and
	// upstream), so the process needs RLIMIT_NOFILE above twice this.
	DefaultMaxConnections = 10000
)

// MaxConnections is the connection limit in force: 0 means none.
func MaxConnections(l *config.Limits) int {
	switch {
	case l == nil || l.MaxConnections == 0:
		return DefaultMaxConnections
	case l.MaxConnections < 0:
		return 0
	}
	return l.MaxConnections
}

// WrapListener applies the connection-level limits: at most
// MaxConnections(l) open connections, and the framing check Harden relies
// on. Over the connection limit, Accept waits for a slot (new connections
// queue in the kernel's accept backlog, as HAProxy's maxconn does) after
// closing one idle keep-alive connection to make room, as nginx does when
// it runs out of worker_connections. NewHTTPServer installs the hooks
// (ConnState, ConnContext) the wrapper needs; a server built otherwise still
// gets the connection limit but no framing verdicts.
func WrapListener(ln net.Listener, l *config.Limits) net.Listener {
	mhb := DefaultMaxHeaderBytes
	if l != nil && l.MaxHeaderBytes > 0 {
		mhb = l.MaxHeaderBytes
	}
	gl := &guardListener{
		Listener: ln,
		// net/http reads up to MaxHeaderBytes plus 4096 bytes of slack
		// before answering 431; the framer follows it as far.
		maxBlock: mhb + 4096,
		closed:   make(chan struct{}),
		idle:     make(map[*guardConn]struct{}),
	}
	if n := MaxConnections(l); n > 0 {
		gl.slots = make(chan struct{}, n)
	}
	return gl
}

type guardListener struct {
	net.Listener
	slots chan struct{} // nil: no connection limit
	// encrypted: the bytes are TLS records; the framer reads the
	// plaintext above them instead (see tlslistener.go).
	encrypted bool
	maxBlock  int
	closed    chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	idle      map[*guardConn]struct{}
}

func (gl *guardListener) Accept() (net.Conn, error) {
	if gl.slots != nil {
		select {
		case gl.slots <- struct{}{}:
		default:
			gl.closeOneIdle()
			select {
			case gl.slots <- struct{}{}:
			case <-gl.closed:
				return nil, net.ErrClosed
			}
		}
	}
	c, err := gl.Listener.Accept()
	if err != nil {
		gl.release()
		return nil, err
	}
	return &guardConn{Conn: c, l: gl, f: framer{maxBlock: gl.maxBlock, first: true}}, nil
}

func (gl *guardListener) Close() error {
	gl.closeOnce.Do(func() { close(gl.closed) })
	return gl.Listener.Close()
}

func (gl *guardListener) release() {
	if gl.slots != nil {
		<-gl.slots
	}
}

// closeOneIdle closes a keep-alive connection that waits for its next
// request, so that a new client gets its slot.
func (gl *guardListener) closeOneIdle() {
	gl.mu.Lock()
	var victim *guardConn
	for c := range gl.idle {
		victim = c
		delete(gl.idle, c)
		break
	}
	gl.mu.Unlock()
	if victim != nil {
		victim.Close()
	}
}

func (gl *guardListener) setIdle(c *guardConn, idle bool) {
	gl.mu.Lock()
	if idle {
		gl.idle[c] = struct{}{}
	} else {
		delete(gl.idle, c)
	}
	gl.mu.Unlock()
}

// trackConnState is the http.Server ConnState hook for WrapListener.
func trackConnState(c net.Conn, s http.ConnState) {
	switch tc := c.(type) {
	case *tls.Conn:
		c = tc.NetConn()
	case *tlsPlainConn:
		c = tc.g
	}
	if g, ok := c.(*guardConn); ok {
		g.l.setIdle(g, s == http.StateIdle)
	}
}

type guardKey struct{}

// connContext is the http.Server ConnContext hook for WrapListener: it
// hands each request its connection's framing verdicts.
func connContext(ctx context.Context, c net.Conn) context.Context {
	switch g := c.(type) {
	case *guardConn:
		return context.WithValue(ctx, guardKey{}, g)
	case *tlsPlainConn:
		return context.WithValue(context.WithValue(ctx, guardKey{}, g.g), tlsConnKey{}, g.Conn)
	}
	return ctx
}

// guardConn reads the client's bytes through a framer that finds each
// request's header block, judges its framing, and skips its body, so that a
// verdict is ready for every request before net/http hands it to a handler.
type guardConn struct {
	net.Conn
	l        *guardListener
	released sync.Once
	mu       sync.Mutex // guards f: Read and the handler's verdict may race
	f        framer
}

func (c *guardConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.l.encrypted {
		c.scan(b[:n])
	}
	return n, err
}

func (c *guardConn) scan(b []byte) {
	c.mu.Lock()
	c.f.scan(b)
	c.mu.Unlock()
}

func (c *guardConn) Close() error {
	err := c.Conn.Close()
	c.released.Do(func() {
		c.l.setIdle(c, false)
		c.l.release()
	})
	return err
}

// verdict returns why the request with this method and target may not be
// served ("" when it may). net/http answers some requests itself ("OPTIONS
// *", malformed ones it then closes the connection for), so verdicts of
// requests that never reached a handler are skipped by matching the
// request line.
func (c *guardConn) verdict(method, target string) string {
	key := requestKey(method, target)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.pop(key)
}

// framingVerdict is the framer's verdict on r ("" when its bytes were
// unambiguous). net/http normalizes some ambiguous shapes before a handler
// could see them, so the bytes are judged by the connection wrapper of
// WrapListener; a request that did not come through it has no verdict.
func framingVerdict(r *http.Request) string {
	if g, ok := r.Context().Value(guardKey{}).(*guardConn); ok {
		return g.verdict(r.Method, r.RequestURI)
	}
	return ""
}
