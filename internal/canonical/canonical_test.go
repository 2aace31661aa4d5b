package canonical_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/match/ipmatch"
)

// TestPath is the table of raw paths and what they become. A want of ""
// means the path has no single safe meaning and must be refused (400).
func TestPath(t *testing.T) {
	cases := []struct {
		raw     string
		opt     canonical.PathOptions
		path    string // "" → error
		escaped string // "" → same as path
		errHas  string
	}{
		// Already canonical: returned as is.
		{raw: "", path: "/"},
		{raw: "/", path: "/"},
		{raw: "/a/b.txt", path: "/a/b.txt"},
		{raw: "/a/b/", path: "/a/b/"},
		{raw: "/A-Z_a~z.0", path: "/A-Z_a~z.0"},
		{raw: "/.well-known/x", path: "/.well-known/x"},
		{raw: "/a/.b", path: "/a/.b"}, // a dotfile is a name, not a dot segment

		// Percent-encoding is decoded exactly once.
		{raw: "/%61dmin/", path: "/admin/"},
		{raw: "/%41DMIN/", path: "/ADMIN/"},
		{raw: "/a%20b", path: "/a b", escaped: "/a%20b"},
		{raw: "/caf%C3%A9", path: "/café", escaped: "/caf%C3%A9"},
		{raw: "/caf%c3%a9", path: "/café", escaped: "/caf%C3%A9"},
		{raw: "/100%25", path: "/100%", escaped: "/100%25"},
		// An encoded '?' or '#' ends the path for servers that decode
		// before splitting (Apache CVE-2024-38474): no single meaning.
		{raw: "/a%3Fb", errHas: "encoded '?' or '#'"},
		{raw: "/a%23b", errHas: "encoded '?' or '#'"},
		// Characters some servers read as ASCII (NFKC, case mapping,
		// Windows best-fit), shapes Windows resolves to another name, and
		// segments Spring trims (found by internal/bypass).
		{raw: "/%EF%BD%81dmin/", errHas: "read as \"a\""},
		{raw: "/x/%EF%BC%8E%EF%BC%8E/admin/", errHas: "read as \".\""},
		{raw: "/x/..%E2%88%95admin/", errHas: "read as \"/\""},
		{raw: "/adm%C4%B1n/", errHas: "read as \"I\""},
		{raw: "/%F0%9D%90%9Admin/", errHas: "read as \"a\""},
		{raw: "/INTERN~1/x", errHas: "8.3 short name"},
		{raw: "/config~2.php", errHas: "8.3 short name"},
		{raw: "/admin::$DATA/x", errHas: "NTFS stream"},
		{raw: "/admin:$i30:$INDEX_ALLOCATION/", errHas: "NTFS stream"},
		{raw: "/%20admin/", errHas: "starts with a space"},
		{raw: "/~user/x", path: "/~user/x"},
		{raw: "/a~b/x~1y", path: "/a~b/x~1y"},
		{raw: "/%E6%97%A5%E6%9C%AC/caf%C3%A9", path: "/日本/café", escaped: "/%E6%97%A5%E6%9C%AC/caf%C3%A9"},
		{raw: "/stra%C3%9Fe", path: "/straße", escaped: "/stra%C3%9Fe"},
		{raw: "/a:b@c!$&'()*+,=", path: "/a:b@c!$&'()*+,="},
		{raw: "/%25zz", path: "/%zz", escaped: "/%25zz"}, // %25 then non-hex: one meaning only
		{raw: "/%", errHas: "truncated"},
		{raw: "/a%4", errHas: "truncated"},
		{raw: "/a%zz", errHas: "invalid percent-encoding"},
		{raw: "/%u0061dmin", errHas: "invalid percent-encoding"},
		{raw: "/%2561dmin/", errHas: "double percent-encoded"},
		{raw: "/%252e%252e/", errHas: "double percent-encoded"},
		{raw: "/%25%36%31dmin/", errHas: "double percent-encoded"},

		// Slashes and dot segments.
		{raw: "//admin/", path: "/admin/"},
		{raw: "///admin///x", path: "/admin/x"},
		{raw: "/./admin/", path: "/admin/"},
		{raw: "/x/../admin/", path: "/admin/"},
		{raw: "/x/%2e%2e/admin/", path: "/admin/"},
		{raw: "/x/%2E%2E/admin/", path: "/admin/"},
		{raw: "/x/.%2e/admin", path: "/admin"},
		{raw: "/admin/.", path: "/admin/"},
		{raw: "/admin/./", path: "/admin/"},
		{raw: "/admin/x/..", path: "/admin/"},
		{raw: "/a/b/../..", path: "/"},
		{raw: "/..", errHas: "above the root"},
		{raw: "/../admin/", errHas: "above the root"},
		{raw: "/a/../../admin/", errHas: "above the root"},
		{raw: "/%2e%2e/etc/passwd", errHas: "above the root"},

		// Shapes other servers read differently.
		{raw: "/admin%2fpanel", errHas: "encoded slash"},
		{raw: "/admin%2Fpanel", errHas: "encoded slash"},
		{raw: "/admin%2fpanel", opt: canonical.PathOptions{AllowEncodedSlash: true}, path: "/admin/panel", escaped: "/admin/panel"},
		{raw: "/x\\..\\admin\\", errHas: "backslash"},
		{raw: "/x/%5c../admin", errHas: "backslash"},
		{raw: "/a\\b", opt: canonical.PathOptions{AllowBackslash: true}, path: "/a\\b", escaped: "/a%5Cb"},
		{raw: "/x/..;/admin/", errHas: "';'"},
		{raw: "/admin;jsessionid=1/", errHas: "';'"},
		{raw: "/admin%3b/", errHas: "';'"},
		{raw: "/a;b", opt: canonical.PathOptions{AllowSemicolon: true}, path: "/a;b"},
		{raw: "/admin%00/", errHas: "NUL"},
		{raw: "/admin/%00", errHas: "NUL"},
		{raw: "/a%09b", errHas: "control character 0x09"},
		{raw: "/a%0d%0aSet-Cookie:x", errHas: "control character 0x0d"},
		{raw: "/a%7f", errHas: "control character 0x7f"},
		{raw: "/a\x01", errHas: "control character 0x01"},
		{raw: "/admin/#frag", errHas: "'#'"},

		// Invalid and overlong UTF-8.
		{raw: "/%c0%ae%c0%ae/admin/", errHas: "invalid UTF-8"},
		{raw: "/%c0%afadmin", errHas: "invalid UTF-8"},
		{raw: "/admin/%e0%80%af", errHas: "invalid UTF-8"},
		{raw: "/admin/%ff", errHas: "invalid UTF-8"},
		{raw: "/admin/\xff", errHas: "invalid UTF-8"},
		{raw: "/%ed%a0%80", errHas: "invalid UTF-8"}, // a UTF-16 surrogate

		// Windows servers strip trailing dots and spaces from names, so
		// "/admin./" and "/admin%20/" are "/admin/" to them.
		{raw: "/admin./", errHas: "dot or space"},
		{raw: "/admin../x", errHas: "dot or space"},
		{raw: "/admin%2e/", errHas: "dot or space"},
		{raw: "/admin%20/", errHas: "dot or space"},
		{raw: "/admin/file.txt.", errHas: "dot or space"},
		{raw: "/...", errHas: "dot or space"},
		{raw: "/a.b/c", path: "/a.b/c"},

		{raw: "admin", errHas: "does not start with /"},
	}
	for _, c := range cases {
		path, esc, err := canonical.Path(c.raw, c.opt)
		if c.errHas != "" {
			var pe *canonical.PathError
			if err == nil {
				t.Errorf("Path(%q) = %q, %q; want an error containing %q", c.raw, path, esc, c.errHas)
				continue
			}
			if !errors.As(err, &pe) {
				t.Errorf("Path(%q): error %v is not a *PathError", c.raw, err)
			}
			if !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("Path(%q): error %q does not say %q", c.raw, err, c.errHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("Path(%q): unexpected error %v", c.raw, err)
			continue
		}
		wantEsc := c.escaped
		if wantEsc == "" {
			wantEsc = c.path
		}
		if path != c.path || esc != wantEsc {
			t.Errorf("Path(%q) = %q, %q; want %q, %q", c.raw, path, esc, c.path, wantEsc)
		}
		// The canonical path is a fixed point: judging it again gives
		// itself, so there is exactly one meaning.
		if p2, e2, err := canonical.Path(esc, c.opt); err != nil || p2 != path || e2 != esc {
			t.Errorf("Path(%q) is not stable: the escaped form %q gives %q, %q, %v", c.raw, esc, p2, e2, err)
		}
	}
}

func TestPathCanonicalDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := canonical.Path("/static/css/site.min.css", canonical.PathOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("an already canonical path allocated %.0f times", allocs)
	}
}

