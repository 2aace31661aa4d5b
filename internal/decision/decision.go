// Package decision holds the one value every part of warden renders from: the
// Decision. The response body, the decision log line, the metric labels, the
// ext_authz denial and the `explain` output are all views of it.
package decision

import (
	"net/http"

	"github.com/warden-gateway/warden/internal/identity"
)

// Action is what happens to the request.
type Action uint8

const (
	Allow     Action = iota // pass to the handler
	Deny                    // refuse with Status and Code
	Conceal                 // answer an ordinary 404, as if nothing were there
	Challenge               // ask the client to prove itself first
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	case Conceal:
		return "conceal"
	case Challenge:
		return "challenge"
	}
	return "unknown"
}

// ReasonCode is the stable, machine-readable cause of a decision. Codes are a
// contract with clients, logs, metrics and tests: add codes, never rename them.
type ReasonCode string

const (
	None                     ReasonCode = ""
	Unauthenticated          ReasonCode = "unauthenticated"
	InvalidCredentials       ReasonCode = "invalid_credentials"
	RoleRequired             ReasonCode = "role_required"
	IPBlocked                ReasonCode = "ip_blocked"
	IPNotAllowed             ReasonCode = "ip_not_allowed"
	CountryBlocked           ReasonCode = "country_blocked"
	ASNBlocked               ReasonCode = "asn_blocked"
	UserAgentBlocked         ReasonCode = "user_agent_blocked"
	HotlinkBlocked           ReasonCode = "hotlink_blocked"
	PathForbidden            ReasonCode = "path_forbidden"
	PolicyDenied             ReasonCode = "policy_denied"
	DirectoryListingDisabled ReasonCode = "directory_listing_disabled"
	FileNotReadable          ReasonCode = "file_not_readable"
	WAFBlocked               ReasonCode = "waf_blocked"
	ChallengeRequired        ReasonCode = "challenge_required"
	ChallengeFailed          ReasonCode = "challenge_failed"
	Banned                   ReasonCode = "banned"
	RateLimited              ReasonCode = "rate_limited"
	NotFound                 ReasonCode = "not_found"
	BadRequest               ReasonCode = "bad_request"
	Unavailable              ReasonCode = "unavailable"
	UpstreamError            ReasonCode = "upstream_error"
	UpstreamTimeout          ReasonCode = "upstream_timeout"
	InternalError            ReasonCode = "internal_error"
	// ClientCertificateRequired: a rule needs a valid TLS client
	// certificate and the request has none, or one that is expired or
	// issued by a CA not configured. 403: there is no HTTP authentication
	// scheme for it to name in WWW-Authenticate, so 401 would mislead.
	ClientCertificateRequired ReasonCode = "client_certificate_required"
	// MisdirectedRequest: the Host is not a site this warden serves, or
	// not the one the TLS connection was opened for (SNI). 421 (RFC 9110
	// 15.5.20) tells a client that reused a connection for another name
	// (HTTP/2 coalescing, RFC 9113 9.1.1) to retry on a new one.
	MisdirectedRequest ReasonCode = "misdirected_request"
)

var codeStatus = map[ReasonCode]int{
	Unauthenticated:           http.StatusUnauthorized,
	InvalidCredentials:        http.StatusUnauthorized,
	RoleRequired:              http.StatusForbidden,
	IPBlocked:                 http.StatusForbidden,
	IPNotAllowed:              http.StatusForbidden,
	CountryBlocked:            http.StatusForbidden,
	ASNBlocked:                http.StatusForbidden,
	UserAgentBlocked:          http.StatusForbidden,
	HotlinkBlocked:            http.StatusForbidden,
	PathForbidden:             http.StatusForbidden,
	PolicyDenied:              http.StatusForbidden,
	DirectoryListingDisabled:  http.StatusForbidden,
	FileNotReadable:           http.StatusForbidden,
	WAFBlocked:                http.StatusForbidden,
	ChallengeRequired:         http.StatusForbidden,
	ChallengeFailed:           http.StatusForbidden,
	Banned:                    http.StatusForbidden,
	RateLimited:               http.StatusTooManyRequests,
	NotFound:                  http.StatusNotFound,
	BadRequest:                http.StatusBadRequest,
	Unavailable:               http.StatusServiceUnavailable,
	UpstreamError:             http.StatusBadGateway,
	UpstreamTimeout:           http.StatusGatewayTimeout,
	InternalError:             http.StatusInternalServerError,
	ClientCertificateRequired: http.StatusForbidden,
	MisdirectedRequest:        http.StatusMisdirectedRequest,
}

