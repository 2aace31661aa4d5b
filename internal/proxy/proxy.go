// Package proxy forwards allowed requests to an upstream over HTTP(S). It is
// built on httputil.ReverseProxy with a Rewrite hook, so that what the
// upstream receives is decided here and nowhere else: the canonical path the
// rules judged, forwarding headers warden vouches for, and identity headers
// no client can forge.
package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/decision"
)

// Defaults for the zero values of Config.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultTLSHandshakeTimeout   = 10 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultMaxIdleConnsPerHost   = 512
)

// Identity headers warden sets for upstreams. Every incoming header that
// starts with IdentityHeaderPrefix is dropped before forwarding, so an
// upstream that sees one knows warden put it there.
const (
	IdentityHeaderPrefix = "X-Warden-"
	UserHeader           = "X-Warden-User"
	RolesHeader          = "X-Warden-Roles"
)

// Config describes one upstream and how to reach it.
type Config struct {
	// Upstream is the base URL, "http://127.0.0.1:9000" or "https://...".
	// A path in it is prepended to the forwarded path, like nginx
	// proxy_pass with a URI: "http://h/api" + "/users" → "/api/users".
	Upstream string
	// PreserveHost sends the client's Host upstream instead of the
	// upstream's own host.
	PreserveHost bool
	// DialTimeout bounds the TCP connect; default 5s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake with an https upstream;
	// default 10s.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response headers after
	// the request was written; default 30s. Exceeding it refuses with
	// upstream_timeout (504).
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes keep-alive connections idle this long; default
	// 90s.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost sizes the keep-alive pool; default 512, so that
	// concurrent traffic reuses connections instead of opening new ones.
	MaxIdleConnsPerHost int
	// MaxConnsPerHost bounds all connections to the upstream, idle or busy
	// (0: no bound). Requests beyond it wait for a connection. Upgraded
	// (websocket) connections count against it, so size it for them.
	MaxConnsPerHost int
	// FlushInterval is passed to httputil.ReverseProxy: 0 (the default)
	// flushes event-streams and bodies of unknown length at once and buffers
	// the rest; a negative value flushes after every write.
	FlushInterval time.Duration
	// RootCAs verifies an https upstream's certificate; nil means the
	// system roots.
	RootCAs *x509.CertPool
	// ErrorLog receives the few errors ReverseProxy logs itself (a failed
	// read of the upstream body mid-stream); nil means the log package's
	// standard logger.
	ErrorLog *log.Logger
}

// ErrorFunc renders a refusal for an upstream failure; the gateway passes
// its renderer. It is called before anything was written to w.
type ErrorFunc func(w http.ResponseWriter, r *http.Request, code decision.ReasonCode, err error)

// Proxy forwards requests to one upstream through its own tuned transport.
// It is safe for concurrent use.
type Proxy struct {
	target *url.URL
	// prefixPath and prefixRawPath are the upstream URL's path without
	// trailing slashes, decoded and escaped.
	prefixPath    string
	prefixRawPath string
	preserveHost  bool
	transport     *http.Transport
	reverse       *httputil.ReverseProxy
	onError       ErrorFunc
}

// New validates cfg and builds a Proxy. A nil onError renders a plain-text
// status page.
func New(cfg Config, onError ErrorFunc) (*Proxy, error) {
	target, err := parseUpstream(cfg.Upstream)
	if err != nil {
		return nil, err
	}
	if err := applyDefaults(&cfg); err != nil {
		return nil, err
	}
	prefixPath := strings.TrimRight(target.Path, "/")
	prefixRawPath := strings.TrimRight(target.EscapedPath(), "/")
	if !escapesTo(prefixPath, prefixRawPath) {
		return nil, fmt.Errorf("proxy: upstream %q: path %q has an ambiguous encoding (an escaped slash at its end?)", cfg.Upstream, target.EscapedPath())
	}
	if onError == nil {
		onError = plainError
	}
	p := &Proxy{
		target:        target,
		prefixPath:    prefixPath,
		prefixRawPath: prefixRawPath,
		preserveHost:  cfg.PreserveHost,
		transport:     newTransport(cfg, target.Scheme == "https"),
		onError:       onError,
	}
	p.reverse = &httputil.ReverseProxy{
		Rewrite:       p.rewrite,
		Transport:     p.transport,
		FlushInterval: cfg.FlushInterval,
		ErrorLog:      cfg.ErrorLog,
		BufferPool:    newBufferPool(),
		ErrorHandler:  p.handleError,
		// The gateway's X-Request-Id is the one the client sees; an
		// upstream's copy would be a second, conflicting one.
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del("X-Request-Id")
			return nil
		},
	}
	return p, nil
}

