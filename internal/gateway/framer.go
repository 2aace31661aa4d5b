package gateway

import (
	"strings"

	"github.com/warden-gateway/warden/internal/canonical"
)

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
