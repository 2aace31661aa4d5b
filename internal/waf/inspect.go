package waf

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"

	"github.com/warden-gateway/warden/internal/decision"
)

// Match is one rule that matched and logs (CRS bookkeeping rules marked
// nolog are left out, as they are from Coraza's error log).
type Match struct {
	RuleID   int
	Message  string
	Data     string // the rule's expanded logdata
	Variable string // the first matched variable, such as "ARGS:id"
	Severity string // "critical", "warning", ...; empty when the rule sets none
	// ErrorLog is Coraza's ModSecurity-style error-log line for the match,
	// verbatim ([id "942100"] [msg "..."] [unique_id "<transaction id>"] ...).
	ErrorLog string
	// Canonical: the rule matched the canonical target, not the raw one
	// the client sent (see Request).
	Canonical bool
}

// Verdict is the WAF's judgement of a request (phases 1 and 2).
type Verdict struct {
	// Inspected is false when the route has the WAF off.
	Inspected bool
	// TransactionID is Coraza's unique_id for the request, the one in every
	// ErrorLog line: Request.ID, or a random one.
	TransactionID string
	// Blocked: in block mode the request must be refused (403 waf_blocked).
	// Always false in detect mode.
	Blocked bool
	// WouldBlock: the request would be (or was) refused in block mode, in
	// practice because the inbound anomaly score reached the threshold.
	WouldBlock bool
	// Status is the status the interrupting rule asked for (0 when none).
	Status int
	// Score is the inbound (blocking) anomaly score.
	Score int
	// Matches are the matched rules, in the order they matched. When
	// response inspection is off they include the logging phase.
	Matches []Match
	// TooLarge: the body is over the limit and BodyOverLimit is "reject".
	// This holds in detect mode too: the limit is the operator's setting,
	// not a rule's judgement (Coraza's own Reject behaves the same).
	TooLarge bool
	// BodyUninspected: the body is over the limit and was passed on unread
	// by the WAF (BodyOverLimit "pass").
	BodyUninspected bool

	// open holds the transaction while response inspection is pending.
	open *openTransaction
}

// Refusal turns the verdict into warden's decision when the request must be
// refused: 403 waf_blocked, or 400 bad_request for a body too large to
// inspect. The public reason stays generic; Detail (decision log only) holds
// the rule ids, messages, score and variables.
func (v *Verdict) Refusal() (decision.Decision, bool) {
	switch {
	case v.TooLarge:
		d := decision.Refuse(decision.BadRequest, "request body too large to inspect")
		d.Rule = "waf"
		return d, true
	case v.Blocked:
		d := decision.Refuse(decision.WAFBlocked, "the request was judged unsafe")
		d.Rule = "waf"
		d.Detail = v.Detail()
		return d, true
	}
	return decision.Decision{}, false
}

// Detail is the operator-facing summary of the verdict, for the decision
// log: score, then one entry per matched rule.
func (v *Verdict) Detail() string {
	var b strings.Builder
	fmt.Fprintf(&b, "waf score=%d", v.Score)
	if v.WouldBlock && !v.Blocked {
		b.WriteString(" would block")
	}
	writeMatches(&b, v.Matches)
	return b.String()
}

func writeMatches(b *strings.Builder, ms []Match) {
	for _, m := range ms {
		fmt.Fprintf(b, "; %d %q", m.RuleID, m.Message)
		if m.Variable != "" {
			fmt.Fprintf(b, " in %s", m.Variable)
		}
		if m.Canonical {
			b.WriteString(" (canonical target)")
		}
	}
}

// RuleIDs lists the ids of the matched rules.
func (v *Verdict) RuleIDs() []int {
	ids := make([]int, len(v.Matches))
	for i, m := range v.Matches {
		ids[i] = m.RuleID
	}
	return ids
}

