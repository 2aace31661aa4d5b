// Package challenge is warden's browser challenge: a small self-contained
// page that makes the browser solve a SHA-256 proof of work, an endpoint that
// checks the work and hands out a clearance cookie, and the clearance tokens
// themselves (HMAC-SHA256, bound to an expiry, the client's network and
// User-Agent, and the difficulty they were earned at).
//
// The decision whether to challenge is the policy's; this package only
// issues, checks and serves. See docs/challenge.md.
package challenge

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults.
const (
	DefaultCookieName   = "warden_clearance"
	DefaultVerifyPath   = "/.warden/challenge/verify"
	DefaultClearanceTTL = 24 * time.Hour
	DefaultChallengeTTL = 5 * time.Minute
	DefaultMaxFormBytes = 64 << 10
	DefaultReplayCache  = 100_000
)

// Config configures a Challenger.
type Config struct {
	Keys *Keyring
	// ClearanceTTL is how long a clearance lasts; ChallengeTTL how long a
	// served challenge may take to be solved and redeemed.
	ClearanceTTL, ChallengeTTL time.Duration
	CookieName                 string
	// VerifyPath is where the page posts its solution; the gateway routes it
	// to the Challenger (it must be exempt from challenge rules).
	VerifyPath string
	// Contact is shown on the page as whom to ask.
	Contact string
	// ClientIP returns the canonical client address of a request (the
	// gateway's, which honours trusted proxies). Default: the TCP peer.
	ClientIP func(*http.Request) (netip.Addr, bool)
	// Now is the clock of the HTTP edge (the checks themselves take time as
	// an argument). Default time.Now.
	Now func() time.Time
	// SecureCookie forces the Secure attribute even on plain-HTTP requests
	// (TLS terminated by a proxy in front). It is set anyway under TLS.
	SecureCookie bool
	// MaxFormBytes bounds the urlencoded form a challenged POST may carry
	// through the page; a larger or non-form body is not carried.
	MaxFormBytes int64
	// ReplayCache bounds the number of redeemed challenges remembered.
	ReplayCache int
	// Refuse writes a refusal (the gateway's renderer); default: a
	// problem+json body. code is challenge_required or challenge_failed.
	Refuse func(w http.ResponseWriter, r *http.Request, code string, reason string)
}

// Challenger serves challenge pages and the verify endpoint.
type Challenger struct {
	cfg   Config
	page  *page
	spent *spentSet
	pool  sync.Pool
}

// New checks cfg, fills in defaults and renders the page once.
func New(cfg Config) (*Challenger, error) {
	if cfg.Keys == nil {
		return nil, errors.New("challenge: no keys")
	}
	if cfg.ClearanceTTL <= 0 {
		cfg.ClearanceTTL = DefaultClearanceTTL
	}
	if cfg.ChallengeTTL <= 0 {
		cfg.ChallengeTTL = DefaultChallengeTTL
	}
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultCookieName
	}
	if cfg.VerifyPath == "" {
		cfg.VerifyPath = DefaultVerifyPath
	}
	if !strings.HasPrefix(cfg.VerifyPath, "/") {
		return nil, errors.New("challenge: verify path must start with /")
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = PeerIP
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxFormBytes <= 0 {
		cfg.MaxFormBytes = DefaultMaxFormBytes
	}
	if cfg.ReplayCache <= 0 {
		cfg.ReplayCache = DefaultReplayCache
	}
	if cfg.Refuse == nil {
		cfg.Refuse = writeProblem
	}
	p, err := buildPage(cfg.VerifyPath, cfg.Contact)
	if err != nil {
		return nil, err
	}
	c := &Challenger{cfg: cfg, page: p, spent: newSpentSet(cfg.ReplayCache)}
	c.pool.New = func() any { b := make([]byte, 0, p.size+2*ChallengeLen+512); return &b }
	return c, nil
}

// VerifyPath is where the verify endpoint is served.
func (c *Challenger) VerifyPath() string { return c.cfg.VerifyPath }

// CookieName is the clearance cookie's name.
func (c *Challenger) CookieName() string { return c.cfg.CookieName }