// Known reports whether c is one of the stable codes.
func (c ReasonCode) Known() bool { _, ok := codeStatus[c]; return ok }

// Status is the HTTP status a refusal with this code carries by default.
func (c ReasonCode) Status() int {
	if s, ok := codeStatus[c]; ok {
		return s
	}
	return http.StatusForbidden
}

// Codes lists every stable code, for docs and tests.
func Codes() []ReasonCode {
	out := make([]ReasonCode, 0, len(codeStatus))
	for c := range codeStatus {
		out = append(out, c)
	}
	return out
}

// Step is one rule looked at during evaluation, in the order it was looked at.
type Step struct {
	Rule    string `json:"rule"`
	Line    int    `json:"line,omitempty"`
	Matched bool   `json:"matched"`
	// Note says why the rule did or did not match, or what it did.
	Note string `json:"note,omitempty"`
}

// Trace is the record of an evaluation. It is filled only when asked for, so
// the allow path allocates nothing.
type Trace struct {
	Steps []Step `json:"steps"`
}

// Add appends a step; a nil Trace records nothing.
func (t *Trace) Add(s Step) {
	if t != nil {
		t.Steps = append(t.Steps, s)
	}
}

// Decision is the outcome for one request.
type Decision struct {
	Action Action
	Code   ReasonCode
	Status int
	// Reason is the human sentence that may be shown to the client, such as
	// "account lacks role: admin".
	Reason string
	// Rule names the rule that decided; empty for the policy default.
	Rule string
	// RuleLine is the config line of that rule, for the operator.
	RuleLine int
	// Challenge carries the WWW-Authenticate value for 401 refusals.
	WWWAuthenticate string
	// RetryAfter in seconds, for 429 and 503.
	RetryAfter int
	// Caller is the verified caller when a rule needed to know it; the
	// gateway passes it upstream. Nil when no rule asked.
	Caller *identity.Principal
	// Credentials says what became of the caller's credentials when a rule
	// asked who is calling (CredentialsUnknown when none did).
	Credentials Credentials
	// Difficulty is the proof of work a challenge asks (Action Challenge).
	Difficulty int
	// ChallengeState says what a challenge rule found: "none" (no
	// clearance), "valid", or "failed: " and why.
	ChallengeState string
	// Would names the first report-only rule that would have refused the
	// request (its Code is empty when none would).
	Would Would
	// Detail holds operator-only facts (matched WAF rules, the underlying
	// error). It goes to the decision log, never to an anonymous client.
	Detail string
}

// Would is what a report-only rule would have done.
type Would struct {
	Rule string
	Line int
	Code ReasonCode
}

// Credentials is what became of a caller's credentials.
type Credentials uint8

const (
	CredentialsUnknown     Credentials = iota // no rule asked
	CredentialsNone                           // none were given
	CredentialsValid                          // verified: Decision.Caller
	CredentialsInvalid                        // given, and refused
	CredentialsUnavailable                    // could not be checked (keys not fetched)
)

var credentialWords = [...]string{"", "none", "valid", "invalid", "unavailable"}

func (c Credentials) String() string {
	if int(c) < len(credentialWords) {
		return credentialWords[c]
	}
	return ""
}

// ParseCredentials is the inverse of String; unknown words give
// CredentialsUnknown.
func ParseCredentials(s string) Credentials {
	for i, w := range credentialWords {
		if w == s {
			return Credentials(i)
		}
	}
	return CredentialsUnknown
}

// Allowed reports whether the request may pass.
func (d *Decision) Allowed() bool { return d.Action == Allow }

// Refuse builds a refusal with the default status of code.
func Refuse(code ReasonCode, reason string) Decision {
	a := Deny
	if code == NotFound {
		a = Conceal
	}
	return Decision{Action: a, Code: code, Status: code.Status(), Reason: reason}
}
