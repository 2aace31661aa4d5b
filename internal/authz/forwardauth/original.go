package forwardauth

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/warden-gateway/warden/internal/engine"
)

// Convention is how the asking proxy describes the original request.
type Convention uint8

const (
	// Forwarded is Traefik's ForwardAuth and Caddy's forward_auth:
	// X-Forwarded-Method, -Uri, -Host, -Proto, -For.
	Forwarded Convention = iota + 1
	// Original is nginx's auth_request with the documented snippet:
	// X-Original-URI, X-Original-Method, Host, X-Forwarded-Proto, and
	// X-Forwarded-For or X-Real-IP.
	Original
)

func (c Convention) String() string {
	switch c {
	case Forwarded:
		return "x-forwarded"
	case Original:
		return "x-original"
	}
	return ""
}

// describing are the headers a proxy sets about the original request (and
// the hop-by-hop headers of its own sub-request). They are consumed here:
// none of them is a header of the original request, so none goes into the
// Wire. Keys are canonical.
var describing = map[string]bool{
	"X-Forwarded-Method": true, "X-Forwarded-Uri": true, "X-Forwarded-Host": true,
	"X-Forwarded-Proto": true, "X-Forwarded-Port": true, "X-Forwarded-Prefix": true,
	"X-Forwarded-For": true, "X-Real-Ip": true,
	"X-Original-Uri": true, "X-Original-Method": true,
	// The sub-request's own framing and connection headers.
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
	// nginx's @warden location names the refusal it wants again.
	RefusalIDHeader: true,
}

// errDescription is a sub-request that does not describe one original
// request; its text is shown to the proxy (and, through it, the client).
type errDescription struct{ msg string }

func (e *errDescription) Error() string { return e.msg }

func describeErr(msg string) error { return &errDescription{msg} }

// original reads the original request a trusted proxy describes in r's
// headers into w. The client's address is what the proxy says it is: the
// rightmost X-Forwarded-For hop (the proxy's own TCP peer) becomes the
// Wire's RemoteAddr, and the hops before it stay in the Wire's
// X-Forwarded-For, where the policy's trusted_proxies decide whether they
// are believed: exactly what the gateway would see, standing where the
// proxy stands.
func original(r *http.Request, w *engine.Wire) (Convention, error) {
	h := r.Header
	_, fwdURI := h["X-Forwarded-Uri"]
	_, fwdMethod := h["X-Forwarded-Method"]
	_, origURI := h["X-Original-Uri"]
	_, origMethod := h["X-Original-Method"]
	var conv Convention
	switch {
	case fwdURI && origURI:
		// One of them came from the client, through a proxy that sets only
		// the other; which one the proxy set cannot be told.
		return 0, describeErr("the request is described twice (X-Forwarded-Uri and X-Original-URI): the proxy sets one, the client sent the other")
	case origURI:
		if fwdMethod {
			return 0, describeErr("X-Original-URI with X-Forwarded-Method: the proxy sets one convention, the client sent the other")
		}
		conv = Original
	case fwdURI:
		if origMethod {
			return 0, describeErr("X-Forwarded-Uri with X-Original-Method: the proxy sets one convention, the client sent the other")
		}
		conv = Forwarded
	default:
		return 0, describeErr("the proxy did not describe the original request: X-Forwarded-Uri (Traefik, Caddy) or X-Original-URI (nginx) is missing")
	}

	uriName, methodName := "X-Forwarded-Uri", "X-Forwarded-Method"
	if conv == Original {
		uriName, methodName = "X-Original-Uri", "X-Original-Method"
	}
	target, err := single(h, uriName)
	if err != nil {
		return 0, err
	}
	if target == "" {
		return 0, describeErr(uriName + " is empty")
	}
	method, err := single(h, methodName)
	if err != nil {
		return 0, err
	}
	if method == "" {
		// Assuming GET would let a DELETE past a rule on DELETE.
		return 0, describeErr("the proxy did not say the original method (" + methodName + ")")
	}

	host := r.Host
	if conv == Forwarded {
		// Traefik and Caddy always set it; nginx's snippet passes Host.
		if v, err := single(h, "X-Forwarded-Host"); err != nil {
			return 0, err
		} else if v != "" {
			host = v
		}
	}
	proto, err := single(h, "X-Forwarded-Proto")
	if err != nil {
		return 0, err
	}
	proto = strings.ToLower(proto)

	client, chain, err := clientAddr(h)
	if err != nil {
		return 0, err
	}

	header := make(http.Header, len(h))
	for k, v := range h {
		if !describing[k] {
			header[k] = v
		}
	}
	// Names the sub-request's Connection header lists are hop-by-hop too.
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				delete(header, http.CanonicalHeaderKey(name))
			}
		}
	}
	if chain != "" {
		header["X-Forwarded-For"] = []string{chain}
	}
	*w = engine.Wire{
		Method: method, Target: target, Proto: "HTTP/1.1", Host: host,
		RemoteAddr: client, Header: header, TLS: proto == "https" || proto == "wss",
		ContentLength: -1,
	}
	return conv, nil
}

// single is a header that must appear at most once: two values would be
// two descriptions of one request.
func single(h http.Header, name string) (string, error) {
	v := h[name]
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(v[0]), nil
	}
	return "", describeErr(name + " is given more than once")
}

// clientAddr is the client the proxy reports: the rightmost hop of
// X-Forwarded-For, else X-Real-IP; the hops before it are returned as the
// chain the client's side claimed.
func clientAddr(h http.Header) (client, chain string, err error) {
	if vals := h["X-Forwarded-For"]; len(vals) > 0 {
		all := strings.Join(vals, ",")
		rest, last := "", all
		if i := strings.LastIndexByte(all, ','); i >= 0 {
			rest, last = strings.TrimSpace(all[:i]), all[i+1:]
		}
		a, ok := hop(last)
		if !ok {
			return "", "", describeErr("X-Forwarded-For: the proxy's last hop " + quote(last) + " is not an IP address")
		}
		return a.String(), rest, nil
	}
	if v, err := single(h, "X-Real-Ip"); err != nil {
		return "", "", err
	} else if v != "" {
		a, ok := hop(v)
		if !ok {
			return "", "", describeErr("X-Real-IP " + quote(v) + " is not an IP address")
		}
		return a.String(), "", nil
	}
	return "", "", describeErr("the proxy did not say who the client is (X-Forwarded-For or X-Real-IP)")
}

func hop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return "\"" + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s) + "\""
}