func parseUpstream(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("proxy: upstream URL is empty")
	}
	if !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("proxy: upstream %q has no scheme (write it as http://host:port or https://host)", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("proxy: upstream %q is not a valid URL: %w", raw, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("proxy: upstream %q: scheme must be http or https, not %q", raw, u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("proxy: upstream %q has no host (write it as http://host:port)", raw)
	case u.User != nil:
		return nil, fmt.Errorf("proxy: upstream %q must not carry user credentials", raw)
	case u.RawQuery != "" || u.ForceQuery:
		return nil, fmt.Errorf("proxy: upstream %q must not carry a query; the client's query is forwarded", raw)
	case u.Fragment != "":
		return nil, fmt.Errorf("proxy: upstream %q must not carry a fragment", raw)
	}
	return u, nil
}

func applyDefaults(cfg *Config) error {
	durations := []struct {
		name  string
		value *time.Duration
		def   time.Duration
	}{
		{"dial timeout", &cfg.DialTimeout, DefaultDialTimeout},
		{"TLS handshake timeout", &cfg.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout},
		{"response header timeout", &cfg.ResponseHeaderTimeout, DefaultResponseHeaderTimeout},
		{"idle connection timeout", &cfg.IdleConnTimeout, DefaultIdleConnTimeout},
	}
	for _, d := range durations {
		if *d.value < 0 {
			return fmt.Errorf("proxy: %s must not be negative, got %v", d.name, *d.value)
		}
		if *d.value == 0 {
			*d.value = d.def
		}
	}
	if cfg.MaxConnsPerHost < 0 {
		return fmt.Errorf("proxy: max connections per host must not be negative, got %d", cfg.MaxConnsPerHost)
	}
	if cfg.MaxIdleConnsPerHost < 0 {
		return fmt.Errorf("proxy: max idle connections per host must not be negative, got %d", cfg.MaxIdleConnsPerHost)
	}
	if cfg.MaxIdleConnsPerHost == 0 {
		cfg.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	return nil
}

func newTransport(cfg Config, https bool) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		// Never route upstream traffic through HTTP_PROXY from the
		// environment: the operator named the upstream, not a proxy.
		Proxy:       nil,
		DialContext: dialer.DialContext,
		// A custom TLS config disables HTTP/2 unless forced. WebSocket
		// upgrades still go over HTTP/1.1: the transport keeps them on
		// separate, HTTP/1.1-only connections.
		ForceAttemptHTTP2: https,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    cfg.RootCAs,
		},
		TLSHandshakeTimeout: cfg.TLSHandshakeTimeout,
		// One upstream host per transport, so the total equals the per-host
		// pool.
		MaxIdleConns:          cfg.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		IdleConnTimeout:       cfg.IdleConnTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		// Pass the client's Accept-Encoding through untouched; otherwise the
		// transport would ask for gzip on its own and decompress on the fly.
		DisableCompression: true,
	}
}

// Close drops the idle keep-alive connections, for when a Proxy is replaced
// on configuration reload. Requests in flight are not affected.
func (p *Proxy) Close() { p.transport.CloseIdleConnections() }

// outbound carries what Serve decided into the Rewrite hook and the error
// handler, which only see the request. It is itself the request's context
// (the client's context plus this one value), so that a forwarded request
// costs one allocation here instead of a context.WithValue node and a
// separate struct. It is never pooled: the transport may hold the context
// after ServeHTTP returned.
type outbound struct {
	context.Context
	in  *http.Request
	req *canonical.Request
	// rawPath is empty when net/url's default escaping of path already is
	// the judged escaped path, so the transport need not re-validate it.
	path    string
	rawPath string
	user    string
	roles   []string
	tag     any
}

type outboundKey struct{}

// Value answers outboundKey with the outbound itself and defers every other
// key to the client's context.
func (ob *outbound) Value(key any) any {
	if _, ok := key.(outboundKey); ok {
		return ob
	}
	return ob.Context.Value(key)
}

// outboundOf returns the outbound ServeAs attached to ctx, or nil.
func outboundOf(ctx context.Context) *outbound {
	if ob, ok := ctx.(*outbound); ok {
		return ob
	}
	ob, _ := ctx.Value(outboundKey{}).(*outbound)
	return ob
}

// Serve forwards r upstream with no identity headers. The forwarded path is
// exactly req.EscapedPath (after the upstream's prefix) and the query
// exactly req.RawQuery: what the rules judged is what the upstream gets.
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, req *canonical.Request) {
	p.ServeAs(w, r, req, "", nil)
}

