package gateway

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/warden-gateway/warden/internal/config"
)

// acmeTLSALPN is the protocol of an ACME tls-alpn-01 validation (RFC 8737):
// the certificate is the whole answer, no data follows the handshake.
const acmeTLSALPN = "acme-tls/1"

// ServeTLSOn prepares hs to serve HTTPS on ln with hs.TLSConfig and
// returns the listener to pass to hs.Serve. The connection limit applies
// as on plain HTTP, and so does the framing (request smuggling) check of
// WrapListener: a front proxy that talks HTTPS to warden can disagree with
// net/http about where a request ends just as well as one that talks HTTP.
//
// net/http only knows a connection is TLS when it is handed the *tls.Conn
// itself, and the framer has to read the plaintext, which only exists
// above it. So the handshake is done here, before net/http sees the
// connection. A connection that negotiated HTTP/2 goes to net/http as the
// *tls.Conn (h2 frames carry their own lengths; net/http checks
// Content-Length against them); an HTTP/1.x connection goes as a wrapper
// whose reads pass through the framer, and hs.Handler is wrapped to give
// its requests r.TLS, as net/http would have.
func ServeTLSOn(hs *http.Server, ln net.Listener, l *config.Limits) net.Listener {
	gl := WrapListener(ln, l).(*guardListener)
	gl.encrypted = true
	hs.Handler = withTLSState(hs.Handler)
	handshake := DefaultReadHeaderTimeout
	if l != nil && l.ReadHeaderTimeout.Duration > 0 {
		handshake = l.ReadHeaderTimeout.Duration
	}
	tl := &tlsListener{gl: gl, cfg: hs.TLSConfig, handshake: handshake, ready: make(chan net.Conn), done: make(chan struct{})}
	go tl.acceptLoop()
	return tl
}

// tlsListener accepts raw connections, shakes hands with each in its own
// goroutine (a slow client must not hold up the others), and hands
// net/http the connections that completed.
type tlsListener struct {
	gl        *guardListener
	cfg       *tls.Config
	handshake time.Duration
	ready     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	err       error // why the accept loop stopped
}

func (tl *tlsListener) acceptLoop() {
	var backoff time.Duration
	for {
		raw, err := tl.gl.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like pass; back off as
				// net/http's own accept loop does.
				if backoff == 0 {
					backoff = 5 * time.Millisecond
				} else if backoff *= 2; backoff > time.Second {
					backoff = time.Second
				}
				select {
				case <-time.After(backoff):
					continue
				case <-tl.done:
				}
			}
			tl.mu.Lock()
			tl.err = err
			tl.mu.Unlock()
			tl.Close()
			return
		}
		backoff = 0
		go tl.shake(raw.(*guardConn))
	}
}

func (tl *tlsListener) shake(g *guardConn) {
	tc := tls.Server(g, tl.cfg)
	_ = g.SetDeadline(time.Now().Add(tl.handshake))
	if err := tc.Handshake(); err != nil {
		tc.Close()
		return
	}
	_ = g.SetDeadline(time.Time{})
	var c net.Conn = tc
	switch tc.ConnectionState().NegotiatedProtocol {
	case "h2":
	case acmeTLSALPN:
		tc.Close()
		return
	default:
		c = &tlsPlainConn{Conn: tc, g: g}
	}
	select {
	case tl.ready <- c:
	case <-tl.done:
		c.Close()
	}
}

func (tl *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-tl.ready:
		return c, nil
	case <-tl.done:
		tl.mu.Lock()
		defer tl.mu.Unlock()
		if tl.err != nil {
			return nil, tl.err
		}
		return nil, net.ErrClosed
	}
}

func (tl *tlsListener) Close() error {
	var err error
	tl.closeOnce.Do(func() {
		close(tl.done)
		err = tl.gl.Close()
	})
	return err
}

func (tl *tlsListener) Addr() net.Addr { return tl.gl.Addr() }

// tlsPlainConn is an HTTP/1.x connection over TLS as net/http reads it:
// the plaintext passes through the framer of the connection underneath.
type tlsPlainConn struct {
	*tls.Conn
	g *guardConn
}

func (c *tlsPlainConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.g.scan(b[:n])
	}
	return n, err
}

type tlsConnKey struct{}

// withTLSState gives a request on a tlsPlainConn its r.TLS, a copy per
// request as net/http makes it.
func withTLSState(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			if tc, ok := r.Context().Value(tlsConnKey{}).(*tls.Conn); ok {
				st := tc.ConnectionState()
				r.TLS = &st
			}
		}
		h.ServeHTTP(w, r)
	})
}