// PeerIP is the TCP peer of r.
func PeerIP(r *http.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// WantsPage reports whether the client is a browser that should get the
// challenge page: its Accept names text/html (or XHTML) with a q above zero.
// Everything else — "*/*" alone (curl, wget, most libraries), JSON — gets the
// problem+json refusal, since a program cannot run the page and the page
// would hide from it what would let it in.
func WantsPage(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || (mt != "text/html" && mt != "application/xhtml+xml") {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// State is the challenge state of a request, for explain and the decision log.
type State uint8

const (
	StateNone   State = iota // no clearance cookie
	StateValid               // a valid clearance
	StateFailed              // a cookie that does not verify; Status.Reason says why
)

func (s State) String() string {
	switch s {
	case StateValid:
		return "valid"
	case StateFailed:
		return "failed"
	}
	return "none"
}

// Status is a request's clearance as Check found it.
type Status struct {
	State     State
	Reason    Reason // when StateFailed
	Clearance Clearance
}

// String is the state as explain and the decision log show it: "none",
// "valid (difficulty 16)", "failed: expired".
func (s Status) String() string {
	switch s.State {
	case StateValid:
		return "valid (difficulty " + strconv.Itoa(s.Clearance.Difficulty) + ")"
	case StateFailed:
		return "failed: " + s.Reason.Code()
	}
	return "none"
}

// Check reads the clearance cookie of a request and verifies it against the
// client's address, the request's User-Agent, now, and the difficulty the
// rule asks. It allocates nothing.
func (c *Challenger) Check(h http.Header, clientIP netip.Addr, now time.Time, minDifficulty int) Status {
	// Serve clamps the difficulty it issues at; asking more here than can
	// be issued would send a visitor round the challenge for ever.
	minDifficulty = clampDifficulty(minDifficulty)
	v, ok := CookieValue(h, c.cfg.CookieName)
	if !ok {
		return Status{}
	}
	cl, err := c.cfg.Keys.Verify(v, clientIP, headerValue(h, "User-Agent"), now, minDifficulty)
	if err != nil {
		r, _ := err.(Reason)
		return Status{State: StateFailed, Reason: r}
	}
	return Status{State: StateValid, Clearance: cl}
}

func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// CookieValue finds a cookie by name in the Cookie headers without
// allocating (http.Request.Cookie parses and allocates every cookie).
func CookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			if i := strings.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				part, line = line, ""
			}
			part = strings.TrimSpace(part)
			if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
				v := part[len(name)+1:]
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v, true
			}
		}
	}
	return "", false
}

// Serve answers a request that a challenge rule stopped: a browser gets the
// challenge page, any other client a 403 challenge_required refusal with the
// Hint. The page's status is 403, as Cloudflare's managed challenge uses:
// the response is not the resource asked for, so it must not be cached,
// indexed or counted as a success by a client (a 200 would let a crawler
// store "Checking your browser" as the page); 401 would demand a
// WWW-Authenticate scheme that does not exist for this; 429 would say "slow
// down", which is not the problem.
func (c *Challenger) Serve(w http.ResponseWriter, r *http.Request, clientIP netip.Addr, difficulty int, now time.Time) {
	if !WantsPage(r) {
		c.cfg.Refuse(w, r, "challenge_required", Hint())
		return
	}
	difficulty = clampDifficulty(difficulty)
	target := safeTarget(r.URL.RequestURI())
	method := r.Method
	var fields []formField
	carried := false
	if method == http.MethodPost {
		fields, carried = c.readForm(r)
	}
	var nonce [nonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		http.Error(w, "challenge: no randomness", http.StatusInternalServerError)
		return
	}
	ch := c.cfg.Keys.IssueChallenge(clientIP, r.UserAgent(), method, target, difficulty, now.Add(c.cfg.ChallengeTTL), nonce)

	bp := c.pool.Get().(*[]byte)
	buf := (*bp)[:0]
	for i, piece := range c.page.pieces {
		buf = append(buf, piece...)
		if i >= len(c.page.slots) {
			break
		}
		switch c.page.slots[i] {
		case idxChallenge:
			buf = append(buf, ch...) // base64url: nothing to escape
		case idxDifficulty:
			buf = strconv.AppendInt(buf, int64(difficulty), 10)
		case idxExpected:
			buf = strconv.AppendUint(buf, uint64(1)<<difficulty, 10)
		case idxMethod:
			buf = appendHTMLEscaped(buf, method)
		case idxURL:
			buf = appendHTMLEscaped(buf, target)
		case idxCarried:
			if carried {
				buf = append(buf, '1')
			} else {
				buf = append(buf, '0')
			}
		case idxFields:
			for _, f := range fields {
				buf = append(buf, `<input type="hidden" name="`...)
				buf = appendHTMLEscaped(buf, f.name)
				buf = append(buf, `" value="`...)
				buf = appendHTMLEscaped(buf, f.value)
				buf = append(buf, `">`...)
			}
		}
	}
	hdr := w.Header()
	hdr["Content-Type"] = contentTypeHTML
	hdr["Cache-Control"] = cacheNoStore
	hdr["Content-Security-Policy"] = c.page.csp
	hdr["X-Robots-Tag"] = noIndex
	hdr["Referrer-Policy"] = noReferrer
	hdr["Content-Length"] = []string{strconv.Itoa(len(buf))}
	w.WriteHeader(http.StatusForbidden)
	if r.Method != http.MethodHead {
		w.Write(buf)
	}
	if cap(buf) <= 1<<20 {
		*bp = buf
		c.pool.Put(bp)
	}
}

