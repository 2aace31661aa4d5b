package canonical

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/warden-gateway/warden/internal/match/ipmatch"
)

// Options configure how requests are made canonical.
type Options struct {
	Path           PathOptions
	TrustedProxies *ipmatch.Set
	// ClientIPHeaders is the order in which a trusted proxy's headers are
	// read; nil means DefaultClientIPHeaders.
	ClientIPHeaders []string
}

// From builds the canonical request. An error means the request has no
// single safe meaning and must be refused with 400 bad_request; its text is
// safe to show the client.
func From(r *http.Request, opt *Options) (*Request, error) {
	req := &Request{}
	return req, FillFrom(req, r, opt)
}

// FillFrom is From into a caller-owned value.
func FillFrom(req *Request, r *http.Request, opt *Options) error {
	target := r.RequestURI
	if target == "" { // a request built in-process (middleware, tests)
		target = r.URL.RequestURI()
	}
	return FillFromParts(req, r.Method, target, r.Host, r.RemoteAddr, r.Header, r.TLS != nil, opt)
}

// FillFromParts builds the canonical request from its parts, for front ends
// that are handed a request without an *http.Request: target is the
// request target exactly as sent (origin-form or absolute-form), remoteAddr
// the TCP peer as "ip:port" or "ip".
func FillFromParts(req *Request, method, target, host, remoteAddr string, header http.Header, tls bool, opt *Options) error {
	if err := checkMethod(method); err != nil {
		return err
	}
	raw, rawQuery, err := rawPath(method, target)
	if err != nil {
		return err
	}
	p, esc, err := Path(raw, opt.Path)
	if err != nil {
		return err
	}
	peer, err := peerAddr(remoteAddr)
	if err != nil {
		return err
	}
	headers := opt.ClientIPHeaders
	if headers == nil {
		headers = DefaultClientIPHeaders
	}
	client, trusted, err := ClientIP(peer, header, opt.TrustedProxies, headers)
	if err != nil {
		return fmt.Errorf("client address from trusted proxy: %w", err)
	}
	// Headers some upstream reads as the path, method, prefix or host:
	// refused, or deleted so that no upstream and no handler sees a
	// client's copy. Only now is it known whether the peer may set them.
	refuse, stripped := CheckOverrideHeaders(header, trusted)
	if refuse != nil {
		return &HeaderError{Name: refuse.Name, Why: refuse.Why}
	}
	for _, name := range stripped {
		delete(header, name)
	}
	*req = Request{
		Method:      method,
		Host:        canonicalHost(host),
		Path:        p,
		LowerPath:   ToLower(p),
		EscapedPath: esc,
		RawQuery:    rawQuery,
		ClientIP:    client,
		PeerIP:      peer,
		PeerTrusted: trusted,
		Header:      header,
		TLS:         tls,

		StrippedHeaders: stripped,
	}
	return nil
}

// HeaderError is a request refused for a header it carries.
type HeaderError struct {
	Name string
	Why  string
}

func (e *HeaderError) Error() string {
	return "header " + e.Name + " is not accepted: it " + e.Why
}

// checkMethod refuses methods with lower-case letters. Methods are
// case-sensitive, so a rule on DELETE does not match "delete", yet many
// frameworks upper-case the method before routing: "delete" would dodge the
// rule and still delete. nginx refuses such methods too.
func checkMethod(m string) error {
	for i := 0; i < len(m); i++ {
		if 'a' <= m[i] && m[i] <= 'z' {
			return fmt.Errorf("method %q is not upper-case; servers disagree on whether it means %q", m, strings.ToUpper(m))
		}
	}
	return nil
}

// rawPath takes the path exactly as it came on the wire, before net/http's
// own decoding, so that it is decoded once, here, and nowhere else; and the
// query, as sent.
func rawPath(method, uri string) (path, query string, err error) {
	if uri == "*" || method == http.MethodConnect {
		return "", "", &PathError{uri, "is not a path (" + method + " " + uri + ")"}
	}
	if !strings.HasPrefix(uri, "/") {
		// absolute-form: scheme://authority/path?query
		i := strings.Index(uri, "://")
		if i < 0 {
			return "", "", &PathError{uri, "does not start with /"}
		}
		rest := uri[i+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 {
			return "/", "", nil
		}
		uri = rest[j:]
		if uri[0] == '?' {
			return "/", uri[1:], nil
		}
	}
	if q := strings.IndexByte(uri, '?'); q >= 0 {
		return uri[:q], uri[q+1:], nil
	}
	return uri, "", nil
}

func peerAddr(remote string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap(), nil
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("peer address %q: %w", remote, err)
	}
	return a.Unmap(), nil
}

func canonicalHost(h string) string {
	if strings.HasPrefix(h, "[") {
		if end := strings.IndexByte(h, ']'); end > 0 {
			return ToLower(h[1:end])
		}
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	return ToLower(h)
}
