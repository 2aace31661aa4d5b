package gateway

import (
	"context"
	"github.com/warden-gateway/warden/internal/canonical"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/obs"
	"github.com/warden-gateway/warden/internal/refusal"
)

// Limits that have no default in net/http.
const (
	// DefaultMaxBodyBytes bounds a request body when limits.max_body_bytes
	// is not set; a negative max_body_bytes means no limit.
	DefaultMaxBodyBytes = 16 << 20
	// DefaultMaxConnections bounds the open client connections when
	// limits.max_connections is not set; negative means no limit. Each
	// proxied connection can hold two file descriptors (client and
	// upstream), so the process needs RLIMIT_NOFILE above twice this.
	DefaultMaxConnections = 10000
)

// MaxBodyBytes is the body limit in force: 0 means none.
func MaxBodyBytes(l *config.Limits) int64 {
	switch {
	case l == nil || l.MaxBodyBytes == 0:
		return DefaultMaxBodyBytes
	case l.MaxBodyBytes < 0:
		return 0
	}
	return l.MaxBodyBytes
}

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

// Harden checks what must hold before any rule runs, and bounds the body:
//
//   - framing: a request whose bytes on the connection were ambiguous
//     (Content-Length with Transfer-Encoding, duplicate Content-Length,
//     obs-fold, a transfer coding other than chunked, bare LF line ends)
//     is refused with 400 bad_request and the connection closed. net/http
//     normalizes some of these shapes before a handler could see them, so
//     the bytes are judged by the connection wrapper of WrapListener;
//     requests that did not come through it skip this check.
//   - override headers (X-Original-URL, X-HTTP-Method-Override, ...): 400;
//     header names with '_' are dropped (CGI reads them as '-').
//   - a declared Content-Length above max_body_bytes: 413 with code
//     bad_request, before the body is read; a chunked body is cut off at the
//     limit while it is read.
//
// When h is the gateway's *Server, refusals go through its log and its
// refusal options; otherwise they are rendered with the defaults.
func Harden(h http.Handler, l *config.Limits) http.Handler {
	s, _ := h.(*Server)
	return &hardened{next: h, srv: s, maxBody: MaxBodyBytes(l)}
}

type hardened struct {
	next    http.Handler
	srv     *Server
	maxBody int64
}

func (h *hardened) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		if g, ok := r.Context().Value(guardKey{}).(*guardConn); ok {
			if why := g.verdict(r.Method, r.RequestURI); why != "" {
				h.refuse(w, r, http.StatusBadRequest, "the request's framing is ambiguous: "+why, true)
				return
			}
		}
	}
	for name := range r.Header {
		if strings.IndexByte(name, '_') >= 0 {
			// CGI, PHP and WSGI read "X_Real_IP" as X-Real-IP and
			// "X_Original_URL" as X-Original-URL: such a header would pose
			// as one warden sets, strips or refuses. Dropped before any
			// rule, as nginx does by default (underscores_in_headers off).
			delete(r.Header, name)
		}
	}
	if o, found := canonical.FindOverrideHeader(r.Header); found {
		h.refuse(w, r, http.StatusBadRequest, "header "+o.Name+" is not accepted: it "+o.Why, false)
		return
	}
	if h.maxBody > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > h.maxBody {
			// Close the connection: the unread body must not be taken for
			// the next request, and reading it would be the cost we refuse.
			h.refuse(w, r, http.StatusRequestEntityTooLarge, "request body too large", true)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.maxBody)
	}
	h.next.ServeHTTP(w, r)
}

func (h *hardened) refuse(w http.ResponseWriter, r *http.Request, status int, reason string, closeConn bool) {
	d := decision.Refuse(decision.BadRequest, reason)
	d.Status = status
	if closeConn {
		w.Header().Set("Connection", "close")
	}
	id := obs.NewRequestID()
	if h.srv != nil {
		w.Header().Set("X-Request-Id", id)
		h.srv.refuse(w, r, &d, nil, id)
		return
	}
	refusal.Write(w, r, &d, id, refusal.Options{})
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
	slots     chan struct{} // nil: no connection limit
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
	if g, ok := c.(*guardConn); ok {
		g.l.setIdle(g, s == http.StateIdle)
	}
}

type guardKey struct{}

// connContext is the http.Server ConnContext hook for WrapListener: it
// hands each request its connection's framing verdicts.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if g, ok := c.(*guardConn); ok {
		return context.WithValue(ctx, guardKey{}, g)
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
	if n > 0 {
		c.mu.Lock()
		c.f.scan(b[:n])
		c.mu.Unlock()
	}
	return n, err
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

