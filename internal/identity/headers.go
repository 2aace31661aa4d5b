package identity

import (
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
)

// HeaderConfig configures trusted identity headers, as set by an upstream
// authenticator such as oauth2-proxy.
type HeaderConfig struct {
	// UserHeader carries the user id (default X-Forwarded-User).
	UserHeader string
	// GroupsHeader carries comma-separated groups, which become roles
	// (default X-Forwarded-Groups).
	GroupsHeader string
	// EmailHeader, when set, carries the user's e-mail, exposed to
	// expressions as the claim "email".
	EmailHeader string
}

// Headers trusts identity headers, but only from a peer listed in
// trusted_proxies (canonical.Request.PeerTrusted). From any other peer the
// headers are ignored as if absent: a client must not be able to name
// itself. The gateway also strips these headers before proxying.
type Headers struct {
	user, groups, email string
}

// NewHeaders fills in the defaults of cfg.
func NewHeaders(cfg HeaderConfig) *Headers {
	h := &Headers{
		user:   textproto.CanonicalMIMEHeaderKey(orDefault(cfg.UserHeader, "X-Forwarded-User")),
		groups: textproto.CanonicalMIMEHeaderKey(orDefault(cfg.GroupsHeader, "X-Forwarded-Groups")),
	}
	if cfg.EmailHeader != "" {
		h.email = textproto.CanonicalMIMEHeaderKey(cfg.EmailHeader)
	}
	return h
}

// HeaderNames returns the canonical names of the identity headers, for the
// gateway to strip from requests it forwards.
func (h *Headers) HeaderNames() []string {
	names := []string{h.user, h.groups}
	if h.email != "" {
		names = append(names, h.email)
	}
	return names
}

// Name implements Authenticator.
func (h *Headers) Name() string { return "trusted_headers" }

// Challenge implements Authenticator. Identity headers are set by a proxy
// in front, not by the client, so there is no scheme to offer: the empty
// string tells the caller to add no WWW-Authenticate value for it.
func (h *Headers) Challenge(bool) string { return "" }

// Authenticate implements Authenticator.
func (h *Headers) Authenticate(r *canonical.Request, _ time.Time) (*Principal, error) {
	if !r.PeerTrusted {
		return nil, nil
	}
	users := r.Header[h.user]
	if len(users) == 0 {
		return nil, nil
	}
	// Two values mean two hops disagree (or one appended): refuse rather
	// than guess which one is true.
	if len(users) > 1 {
		return nil, fmt.Errorf("%w: %d %s headers", ErrInvalid, len(users), h.user)
	}
	user := strings.TrimSpace(users[0])
	if user == "" {
		return nil, fmt.Errorf("%w: empty %s header", ErrInvalid, h.user)
	}
	p := &Principal{ID: user, Method: "header"}
	for _, v := range r.Header[h.groups] {
		for g := range strings.SplitSeq(v, ",") {
			if g = strings.TrimSpace(g); g != "" {
				p.Roles = append(p.Roles, g)
			}
		}
	}
	if h.email != "" {
		if email := strings.TrimSpace(r.Header.Get(h.email)); email != "" {
			p.Claims = map[string]any{"email": email}
		}
	}
	return p, nil
}