// ServeAs is Serve with the identity warden vouches for: the upstream gets
// X-Warden-User and X-Warden-Roles (see SetIdentityHeaders). They are set
// after every client-sent X-Warden-* header was dropped.
func (p *Proxy) ServeAs(w http.ResponseWriter, r *http.Request, req *canonical.Request, user string, roles []string) {
	p.ServeTagged(w, r, req, user, roles, nil)
}

// ServeTagged is ServeAs with a value of the caller's (the gateway's
// outcome) that the error callback reads back with Tag. It rides on the
// one request copy the proxy makes anyway, so a forwarded request costs no
// extra context node and no second copy of the request to carry it.
func (p *Proxy) ServeTagged(w http.ResponseWriter, r *http.Request, req *canonical.Request, user string, roles []string, tag any) {
	ob := &outbound{Context: r.Context(), in: r, req: req, user: user, roles: roles, tag: tag}
	if req == nil {
		p.onError(w, r.WithContext(ob), decision.InternalError, errors.New("proxy: no canonical request to forward"))
		return
	}
	path := p.prefixPath + req.Path
	rawPath := p.prefixRawPath + req.EscapedPath
	// If EscapedPath did not decode to Path, net/url would silently send its
	// own encoding of Path, and the upstream could see a path the rules did
	// not. That is a bug in warden, not in the request: fail closed.
	if !strings.HasPrefix(req.Path, "/") {
		p.onError(w, r.WithContext(ob), decision.InternalError, fmt.Errorf("proxy: canonical path %q and escaped path %q disagree", req.Path, req.EscapedPath))
		return
	}
	switch {
	case defaultEscaping(path) == rawPath:
		// net/url sends exactly rawPath with RawPath left empty (and
		// rawPath then decodes to path), sparing the transport a
		// validation of RawPath on every request.
		rawPath = ""
	case !escapesTo(path, rawPath):
		p.onError(w, r.WithContext(ob), decision.InternalError, fmt.Errorf("proxy: canonical path %q and escaped path %q disagree", req.Path, req.EscapedPath))
		return
	}
	if up := r.Header.Get("Upgrade"); up != "" && !printableASCII(up) {
		p.onError(w, r.WithContext(ob), decision.BadRequest, fmt.Errorf("proxy: client asked to upgrade to invalid protocol %q", up))
		return
	}
	ob.path, ob.rawPath = path, rawPath
	p.reverse.ServeHTTP(w, r.WithContext(ob))
}

// Tag returns the value given to ServeTagged, for the error callback's
// request; nil for any other request.
func Tag(r *http.Request) any {
	if ob := outboundOf(r.Context()); ob != nil {
		return ob.tag
	}
	return nil
}

// rewrite shapes the outbound request. ReverseProxy has already removed
// hop-by-hop headers (including those named in Connection), Forwarded and
// X-Forwarded-*.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	ob := outboundOf(pr.In.Context())
	out := pr.Out
	if ob == nil {
		// Only Serve reaches here and it always sets ob. Without it there is
		// no judged path to send, so leave the URL hostless: the transport
		// fails and the error handler answers 502.
		out.URL = &url.URL{}
		return
	}
	out.URL.Scheme = p.target.Scheme
	out.URL.Host = p.target.Host
	out.URL.Opaque = ""
	out.URL.User = nil
	out.URL.Path = ob.path
	out.URL.RawPath = ob.rawPath
	out.URL.RawQuery = ob.req.RawQuery
	out.URL.ForceQuery = false
	out.URL.Fragment = ""
	out.URL.RawFragment = ""
	if p.preserveHost {
		out.Host = pr.In.Host
	} else {
		out.Host = "" // the transport uses URL.Host
	}

	dropIdentityHeaders(out.Header)
	dropIdentityHeaders(out.Trailer)
	dropOverrideHeaders(out.Header, ob.req.PeerTrusted)
	setForwardedHeaders(out.Header, pr.In, ob.req)
	SetIdentityHeaders(out.Header, ob.user, ob.roles)
}

func dropIdentityHeaders(h http.Header) {
	for name := range h {
		if len(name) >= len(IdentityHeaderPrefix) && strings.EqualFold(name[:len(IdentityHeaderPrefix)], IdentityHeaderPrefix) {
			delete(h, name)
		}
	}
}

