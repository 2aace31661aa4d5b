package engine

import (
	"net/http"
	"net/url"
)

// Explain is Judge followed by what the gateway's handler would decide
// about an allowed request: which handler takes it, and, for the file
// server, whether it would refuse it (a dotfile, listing off, a file it may
// not read). It serves nothing and contacts no upstream, so it answers for
// the gateway without side effects.
func (e *Engine) Explain(w *Wire, o *Outcome) {
	o.PeekOnly = true
	e.Judge(w, o)
	if o.Refused() || len(o.Runtime.Routes) == 0 {
		// Without a handle: section the policy serves the middleware or a
		// decision service, where the application is the handler.
		return
	}
	if o.WAFRan {
		defer o.WAF.Finish()
	}
	route, redirect := o.Route()
	switch {
	case route == nil:
		return
	case redirect != "":
		o.Status = http.StatusMovedPermanently
		return
	case route.Files != nil:
		r := &http.Request{
			Method: w.Method, Host: w.Host, Header: w.Header, RequestURI: w.Target,
			URL: &url.URL{Path: o.Request.Path, RawPath: o.Request.EscapedPath, RawQuery: o.Request.RawQuery},
		}
		rec := &discard{header: http.Header{}}
		if ref := route.Files.Serve(rec, r, o.Request.Path); ref != nil {
			o.Replace(StageHandler, ref.Decision())
			return
		}
		o.Status = rec.status
	}
}

// discard is a ResponseWriter that keeps only the status.
type discard struct {
	header http.Header
	status int
}

func (d *discard) Header() http.Header { return d.header }
func (d *discard) WriteHeader(s int) {
	if d.status == 0 {
		d.status = s
	}
}
func (d *discard) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return len(b), nil
}