// requestKey is FNV-1a over "METHOD TARGET", computed the same way from the
// wire bytes and from the parsed request, without allocating.
func requestKey(method, target string) uint64 {
	h := fnvOffset
	for i := 0; i < len(method); i++ {
		h = (h ^ uint64(method[i])) * fnvPrime
	}
	h = (h ^ ' ') * fnvPrime
	for i := 0; i < len(target); i++ {
		h = (h ^ uint64(target[i])) * fnvPrime
	}
	return h
}

// requestKeyBytes is requestKey over the wire bytes.
func requestKeyBytes(method, target []byte) uint64 {
	h := fnvOffset
	for _, c := range method {
		h = (h ^ uint64(c)) * fnvPrime
	}
	h = (h ^ ' ') * fnvPrime
	for _, c := range target {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return h
}

const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

// framer follows HTTP/1.x framing on the bytes a client sends. It is
// deliberately stricter than net/http: where the two could disagree about
// where a request ends, it stops, and every later request on the connection
// is refused, since its bytes might belong to a request smuggled inside the
// previous one.
type framer struct {
	state    frameState
	maxBlock int
	line     []byte // the line being collected, without its LF
	block    int    // bytes of the current header block or trailer
	left     int64  // body bytes still to skip (fixed length or chunk)

	// the request whose header block is being read
	first   bool // the next line is a request line (set when a block starts)
	key     uint64
	http10  bool
	nCL     int
	nTE     int
	clBad   bool
	teBad   bool
	bodyLen int64
	why     string

	verdicts []verdict
	head     int
	// stopped says why framing can no longer be followed.
	stopped string
}

type verdict struct {
	key uint64
	why string
}

type frameState uint8

const (
	stBlock frameState = iota
	stBody
	stChunkSize
	stChunkData
	stChunkEnd
	stTrailer
	stStopped
)

// maxVerdicts bounds pipelined requests parsed ahead of the server; net/http
// buffers only 4 KiB ahead, so this is never reached by a real client.
const maxVerdicts = 1024

const maxChunkLine = 4096

func (f *framer) stop(why string) {
	f.state = stStopped
	f.stopped = why
	f.line = f.line[:0]
}

func (f *framer) scan(p []byte) {
	for len(p) > 0 {
		switch f.state {
		case stStopped:
			return
		case stBody, stChunkData:
			n := int64(len(p))
			if n > f.left {
				n = f.left
			}
			f.left -= n
			p = p[n:]
			if f.left == 0 {
				if f.state == stBody {
					f.startBlock()
				} else {
					f.state = stChunkEnd
				}
			}
		default:
			i := indexLF(p)
			limit := f.maxBlock - f.block
			if f.state == stChunkSize || f.state == stChunkEnd {
				limit = maxChunkLine
			}
			take := p
			if i >= 0 {
				take = p[:i]
			}
			if len(f.line)+len(take) > limit {
				if f.state == stBlock {
					// net/http answers 431 and closes; nothing to follow.
					f.stop("the header block is too large")
				} else {
					f.stop("a chunk line is too long")
				}
				return
			}
			f.line = append(f.line, take...)
			if i < 0 {
				return
			}
			p = p[i+1:]
			f.block += len(f.line) + 1
			f.endLine()
			f.line = f.line[:0]
		}
	}
}

func indexLF(p []byte) int {
	for i, c := range p {
		if c == '\n' {
			return i
		}
	}
	return -1
}

func (f *framer) startBlock() {
	f.state = stBlock
	f.block = 0
	f.first = true
}

// endLine handles one complete line (f.line, LF removed).
func (f *framer) endLine() {
	line := f.line
	crlf := len(line) > 0 && line[len(line)-1] == '\r'
	if crlf {
		line = line[:len(line)-1]
	}
	switch f.state {
	case stBlock:
		f.blockLine(line, crlf)
	case stChunkSize:
		f.chunkSizeLine(line, crlf)
	case stChunkEnd:
		if !crlf || len(line) != 0 {
			f.stop("chunk data is not followed by CRLF")
			return
		}
		f.state = stChunkSize
	case stTrailer:
		if !crlf {
			f.stop("a trailer line ends in a bare LF")
			return
		}
		if len(line) == 0 {
			f.startBlock()
			return
		}
		if line[0] == ' ' || line[0] == '\t' {
			f.stop("a trailer line is folded (obs-fold)")
		}
	}
}

func (f *framer) blockLine(line []byte, crlf bool) {
	if f.first {
		f.first = false
		f.key, f.http10, f.nCL, f.nTE, f.clBad, f.teBad, f.bodyLen, f.why = 0, false, 0, 0, false, false, 0, ""
		method, rest, ok1 := cutByte(line, ' ')
		target, proto, ok2 := cutByte(rest, ' ')
		f.key = requestKeyBytes(method, target)
		switch {
		case !ok1 || !ok2:
			f.why = "the request line is malformed"
		case string(proto) == "HTTP/1.0":
			f.http10 = true
		case string(proto) != "HTTP/1.1":
			f.why = "unsupported protocol " + quoteBytes(proto)
		}
		if !crlf && f.why == "" {
			f.why = "the request line ends in a bare LF"
		}
		return
	}
	if len(line) == 0 {
		if !crlf && f.why == "" {
			f.why = "the header block ends in a bare LF"
		}
		f.endBlock()
		return
	}
	if f.why != "" {
		return // already refused; keep reading to the end of the block
	}
	if !crlf {
		f.why = "a header line ends in a bare LF"
		return
	}
	if line[0] == ' ' || line[0] == '\t' {
		f.why = "a header line is folded onto the previous one (obs-fold)"
		return
	}
	for _, c := range line {
		if c == '\r' || c == 0 {
			f.why = "a header line holds a bare CR or NUL"
			return
		}
	}
	name, value, ok := cutByte(line, ':')
	if !ok || len(name) == 0 {
		f.why = "a header line has no name"
		return
	}
	if c := name[len(name)-1]; c == ' ' || c == '\t' {
		f.why = "whitespace between a header name and its colon"
		return
	}
	value = trimOWS(value)
	switch {
	case equalFold(name, "content-length"):
		f.nCL++
		n, ok := parseDigits(value)
		if !ok {
			f.clBad = true
		}
		f.bodyLen = n
	case equalFold(name, "transfer-encoding"):
		f.nTE++
		if !equalFold(value, "chunked") {
			f.teBad = true
		}
	}
}

func (f *framer) endBlock() {
	why := f.why
	chunked := false
	if why == "" {
		switch {
		case f.nTE > 0 && f.nCL > 0:
			why = "both Content-Length and Transfer-Encoding"
		case f.nTE > 0 && f.http10:
			why = "Transfer-Encoding in an HTTP/1.0 request"
		case f.nTE > 1:
			why = "Transfer-Encoding given more than once"
		case f.teBad:
			why = "a transfer coding other than chunked"
		case f.nCL > 1:
			why = "Content-Length given more than once"
		case f.clBad:
			why = "Content-Length is not a plain number"
		}
		chunked = f.nTE == 1
	}
	if f.head == len(f.verdicts) {
		f.verdicts, f.head = f.verdicts[:0], 0
	}
	if len(f.verdicts)-f.head >= maxVerdicts {
		f.stop("too many pipelined requests")
		return
	}
	f.verdicts = append(f.verdicts, verdict{key: f.key, why: why})
	switch {
	case why != "":
		f.stop("an earlier request on this connection was refused: " + why)
	case chunked:
		f.state = stChunkSize
	case f.bodyLen > 0:
		f.state, f.left = stBody, f.bodyLen
	default:
		f.startBlock()
	}
}

func (f *framer) chunkSizeLine(line []byte, crlf bool) {
	if !crlf {
		f.stop("a chunk-size line ends in a bare LF")
		return
	}
	size, ext, _ := cutByte(line, ';')
	_ = ext
	n, ok := parseHex(size)
	if !ok {
		f.stop("a chunk size is not plain hex digits")
		return
	}
	if n == 0 {
		f.state, f.block = stTrailer, 0
		return
	}
	f.state, f.left = stChunkData, n
}

// pop returns the verdict for the request with key; "" allows it.
func (f *framer) pop(key uint64) string {
	for f.head < len(f.verdicts) {
		v := f.verdicts[f.head]
		f.head++
		if v.key == key {
			return v.why
		}
	}
	if f.stopped != "" {
		return f.stopped
	}
	// A request net/http parsed but the framer did not see: the two
	// disagree about the bytes, which is what smuggling exploits.
	return "the request could not be matched to its bytes on the connection"
}

func cutByte(b []byte, sep byte) (before, after []byte, found bool) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		v, ok := canonical.HexDigit(c)
		if !ok {
			return 0, false
		}
		n = n<<4 | int64(v)
	}
	return n, true
}

func quoteBytes(b []byte) string {
	if len(b) > 32 {
		b = b[:32]
	}
	return "\"" + strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, string(b)), "?") + "\""
}
