package canonical

import (
	"net/http"
	"sort"
)

// OverrideHeader is a request header that some framework or proxy behind
// warden reads as the request's path, method, prefix, host or scheme: with a
// client's own copy, the request the rules judged would not be the one the
// upstream acts on.
type OverrideHeader struct {
	// Name is the canonical header name (http.CanonicalHeaderKey form).
	Name string
	// Why is the public sentence: what the header does somewhere.
	Why string
	// Refuse: a request carrying it is refused (400), because some
	// framework routes or authorizes on it, so the request has no single
	// meaning, like a path with an encoded slash. Otherwise the header is
	// stripped (it only shapes links and redirects the upstream builds)
	// and the stripping is logged.
	Refuse bool
	// FromTrustedProxy: a peer in trusted_proxies may send it, and it then
	// passes untouched. These are the headers a front proxy sets on
	// purpose: forward-auth (Traefik forwardAuth, nginx auth_request),
	// prefix stripping, TLS termination; the decision service reads them.
	FromTrustedProxy bool
}

const (
	whyPath   = "overrides the request path in some frameworks"
	whyMethod = "overrides the request method in some frameworks"
	whyPrefix = "changes the path prefix some frameworks route under"
	whyNext   = "is internal to Next.js and changes what it serves"
	whyLink   = "changes the host, port or scheme an upstream builds links and redirects with"
	whyRoute  = "chooses the upstream host in Envoy"
)

// overrideHeaders is the whole family. Each member is here because a named
// framework or proxy reads it; a client can write any of them, and warden
// is the party that knows the real request line.
var overrideHeaders = []OverrideHeader{
	// Path and URL overrides, refused from anyone: no proxy in front of
	// warden has a reason to send them.
	//
	// Symfony HttpFoundation and Zend Framework read X-Original-URL and
	// X-Rewrite-URL as the request URI (CVE-2018-14773, ZF2018-01: the
	// support was removed because any client could route past access
	// rules); IIS URL Rewrite and ISAPI_Rewrite set them, and ASP.NET
	// applications behind IIS still read HTTP_X_ORIGINAL_URL.
	{"X-Original-Url", whyPath, true, false},
	{"X-Rewrite-Url", whyPath, true, false},
	// X-Original-Pathname and X-Vercel-Original-Pathname: Vercel's own,
	// read as the path by ASGI/WSGI shims on serverless platforms.
	{"X-Original-Pathname", whyPath, true, false},
	{"X-Vercel-Original-Pathname", whyPath, true, false},
	{"X-Vercel-Original-Path", whyPath, true, false},
	// X-Rewrite-Path, X-Rewrite-Uri, X-Path-Info: the same shims and
	// Express handlers restore the "original" path from them.
	{"X-Rewrite-Path", whyPath, true, false},
	{"X-Rewrite-Uri", whyPath, true, false},
	{"X-Path-Info", whyPath, true, false},
	// The remaining spellings are the ones 403-bypass wordlists try
	// against the same code paths; no proxy sets them.
	{"X-Override-Url", whyPath, true, false},
	{"X-Http-Destinationurl", whyPath, true, false},
	{"X-Proxy-Url", whyPath, true, false},
	// Method overrides: Rack::MethodOverride (Rails), Express
	// method-override, Symfony (X-HTTP-Method-Override with
	// http_method_override), OData/Microsoft (X-HTTP-Method). A rule on
	// DELETE would judge a GET the application runs as DELETE.
	{"X-Http-Method-Override", whyMethod, true, false},
	{"X-Http-Method", whyMethod, true, false},
	{"X-Method-Override", whyMethod, true, false},
	// Next.js: set only by Next.js itself. x-middleware-subrequest from a
	// client skips the application's middleware (CVE-2025-29927);
	// x-now-route-matches and x-matched-path choose the route in minimal
	// mode (CVE-2024-46982 cache poisoning); x-invoke-path/-query chose the
	// page in the 13.4 router workers; x-middleware-rewrite rewrites. Next.js
	// itself deletes them (filterInternalHeaders), but only in some
	// versions and modes, and applications read x-invoke-path and
	// x-matched-path to decide access.
	{"X-Middleware-Subrequest", "makes Next.js skip its middleware", true, false},
	{"X-Middleware-Rewrite", whyNext, true, false},
	{"X-Now-Route-Matches", whyNext, true, false},
	{"X-Matched-Path", whyNext, true, false},
	{"X-Invoke-Path", whyNext, true, false},
	{"X-Invoke-Query", whyNext, true, false},

	// Forward-auth and rewriting proxies: refused from clients (an
	// auth service or application judges the request they name instead of
	// the real one), passed from trusted proxies, which set them on
	// purpose.
	//
	// Traefik forwardAuth sends X-Forwarded-Method/-Proto/-Host/-Uri to the
	// auth server (Authelia, oauth2-proxy, authentik read them); Kong sets
	// X-Forwarded-Path and X-Forwarded-Prefix; nginx auth_request setups
	// pass X-Original-URI and X-Original-Method (the nginx documentation's
	// example). Applications on serverless platforms route on
	// X-Forwarded-Uri and X-Forwarded-Path when they are present.
	{"X-Forwarded-Uri", whyPath, true, true},
	{"X-Forwarded-Path", whyPath, true, true},
	{"X-Original-Uri", whyPath, true, true},
	// Front nginx configurations set these too (proxy_set_header
	// X-Original-Path $uri, X-Request-URI $request_uri, X-Forwarded-Url),
	// and applications route on them when present: PHP routers and Django
	// middlewares on HTTP_X_REQUEST_URI, the .NET NewLife toolkit builds
	// the raw URL from it, WSGI/ASGI shims on X-Original-Path and
	// X-Forwarded-Url.
	{"X-Original-Path", whyPath, true, true},
	{"X-Request-Uri", whyPath, true, true},
	{"X-Forwarded-Url", whyPath, true, true},
	{"X-Forwarded-Method", whyMethod, true, true},
	{"X-Original-Method", whyMethod, true, true},
	// Envoy sets x-envoy-original-path when a route rewrites the path
	// (Istio, Envoy Gateway); x-envoy-original-dst-host picks the upstream
	// host of an ORIGINAL_DST cluster with use_http_header.
	{"X-Envoy-Original-Path", whyPath, true, true},
	// Envoy's internal redirects put the original URL here.
	{"X-Envoy-Original-Url", whyPath, true, true},
	{"X-Envoy-Original-Dst-Host", whyRoute, true, true},
	// X-Forwarded-Prefix: Spring's ForwardedHeaderFilter, ASP.NET Core
	// (ForwardedHeaders.XForwardedPrefix), Werkzeug ProxyFix, Symfony and
	// Laravel trusted headers take it as the path base; the common
	// "ReverseProxied"/PrefixMiddleware WSGI recipes also cut it, or
	// X-Script-Name, off PATH_INFO, so /public/admin with a prefix of
	// /public is routed as /admin. Traefik StripPrefix sets it.
	{"X-Forwarded-Prefix", whyPrefix, true, true},
	{"X-Script-Name", whyPrefix, true, true},

	// Host, port and scheme: stripped from clients (they shape absolute
	// links, redirects and "is this https" checks, not which resource is
	// served), passed from trusted proxies. The proxy sets its own
	// X-Forwarded-Host and X-Forwarded-Proto in their place.
	{"X-Forwarded-Host", whyLink, false, true},
	{"X-Forwarded-Proto", whyLink, false, true},
	{"X-Forwarded-Port", whyLink, false, true},
	{"X-Forwarded-Server", whyLink, false, true}, // Apache mod_proxy
	{"X-Forwarded-Scheme", whyLink, false, true}, // Rack
	{"X-Forwarded-Ssl", whyLink, false, true},    // Rack
	{"Front-End-Https", whyLink, false, true},    // Microsoft OWA, Rack
	{"X-Url-Scheme", whyLink, false, true},       // Rack
	{"X-Scheme", whyLink, false, true},           // WSGI ReverseProxied recipes
	{"X-Host", whyLink, false, true},
	// ASP.NET Core's ForwardedHeadersMiddleware keeps the values it
	// replaced in X-Original-Host/-Proto/-Prefix; applications read them.
	{"X-Original-Host", whyLink, false, true},
	{"X-Original-Proto", whyLink, false, true},
	{"X-Original-Prefix", whyPrefix, false, true},
	{"X-Http-Host-Override", whyLink, false, false},
	{"X-Host-Override", whyLink, false, false},
}

