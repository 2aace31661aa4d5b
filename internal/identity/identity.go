// Package identity answers "who is asking": it turns the credentials of a
// request into a Principal, and draws the 401/403 line. Authenticators are
// consulted in a fixed order and only when a rule needs the caller.
package identity

import (
	"errors"
	"slices"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
)

// Principal is a caller whose credentials were verified.
type Principal struct {
	ID string
	// Method names the authenticator that verified the caller: "api_key",
	// "jwt", "basic" or "header".
	Method string
	Roles  []string
	Scopes []string
	// Claims holds the verified JWT claims (or nil), for expression rules.
	Claims map[string]any
}

// HasRole reports whether the caller holds role.
func (p *Principal) HasRole(role string) bool { return p != nil && slices.Contains(p.Roles, role) }

// HasScope reports whether the caller holds scope.
func (p *Principal) HasScope(scope string) bool {
	return p != nil && slices.Contains(p.Scopes, scope)
}

// ErrInvalid wraps every "credentials given but not valid" failure, so that
// callers can tell it from an authenticator that could not decide.
var ErrInvalid = errors.New("invalid credentials")

// ErrUnavailable wraps failures where a dependency needed to verify the
// credentials is down (an unreachable JWKS with no cached keys). The rule
// fails closed with 503 unavailable.
var ErrUnavailable = errors.New("credential verification unavailable")

// Authenticator verifies one kind of credential.
//
// Authenticate returns (nil, nil) when the request carries no credential of
// its kind, (p, nil) for a verified caller, and an error wrapping ErrInvalid
// for a credential that is present but wrong. It must not do network I/O:
// key material is fetched in the background and read from a snapshot, and
// now is passed in so that evaluation stays pure and testable.
type Authenticator interface {
	// Name is the config name of the authenticator ("api_keys", "jwt", ...).
	Name() string
	Authenticate(r *canonical.Request, now time.Time) (*Principal, error)
	// Challenge is the WWW-Authenticate value sent with a 401 when this
	// authenticator could have helped, e.g. `Bearer realm="warden"`.
	// invalid says whether credentials were given and rejected, so bearer
	// schemes can add error="invalid_token" (RFC 6750).
	Challenge(invalid bool) string
}

// Result is the outcome of running the authenticator chain on a request.
type Result struct {
	Principal *Principal
	// Err is non-nil when some credential was present but invalid (wraps
	// ErrInvalid) or could not be checked (wraps ErrUnavailable).
	Err error
	// By names the authenticator that produced Principal or Err.
	By Authenticator
}

// Chain runs authenticators in order. The first that finds a credential of
// its kind decides: a valid one yields the Principal, an invalid one yields
// the error; a later authenticator is never asked to rescue a bad credential.
type Chain []Authenticator

// Authenticate runs the chain.
func (c Chain) Authenticate(r *canonical.Request, now time.Time) Result {
	for _, a := range c {
		p, err := a.Authenticate(r, now)
		if err != nil {
			return Result{Err: err, By: a}
		}
		if p != nil {
			return Result{Principal: p, By: a}
		}
	}
	return Result{}
}

// Challenges joins the WWW-Authenticate values of the chain, so a 401 tells
// the client every scheme that would be accepted. failed is the
// authenticator that refused the credentials; bearerGiven says they came as
// a token ("Authorization: Bearer" with a JWT's three segments), whose
// challenge then carries error="invalid_token" (RFC 6750 section 3.1)
// whichever authenticator read it: a token too broken to be recognised as
// a JWT is refused by the API-key authenticator.
func (c Chain) Challenges(failed Authenticator, bearerGiven bool) []string {
	out := make([]string, 0, len(c))
	for _, a := range c {
		invalid := a == failed
		if _, isJWT := a.(*JWT); isJWT && failed != nil && bearerGiven {
			invalid = true
		}
		if ch := a.Challenge(invalid); ch != "" {
			out = append(out, ch)
		}
	}
	return out
}
