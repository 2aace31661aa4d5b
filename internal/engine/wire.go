package engine

import (
	"crypto/x509"
	"io"
	"net/http"
)

// Wire is a request as parts, the way every front end can hand one over: the
// gateway and the middleware from an *http.Request, forward-auth from the
// X-Forwarded-* headers of a trusted proxy, ext_authz from a CheckRequest,
// replay from a log record, explain from its flags.
type Wire struct {
	Method string
	// Target is the request target exactly as the client sent it:
	// origin-form ("/a/b?q") or absolute-form ("http://h/a/b?q").
	Target string
	Proto  string
	Host   string
	// RemoteAddr is the TCP peer, "ip:port" or "ip".
	RemoteAddr string
	// Header is the request's header. Judge drops from it what must not
	// reach an upstream (names with '_', identity headers from untrusted
	// peers): front ends forward what is left.
	Header http.Header
	// TransferEncoding is what net/http moved out of Header.
	TransferEncoding []string
	TLS              bool
	// ClientCerts are the certificates the TLS client presented, leaf
	// first (tls.ConnectionState.PeerCertificates; the handshake asks for
	// them without verifying, see tlsconf.Options.RequestClientCert).
	ClientCerts []*x509.Certificate
	// ServerName is the name the TLS client asked for (SNI), "" when none.
	ServerName string
	// Body is nil when the front end has none (forward-auth); then the WAF
	// judges the rest of the request. ContentLength is -1 when unknown.
	Body          io.ReadCloser
	ContentLength int64
	// Framing is why the request's bytes on the connection were ambiguous
	// (request smuggling), as a connection framer judged them; "" when they
	// were not, or when the front end has no framer.
	Framing string
}

// FromHTTP takes the parts of an *http.Request. The header and body are
// shared, not copied.
func FromHTTP(r *http.Request) Wire {
	target := r.RequestURI
	if target == "" { // built in-process (middleware, tests)
		target = r.URL.RequestURI()
	}
	w := Wire{
		Method: r.Method, Target: target, Proto: r.Proto, Host: r.Host,
		RemoteAddr: r.RemoteAddr, Header: r.Header, TransferEncoding: r.TransferEncoding,
		TLS: r.TLS != nil, Body: r.Body, ContentLength: r.ContentLength,
	}
	if r.TLS != nil {
		w.ClientCerts = r.TLS.PeerCertificates
		w.ServerName = r.TLS.ServerName
	}
	return w
}