// setForwardedHeaders sets X-Forwarded-For, X-Real-IP and Forwarded to the
// one client address the rules judged, and X-Forwarded-Host and
// X-Forwarded-Proto (also in Forwarded) to the host and scheme.
//
// The address is the same in all three, and alone. Upstreams read a chain
// differently: Express with "trust proxy", Rack and many applications take
// the leftmost entry, Go, nginx real_ip and Envoy count hops from the
// right. The entries left of the judged client were written by a party no
// one vouches for (a client behind a trusted load balancer can start the
// chain with any address), and a trusted proxy may have named the client
// in X-Real-IP or Forwarded only, so passing the chain on (with the peer
// appended) told the upstream of an address the rules never judged: the
// proxy's, or the client's own claim. A one-element chain means the same
// thing to every reader. The hops are in warden's decision log (peer).
func setForwardedHeaders(h http.Header, in *http.Request, req *canonical.Request) {
	// The values set below share one backing array; each header gets a
	// full slice expression, so an append by a later writer reallocates
	// instead of overwriting a neighbour.
	values := make([]string, 5)
	// One formatting of the client address serves all three headers.
	clientIP := ""
	if req.ClientIP.IsValid() {
		clientIP = req.ClientIP.Unmap().String()
	}
	// X-Real-IP and Forwarded are believed by many upstream frameworks; a
	// client must not be able to choose them.
	delete(h, "X-Real-Ip")
	delete(h, "Forwarded")
	delete(h, "X-Forwarded-For")
	if !req.PeerTrusted {
		// Other client-address headers, set by CDNs and load balancers,
		// are believed by some upstreams too; from a peer that is not a
		// trusted proxy they are the client's own claim.
		dropClientAddressHeaders(h)
	}
	if clientIP != "" {
		values[0], values[1] = clientIP, clientIP
		h["X-Forwarded-For"] = values[0:1:1]
		h["X-Real-Ip"] = values[1:2:2]
	}

	// A trusted proxy in front (say a TLS-terminating load balancer) knows
	// the host and scheme the client really used; otherwise they are ours.
	host := in.Host
	proto := "http"
	if req.TLS {
		proto = "https"
	}
	if req.PeerTrusted {
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
		if v := strings.ToLower(in.Header.Get("X-Forwarded-Proto")); v == "http" || v == "https" {
			proto = v
		}
	}
	if host != "" {
		values[2] = host
		h["X-Forwarded-Host"] = values[2:3:3]
	}
	values[3] = proto
	h["X-Forwarded-Proto"] = values[3:4:4]
	if clientIP != "" {
		values[4] = forwardedElement(req.ClientIP, host, proto)
		h["Forwarded"] = values[4:5:5]
	}
}

// forwardedElement is the RFC 7239 element for=client;host=...;proto=...
// An IPv6 address is bracketed and quoted (section 6); the host is quoted,
// and left out when it holds a byte a quoted-string cannot carry plainly.
func forwardedElement(client netip.Addr, host, proto string) string {
	var b strings.Builder
	b.Grow(48 + len(host))
	b.WriteString("for=")
	client = client.Unmap()
	if client.Is6() {
		b.WriteString(`"[`)
		b.WriteString(client.String())
		b.WriteString(`]"`)
	} else {
		b.WriteString(client.String())
	}
	if host != "" && quotable(host) {
		b.WriteString(`;host="`)
		b.WriteString(host)
		b.WriteByte('"')
	}
	b.WriteString(";proto=")
	b.WriteString(proto)
	return b.String()
}

// quotable: printable ASCII other than a quote or a backslash.
func quotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// dropOverrideHeaders deletes what canonical.FillFrom refuses or strips for
// this peer (X-Original-URL, X-Forwarded-Prefix, ...). The gateway never
// gets here with one, since FillFrom already acted on them; this keeps the
// rule "a client's copy never reaches an upstream" true for any caller.
func dropOverrideHeaders(h http.Header, peerTrusted bool) {
	refuse, stripped := canonical.CheckOverrideHeaders(h, peerTrusted)
	for refuse != nil {
		delete(h, refuse.Name)
		refuse, _ = canonical.CheckOverrideHeaders(h, peerTrusted)
	}
	for _, name := range stripped {
		delete(h, name)
	}
}

// dropClientAddressHeaders deletes clientAddressHeaders from h, walking
// whichever of the two is shorter.
func dropClientAddressHeaders(h http.Header) {
	if len(h) >= len(clientAddressHeaders) {
		for _, name := range clientAddressHeaders {
			delete(h, name)
		}
		return
	}
	for name := range h {
		if isClientAddressHeader(name) {
			delete(h, name)
		}
	}
}

func isClientAddressHeader(name string) bool {
	for _, n := range clientAddressHeaders {
		if n == name {
			return true
		}
	}
	return false
}

