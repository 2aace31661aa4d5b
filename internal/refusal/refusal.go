// Package refusal renders a Decision that refuses a request, in the form the
// client can act on: RFC 9457 problem details for programs, an HTML page for
// people in browsers, plain text for terminals. Every body carries the code
// and the request id; the operator's trace never goes to the client.
package refusal

import (
	"bytes"
	"encoding/json"
	"html/template"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/warden-gateway/warden/internal/decision"
)

// Options say how much a refused client is told.
type Options struct {
	// Minimal hides the reason sentence; the code and request id remain.
	Minimal bool
	// ShowRule adds the deciding rule's name.
	ShowRule bool
	// Contact is shown on HTML pages as whom to ask.
	Contact string
}

// Format is a body format.
type Format uint8

const (
	JSON Format = iota
	HTML
	Text
)

// Problem is the problem+json body (RFC 9457) with warden's fields.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	RequestID string `json:"request_id"`
	// Error and Reason keep the shape APIs have long used:
	// {"error":"forbidden","reason":"account lacks role: admin"}.
	Error  string `json:"error"`
	Reason string `json:"reason"`
	Rule   string `json:"rule,omitempty"`
	// Advice says what the client can do about this cause of refusal.
	Advice string `json:"advice,omitempty"`
}

// Negotiate picks the body format from Accept (with q-values) and, when the
// client accepts anything, from the User-Agent: terminals get text, other
// programs JSON.
func Negotiate(r *http.Request) Format { return NegotiateHeader(r.Header) }

// NegotiateHeader is Negotiate from the request's headers alone, for front
// ends that have no *http.Request (a decision service).
func NegotiateHeader(header http.Header) Format {
	if f, ok := negotiateQuick(header); ok {
		return f
	}
	return negotiateFull(header)
}

// negotiateFull parses any Accept (q-values, parameters) with mime.
func negotiateFull(header http.Header) Format {
	accept := header.Get("Accept")
	best, bestQ := -1, 0.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		f := -1
		switch {
		case mt == "application/problem+json" || mt == "application/json" || strings.HasSuffix(mt, "+json"):
			f = int(JSON)
		case mt == "text/html" || mt == "application/xhtml+xml":
			f = int(HTML)
		case mt == "text/plain":
			f = int(Text)
		}
		if f >= 0 && q > bestQ {
			best, bestQ = f, q
		}
	}
	if best >= 0 {
		return Format(best)
	}
	ua := strings.ToLower(header.Get("User-Agent"))
	for _, t := range []string{"curl/", "wget/", "httpie/", "powershell", "xh/", "lynx", "w3m"} {
		if strings.Contains(ua, t) {
			return Text
		}
	}
	return JSON
}

// errorWord is the short "error" field: the status as a word.
func errorWord(status int) string {
	switch status {
	case 400:
		return "bad_request"
	case 401:
		return "unauthorized"
	case 403:
		return "forbidden"
	case 404:
		return "not_found"
	case 405:
		return "method_not_allowed"
	case 413:
		return "payload_too_large"
	case 429:
		return "too_many_requests"
	case 500:
		return "internal_error"
	case 502:
		return "bad_gateway"
	case 503:
		return "service_unavailable"
	case 504:
		return "gateway_timeout"
	}
	return strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
}

// Build makes the public problem for a decision.
func Build(d *decision.Decision, requestID string, opt Options) Problem {
	status := d.Status
	if status == 0 {
		status = d.Code.Status()
	}
	code := d.Code
	reason := d.Reason
	if d.Action == decision.Conceal || code == decision.NotFound {
		// A concealed refusal must be indistinguishable from a plain 404.
		status, code, reason = 404, decision.NotFound, "not found"
	}
	if reason == "" {
		reason = http.StatusText(status)
	}
	if opt.Minimal && code != decision.NotFound {
		reason = http.StatusText(status)
	}
	p := Problem{
		Type:      "urn:warden:reason:" + string(code),
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    reason,
		Code:      string(code),
		RequestID: requestID,
		Error:     errorWord(status),
		Reason:    reason,
	}
	if opt.ShowRule && d.Action != decision.Conceal && code != decision.NotFound {
		p.Rule = d.Rule
	}
	p.Advice = AdviceFor(CauseOf(d)).Text
	return p
}

