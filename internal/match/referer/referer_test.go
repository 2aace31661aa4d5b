package referer

import (
	"strings"
	"testing"
)

func mustCompile(t *testing.T, entries, serverNames []string) *Valid {
	t.Helper()
	v, err := Compile(entries, serverNames)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type refCase struct {
	referer string
	present bool
	want    bool
}

func absent(want bool) refCase        { return refCase{"", false, want} }
func ref(r string, want bool) refCase { return refCase{r, true, want} }
func check(t *testing.T, v *Valid, cases []refCase) {
	t.Helper()
	for _, c := range cases {
		if got := v.Valid(c.referer, c.present); got != c.want {
			t.Errorf("Valid(%q, present=%v) = %v, want %v", c.referer, c.present, got, c.want)
		}
	}
}

// The example configuration of the nginx documentation:
//
//	valid_referers none blocked server_names
//	               *.example.com example.* www.example.org/galleries/
//	               ~\.google\.;
func TestNginxDocumentationExample(t *testing.T) {
	v := mustCompile(t, []string{"none", "blocked", "server_names", "*.example.com", "example.*", "www.example.org/galleries/", `~\.google\.`},
		[]string{"mysite.net"})
	check(t, v, []refCase{
		absent(true),                           // none
		ref("", true),                          // present but empty: blocked
		ref("XXXXXXXXXXXXXXX", true),           // stripped by a proxy: blocked
		ref("android-app://com.example", true), // not http(s): blocked
		ref("http://mysite.net/page", true),    // server_names
		ref("https://MYSITE.NET:8443/x", true), // case and port ignored
		ref("http://www.example.com/", true),   // *.example.com
		ref("http://a.b.example.com/", true),   // any depth
		ref("http://example.com/", true),       // not *.example.com (subdomains only), but example.*
		ref("http://example.org/", true),       // example.*
		ref("http://example.co.uk/", true),     // example.* spans labels
		ref("http://www.example.org/galleries/1", true),
		ref("http://www.example.org/galleries", false), // path prefix "/galleries/"
		ref("http://www.example.org/", false),
		ref("https://www.google.com/search?q=x", true),    // ~\.google\.
		ref("https://www.GOOGLE.de/", true),               // regexes ignore case
		ref("http://evil.com/", false),                    // present, http, unknown
		ref("http://evil.com/?from=www.google.com", true), // the regex sees the whole rest: nginx's hole, kept
	})
}

func TestNoneAndBlocked(t *testing.T) {
	v := mustCompile(t, []string{"example.com"}, nil)
	check(t, v, []refCase{
		absent(false), ref("", false), ref("blocked", false), ref("http://example.com/", true),
	})
	v = mustCompile(t, []string{"none", "example.com"}, nil)
	check(t, v, []refCase{absent(true), ref("", false), ref("blocked", false)})
	v = mustCompile(t, []string{"blocked", "example.com"}, nil)
	check(t, v, []refCase{
		absent(false), ref("", true), ref("blocked", true), ref("ftp://example.com/", true),
		ref("http://a.b", true),        // 10 bytes: shorter than "http://i.ru", so "blocked"
		ref("http://a.bc", false),      // 11 bytes: an http Referer for host a.bc
		ref("http://evil.com/", false), // blocked never admits http(s) Referers
		ref("HTTP://EXAMPLE.COM/", true),
		ref("https://example.com", true),
	})
	// "None" and "Blocked" are host names: nginx compares the keywords exactly.
	v = mustCompile(t, []string{"None", "Blocked"}, nil)
	check(t, v, []refCase{absent(false), ref("x", false), ref("http://none/", true), ref("http://BLOCKED/", true)})
}

func TestHostsAndWildcards(t *testing.T) {
	v := mustCompile(t, []string{"example.com", ".example.net", "*.example.org", "www.example.*", "static.example.*/img/"}, nil)
	check(t, v, []refCase{
		ref("http://example.com", true),
		ref("http://sub.example.com/", false), // exact means exact
		ref("http://example.net/", true),      // ".example.net": the domain...
		ref("http://a.example.net/", true),    // ...and subdomains
		ref("http://example.org/", false),     // "*.example.org": subdomains only
		ref("http://a.example.org/", true),
		ref("http://aexample.org/", false), // a label boundary is required
		ref("http://www.example.co/", true),
		ref("http://www.example/", false), // "www.example.*" needs something after "www.example."
		ref("http://static.example.io/img/a.png", true),
		ref("http://static.example.io/css/a.css", false),
		ref("http://user@example.com/", false), // the host is "user@example.com"
		ref("http://example.com.evil.net/", false),
		ref("http://example.com:8080/", true), // the port is ignored
	})
}

func TestMostSpecificEntryDecides(t *testing.T) {
	v := mustCompile(t, []string{"*.example.com", "*.img.example.com/pub/", "www.example.*/p/", "www.example.co.*", "~."}, nil)
	check(t, v, []refCase{
		ref("http://a.example.com/anything", true),
		ref("http://x.img.example.com/pub/1", true),
		// The most specific entry has a path prefix that does not match:
		// invalid, even though "*.example.com" and the catch-all regex would admit it.
		ref("http://x.img.example.com/private/1", false),
		ref("http://img.example.com/private/1", true), // *.img.example.com needs a subdomain; *.example.com decides
		ref("http://www.example.co.uk/x", true),       // "www.example.co.*" beats "www.example.*/p/"
		ref("http://www.example.net/x", false),
		ref("http://www.example.net/p/x", true),
		ref("http://nothing.matches/", true), // no host entry: the regex decides
	})
}

func TestPathPrefixIsCaseSensitiveAndStartsAtFirstSlash(t *testing.T) {
	v := mustCompile(t, []string{"example.com/Pics/"}, nil)
	check(t, v, []refCase{
		ref("http://EXAMPLE.com/Pics/1", true),
		ref("http://example.com/pics/1", false),
		ref("http://example.com:80/Pics/1", true),
		ref("http://example.com:80x/Pics/1", true), // nginx skips to the first '/' after the host
		ref("http://example.com", false),
		ref("http://example.com?/Pics/", false),
	})
}

func TestHostLength(t *testing.T) {
	v := mustCompile(t, []string{"~."}, nil) // every http(s) Referer that reaches the regexes
	check(t, v, []refCase{
		ref("http://"+strings.Repeat("a", 256)+"/", true),
		ref("http://"+strings.Repeat("a", 257)+"/", false), // does not fit nginx's buffer
	})
}

func TestServerNames(t *testing.T) {
	names := []string{"Example.com", "*.example.net", `~^img\d+\.example\.io$`, `~^CDN-\w+\.example\.io$`}
	v := mustCompile(t, []string{"server_names"}, names)
	check(t, v, []refCase{
		ref("http://example.com/", true), // server names are lower-cased
		ref("http://a.example.net/", true),
		ref("http://img12.example.io/x/y", true), // server_name regexes see the host only
		ref("http://IMG12.EXAMPLE.IO/", true),    // ...lower-cased
		ref("http://cdn-eu.example.io/", true),   // upper case in the regex: compiled caseless
		ref("http://img.example.io/", false),
		absent(false),
	})
	// Without server_name, nginx's server name is "": an empty host.
	v = mustCompile(t, []string{"server_names"}, []string{""})
	check(t, v, []refCase{ref("http:///abcd", true), ref("http://:80/abc", true), ref("http://a/bcde", false), ref("http:///x", false)})
	// With no names at all there is nothing to check: everything is valid.
	v = mustCompile(t, []string{"server_names"}, nil)
	check(t, v, []refCase{absent(true), ref("http://evil.com/", true)})
}

func TestRegexSubjectAndBytes(t *testing.T) {
	v := mustCompile(t, []string{`~^static\.example\.com/$`, `~^a.b\.io`, `~^caf\xc3\xa9\.`}, nil)
	check(t, v, []refCase{
		ref("http://static.example.com/", true),
		ref("https://static.example.com/", true),
		ref("http://static.example.com/x", false),
		ref("http://axb.io/", true),
		ref("http://a\xc3\xa9b.io/", false), // '.' is one byte, as in PCRE without UTF mode
		ref("http://caf\xc3\xa9.fr/", true),
	})
	// A non-ASCII literal in the pattern is its UTF-8 bytes.
	v = mustCompile(t, []string{"~café"}, nil)
	check(t, v, []refCase{ref("http://café.fr/", true), ref("http://caf\xe9.fr/", false)})
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		entries, serverNames []string
		want                 string
	}{
		{nil, nil, "at least one"},
		{[]string{""}, nil, "invalid referer"},
		{[]string{"none"}, nil, `"none" or "blocked"`},
		{[]string{"blocked", "~x"}, nil, `"none" or "blocked"`},
		{[]string{"~"}, nil, "empty regex"},
		{[]string{"~(?=a)b"}, nil, "regex"}, // PCRE look-ahead: not RE2
		{[]string{"~a(b"}, nil, "missing closing )"},
		{[]string{"www.*.com"}, nil, "invalid hostname or wildcard"},
		{[]string{"a..b"}, nil, "invalid hostname or wildcard"},
		{[]string{"example.com", "Example.COM/x"}, nil, "conflicting parameter"},
		{[]string{".example.com", "*.example.com"}, nil, "conflicting parameter"},
		{[]string{"server_names", "example.com"}, []string{"example.com"}, "conflicting parameter"},
		{[]string{"server_names"}, []string{"~("}, "server name"},
	}
	for _, c := range cases {
		_, err := Compile(c.entries, c.serverNames)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Compile(%q, %q) error = %v, want one mentioning %q", c.entries, c.serverNames, err, c.want)
		}
	}
}