// clientAddressHeaders name the client address in CDN and load-balancer
// conventions other than X-Forwarded-For and X-Real-IP (canonical keys).
var clientAddressHeaders = []string{
	"True-Client-Ip", "Cf-Connecting-Ip", "Cf-Connecting-Ipv6", "Fastly-Client-Ip", "X-Client-Ip",
	"X-Cluster-Client-Ip", "X-Originating-Ip", "X-Remote-Ip", "X-Remote-Addr", "Client-Ip",
	"X-Proxyuser-Ip", "Wl-Proxy-Client-Ip", "Proxy-Client-Ip", "X-Envoy-External-Address",
	"X-Azure-Clientip", "X-Forwarded", "Forwarded-For",
	// Spellings 403-bypass wordlists send to applications that allow-list
	// "internal" callers by a header.
	"X-Custom-Ip-Authorization", "X-Original-Remote-Addr", "X-Original-Forwarded-For",
	"X-Originally-Forwarded-For", "X-Forwarded-For-Original", "X-Forwarded-By", "X-True-Ip",
	"X-Original-For", // ASP.NET Core keeps the replaced X-Forwarded-For here
}

// SetIdentityHeaders replaces X-Warden-User and X-Warden-Roles in h with
// user and the comma-separated roles; an empty user or an empty role list
// removes the header. Bytes that cannot appear in a header value (controls,
// non-ASCII), "%" and, in a role, "," are percent-encoded, so plain ASCII
// identifiers pass unchanged and every value decodes back unambiguously.
//
// The gateway proxies with ServeAs, which calls this after dropping the
// client's X-Warden-* headers; the decision service can call it on its
// forward-auth response headers.
func SetIdentityHeaders(h http.Header, user string, roles []string) {
	// Both names are canonical already; delete skips re-canonicalizing.
	delete(h, UserHeader)
	delete(h, RolesHeader)
	if user != "" {
		h[UserHeader] = []string{escapeHeaderValue(user, false)}
	}
	if len(roles) == 1 {
		// The common single role needs no builder.
		if roles[0] != "" {
			h[RolesHeader] = []string{escapeHeaderValue(roles[0], true)}
		}
		return
	}
	var b strings.Builder
	for _, role := range roles {
		if role == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(escapeHeaderValue(role, true))
	}
	if b.Len() > 0 {
		h[RolesHeader] = []string{b.String()}
	}
}

func escapeHeaderValue(s string, escapeComma bool) string {
	needs := func(c byte) bool {
		return c < 0x20 || c >= 0x7f || c == '%' || (escapeComma && c == ',')
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if needs(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	buf := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needs(c) {
			buf = append(buf, '%', hex[c>>4], hex[c&0xf])
		} else {
			buf = append(buf, c)
		}
	}
	return string(buf)
}

// handleError maps a failed round trip to a refusal. r is the outbound
// request; its context is the client's.
func (p *Proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	in := r
	if ob := outboundOf(r.Context()); ob != nil {
		// The client's request, with the context that carries the tag
		// (a copy only on this error path).
		in = ob.in.WithContext(ob)
	}
	code, render := classify(r.Context(), err)
	if !render {
		return
	}
	p.onError(w, in, code, fmt.Errorf("proxy: upstream %s: %w", p.target.Host, err))
}

// classify tells a client that went away (nothing to render) from an
// upstream that timed out (504) or failed (502).
func classify(ctx context.Context, err error) (decision.ReasonCode, bool) {
	if errors.Is(ctx.Err(), context.Canceled) {
		return decision.None, false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return decision.UpstreamTimeout, true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return decision.UpstreamTimeout, true
	}
	return decision.UpstreamError, true
}

func plainError(w http.ResponseWriter, _ *http.Request, code decision.ReasonCode, _ error) {
	http.Error(w, string(code), code.Status())
}

// defaultEscaping is what net/url sends for a decoded path when RawPath is
// empty; it allocates only when path has bytes to escape.
func defaultEscaping(path string) string {
	u := url.URL{Path: path}
	return u.EscapedPath()
}

// escapesTo reports whether net/url will put rawPath on the wire for a URL
// whose decoded path is path.
func escapesTo(path, rawPath string) bool {
	u := url.URL{Path: path, RawPath: rawPath}
	return u.EscapedPath() == rawPath
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// bufferPool recycles the 32 KiB copy buffers ReverseProxy would otherwise
// allocate for every response. It pools array pointers, which convert to
// and from the slices ReverseProxy wants without allocating (a pooled
// *[]byte would need a fresh slice header on every Put).
type bufferPool struct{ pool sync.Pool }

const copyBufferSize = 32 << 10

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.pool.Get().(*[copyBufferSize]byte)[:] }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == copyBufferSize {
		b.pool.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
	}
}
