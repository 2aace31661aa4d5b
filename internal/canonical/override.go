package canonical

import "net/http"

// OverrideHeader is a request header that some upstream reads as the
// request's path or method: the request the rules judged would not be the
// one the upstream acts on. Such a request has no single meaning, like a
// path with an encoded slash.
type OverrideHeader struct {
	// Name is the canonical header name (http.CanonicalHeaderKey form).
	Name string
	// Why is the public sentence: what the header does somewhere.
	Why string
}

// overrideHeaders are refused (400) from anyone rather than silently
// dropped, so that a client relying on one learns why it does not work.
var overrideHeaders = []OverrideHeader{
	// Symfony/Zend/Laravel (CVE-2018-14773), IIS URL Rewrite.
	{"X-Original-Url", "overrides the request path in some frameworks"},
	{"X-Rewrite-Url", "overrides the request path in some frameworks"},
	// Rails, Express method-override, Symfony, OData clients.
	{"X-Http-Method-Override", "overrides the request method in some frameworks"},
	{"X-Http-Method", "overrides the request method in some frameworks"},
	{"X-Method-Override", "overrides the request method in some frameworks"},
	// Next.js middleware bypass (CVE-2025-29927): set only by Next.js
	// itself; from a client it skips the application's middleware.
	{"X-Middleware-Subrequest", "makes Next.js skip its middleware"},
}

// FindOverrideHeader returns the first override header present in h.
func FindOverrideHeader(h http.Header) (OverrideHeader, bool) {
	for _, o := range overrideHeaders {
		if _, present := h[o.Name]; present {
			return o, true
		}
	}
	return OverrideHeader{}, false
}

// OverrideHeaders lists every header FindOverrideHeader looks for.
func OverrideHeaders() []OverrideHeader { return append([]OverrideHeader(nil), overrideHeaders...) }