var (
	contentTypeHTML = []string{"text/html; charset=utf-8"}
	cacheNoStore    = []string{"no-store"}
	noIndex         = []string{"noindex"}
	noReferrer      = []string{"same-origin"}
)

// formField is one name=value pair of a form, in the order it was sent.
type formField struct{ name, value string }

// readForm reads a challenged POST's urlencoded body so the page can carry
// it through, keeping the fields' order (url.ParseQuery would lose it, and
// some handlers read forms in order). A body of another type, larger than
// MaxFormBytes, or not valid urlencoding is not carried (the visitor is
// asked to send it again).
func (c *Challenger) readForm(r *http.Request) ([]formField, bool) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" || r.Body == nil {
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, c.cfg.MaxFormBytes+1))
	if err != nil || int64(len(body)) > c.cfg.MaxFormBytes {
		return nil, false
	}
	var fields []formField
	for pair := range strings.SplitSeq(string(body), "&") {
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		n, err1 := url.QueryUnescape(name)
		v, err2 := url.QueryUnescape(value)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		fields = append(fields, formField{n, v})
	}
	return fields, true
}

// ServeHTTP is the verify endpoint: POST challenge, counter, method, url
// (urlencoded). On success it sets the clearance cookie and answers 204; the
// page then resumes the original request. On failure: 403 challenge_failed
// with the reason.
func (c *Challenger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		c.cfg.Refuse(w, r, "challenge_failed", "challenge "+ReasonMalformed.Text())
		return
	}
	clientIP, ok := c.cfg.ClientIP(r)
	if !ok {
		c.cfg.Refuse(w, r, "challenge_failed", "challenge "+ReasonWrongIP.Text())
		return
	}
	now := c.cfg.Now()
	target := r.PostForm.Get("url")
	if safeTarget(target) != target {
		c.cfg.Refuse(w, r, "challenge_failed", "challenge "+ReasonWrongTarget.Text())
		return
	}
	p, err := c.cfg.Keys.CheckSolution(r.PostForm.Get("challenge"), r.PostForm.Get("counter"),
		clientIP, r.UserAgent(), r.PostForm.Get("method"), target, now)
	if err == nil && !c.spent.redeem(p.Nonce, p.Expires, now) {
		err = ReasonReplayed
	}
	if err != nil {
		reason, _ := err.(Reason)
		c.cfg.Refuse(w, r, "challenge_failed", "challenge "+reason.Text())
		return
	}
	exp := now.Add(c.cfg.ClearanceTTL)
	http.SetCookie(w, &http.Cookie{
		Name:     c.cfg.CookieName,
		Value:    c.cfg.Keys.IssueClearance(clientIP, r.UserAgent(), p.Difficulty, exp),
		Path:     "/",
		MaxAge:   int(c.cfg.ClearanceTTL / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil || c.cfg.SecureCookie,
		SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// writeProblem is the default refusal: RFC 9457 problem+json with warden's
// fields, and the hint for challenge_required.
func writeProblem(w http.ResponseWriter, r *http.Request, code, reason string) {
	body := map[string]any{
		"type":   "urn:warden:reason:" + code,
		"title":  "Forbidden",
		"status": http.StatusForbidden,
		"detail": reason,
		"code":   code,
		"error":  "forbidden",
		"reason": reason,
	}
	if code == "challenge_required" {
		body["detail"] = "this resource asks browsers to pass a challenge"
		body["reason"] = body["detail"]
		body["hint"] = Hint()
	}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	w.Write(append(b, '\n'))
}

// spentSet remembers redeemed challenges until they expire, so that a
// solution is redeemed once: bounded, oldest forgotten first.
type spentSet struct {
	mu    sync.Mutex
	seen  map[[nonceSize]byte]int64
	order [][nonceSize]byte // FIFO of insertion, for eviction
	head  int
	max   int
}

func newSpentSet(max int) *spentSet {
	return &spentSet{seen: make(map[[nonceSize]byte]int64), max: max}
}

// redeem marks nonce spent; false when it already was.
func (s *spentSet) redeem(nonce [nonceSize]byte, expires, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.seen[nonce]; ok && exp > now.Unix() {
		return false
	}
	// Forget what has expired at the front, then the oldest when full.
	for s.head < len(s.order) {
		n := s.order[s.head]
		if exp, ok := s.seen[n]; ok && exp > now.Unix() && len(s.seen) < s.max {
			break
		}
		delete(s.seen, n)
		s.head++
	}
	if s.head > len(s.order)/2 && s.head > 1024 {
		s.order = append(s.order[:0], s.order[s.head:]...)
		s.head = 0
	}
	s.seen[nonce] = expires.Unix()
	s.order = append(s.order, nonce)
	return true
}