// Request is what the WAF judges, as parts, so that any front end (the
// gateway, the middleware, a decision service that never sees a
// *http.Request) can hand it over.
//
// The CRS judges the request target as the client sent it (RawTarget), as
// it is written to: its rules decode and normalise for themselves
// (t:urlDecodeUni, t:normalizePath, ...), and some look for exactly what a
// canonical form removes, such as the "//" of a URL inside the path
// (931xxx, remote file inclusion). When the raw target's path differs from
// the canonical one, the canonical form (what the upstream receives) is
// judged too, and a rule matched on either counts. Route tuning (RouteTuning)
// always keys on the canonical Path, the one warden's own rules judged.
type Request struct {
	// ID becomes Coraza's transaction id (unique_id in every matched rule's
	// log line): warden's request id. Empty: a random one.
	ID     string
	Method string
	Proto  string
	Host   string
	// Path is the canonical path in its wire form
	// (canonical.Request.EscapedPath: what the upstream receives). Route
	// tuning keys on it, decoded; it is also judged by the CRS when it
	// differs from RawTarget's path.
	Path     string
	RawQuery string
	// RawTarget is the request target exactly as the client sent it (the
	// request line's second word: http.Request.RequestURI for HTTP/1.x, the
	// :path pseudo-header for HTTP/2), query included. The CRS judges it
	// (REQUEST_URI, REQUEST_URI_RAW, REQUEST_LINE, REQUEST_FILENAME,
	// REQUEST_BASENAME, QUERY_STRING, ARGS_GET). Empty: the front end has
	// no raw form, and Path with RawQuery stand in for it.
	RawTarget string
	Header    http.Header
	// TransferEncoding is what net/http moved out of Header.
	TransferEncoding []string
	// Body may be nil. ContentLength is -1 when unknown.
	Body          io.ReadCloser
	ContentLength int64
	// ClientIP is the client rules judge; ClientPort its TCP port when the
	// client is the peer itself (0 otherwise).
	ClientIP   netip.Addr
	ClientPort int
}

// canonicalTarget is the canonical path and query as one request target.
func (r *Request) canonicalTarget() string {
	if r.RawQuery != "" {
		return r.Path + "?" + r.RawQuery
	}
	return r.Path
}

// rawTarget is what the client sent, or the canonical target when the front
// end does not know it.
func (r *Request) rawTarget() string {
	if r.RawTarget != "" {
		return r.RawTarget
	}
	return r.canonicalTarget()
}

// judgesCanonicalToo: the canonical target says something the raw one does
// not (merged slashes, resolved dot segments, decoded or re-encoded bytes,
// the absolute form's scheme and authority dropped), so it is judged as
// well. Most requests arrive canonical already and cost one pass.
func (r *Request) judgesCanonicalToo() bool {
	return r.RawTarget != "" && r.RawTarget != r.canonicalTarget()
}

