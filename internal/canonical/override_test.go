package canonical_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/warden-gateway/warden/internal/canonical"
)

// TestOverrideHeaders: every member is refused or stripped from a client;
// the forward-auth members pass from a trusted proxy; the rest are refused
// or stripped from anyone.
func TestOverrideHeaders(t *testing.T) {
	all := canonical.OverrideHeaders()
	if len(all) < 30 {
		t.Fatalf("only %d members", len(all))
	}
	seen := map[string]bool{}
	for _, o := range all {
		if o.Name != http.CanonicalHeaderKey(o.Name) {
			t.Errorf("%q is not in canonical form", o.Name)
		}
		if seen[o.Name] {
			t.Errorf("%q listed twice", o.Name)
		}
		seen[o.Name] = true
		for _, trusted := range []bool{false, true} {
			h := http.Header{o.Name: {"/admin/"}, "Accept": {"*/*"}}
			refuse, stripped := canonical.CheckOverrideHeaders(h, trusted)
			switch {
			case trusted && o.FromTrustedProxy:
				if refuse != nil || len(stripped) != 0 {
					t.Errorf("%s from a trusted proxy: refused %v, stripped %v; want it passed", o.Name, refuse, stripped)
				}
			case o.Refuse:
				if refuse == nil || refuse.Name != o.Name || len(stripped) != 0 {
					t.Errorf("%s (trusted %v): refused %v, stripped %v; want refused", o.Name, trusted, refuse, stripped)
				}
			default:
				if refuse != nil || !slices.Equal(stripped, []string{o.Name}) {
					t.Errorf("%s (trusted %v): refused %v, stripped %v; want stripped", o.Name, trusted, refuse, stripped)
				}
			}
			if len(h) != 2 {
				t.Errorf("%s: CheckOverrideHeaders changed the header", o.Name)
			}
		}
	}
	for _, name := range []string{"X-Original-Url", "X-Forwarded-Uri", "X-Original-Uri", "X-Forwarded-Prefix", "X-Http-Method-Override", "X-Middleware-Subrequest"} {
		if !seen[name] {
			t.Errorf("%s is not a member", name)
		}
	}
	// Ordinary headers are neither, whichever way the header is walked.
	h := http.Header{}
	for _, n := range []string{"Accept", "User-Agent", "Cookie", "X-Forwarded-For", "X-Real-Ip", "X-Nextjs-Data", "X-Middleware-Prefetch", "Rsc", "Next-Url", "Destination"} {
		h[n] = []string{"x"}
	}
	if refuse, stripped := canonical.CheckOverrideHeaders(h, false); refuse != nil || stripped != nil {
		t.Errorf("ordinary headers: refused %v, stripped %v", refuse, stripped)
	}
	// Many headers (walked by list) and few (walked by name) agree; the
	// refusal names the first member in list order.
	big := http.Header{"X-Forwarded-Host": {"a"}, "X-Forwarded-Port": {"1"}, "X-Forwarded-Uri": {"/"}, "X-Original-Url": {"/"}}
	for i := 0; i < 60; i++ {
		big[http.CanonicalHeaderKey("X-Filler-"+string(rune('a'+i%26))+string(rune('a'+i/26)))] = []string{"x"}
	}
	small := http.Header{"X-Forwarded-Host": {"a"}, "X-Forwarded-Port": {"1"}, "X-Forwarded-Uri": {"/"}, "X-Original-Url": {"/"}}
	for _, hh := range []http.Header{big, small} {
		refuse, stripped := canonical.CheckOverrideHeaders(hh, false)
		if refuse == nil || refuse.Name != "X-Original-Url" || !slices.Equal(stripped, []string{"X-Forwarded-Host", "X-Forwarded-Port"}) {
			t.Errorf("%d headers: refused %v, stripped %v", len(hh), refuse, stripped)
		}
		refuse, stripped = canonical.CheckOverrideHeaders(hh, true)
		if refuse == nil || refuse.Name != "X-Original-Url" || stripped != nil {
			t.Errorf("%d headers, trusted: refused %v, stripped %v", len(hh), refuse, stripped)
		}
	}
	if o, ok := canonical.FindOverrideHeader(http.Header{"X-Forwarded-Uri": {"/"}}); ok {
		t.Errorf("FindOverrideHeader refuses %s, which a trusted proxy may send", o.Name)
	}
	if o, ok := canonical.FindOverrideHeader(http.Header{"X-Rewrite-Url": {"/"}}); !ok || o.Name != "X-Rewrite-Url" {
		t.Errorf("FindOverrideHeader(X-Rewrite-Url) = %v, %v", o, ok)
	}
}

// TestFromOverrideHeaders: From refuses a client's path override, deletes
// a client's host override and says so, and keeps a trusted proxy's.
func TestFromOverrideHeaders(t *testing.T) {
	opt := &canonical.Options{TrustedProxies: set(t, "10.0.0.1")}
	build := func(peer string, kv ...string) (*http.Request, *canonical.Request, error) {
		r := httptest.NewRequest("GET", "http://x/public", nil)
		r.RemoteAddr = peer + ":1234"
		for i := 0; i < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		req, err := canonical.From(r, opt)
		return r, req, err
	}
	_, _, err := build("192.0.2.1", "X-Forwarded-Uri", "/admin/")
	var he *canonical.HeaderError
	if !errors.As(err, &he) || he.Name != "X-Forwarded-Uri" {
		t.Errorf("client's X-Forwarded-Uri: %v", err)
	}
	r, req, err := build("192.0.2.1", "X-Forwarded-Host", "evil.example", "X-Forwarded-Port", "8443", "X-Forwarded-Proto", "https")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(req.StrippedHeaders, []string{"X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Proto"}) {
		t.Errorf("stripped %v", req.StrippedHeaders)
	}
	for _, n := range req.StrippedHeaders {
		if r.Header.Get(n) != "" || req.Header.Get(n) != "" {
			t.Errorf("%s still in the request", n)
		}
	}
	r, req, err = build("10.0.0.1", "X-Forwarded-Uri", "/admin/", "X-Forwarded-Host", "app.example", "X-Forwarded-Method", "POST")
	if err != nil || len(req.StrippedHeaders) != 0 || r.Header.Get("X-Forwarded-Uri") != "/admin/" || r.Header.Get("X-Forwarded-Host") != "app.example" {
		t.Errorf("trusted proxy's forward-auth headers: %v, stripped %v, header %v", err, req.StrippedHeaders, r.Header)
	}
	if _, _, err = build("10.0.0.1", "X-Original-Url", "/admin/"); !errors.As(err, &he) || he.Name != "X-Original-Url" {
		t.Errorf("trusted proxy's X-Original-URL: %v", err)
	}
}