var overrideByName = func() map[string]*OverrideHeader {
	m := make(map[string]*OverrideHeader, len(overrideHeaders))
	for i := range overrideHeaders {
		if n := overrideHeaders[i].Name; len(n) < 6 || n[0] != 'X' && n[0] != 'F' {
			panic("canonical: override header " + n + " escapes the quick filter of CheckOverrideHeaders")
		}
		m[overrideHeaders[i].Name] = &overrideHeaders[i]
	}
	return m
}()

// CheckOverrideHeaders judges the override headers in h, whose keys are in
// canonical form (as net/http's server leaves them). refuse is the member
// that makes the request unacceptable (nil: none); stripped lists, sorted,
// the members to delete before anything is forwarded. A member a trusted
// peer may send is neither. h is not changed.
func CheckOverrideHeaders(h http.Header, peerTrusted bool) (refuse *OverrideHeader, stripped []string) {
	consider := func(o *OverrideHeader) {
		if peerTrusted && o.FromTrustedProxy {
			return
		}
		if o.Refuse {
			// Report the first in list order, so the answer does not
			// depend on map iteration.
			if refuse == nil || o.index() < refuse.index() {
				refuse = o
			}
			return
		}
		stripped = append(stripped, o.Name)
	}
	if len(h) < len(overrideHeaders) {
		for name := range h {
			// Every member starts with "X-" or "Front-": most of a
			// browser's headers are passed over without hashing.
			if len(name) < 6 || name[0] != 'X' && name[0] != 'F' {
				continue
			}
			if o := overrideByName[name]; o != nil {
				consider(o)
			}
		}
		sort.Strings(stripped)
	} else {
		for i := range overrideHeaders {
			if _, ok := h[overrideHeaders[i].Name]; ok {
				consider(&overrideHeaders[i])
			}
		}
		sort.Strings(stripped)
	}
	return refuse, stripped
}

func (o *OverrideHeader) index() int {
	for i := range overrideHeaders {
		if &overrideHeaders[i] == o {
			return i
		}
	}
	return len(overrideHeaders)
}

// FindOverrideHeader returns the first header in h refused even from a
// trusted proxy. Requests from other peers are judged in full by FillFrom,
// which knows the peer (CheckOverrideHeaders).
func FindOverrideHeader(h http.Header) (OverrideHeader, bool) {
	if o, _ := CheckOverrideHeaders(h, true); o != nil {
		return *o, true
	}
	return OverrideHeader{}, false
}

// OverrideHeaders lists every member of the family.
func OverrideHeaders() []OverrideHeader { return append([]OverrideHeader(nil), overrideHeaders...) }
