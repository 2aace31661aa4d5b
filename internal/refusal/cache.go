package refusal

import (
	"bytes"
	"net/http"
	"strings"
	"sync"

	"github.com/warden-gateway/warden/internal/decision"
)

// A refusal's body and headers depend on the decision's public fields, the
// format and the options, and on the request id; under a flood the same few
// refusals are sent again and again. WriteCached renders each kind once,
// with a placeholder where the request id goes, and afterwards only splices
// the id in: no JSON encoding, no template, no header map per refusal.

// cacheKey is everything Render's output depends on besides the id.
type cacheKey struct {
	status int
	code   decision.ReasonCode
	action decision.Action
	reason string
	rule   string
	www    string
	format Format
	head   bool
	idLen  int
	opt    Options
}

type cachedRefusal struct {
	status int
	// header is shared by every response of this kind: its slices are
	// capped (len == cap), so an Add on a response's header copies rather
	// than writes into them.
	header    http.Header
	pre, post []byte
}

// maxCachedRefusals bounds the cache: reasons can carry request-specific
// text (a parse error), and such refusals are rendered each time.
const maxCachedRefusals = 1024

var refusalCache = struct {
	sync.RWMutex
	m map[cacheKey]*cachedRefusal
}{m: map[cacheKey]*cachedRefusal{}}

// idPlaceholder stands in for the request id while a kind is rendered. It
// is made of characters no format escapes, and is long enough never to
// occur in a reason by chance (a reason that holds it is not cached).
const idPlaceholder = "wardenrequestidplaceholder7f3a9c"

var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// splicable reports whether id can go into every format as it is: no
// format escapes these characters.
func splicable(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// WriteCached writes the refusal Render would make for d, format f and
// requestID to w, as Response.WriteTo would, from the cache when it can.
// It returns the status and the body bytes written.
func WriteCached(w http.ResponseWriter, d *decision.Decision, f Format, head bool, requestID string, opt Options) (int, int) {
	c := cachedFor(d, f, head, requestID, opt)
	if c == nil {
		res := Render(d, f, head, requestID, opt)
		res.WriteTo(w)
		return res.Status, len(res.Body)
	}
	h := w.Header()
	h.Del("ETag")
	h.Del("Last-Modified")
	for k, v := range c.header {
		h[k] = v
	}
	if v := h["X-Request-Id"]; len(v) != 1 || v[0] != requestID {
		h["X-Request-Id"] = []string{requestID}
	}
	w.WriteHeader(c.status)
	if head {
		return c.status, 0
	}
	b := bodyBuffers.Get().(*bytes.Buffer)
	b.Reset()
	b.Write(c.pre)
	b.WriteString(requestID)
	b.Write(c.post)
	w.Write(b.Bytes())
	n := b.Len()
	bodyBuffers.Put(b)
	return c.status, n
}

// cachedFor finds or renders the cached kind; nil when this refusal is not
// one to cache.
func cachedFor(d *decision.Decision, f Format, head bool, requestID string, opt Options) *cachedRefusal {
	if d.RetryAfter > 0 || !splicable(requestID) {
		return nil // Retry-After differs per request
	}
	k := cacheKey{d.Status, d.Code, d.Action, d.Reason, d.Rule, d.WWWAuthenticate, f, head, len(requestID), opt}
	refusalCache.RLock()
	c := refusalCache.m[k]
	n := len(refusalCache.m)
	refusalCache.RUnlock()
	if c != nil || n >= maxCachedRefusals {
		return c
	}
	c = renderKind(d, f, head, len(requestID), opt)
	if c == nil {
		return nil
	}
	refusalCache.Lock()
	if len(refusalCache.m) < maxCachedRefusals {
		refusalCache.m[k] = c
	}
	refusalCache.Unlock()
	return c
}

// renderKind renders d with the placeholder and cuts the body where it is.
func renderKind(d *decision.Decision, f Format, head bool, idLen int, opt Options) *cachedRefusal {
	if strings.Contains(d.Reason, idPlaceholder) || strings.Contains(d.Rule, idPlaceholder) || strings.Contains(opt.Contact, idPlaceholder) {
		return nil
	}
	res := Render(d, f, false, idPlaceholder, opt)
	at := bytes.Index(res.Body, []byte(idPlaceholder))
	if at < 0 || bytes.Count(res.Body, []byte(idPlaceholder)) != 1 {
		return nil
	}
	c := &cachedRefusal{status: res.Status, header: make(http.Header, len(res.Header))}
	c.pre = bytes.Clone(res.Body[:at])
	c.post = bytes.Clone(res.Body[at+len(idPlaceholder):])
	for k, v := range res.Header {
		if k == "X-Request-Id" {
			continue
		}
		c.header[k] = v[:len(v):len(v)]
	}
	// The body's length with an id of idLen characters, HEAD or not.
	c.header["Content-Length"] = []string{itoa(len(c.pre) + idLen + len(c.post))}
	return c
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// negotiateQuick is NegotiateHeader without allocating, for the Accept
// shapes a flood sends (none, */*, one type, a list without parameters).
// ok is false when the header needs the full parse (q-values, parameters,
// anything unusual), which then decides.
func negotiateQuick(header http.Header) (f Format, ok bool) {
	accept := header.Get("Accept")
	for rest := accept; rest != ""; {
		part := rest
		if i := strings.IndexByte(rest, ','); i >= 0 {
			part, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		part = strings.Trim(part, " \t")
		if part == "" {
			continue
		}
		if !plainMediaType(part) {
			return 0, false
		}
		switch {
		case strings.EqualFold(part, "application/problem+json") || strings.EqualFold(part, "application/json") ||
			len(part) > 5 && strings.EqualFold(part[len(part)-5:], "+json") && strings.IndexByte(part, '/') >= 0:
			return JSON, true
		case strings.EqualFold(part, "text/html") || strings.EqualFold(part, "application/xhtml+xml"):
			return HTML, true
		case strings.EqualFold(part, "text/plain"):
			return Text, true
		}
	}
	ua := header.Get("User-Agent")
	for i := 0; i < len(ua); i++ {
		if ua[i] >= 0x80 {
			return 0, false // leave Unicode case folding to the full path
		}
	}
	for _, t := range terminalAgents {
		if containsFoldASCII(ua, t) {
			return Text, true
		}
	}
	return JSON, true
}

// terminalAgents are the User-Agent marks of terminal clients (lower case);
// NegotiateHeader's list.
var terminalAgents = []string{"curl/", "wget/", "httpie/", "powershell", "xh/", "lynx", "w3m"}

// plainMediaType reports whether s is token or token/token with no
// parameters: the only shape negotiateQuick reads itself.
func plainMediaType(s string) bool {
	slash := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			slash++
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return slash == 1 && s[0] != '/' && s[len(s)-1] != '/'
}

// containsFoldASCII reports whether s contains lower (ASCII, lower case)
// ignoring ASCII case.
func containsFoldASCII(s, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		j := 0
		for ; j < len(lower); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[j] {
				break
			}
		}
		if j == len(lower) {
			return true
		}
	}
	return false
}