func TestValidOrigin(t *testing.T) {
	v := mustCompile(t, []string{"example.com", "*.example.com", "app.example.org/path/", `~^api\.example\.net(:\d+)?$`}, nil)
	cases := []struct {
		origin  string
		present bool
		want    bool
	}{
		{"", false, false},
		{"null", true, false},
		{"https://example.com", true, true},
		{"HTTPS://WWW.EXAMPLE.COM:8443", true, true},
		{"http://a.b", true, false}, // no 11-byte minimum: an origin for host a.b
		{"https://evil.com", true, false},
		{"https://app.example.org", true, false}, // an origin has no path: path entries never match
		{"https://api.example.net", true, true},  // regexes see host[:port] with nothing appended
		{"https://api.example.net:8443", true, true},
		{"chrome-extension://abcdef", true, false},
	}
	for _, c := range cases {
		if got := v.ValidOrigin(c.origin, c.present); got != c.want {
			t.Errorf("ValidOrigin(%q, %v) = %v, want %v", c.origin, c.present, got, c.want)
		}
	}
	v = mustCompile(t, []string{"none", "blocked", "example.com"}, nil)
	for _, c := range []struct {
		origin  string
		present bool
		want    bool
	}{{"", false, true}, {"null", true, true}, {"file://", true, true}, {"https://evil.com", true, false}} {
		if got := v.ValidOrigin(c.origin, c.present); got != c.want {
			t.Errorf("with none+blocked: ValidOrigin(%q, %v) = %v, want %v", c.origin, c.present, got, c.want)
		}
	}
}

func TestBytePattern(t *testing.T) {
	cases := map[string]string{
		`abc`:         `abc`,
		"caf\xc3\xa9": `caf\x{C3}\x{A9}`,
		`a\.b`:        `a\.b`,
		"\\\xc3\xa9":  `\x{C3}\x{A9}`, // an escaped non-ASCII byte is just that byte
		`\\`:          `\\`,
		"[\xc3\xa9x]": `[\x{C3}\x{A9}x]`,
		`trailing\`:   `trailing\`,
	}
	for in, want := range cases {
		if got := bytePattern(in); got != want {
			t.Errorf("bytePattern(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkValid(b *testing.B) {
	v, err := Compile([]string{"none", "blocked", "server_names", "*.example.com", "example.*", "www.example.org/galleries/", `~\.google\.`},
		[]string{"mysite.net", "www.mysite.net"})
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range []string{"https://www.example.com/page", "https://www.google.com/search?q=x", "https://evil.example.net/hotlink"} {
		b.Run(r, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v.Valid(r, true)
			}
		})
	}
}