// Response is a rendered refusal: what any front end sends, whether it
// writes it to a connection (the gateway), answers a proxy's sub-request
// with it (forward-auth) or carries it in a gRPC message (ext_authz).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Render renders the refusal in format f. It sets the security headers and,
// for 401, WWW-Authenticate (always: a 401 without it is a protocol error).
// head leaves the body out (a HEAD request) but keeps its Content-Length.
func Render(d *decision.Decision, f Format, head bool, requestID string, opt Options) Response {
	p := Build(d, requestID, opt)
	h := make(http.Header, 8)
	h.Set("X-Request-Id", requestID)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if p.Status == http.StatusUnauthorized {
		ch := d.WWWAuthenticate
		if ch == "" {
			ch = `Bearer realm="warden"`
		}
		h.Set("WWW-Authenticate", ch)
	}
	if d.RetryAfter > 0 && (p.Status == 429 || p.Status == 503) {
		h.Set("Retry-After", strconv.Itoa(d.RetryAfter))
	}
	var body []byte
	switch f {
	case HTML:
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		body = renderHTML(&p, AdviceFor(CauseOf(d)), opt)
	case Text:
		h.Set("Content-Type", "text/plain; charset=utf-8")
		body = renderText(&p)
	default:
		h.Set("Content-Type", "application/problem+json")
		body, _ = json.Marshal(&p)
		body = append(body, '\n')
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if head {
		body = nil
	}
	return Response{Status: p.Status, Header: h, Body: body}
}

// Write renders the refusal for r and writes it to w. Headers already set on
// w that the refusal does not replace (Connection: close, for one) stay;
// validators of content that was about to be served go.
func Write(w http.ResponseWriter, r *http.Request, d *decision.Decision, requestID string, opt Options) {
	res := Render(d, Negotiate(r), r.Method == http.MethodHead, requestID, opt)
	res.WriteTo(w)
}

// WriteTo writes the response to w.
func (res *Response) WriteTo(w http.ResponseWriter) {
	h := w.Header()
	h.Del("ETag")
	h.Del("Last-Modified")
	for k, v := range res.Header {
		h[k] = v
	}
	w.WriteHeader(res.Status)
	if len(res.Body) > 0 {
		w.Write(res.Body)
	}
}

func renderText(p *Problem) []byte {
	var b bytes.Buffer
	b.WriteString(strconv.Itoa(p.Status) + " " + p.Title + ": " + sanitizeLine(p.Reason) + "\n")
	b.WriteString("code: " + p.Code + "\n")
	if p.Rule != "" {
		b.WriteString("rule: " + sanitizeLine(p.Rule) + "\n")
	}
	if p.Advice != "" {
		b.WriteString("what you can do: " + p.Advice + "\n")
	}
	b.WriteString("request id: " + sanitizeLine(p.RequestID) + "\n")
	return b.Bytes()
}

// sanitizeLine keeps terminal output to one line of printable text, so a
// reason can never move the cursor or fake another line.
func sanitizeLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// Advice is what the page tells a visitor about a kind of refusal.
type Advice struct {
	Kind string
	Text string
}

// Cause is a refusal's cause, finer than its code where the code covers
// causes a client would fix differently (a 400 for an odd address and a 413
// for a large body are both bad_request): the advice is the cause's own.
// It is the code, or "code.subcause".
type Cause string

// Sub-causes. They are derived from the status and the engine's own reason
// sentences (a test drives the engine to hold the two together).
const (
	CauseBodyTooLarge          Cause = "bad_request.body_too_large"
	CauseBodyTooLargeToInspect Cause = "bad_request.body_too_large_to_inspect"
	CauseBodyUnreadable        Cause = "bad_request.body_unreadable"
	CauseFraming               Cause = "bad_request.framing"
	CauseHeaderNotAccepted     Cause = "bad_request.header_not_accepted"
	CauseNoPolicy              Cause = "unavailable.no_policy"
)

// CauseOf names d's cause.
func CauseOf(d *decision.Decision) Cause {
	code := d.Code
	if d.Action == decision.Conceal || code == decision.NotFound {
		// Every 404 gets the same advice: a concealed refusal must be
		// indistinguishable from a missing page.
		return Cause(decision.NotFound)
	}
	switch code {
	case decision.BadRequest:
		switch {
		case strings.HasPrefix(d.Reason, "request body too large to inspect"):
			return CauseBodyTooLargeToInspect
		case d.Status == 413 || strings.HasPrefix(d.Reason, "request body too large"):
			return CauseBodyTooLarge
		case strings.HasPrefix(d.Reason, "the request body could not be read"):
			return CauseBodyUnreadable
		case strings.HasPrefix(d.Reason, "the request's framing is ambiguous"):
			return CauseFraming
		case strings.HasPrefix(d.Reason, "header ") && strings.Contains(d.Reason, " is not accepted"):
			return CauseHeaderNotAccepted
		}
	case decision.Unavailable:
		if strings.HasPrefix(d.Reason, "the gateway has no policy loaded") {
			return CauseNoPolicy
		}
	}
	return Cause(code)
}

// advices is the advice for each cause. Each says what the cause is and
// what would help with it; TestAdviceIsDistinct holds that no two causes
// share a text by accident.
var advices = map[Cause]Advice{
	Cause(decision.Unauthenticated):           {"Sign-in required", "Sign in, or send your API key or token with the request, then try again."},
	Cause(decision.InvalidCredentials):        {"Credentials not accepted", "Your credentials were rejected (wrong, expired or revoked). Sign in again or get a new token."},
	Cause(decision.RoleRequired):              {"Not permitted for your account", "You are signed in, but your account lacks the permission this needs. Signing in again will not help: ask the site owner to grant it."},
	Cause(decision.IPBlocked):                 {"Your network address is blocked", "Requests from your address are refused. If you use a VPN or proxy, turn it off and try again; otherwise ask the site owner, quoting the request id."},
	Cause(decision.IPNotAllowed):              {"Only certain networks may use this", "This is open only to listed networks (an office, a VPN). Connect through one of them, or ask the site owner to add your address, quoting the request id."},
	Cause(decision.CountryBlocked):            {"Not available from your location", "This site does not accept requests from your country. If you use a VPN, try without it."},
	Cause(decision.ASNBlocked):                {"Not available from your network", "Requests from your network provider (often a hosting or cloud network) are refused. Try from a home or mobile connection, without a VPN or proxy."},
	Cause(decision.UserAgentBlocked):          {"Your client is not allowed", "Automated clients are refused here. Use a regular browser, identify your bot, or use the site's API."},
	Cause(decision.HotlinkBlocked):            {"Linking from other sites is not allowed", "Open the page that contains this resource on its own site instead of embedding or linking it."},
	Cause(decision.PathForbidden):             {"Access forbidden", "This resource is not open to you. If you think it should be, ask the site owner, quoting the request id."},
	Cause(decision.PolicyDenied):              {"Refused by the site's policy", "The site's rules refuse this request as sent. If you think they should not, ask the site owner, quoting the request id."},
	Cause(decision.DirectoryListingDisabled):  {"Folder listing is off", "This folder has no index page and its contents are not listed. Ask for a specific file instead."},
	Cause(decision.FileNotReadable):           {"File not readable", "The file exists but the server is not permitted to read it. The site owner needs to fix its permissions."},
	Cause(decision.WAFBlocked):                {"Request judged unsafe", "The security filter judged this request unsafe. If you were doing something ordinary, tell the site owner, quoting the request id."},
	Cause(decision.ChallengeRequired):         {"Browser check needed", "Enable JavaScript and cookies, and reload the page to pass the check."},
	Cause(decision.ChallengeFailed):           {"Browser check not passed", "The check did not succeed. Reload the page in a regular browser with JavaScript and cookies on; extensions that block scripts can cause this."},
	Cause(decision.Banned):                    {"Temporarily blocked", "Too many refused requests came from your address. Wait a while before trying again."},
	Cause(decision.RateLimited):               {"Too many requests", "Slow down and try again after the time given in Retry-After."},
	Cause(decision.NotFound):                  {"Not found", "Check the address for typos."},
	Cause(decision.BadRequest):                {"Malformed request", "The address could not be understood safely. Check it for odd characters or encoding (encoded slashes, dot segments, backslashes)."},
	CauseBodyTooLarge:                         {"Request body too large", "The request body is over the size this site accepts. Send less: upload large files in parts, compress the body, or ask the site owner for the limit."},
	CauseBodyTooLargeToInspect:                {"Request body too large to check", "The body is larger than the security filter can inspect, so it is refused rather than passed unchecked. Send a smaller body, or split it into several requests."},
	CauseBodyUnreadable:                       {"Request body could not be read", "The body ended early or did not match its Content-Length or chunked encoding. Send the request again; if it persists, check the client's upload."},
	CauseFraming:                              {"Ambiguous request", "The request's length was given two ways that disagree (Content-Length and Transfer-Encoding), which proxies can read differently. Send it with one of them."},
	CauseHeaderNotAccepted:                    {"Header not accepted", "A header that would override the address or method (such as X-Original-URL or X-HTTP-Method-Override) is refused here. Send the request without it."},
	Cause(decision.Unavailable):               {"Temporarily unavailable", "A service needed to check this request (a key server, a database) is down. Try again in a minute."},
	CauseNoPolicy:                             {"Starting up", "The gateway has not loaded its rules yet. Try again in a few seconds."},
	Cause(decision.UpstreamError):             {"The site behind this gateway did not answer properly", "Try again in a minute; if it persists, tell the site owner, quoting the request id."},
	Cause(decision.UpstreamTimeout):           {"The site behind this gateway did not answer in time", "It may be busy: try again in a minute, or ask for less at once; if it persists, tell the site owner, quoting the request id."},
	Cause(decision.ClientCertificateRequired): {"Client certificate required", "This needs a valid client certificate issued by the site's CA. Install yours in the browser or pass it to your client (curl --cert), or ask the site owner for one."},
	Cause(decision.MisdirectedRequest):        {"Wrong site for this connection", "This server does not serve that host name on this connection. Check the address; a browser retries on a new connection by itself."},
	Cause(decision.InternalError):             {"Internal error", "Something went wrong on our side. Try again; if it persists, tell the site owner, quoting the request id."},
}

// Causes lists every cause that has advice, for docs and tests.
func Causes() []Cause {
	out := make([]Cause, 0, len(advices))
	for c := range advices {
		out = append(out, c)
	}
	return out
}

// AdviceFor is the advice for a cause; a cause with none of its own gets
// its code's.
func AdviceFor(c Cause) Advice {
	if a, ok := advices[c]; ok {
		return a
	}
	code, _, _ := strings.Cut(string(c), ".")
	if a, ok := advices[Cause(code)]; ok {
		return a
	}
	return Advice{"Request refused", ""}
}

var page = template.Must(template.New("refusal").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.P.Status}} {{.P.Title}}</title>
<style>
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;color:#1c2330}
main{max-width:40rem;margin:10vh auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.08)}
.status{font-size:.9rem;color:#6a7385;letter-spacing:.04em;text-transform:uppercase}
h1{font-size:1.6rem;margin:.25rem 0 1rem}
.reason{font-size:1.05rem}
.advice{background:#eef3ff;border-left:4px solid #3d6ef5;padding:.75rem 1rem;border-radius:4px}
footer{margin-top:1.5rem;font-size:.85rem;color:#6a7385}
code{background:#f0f1f4;padding:.1rem .35rem;border-radius:4px}
</style></head>
<body><main>
<div class="status">{{.P.Status}} {{.P.Title}}</div>
<h1>{{.A.Kind}}</h1>
<p class="reason">{{.P.Reason}}</p>
{{if .A.Text}}<p class="advice">{{.A.Text}}</p>{{end}}
<footer>
<div>Reason code: <code>{{.P.Code}}</code>{{if .P.Rule}} &middot; rule <code>{{.P.Rule}}</code>{{end}}</div>
<div>Request id: <code>{{.P.RequestID}}</code></div>
{{if .Contact}}<div>Site owner: {{.Contact}}</div>{{end}}
</footer>
</main></body></html>
`))

func renderHTML(p *Problem, a Advice, opt Options) []byte {
	var b bytes.Buffer
	_ = page.Execute(&b, struct {
		P       *Problem
		A       Advice
		Contact string
	}{p, a, opt.Contact})
	return b.Bytes()
}
