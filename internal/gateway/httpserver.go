package gateway

import (
	"net/http"
	"time"

	"github.com/warden-gateway/warden/internal/config"
)

// Safe defaults for the listening server; each can be set under limits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second // slowloris: a client gets this long to send its headers
	DefaultReadTimeout       = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

// NewHTTPServer wraps the gateway in an http.Server with the limits applied:
// the timeouts and header size here (the body limit and the checks that run
// before any rule are the engine's). Serve it on WrapListener(ln, l) for the
// connection limit and the framing (request smuggling) check.
func NewHTTPServer(addr string, h http.Handler, l *config.Limits) *http.Server {
	if l == nil {
		l = &config.Limits{}
	}
	pick := func(d config.Duration, def time.Duration) time.Duration {
		if d.Duration > 0 {
			return d.Duration
		}
		return def
	}
	mhb := DefaultMaxHeaderBytes
	if l.MaxHeaderBytes > 0 {
		mhb = l.MaxHeaderBytes
	}
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: pick(l.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       pick(l.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      l.WriteTimeout.Duration, // 0: streams and websockets may run long
		IdleTimeout:       pick(l.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    mhb,
		ConnState:         trackConnState,
		ConnContext:       connContext,
	}
}
