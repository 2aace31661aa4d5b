package canonical_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/warden-gateway/warden/internal/canonical"
)

// browserRequest is a typical browser GET: a dozen headers, none of them an
// override header.
func browserRequest() *http.Request {
	r := &http.Request{Method: "GET", RequestURI: "/static/css/site.css?v=3", URL: &url.URL{Path: "/static/css/site.css", RawQuery: "v=3"}, Host: "www.example.com", RemoteAddr: "198.51.100.7:51234", Header: http.Header{
		"Accept":          {"text/css,*/*;q=0.1"},
		"Accept-Encoding": {"gzip, deflate, br"},
		"Accept-Language": {"en-GB,en;q=0.9"},
		"Cache-Control":   {"no-cache"},
		"Connection":      {"keep-alive"},
		"Cookie":          {"session=abc; theme=dark"},
		"Pragma":          {"no-cache"},
		"Referer":         {"https://www.example.com/"},
		"Sec-Fetch-Dest":  {"style"},
		"Sec-Fetch-Mode":  {"no-cors"},
		"Sec-Fetch-Site":  {"same-origin"},
		"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
		"Dnt":             {"1"},
	}}
	return r
}

func BenchmarkFillFrom(b *testing.B) {
	r := browserRequest()
	opt := &canonical.Options{}
	var req canonical.Request
	b.ReportAllocs()
	for b.Loop() {
		if err := canonical.FillFrom(&req, r, opt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckOverrideHeaders(b *testing.B) {
	h := browserRequest().Header
	b.ReportAllocs()
	for b.Loop() {
		if o, s := canonical.CheckOverrideHeaders(h, false); o != nil || s != nil {
			b.Fatal(o, s)
		}
	}
}