// Inspect runs phases 1 and 2 on r.
//
// The body is read once, up to the limit, and the returned ReadCloser yields
// exactly the bytes inspected (followed by the unread rest when an over-limit
// body is passed uninspected). For a route with the WAF off nothing is
// inspected and r.Body itself is returned, to be streamed. The caller
// forwards the returned body in place of r.Body and closes it.
//
// When response inspection is on and the request is not refused, the
// transaction stays open: the caller must call Verdict.Finish (after serving
// through Verdict.WrapResponse, or without serving).
//
// An error means the request body could not be read; nothing was judged.
func (e *Engine) Inspect(r *Request) (Verdict, io.ReadCloser, error) {
	decodedPath, err := url.PathUnescape(r.Path)
	if err != nil {
		decodedPath = r.Path
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	if e.routeOff(decodedPath) {
		return Verdict{}, r.Body, nil
	}

	tx := e.newTransaction(r.ID)
	ot := &openTransaction{engine: e, tx: tx, proto: r.Proto}
	v := Verdict{Inspected: true, TransactionID: tx.ID()}

	e.startRequest(tx, r, r.rawTarget(), decodedPath)
	if it := tx.ProcessRequestHeaders(); it != nil {
		return e.endRequest(ot, v, nil), r.Body, nil // refused already: nothing to add
	}

	body, forward, overLimit, err := e.readBody(r, tx)
	if err != nil {
		ot.close()
		return Verdict{}, nil, fmt.Errorf("waf: reading request body: %w", err)
	}
	switch {
	case overLimit && e.cfg.BodyOverLimit == BodyOverLimitReject:
		v.TooLarge = true
		return e.endRequest(ot, v, nil), forward, nil
	case overLimit:
		v.BodyUninspected = true // phase 2 still runs on everything else
	case len(body) > 0:
		if _, _, err := tx.WriteRequestBody(body); err != nil {
			ot.close()
			return Verdict{}, nil, fmt.Errorf("waf: buffering request body: %w", err)
		}
	}
	if _, err := tx.ProcessRequestBody(); err != nil {
		ot.close()
		return Verdict{}, nil, fmt.Errorf("waf: processing request body: %w", err)
	}
	var cj *canonicalJudgement
	if tx.Interruption() == nil {
		cj = e.judgeCanonical(r, decodedPath, body)
	}
	return e.endRequest(ot, v, cj), forward, nil
}

// canonicalPathVar is the TX variable holding the decoded canonical path,
// set before phase 1: route tuning keys on it (REQUEST_FILENAME is the raw
// path the client sent), and operator Directives may too.
const canonicalPathVar = "warden_canonical_path"

// startRequest hands the connection, the target and the headers to tx.
func (e *Engine) startRequest(tx types.Transaction, r *Request, target, decodedPath string) {
	client := ""
	if r.ClientIP.IsValid() {
		client = r.ClientIP.Unmap().String()
	}
	tx.ProcessConnection(client, r.ClientPort, "", 0)
	if vt, ok := tx.(interface {
		Variables() plugintypes.TransactionVariables
	}); ok {
		vt.Variables().TX().Set(canonicalPathVar, []string{decodedPath})
	}
	tx.ProcessURI(target, r.Method, r.Proto)
	for name, values := range r.Header {
		for _, value := range values {
			tx.AddRequestHeader(name, value)
		}
	}
	// net/http moves Host and Transfer-Encoding out of the header map; CRS
	// rules such as 920280 (missing Host) and 920171 (GET with
	// Transfer-Encoding) need them back, as Coraza's own adapter does.
	if r.Host != "" {
		tx.AddRequestHeader("Host", r.Host)
		tx.SetServerName(r.Host)
	}
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
}

// canonicalJudgement is what the pass over the canonical target found.
type canonicalJudgement struct {
	interrupted, wouldBlock bool
	status, score           int
	matches                 []Match
}

// judgeCanonical runs phases 1 and 2 (and logging) once more, on the
// canonical target, in a transaction of its own that is closed before it
// returns; nil when the raw target is the canonical one. body is what the
// first pass inspected.
func (e *Engine) judgeCanonical(r *Request, decodedPath string, body []byte) *canonicalJudgement {
	if !r.judgesCanonicalToo() {
		return nil
	}
	tx := e.newTransaction(r.ID)
	ot := &openTransaction{engine: e, tx: tx, proto: r.Proto}
	e.startRequest(tx, r, r.canonicalTarget(), decodedPath)
	if tx.ProcessRequestHeaders() == nil {
		if len(body) > 0 && tx.IsRequestBodyAccessible() {
			_, _, _ = tx.WriteRequestBody(body) // in memory, within the limit: the first pass took the same bytes
		}
		_, _ = tx.ProcessRequestBody()
	}
	j := &canonicalJudgement{score: txInt(tx, "blocking_inbound_anomaly_score")}
	if it := tx.Interruption(); it != nil {
		j.interrupted, j.wouldBlock, j.status = true, true, interruptionStatus(it)
	} else if it := detectionOnlyInterruption(tx); it != nil {
		j.wouldBlock, j.status = true, interruptionStatus(it)
	}
	j.matches = append(ot.newMatches(), ot.close()...)
	for i := range j.matches {
		j.matches[i].Canonical = true
	}
	return j
}

// RequestFrom gives the parts of an *http.Request, for front ends that have
// one. path and rawQuery are the canonical ones; the raw target is
// r.RequestURI, what the client sent; clientIP the client rules judged.
func RequestFrom(r *http.Request, id, path, rawQuery string, clientIP netip.Addr) *Request {
	return &Request{
		ID: id, Method: r.Method, Proto: r.Proto, Host: r.Host,
		Path: path, RawQuery: rawQuery, RawTarget: r.RequestURI,
		Header: r.Header, TransferEncoding: r.TransferEncoding,
		Body: r.Body, ContentLength: r.ContentLength,
		ClientIP: clientIP, ClientPort: ClientPort(r.RemoteAddr, clientIP),
	}
}

// readBody reads up to BodyLimit bytes. It returns the bytes to inspect, the
// body to forward, and whether the body is over the limit (then nothing is
// to be inspected and forward replays what was read before the rest).
func (e *Engine) readBody(r *Request, tx types.Transaction) (inspect []byte, forward io.ReadCloser, overLimit bool, err error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, http.NoBody, false, nil
	}
	if !tx.IsRequestBodyAccessible() {
		// A rule (ctl:requestBodyAccess=Off) asked not to look: stream it.
		return nil, r.Body, false, nil
	}
	limit := e.cfg.BodyLimit
	if r.ContentLength > limit {
		return nil, r.Body, true, nil
	}
	size := int64(512)
	if r.ContentLength > 0 {
		size = r.ContentLength + 1 // +1 so a correct length needs no regrowth to see EOF
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1)); err != nil {
		return nil, nil, false, err
	}
	if int64(buf.Len()) > limit {
		return nil, replayBody{Reader: io.MultiReader(bytes.NewReader(buf.Bytes()), r.Body), Closer: r.Body}, true, nil
	}
	b := buf.Bytes()
	return b, replayBody{Reader: bytes.NewReader(b), Closer: r.Body}, false, nil
}

// replayBody forwards bytes already read and closes the original body.
type replayBody struct {
	io.Reader
	io.Closer
}