func TestToLower(t *testing.T) {
	for in, want := range map[string]string{
		"/admin/": "/admin/",
		"/ADMIN/": "/admin/",
		"/Admİn/": "/admİn/", // only ASCII folds
		"":        "",
	} {
		if got := canonical.ToLower(in); got != want {
			t.Errorf("ToLower(%q) = %q, want %q", in, got, want)
		}
	}
}

func set(t *testing.T, cidrs ...string) *ipmatch.Set {
	t.Helper()
	s := &ipmatch.Set{}
	for _, c := range cidrs {
		p, err := ipmatch.ParsePrefix(c)
		if err != nil {
			t.Fatal(err)
		}
		s.Add(p)
	}
	return s
}

func TestClientIP(t *testing.T) {
	trusted := set(t, "10.0.0.1", "10.0.1.0/24", "2001:db8:ffff::/48")
	type hdr = map[string][]string
	cases := []struct {
		name     string
		peer     string
		h        hdr
		noTrust  bool // no trusted_proxies at all
		headers  []string
		want     string // "" → error
		wantTrus bool
		errHas   string
	}{
		{name: "no proxies trusted: headers ignored", peer: "198.51.100.1",
			h: hdr{"X-Forwarded-For": {"203.0.113.9"}}, noTrust: true, want: "198.51.100.1"},
		{name: "untrusted peer: XFF ignored", peer: "198.51.100.1",
			h: hdr{"X-Forwarded-For": {"203.0.113.9"}}, want: "198.51.100.1"},
		{name: "untrusted peer: Forwarded ignored", peer: "198.51.100.1",
			h: hdr{"Forwarded": {"for=203.0.113.9"}}, want: "198.51.100.1"},
		{name: "untrusted peer: X-Real-IP ignored", peer: "198.51.100.1",
			h: hdr{"X-Real-Ip": {"203.0.113.9"}}, want: "198.51.100.1"},
		{name: "untrusted peer: garbage is no error", peer: "198.51.100.1",
			h: hdr{"X-Forwarded-For": {"not an ip"}}, want: "198.51.100.1"},
		{name: "trusted peer, no header", peer: "10.0.0.1", h: hdr{}, want: "10.0.0.1", wantTrus: true},
		{name: "trusted peer, one hop", peer: "10.0.0.1",
			h: hdr{"X-Forwarded-For": {"203.0.113.9"}}, want: "203.0.113.9", wantTrus: true},
		{name: "rightmost untrusted wins over a spoofed left part", peer: "10.0.0.1",
			h: hdr{"X-Forwarded-For": {"1.1.1.1, 203.0.113.9"}}, want: "203.0.113.9", wantTrus: true},
		{name: "several trusted hops are skipped", peer: "10.0.0.1",
			h: hdr{"X-Forwarded-For": {"1.1.1.1, 203.0.113.9, 10.0.1.7, 10.0.1.8"}}, want: "203.0.113.9", wantTrus: true},
		{name: "XFF split over several header lines", peer: "10.0.0.1",
			h: hdr{"X-Forwarded-For": {"1.1.1.1, 203.0.113.9", "10.0.1.7"}}, want: "203.0.113.9", wantTrus: true},
		{name: "every hop trusted: the leftmost", peer: "10.0.0.1",
			h: hdr{"X-Forwarded-For": {"10.0.1.3, 10.0.1.4"}}, want: "10.0.1.3", wantTrus: true},
		{name: "XFF with port", peer: "10.0.0.1",
			h: hdr{"X-Forwarded-For": {"203.0.113.9:5555"}}, want: "203.0.113.9", wantTrus: true},
		{name: "XFF IPv6 in brackets with port", peer: "10.0.0.1",
			h: hdr{"X-Forwarded-For": {"[2001:db8::9]:443"}}, want: "2001:db8::9", wantTrus: true},
		{name: "IPv4-mapped client is judged as IPv4", peer: "10.0.0.1",
			h: hdr{"X-Forwarded-For": {"::ffff:203.0.113.9"}}, want: "203.0.113.9", wantTrus: true},
		{name: "IPv4-mapped peer is trusted as IPv4", peer: "::ffff:10.0.0.1",
			h: hdr{"X-Forwarded-For": {"203.0.113.9"}}, want: "203.0.113.9", wantTrus: true},
		{name: "IPv4-mapped untrusted peer is unmapped", peer: "::ffff:198.51.100.1",
			h: hdr{}, want: "198.51.100.1"},
		{name: "IPv6 trusted proxy", peer: "2001:db8:ffff::1",
			h: hdr{"X-Forwarded-For": {"2001:db8::9"}}, want: "2001:db8::9", wantTrus: true},
		{name: "Forwarded for=", peer: "10.0.0.1",
			h: hdr{"Forwarded": {"for=203.0.113.9;proto=https"}}, want: "203.0.113.9", wantTrus: true},
		{name: "Forwarded quoted IPv6 with port", peer: "10.0.0.1",
			h: hdr{"Forwarded": {`for="[2001:db8::9]:4711"`}}, want: "2001:db8::9", wantTrus: true},
		{name: "Forwarded chain, rightmost untrusted", peer: "10.0.0.1",
			h: hdr{"Forwarded": {"for=1.1.1.1, for=203.0.113.9;by=10.0.1.7", "For=10.0.1.7"}}, want: "203.0.113.9", wantTrus: true},
		{name: "Forwarded is preferred over XFF", peer: "10.0.0.1",
			h: hdr{"Forwarded": {"for=203.0.113.9"}, "X-Forwarded-For": {"192.0.2.1"}}, want: "203.0.113.9", wantTrus: true},
		{name: "Forwarded without for= falls through to XFF", peer: "10.0.0.1",
			h: hdr{"Forwarded": {"proto=https"}, "X-Forwarded-For": {"192.0.2.1"}}, want: "192.0.2.1", wantTrus: true},
		{name: "Forwarded obfuscated node is unreadable", peer: "10.0.0.1",
			h: hdr{"Forwarded": {"for=_hidden"}}, errHas: "not an IP address", wantTrus: true},
		{name: "Forwarded unknown is unreadable", peer: "10.0.0.1",
			h: hdr{"Forwarded": {"for=unknown"}}, errHas: "not an IP address", wantTrus: true},
		{name: "X-Real-IP", peer: "10.0.0.1",
			h: hdr{"X-Real-Ip": {" 203.0.113.9 "}}, want: "203.0.113.9", wantTrus: true},
		{name: "X-Real-IP twice is ambiguous", peer: "10.0.0.1",
			h: hdr{"X-Real-Ip": {"203.0.113.9", "192.0.2.1"}}, errHas: "X-Real-IP given 2 times", wantTrus: true},
		{name: "header order can be chosen", peer: "10.0.0.1", headers: []string{"X-Real-IP", "X-Forwarded-For"},
			h: hdr{"X-Real-Ip": {"203.0.113.9"}, "X-Forwarded-For": {"192.0.2.1"}}, want: "203.0.113.9", wantTrus: true},
		{name: "headers not in the list are not read", peer: "10.0.0.1", headers: []string{"X-Real-IP"},
			h: hdr{"X-Forwarded-For": {"192.0.2.1"}}, want: "10.0.0.1", wantTrus: true},
		{name: "malformed XFF from a trusted proxy", peer: "10.0.0.1",
			h: hdr{"X-Forwarded-For": {"203.0.113.9, bogus"}}, errHas: `"bogus" is not an IP address`, wantTrus: true},
		{name: "empty hop from a trusted proxy", peer: "10.0.0.1",
			h: hdr{"X-Forwarded-For": {"203.0.113.9,,10.0.1.7"}}, errHas: "empty address", wantTrus: true},
		{name: "zoned address from a trusted proxy", peer: "10.0.0.1",
			h: hdr{"X-Forwarded-For": {"fe80::1%eth0"}}, errHas: "zoned", wantTrus: true},
		{name: "garbage left of the client is never read", peer: "10.0.0.1",
			h: hdr{"X-Forwarded-For": {"bogus, 203.0.113.9"}}, want: "203.0.113.9", wantTrus: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := trusted
			if c.noTrust {
				tr = nil
			}
			headers := c.headers
			if headers == nil {
				headers = canonical.DefaultClientIPHeaders
			}
			h := http.Header{}
			for k, vs := range c.h {
				for _, v := range vs {
					h.Add(k, v)
				}
			}
			got, gotTrusted, err := canonical.ClientIP(netip.MustParseAddr(c.peer), h, tr, headers)
			if gotTrusted != c.wantTrus {
				t.Errorf("peer trusted = %v, want %v", gotTrusted, c.wantTrus)
			}
			if c.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, c.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if got != netip.MustParseAddr(c.want) {
				t.Fatalf("client = %v, want %v", got, c.want)
			}
		})
	}
}

// TestFrom checks the request as a whole: the path is taken from the wire
// form, not from net/http's decoded URL, and every fact is filled in.
func TestFrom(t *testing.T) {
	opt := &canonical.Options{TrustedProxies: set(t, "10.0.0.1")}
	r := httptest.NewRequest("GET", "http://Example.COM:8080/%41dmin/x/../y?q=%2e", nil)
	r.RequestURI = "/%41dmin/x/../y?q=%2e"
	r.RemoteAddr = "10.0.0.1:4000"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	req, err := canonical.From(r, opt)
	if err != nil {
		t.Fatal(err)
	}
	want := canonical.Request{
		Method: "GET", Host: "example.com", Path: "/Admin/y", LowerPath: "/admin/y", EscapedPath: "/Admin/y",
		RawQuery: "q=%2e", ClientIP: netip.MustParseAddr("203.0.113.9"), PeerIP: netip.MustParseAddr("10.0.0.1"),
		PeerTrusted: true, Header: r.Header,
	}
	if req.Method != want.Method || req.Host != want.Host || req.Path != want.Path || req.LowerPath != want.LowerPath ||
		req.EscapedPath != want.EscapedPath || req.RawQuery != want.RawQuery || req.ClientIP != want.ClientIP ||
		req.PeerIP != want.PeerIP || req.PeerTrusted != want.PeerTrusted || req.TLS {
		t.Fatalf("From gave %+v\nwant %+v", req, want)
	}

	for _, c := range []struct {
		target, host, path string
		errHas             string
	}{
		{target: "http://x/admin/", host: "x", path: "/admin/"},
		{target: "http://x//admin/", host: "x", path: "/admin/"},
		{target: "https://x:443/%61dmin/?a=b", host: "x", path: "/admin/"},
		{target: "http://x", host: "x", path: "/"},
		{target: "http://x?/admin/", host: "x", path: "/"},
		{target: "http://x/admin%2f", host: "x", errHas: "encoded slash"},
		{target: "admin/", host: "x", errHas: "does not start with /"},
		{target: "*", host: "x", errHas: "is not a path"},
	} {
		r := &http.Request{Method: "GET", RequestURI: c.target, Host: c.host, RemoteAddr: "192.0.2.1:1", Header: http.Header{}, URL: &url.URL{}}
		if c.target == "*" {
			r.Method = "OPTIONS"
		}
		req, err := canonical.From(r, &canonical.Options{})
		if c.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("From(%q): got %+v, %v; want error %q", c.target, req, err, c.errHas)
			}
			continue
		}
		if err != nil || req.Path != c.path || req.Host != c.host {
			t.Errorf("From(%q) = path %q host %q, %v; want %q %q", c.target, req.Path, req.Host, err, c.path, c.host)
		}
	}

	for host, want := range map[string]string{
		"Example.com.":     "example.com",
		"example.com:8443": "example.com",
		"[2001:DB8::1]:80": "2001:db8::1",
		"[::1]":            "::1",
		"":                 "",
	} {
		r := &http.Request{Method: "GET", RequestURI: "/", Host: host, RemoteAddr: "192.0.2.1:1", Header: http.Header{}, URL: &url.URL{}}
		req, err := canonical.From(r, &canonical.Options{})
		if err != nil || req.Host != want {
			t.Errorf("host %q → %q, %v; want %q", host, req.Host, err, want)
		}
	}

	// A method in another case has two meanings: the rules' and the
	// framework's that upper-cases it.
	for _, m := range []string{"delete", "Delete", "gEt"} {
		r := &http.Request{Method: m, RequestURI: "/", RemoteAddr: "192.0.2.1:1", Header: http.Header{}, URL: &url.URL{}}
		if _, err := canonical.From(r, opt); err == nil || !strings.Contains(err.Error(), "not upper-case") {
			t.Errorf("method %q: want an error, got %v", m, err)
		}
	}
	for _, m := range []string{"GET", "PROPFIND", "M-SEARCH", "X_CUSTOM1"} {
		r := &http.Request{Method: m, RequestURI: "/", RemoteAddr: "192.0.2.1:1", Header: http.Header{}, URL: &url.URL{}}
		if req, err := canonical.From(r, opt); err != nil || req.Method != m {
			t.Errorf("method %q: %v", m, err)
		}
	}

	// A trusted proxy that sends garbage makes the request unjudgeable.
	r = &http.Request{Method: "GET", RequestURI: "/", RemoteAddr: "10.0.0.1:1", Header: http.Header{"X-Forwarded-For": {"nope"}}, URL: &url.URL{}}
	if _, err := canonical.From(r, opt); err == nil || !strings.Contains(err.Error(), "trusted proxy") {
		t.Errorf("garbage XFF from a trusted proxy: want an error, got %v", err)
	}
	// A peer address that is not an address is an error, not a zero IP.
	r = &http.Request{Method: "GET", RequestURI: "/", RemoteAddr: "pipe", Header: http.Header{}, URL: &url.URL{}}
	if _, err := canonical.From(r, opt); err == nil {
		t.Errorf("peer %q: want an error", r.RemoteAddr)
	}
}