// endRequest fills the verdict after phase 2 (or an earlier interruption),
// folds in the canonical pass (cj, nil when there was none), and either
// keeps the transaction open for the response or ends it.
func (e *Engine) endRequest(ot *openTransaction, v Verdict, cj *canonicalJudgement) Verdict {
	tx := ot.tx
	v.Score = txInt(tx, "blocking_inbound_anomaly_score")
	if it := tx.Interruption(); it != nil {
		v.Blocked = !e.detect
		v.WouldBlock = true
		v.Status = interruptionStatus(it)
	} else if it := detectionOnlyInterruption(tx); it != nil {
		v.WouldBlock = true
		v.Status = interruptionStatus(it)
	}
	v.Matches = ot.newMatches()
	if cj != nil {
		v.Score = max(v.Score, cj.score)
		if !v.WouldBlock && cj.wouldBlock {
			v.Blocked = cj.interrupted && !e.detect
			v.WouldBlock = true
			v.Status = cj.status
		}
		for _, m := range cj.matches {
			// A rule the raw target already matched is reported once.
			if !slices.ContainsFunc(v.Matches, func(o Match) bool { return o.RuleID == m.RuleID }) {
				v.Matches = append(v.Matches, m)
			}
		}
	}
	if e.cfg.ResponseInspection && !v.Blocked && !v.TooLarge {
		v.open = ot
		return v
	}
	v.Matches = append(v.Matches, ot.close()...)
	return v
}

func (e *Engine) newTransaction(id string) types.Transaction {
	if id == "" {
		return e.waf.NewTransaction()
	}
	return e.waf.NewTransactionWithID(id)
}

// openTransaction is a Coraza transaction between Inspect and Finish.
type openTransaction struct {
	engine   *Engine
	tx       types.Transaction
	proto    string
	reported int           // matched rules already turned into Matches
	rw       *heldResponse // set by WrapResponse
	closed   bool
}

// newMatches converts the rules matched since the last call.
func (ot *openTransaction) newMatches() []Match {
	all := ot.tx.MatchedRules()
	var out []Match
	for _, mr := range all[ot.reported:] {
		if m, ok := toMatch(mr); ok {
			out = append(out, m)
		}
	}
	ot.reported = len(all)
	return out
}

// close runs the logging phase, returns its matches and releases the
// transaction (Coraza pools it, so it must not be touched afterwards).
func (ot *openTransaction) close() []Match {
	if ot.closed {
		return nil
	}
	ot.closed = true
	ot.tx.ProcessLogging()
	ms := ot.newMatches()
	_ = ot.tx.Close() // only fails removing multipart temp files Coraza made
	return ms
}

func toMatch(mr types.MatchedRule) (Match, bool) {
	if l, ok := mr.(interface{ Log() bool }); ok && !l.Log() {
		return Match{}, false
	}
	rule := mr.Rule()
	m := Match{RuleID: rule.ID(), Message: mr.Message(), Data: mr.Data()}
	if s := rule.Severity(); s >= 0 {
		m.Severity = s.String()
	}
	if mds := mr.MatchedDatas(); len(mds) > 0 {
		// ErrorLog indexes the first match data, so only call it when there is one.
		m.ErrorLog = mr.ErrorLog()
		m.Variable = mds[0].Variable().Name()
		if k := mds[0].Key(); k != "" {
			m.Variable += ":" + k
		}
	}
	return m, true
}

// txInt reads a numeric TX variable (an anomaly score or threshold).
func txInt(tx types.Transaction, name string) int {
	vt, ok := tx.(interface {
		Variables() plugintypes.TransactionVariables
	})
	if !ok {
		return 0
	}
	vals := vt.Variables().TX().Get(name)
	if len(vals) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(vals[0])
	return n
}

// detectionOnlyInterruption is what would have interrupted the transaction
// had the engine been on (Coraza exposes it on its transaction type only).
func detectionOnlyInterruption(tx types.Transaction) *types.Interruption {
	if d, ok := tx.(interface {
		DetectionOnlyInterruption() *types.Interruption
	}); ok {
		return d.DetectionOnlyInterruption()
	}
	return nil
}

func interruptionStatus(it *types.Interruption) int {
	if it.Status != 0 {
		return it.Status
	}
	if it.Action == "deny" || it.Action == "drop" {
		return http.StatusForbidden
	}
	return 0
}

// ClientPort is the TCP port of the client when the client is the peer
// itself (not an address reported by a trusted proxy).
func ClientPort(remoteAddr string, client netip.Addr) int {
	host, port, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return 0
	}
	if peer, err := netip.ParseAddr(host); err != nil || peer.Unmap() != client.Unmap() {
		return 0
	}
	p, _ := strconv.Atoi(port)
	return p
}
