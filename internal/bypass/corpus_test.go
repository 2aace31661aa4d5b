package bypass

import (
	"fmt"
	"net/url"
	"strings"
)

// shape is one request of the corpus.
type shape struct {
	name   string
	source string // the published flaw or research the shape comes from
	method string // default GET
	target string
	header []string
	body   string
	// raw, when set, is the whole request; "{ID}" stands for the
	// X-Corpus-Id header line the upstream files its record under.
	raw string
	// key is "user" or "admin": send that API key.
	key string
	// from is the local address to connect from (default 127.0.0.1).
	from string
	// client is the address the rules judge, and so the only one the
	// upstream may be told (default 127.0.0.1).
	client string
}

// Sources, named once.
const (
	srcApache41773   = "Apache httpd CVE-2021-41773 (.%2e traversal)"
	srcApache42013   = "Apache httpd CVE-2021-42013 (double-encoded %%32%65)"
	srcApache38474   = "Apache httpd CVE-2024-38474/38475 (encoded '?' truncates the path; Orange Tsai, Confusion Attacks 2024)"
	srcIISDouble     = "IIS CVE-2001-0333 (double decoding, %255c)"
	srcIISUnicode    = "IIS CVE-2000-0884 (overlong UTF-8 %c0%af)"
	srcIISPercentU   = "IIS %uXXXX encoding (non-standard, decoded by IIS and ASP.NET)"
	srcIISShort      = "IIS 8.3 short names (Soroush Dalili, tilde enumeration, 2012)"
	srcNTFSADS       = "IIS CVE-1999-0278 (NTFS ::$DATA stream)"
	srcWindowsTrail  = "Windows trailing dot/space stripping (CWE-41; IIS, Apache on Windows)"
	srcBackslash     = "backslash as separator (IIS, Windows; Envoy CVE-2021-29492 %5C)"
	srcTomcat        = "Tomcat/Jetty path parameters ..;/ (Orange Tsai, Breaking Parser Logic, Black Hat 2018)"
	srcShiro1957     = "Apache Shiro CVE-2020-1957 (/;/ and ;)"
	srcShiro11989    = "Apache Shiro CVE-2020-11989 (%25%32%66 double-encoded slash)"
	srcShiro13933    = "Apache Shiro CVE-2020-13933 (%3b)"
	srcShiro17523    = "Apache Shiro CVE-2020-17523 (trailing space)"
	srcSpring5007    = "Spring Security/MVC CVE-2016-5007 (whitespace trimmed in segments)"
	srcSpring22978   = "Spring Security CVE-2022-22978 / Shiro CVE-2022-32532 (CR/LF in path vs regex matchers)"
	srcSpring20860   = "Spring Framework CVE-2023-20860 (** patterns) and trailing-slash matching (Spring, Django APPEND_SLASH, Flask strict_slashes)"
	srcEnvoy9901     = "Envoy CVE-2019-9901 (dot segments not normalized)"
	srcEnvoy29492    = "Envoy CVE-2021-29492 (escaped slash %2F not normalized)"
	srcEnvoy9900     = "Envoy CVE-2019-9900 / NUL truncation (CWE-158)"
	srcNginxAlias    = "nginx alias off-by-slash /static../ (Orange Tsai, Black Hat 2018)"
	srcCase          = "case-insensitive file systems and routers (IIS, Spring setCaseSensitive(false); CWE-178)"
	srcBestFit       = "Unicode best-fit/NFKC folding (Orange Tsai, WorstFit 2025; PHP CVE-2024-4577; CWE-176)"
	srcCaseFold      = "Unicode case mapping to ASCII (dotless i, long s, Kelvin sign; GitHub 2019 password reset, CWE-178)"
	srcControl       = "control characters in paths (CWE-20; Shiro CVE-2022-32532)"
	srcInvalidUTF8   = "invalid UTF-8 in paths (CWE-176)"
	srcTraefik47106  = "Traefik CVE-2023-47106 (fragment forwarded to the backend)"
	srcAbsolute      = "absolute-form request target (RFC 9112 3.2.2; James Kettle, Cracking the Lens 2017)"
	srcHost          = "Host header tricks (James Kettle, Practical HTTP Host header attacks 2013 / Cracking the Lens 2017)"
	srcHTTP10        = "HTTP/1.0 without Host (RFC 9112 3.2; virtual-host fallbacks)"
	srcMethodCase    = "lower-case methods upper-cased by frameworks (Werkzeug, Rails; CWE-178)"
	srcMethodOther   = "methods a rule does not list (HEAD/OPTIONS/TRACE/WebDAV verb tampering, CWE-650)"
	srcSymfony       = "Symfony/Zend X-Original-URL / X-Rewrite-URL CVE-2018-14773"
	srcNextjs        = "Next.js middleware bypass CVE-2025-29927 (x-middleware-subrequest)"
	srcMethodOvr     = "method-override headers (Rails, Express method-override, Symfony; CWE-650)"
	srcXFF           = "client-address spoofing through forwarding headers (CWE-348, CWE-290; OWASP WSTG-INPV)"
	srcTraefikHop    = "Traefik CVE-2024-45410 (Connection header removes forwarding headers)"
	srcIdentity      = "forged identity headers from the client (CWE-290; oauth2-proxy/Pomerium-style X-Forwarded-User trust)"
	srcCreds         = "credential confusion (duplicate keys, alg:none JWT CVE-2015-9235, hash as key)"
	srcCGIUnderscore = "header names with '_' that CGI/PHP read as '-' (nginx underscores_in_headers; CVE-2018-14773 via HTTP_X_ORIGINAL_URL)"
	srcSmuggling     = "HTTP request smuggling (James Kettle, HTTP Desync Attacks 2019; CVE-2019-16276 Go, CVE-2022-32213 Node)"
)

// pathTricks turn a protected top-level name ("admin", "internal") into a
// request target that some server reads as that resource.
var pathTricks = []struct {
	name   string
	source string
	target func(p string) string
}{
	{"dot-%2e", srcApache41773, f("/public/.%%2e/%s/secret")},
	{"%2e%2e", srcApache41773, f("/public/%%2e%%2e/%s/secret")},
	{"twice .%2e", srcApache41773, f("/public/.%%2e/.%%2e/%s/secret")},
	{"cgi-bin .%2e x3", srcApache41773, f("/cgi-bin/.%%2e/.%%2e/.%%2e/%s/secret")},
	{"%2e.", srcApache41773, f("/public/%%2e./%s/secret")},
	{"%%32%65%%32%65", srcApache42013, f("/public/%%%%32%%65%%%%32%%65/%s/secret")},
	{".%%32%65", srcApache42013, f("/public/.%%%%32%%65/%s/secret")},
	{"%%32e%%32e", srcApache42013, f("/public/%%%%32e%%%%32e/%s/secret")},
	{"..%255c", srcIISDouble, f("/public/..%%255c%s/secret")},
	{"..%252f", srcIISDouble, f("/public/..%%252f%s/secret")},
	{"%252e%252e", srcIISDouble, f("/public/%%252e%%252e/%s/secret")},
	{"%25%32%65", srcIISDouble, f("/public/%%25%%32%%65%%25%%32%%65/%s/secret")},
	{"..%25%32%66", srcShiro11989, f("/public/..%%25%%32%%66%s/secret")},
	{"name%25%32%66", srcShiro11989, f("/%s%%25%%32%%66secret")},
	{"%c0%ae%c0%ae", srcIISUnicode, f("/public/%%c0%%ae%%c0%%ae/%s/secret")},
	{"..%c0%af", srcIISUnicode, f("/public/..%%c0%%af%s/secret")},
	{"%e0%80%ae", srcIISUnicode, f("/public/%%e0%%80%%ae%%e0%%80%%ae/%s/secret")},
	{"..%c1%9c", srcIISUnicode, f("/public/..%%c1%%9c%s/secret")},
	{"all overlong", srcIISUnicode, f("/public/%%c0%%ae%%c0%%ae%%c0%%af%s%%c0%%afsecret")},
	{"%u002e%u002e", srcIISPercentU, f("/public/%%u002e%%u002e/%s/secret")},
	{"..%u2215", srcIISPercentU, f("/public/..%%u2215%s/secret")},
	{"..%u005c", srcIISPercentU, f("/public/..%%u005c%s/secret")},
	{"%u first letter", srcIISPercentU, func(p string) string { return fmt.Sprintf("/%%u00%x%s/secret", p[0], p[1:]) }},
	{"..;/", srcTomcat, f("/public/..;/%s/secret")},
	{"..;param/", srcTomcat, f("/public/..;foo=bar/%s/secret")},
	{"/.;/", srcTomcat, f("/.;/%s/secret")},
	{"/;/", srcShiro1957, f("/;/%s/secret")},
	{"name;/", srcShiro1957, f("/%s;/secret")},
	{"name;jsessionid", srcTomcat, f("/%s;jsessionid=x/secret")},
	{"public;/../", srcTomcat, f("/public;/../%s/secret")},
	{"..;/..;/", srcTomcat, f("/public/..;/..;/%s/secret")},
	{"name%3b", srcShiro13933, f("/%s%%3bfoo/secret")},
	{"..%3b/", srcShiro13933, f("/public/..%%3b/%s/secret")},
	{"/%3b/", srcShiro13933, f("/%%3b/%s/secret")},
	{"/%3bsecret", srcShiro13933, f("/%s/%%3bsecret")},
	{"name%20", srcShiro17523, f("/%s%%20/secret")},
	{"name%09", srcSpring5007, f("/%s%%09/secret")},
	{"%20name", srcSpring5007, f("/%%20%s/secret")},
	{"name/%20", srcShiro17523, f("/%s/%%20")},
	{"secret%0a", srcSpring22978, f("/%s/secret%%0a")},
	{"name%0d%0a", srcSpring22978, f("/%s%%0d%%0a/secret")},
	{"%0asecret", srcSpring22978, f("/%s/%%0asecret")},
	{"bare name", srcSpring20860, f("/%s")},
	{"name/", srcSpring20860, f("/%s/")},
	{"name//", srcSpring20860, f("/%s//secret")},
	{"name/./", srcSpring20860, f("/%s/./secret")},
	{"secret/", srcSpring20860, f("/%s/secret/")},
	{"secret/.", srcSpring20860, f("/%s/secret/.")},
	{"public/../", srcEnvoy9901, f("/public/../%s/secret")},
	{"public/./../", srcEnvoy9901, f("/public/./../%s/secret")},
	{"/./", srcEnvoy9901, f("/./%s/secret")},
	{"//", srcEnvoy9901, f("//%s/secret")},
	{"///", srcEnvoy9901, f("///%s///secret")},
	{"above root", srcEnvoy9901, f("/public/../../%s/secret")},
	{"/%2e/", srcEnvoy9901, f("/%%2e/%s/secret")},
	{"%2E%2E", srcEnvoy9901, f("/public/%%2E%%2E/%s/secret")},
	{"public%2f..%2f", srcEnvoy29492, f("/public%%2f..%%2f%s/secret")},
	{"..%2f", srcEnvoy29492, f("/public/..%%2f%s/secret")},
	{"%2F everywhere", srcEnvoy29492, f("/public%%2F..%%2F%s%%2Fsecret")},
	{"/%2fname", srcEnvoy29492, f("/%%2f%s/secret")},
	{"name%2fsecret", srcEnvoy29492, f("/%s%%2fsecret")},
	{"..%5c", srcEnvoy29492, f("/public/..%%5c%s/secret")},
	{"%5c everywhere", srcEnvoy29492, f("/public%%5c..%%5c%s%%5csecret")},
	{"raw ..\\", srcBackslash, f("/public/..\\%s\\secret")},
	{"raw \\..\\", srcBackslash, f("/public\\..\\%s/secret")},
	{"/\\name", srcBackslash, f("/\\%s/secret")},
	{"name\\secret", srcBackslash, f("/%s\\secret")},
	{"name.", srcWindowsTrail, f("/%s./secret")},
	{"name..", srcWindowsTrail, f("/%s../secret")},
	{"name%2e", srcWindowsTrail, f("/%s%%2e/secret")},
	{"name%20%20", srcWindowsTrail, f("/%s%%20%%20/secret")},
	{"name.%20", srcWindowsTrail, f("/%s.%%20/secret")},
	{"name::$DATA", srcNTFSADS, f("/%s::$DATA/secret")},
	{"NAME~1", srcIISShort, func(p string) string { return "/" + strings.ToUpper(trunc(p, 6)) + "~1/secret" }},
	{"name~1", srcIISShort, func(p string) string { return "/" + trunc(p, 6) + "~1/secret" }},
	{"static../", srcNginxAlias, f("/static../%s/secret")},
	{"static..%2f", srcNginxAlias, f("/static..%%2f%s/secret")},
	{"static%2e%2e/", srcNginxAlias, f("/static%%2e%%2e/%s/secret")},
	{"UPPER", srcCase, func(p string) string { return "/" + strings.ToUpper(p) + "/secret" }},
	{"Title", srcCase, func(p string) string { return "/" + strings.ToUpper(p[:1]) + p[1:] + "/secret" }},
	{"mIxEd", srcCase, func(p string) string { return "/" + alternate(p) + "/secret" }},
	{"%xx first letter", srcCase, func(p string) string { return fmt.Sprintf("/%%%02x%s/secret", p[0], p[1:]) }},
	{"%XX all letters", srcCase, func(p string) string { return "/" + encodeAll(p) + "/secret" }},
	{"%XX upper first", srcCase, func(p string) string { return fmt.Sprintf("/%%%02X%s/secret", p[0]-32, p[1:]) }},
	{"fullwidth name (encoded)", srcBestFit, func(p string) string { return "/" + url.PathEscape(fullwidth(p)) + "/secret" }},
	{"fullwidth name (raw UTF-8)", srcBestFit, func(p string) string { return "/" + fullwidth(p) + "/secret" }},
	{"fullwidth dots", srcBestFit, f("/public/%%EF%%BC%%8E%%EF%%BC%%8E/%s/secret")},
	{"fullwidth solidus", srcBestFit, f("/public/..%%EF%%BC%%8F%s/secret")},
	{"division slash", srcBestFit, f("/public/..%%E2%%88%%95%s/secret")},
	{"fullwidth reverse solidus", srcBestFit, f("/public/..%%EF%%BC%%BC%s/secret")},
	{"one dot leader", srcBestFit, f("/public/%%E2%%80%%A4%%E2%%80%%A4/%s/secret")},
	{"mathematical bold", srcBestFit, func(p string) string { return "/" + url.PathEscape(mathBold(p)) + "/secret" }},
	{"circled letters", srcBestFit, func(p string) string { return "/" + url.PathEscape(circled(p)) + "/secret" }},
	{"dotless i", srcCaseFold, func(p string) string { return "/" + url.PathEscape(strings.ReplaceAll(p, "i", "\u0131")) + "/secret" }},
	{"dotted capital I", srcCaseFold, func(p string) string { return "/" + url.PathEscape(strings.ReplaceAll(p, "i", "\u0130")) + "/secret" }},
	{"NTFS $INDEX_ALLOCATION", srcNTFSADS, f("/%s::$INDEX_ALLOCATION/secret")},
	{"NTFS $i30", srcNTFSADS, f("/%s:$i30:$INDEX_ALLOCATION/secret")},
	{"ideographic full stop", srcBestFit, f("/%s%%E3%%80%%82/secret")},
	{"non-breaking space", srcBestFit, f("/%s%%C2%%A0/secret")},
	{"set minus", srcBestFit, f("/public/..%%E2%%88%%96%s/secret")},
	{"name%00", srcEnvoy9900, f("/%s%%00/secret")},
	{"secret%00.html", srcEnvoy9900, f("/%s/secret%%00.html")},
	{"public%00/../", srcEnvoy9900, f("/public%%00/../%s/secret")},
	{"trailing %00", srcEnvoy9900, f("/%s%%00")},
	{"name%0d", srcControl, f("/%s%%0d/secret")},
	{"name%7f", srcControl, f("/%s%%7f/secret")},
	{"name%ff", srcInvalidUTF8, f("/%s%%ff/secret")},
	{"name%c0", srcInvalidUTF8, f("/%s%%c0/secret")},
	{"raw # then ..", srcTraefik47106, f("/public#/../%s/secret")},
	{"%23 then ..", srcTraefik47106, f("/public%%23/../%s/secret")},
	{"name%23", srcTraefik47106, f("/%s%%23/secret")},
	{"name%3f", srcApache38474, f("/%s%%3f/secret")},
	{"name%3Fx=", srcApache38474, f("/%s%%3Fx=/secret")},
	{"public%3f/../", srcApache38474, f("/public%%3f/../%s/secret")},
	{"raw ? in name", srcApache38474, f("/%s?/secret")},
	{"secret;", srcTomcat, f("/%s/secret;")},
	{"name%2f", srcEnvoy29492, f("/%s%%2f")},
	{"absolute-form", srcAbsolute, f("http://x/%s/secret")},
	{"absolute-form with ..", srcAbsolute, f("http://x/public/../%s/secret")},
	{"absolute-form upper scheme", srcAbsolute, f("HTTP://X/%s/secret")},
	{"absolute-form https:443", srcAbsolute, f("https://x:443/%s/secret")},
	{"absolute-form userinfo", srcAbsolute, f("http://u@x/%s/secret")},
	{"absolute-form %2e%2e", srcAbsolute, f("http://x/public/%%2e%%2e/%s/secret")},
}

func f(format string) func(string) string {
	return func(p string) string { return fmt.Sprintf(format, p) }
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func alternate(s string) string {
	b := []byte(s)
	for i := range b {
		if i%2 == 1 {
			b[i] -= 32
		}
	}
	return string(b)
}

func encodeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

func fullwidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r - 0x21 + 0xFF01)
	}
	return b.String()
}

func mathBold(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(0x1D41A + (r - 'a'))
	}
	return b.String()
}

func circled(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(0x24D0 + (r - 'a'))
	}
	return b.String()
}

// spoofHeaders claim the client is inside 10.0.0.0/8.
var spoofHeaders = []struct {
	name   string
	source string
	header []string
}{
	{"X-Forwarded-For", srcXFF, []string{"X-Forwarded-For: 10.0.0.1"}},
	{"X-Forwarded-For chain", srcXFF, []string{"X-Forwarded-For: 10.0.0.1, 127.0.0.1"}},
	{"X-Forwarded-For chain reversed", srcXFF, []string{"X-Forwarded-For: 127.0.0.1, 10.0.0.1"}},
	{"X-Forwarded-For twice", srcXFF, []string{"X-Forwarded-For: 10.0.0.1", "X-Forwarded-For: 10.0.0.2"}},
	{"X-Forwarded-For with port", srcXFF, []string{"X-Forwarded-For: 10.0.0.1:443"}},
	{"X-Forwarded-For v4-mapped v6", srcXFF, []string{"X-Forwarded-For: ::ffff:10.0.0.1"}},
	{"X-Real-IP", srcXFF, []string{"X-Real-IP: 10.0.0.1"}},
	{"Forwarded for=", srcXFF, []string{"Forwarded: for=10.0.0.1;proto=http"}},
	{"Forwarded quoted v6", srcXFF, []string{`Forwarded: for="[::ffff:10.0.0.1]"`}},
	{"True-Client-IP", srcXFF, []string{"True-Client-IP: 10.0.0.1"}},
	{"CF-Connecting-IP", srcXFF, []string{"CF-Connecting-IP: 10.0.0.1"}},
	{"Fastly-Client-IP", srcXFF, []string{"Fastly-Client-IP: 10.0.0.1"}},
	{"X-Client-IP", srcXFF, []string{"X-Client-IP: 10.0.0.1"}},
	{"X-Cluster-Client-IP", srcXFF, []string{"X-Cluster-Client-IP: 10.0.0.1"}},
	{"X-Originating-IP", srcXFF, []string{"X-Originating-IP: 10.0.0.1"}},
	{"X-Remote-IP", srcXFF, []string{"X-Remote-IP: 10.0.0.1"}},
	{"X-Remote-Addr", srcXFF, []string{"X-Remote-Addr: 10.0.0.1"}},
	{"Client-IP", srcXFF, []string{"Client-IP: 10.0.0.1"}},
	{"X_Real_IP (CGI reads _ as -)", srcCGIUnderscore, []string{"X_Real_IP: 10.0.0.1"}},
	{"X_Forwarded_For (CGI reads _ as -)", srcCGIUnderscore, []string{"X_Forwarded_For: 10.0.0.1"}},
	{"True_Client_IP (CGI reads _ as -)", srcCGIUnderscore, []string{"True_Client_IP: 10.0.0.1"}},
	{"Connection drops X-Forwarded-For", srcTraefikHop, []string{"X-Real-IP: 10.0.0.1", "Connection: close, X-Forwarded-For"}},
	{"Connection drops X-Real-IP", srcTraefikHop, []string{"X-Forwarded-For: 10.0.0.1", "Connection: X-Real-IP"}},
}

// corpus returns every attack shape. None may reach /admin/ (no admin
// key), /internal/ (client 127.0.0.1 is outside 10.0.0.0/8), a write
// method, or leave the upstream believing a forged client address or role.
func corpus() []shape {
	var out []shape
	for _, p := range []string{"admin", "internal"} {
		for _, tr := range pathTricks {
			out = append(out, shape{name: p + ": " + tr.name, source: tr.source, target: tr.target(p)})
		}
	}
	for _, sp := range spoofHeaders {
		out = append(out,
			shape{name: "internal via " + sp.name, source: sp.source, target: "/internal/secret", header: sp.header},
			shape{name: "spoofed address upstream via " + sp.name, source: sp.source, target: "/public/ip", header: sp.header},
		)
	}
	out = append(out, overrideShapes()...)
	out = append(out, spellingShapes()...)
	out = append(out, clientIPShapes()...)
	out = append(out,
		// Methods.
		shape{name: "lower-case get on admin", source: srcMethodCase, method: "get", target: "/admin/secret"},
		shape{name: "lower-case delete", source: srcMethodCase, method: "delete", target: "/public/x"},
		shape{name: "Delete mixed case", source: srcMethodCase, method: "Delete", target: "/public/x"},
		shape{name: "DELETE", source: srcMethodOther, method: "DELETE", target: "/public/x"},
		shape{name: "PUT", source: srcMethodOther, method: "PUT", target: "/public/x", body: "data"},
		shape{name: "PATCH", source: srcMethodOther, method: "PATCH", target: "/public/x", body: "data"},
		shape{name: "HEAD on admin", source: srcMethodOther, method: "HEAD", target: "/admin/secret"},
		shape{name: "OPTIONS on admin", source: srcMethodOther, method: "OPTIONS", target: "/admin/secret"},
		shape{name: "TRACE on internal", source: srcMethodOther, method: "TRACE", target: "/internal/secret"},
		shape{name: "PROPFIND on admin", source: srcMethodOther, method: "PROPFIND", target: "/admin/"},
		shape{name: "made-up verb on admin", source: srcMethodOther, method: "GETS", target: "/admin/secret"},
		shape{name: "X-HTTP-Method-Override: DELETE", source: srcMethodOvr, method: "POST", target: "/public/x", header: []string{"X-HTTP-Method-Override: DELETE"}},
		shape{name: "X-HTTP-Method: PUT", source: srcMethodOvr, method: "POST", target: "/public/x", header: []string{"X-HTTP-Method: PUT"}},
		shape{name: "X-Method-Override: PATCH", source: srcMethodOvr, method: "POST", target: "/public/x", header: []string{"X-Method-Override: PATCH"}},
		shape{name: "x-http-method-override lower-case", source: srcMethodOvr, method: "GET", target: "/public/x", header: []string{"x-http-method-override: delete"}},
		// Path overrides.
		shape{name: "X-Original-URL admin", source: srcSymfony, target: "/public/x", header: []string{"X-Original-URL: /admin/secret"}},
		shape{name: "X-Rewrite-URL admin", source: srcSymfony, target: "/public/x", header: []string{"X-Rewrite-URL: /admin/secret"}},
		shape{name: "x-original-url internal", source: srcSymfony, target: "/public/x", header: []string{"x-original-url: /internal/secret"}},
		shape{name: "X_Original_URL (CGI reads _ as -)", source: srcCGIUnderscore, target: "/public/x", header: []string{"X_Original_URL: /admin/secret"}},
		shape{name: "X_Rewrite_Url (CGI reads _ as -)", source: srcCGIUnderscore, target: "/public/x", header: []string{"X_Rewrite_Url: /internal/secret"}},
		shape{name: "X_HTTP_Method_Override (CGI reads _ as -)", source: srcCGIUnderscore, method: "POST", target: "/public/x", header: []string{"X_HTTP_Method_Override: DELETE"}},
		shape{name: "X_Warden_Roles (CGI reads _ as -)", source: srcCGIUnderscore, target: "/public/x", header: []string{"X_Warden_Roles: admin"}},
		shape{name: "X-Original-URL on /", source: srcSymfony, target: "/", header: []string{"X-Original-URL: /admin"}},
		shape{name: "X-Original-URL with absolute-form", source: srcSymfony, target: "http://x/public", header: []string{"X-Original-URL: /internal/"}},
		shape{name: "x-middleware-subrequest (Next 12)", source: srcNextjs, target: "/admin/secret", header: []string{"x-middleware-subrequest: pages/_middleware"}},
		shape{name: "x-middleware-subrequest (Next 13+)", source: srcNextjs, target: "/admin/secret", header: []string{"x-middleware-subrequest: middleware:middleware:middleware:middleware:middleware"}},
		shape{name: "x-middleware-subrequest src/", source: srcNextjs, target: "/internal/secret", header: []string{"x-middleware-subrequest: src/middleware:src/middleware:src/middleware:src/middleware:src/middleware"}},
		// Host and request-target forms.
		shape{name: "Host: localhost", source: srcHost, target: "/admin/secret", header: []string{"Host: localhost"}},
		shape{name: "Host: 10.0.0.1 on internal", source: srcHost, target: "/internal/secret", header: []string{"Host: 10.0.0.1"}},
		shape{name: "X-Forwarded-Host internal", source: srcHost, target: "/internal/secret", header: []string{"X-Forwarded-Host: internal.local"}},
		shape{name: "Host with userinfo", source: srcHost, target: "/admin/secret", header: []string{"Host: x@10.0.0.1"}},
		shape{name: "HTTP/1.0 without Host, admin", source: srcHTTP10, raw: "GET /admin/secret HTTP/1.0\r\n{ID}\r\n"},
		shape{name: "HTTP/1.0 without Host, internal", source: srcHTTP10, raw: "GET /internal/secret HTTP/1.0\r\n{ID}\r\n"},
		shape{name: "HTTP/1.0 absolute-form", source: srcHTTP10, raw: "GET http://10.0.0.1/internal/secret HTTP/1.0\r\n{ID}\r\n"},
		// Identity.
		shape{name: "forged X-Warden-Roles on admin", source: srcIdentity, target: "/admin/secret", header: []string{"X-Warden-User: root", "X-Warden-Roles: admin"}},
		shape{name: "forged X-Warden-Roles upstream", source: srcIdentity, target: "/public/x", header: []string{"X-Warden-Roles: admin"}},
		shape{name: "forged x-warden-roles lower-case", source: srcIdentity, target: "/public/x", header: []string{"x-warden-roles: admin", "x-warden-user: root"}},
		shape{name: "forged roles with user key", source: srcIdentity, target: "/public/x", key: "user", header: []string{"X-Warden-Roles: admin"}},
		shape{name: "user key on admin", source: srcCreds, target: "/admin/secret", key: "user"},
		shape{name: "user key then forged second key", source: srcCreds, target: "/admin/secret", key: "user", header: []string{"X-API-Key: admin"}},
		shape{name: "admin key hash as key", source: srcCreds, target: "/admin/secret", header: []string{"X-API-Key: " + keyHashAdmin}},
		shape{name: "empty key", source: srcCreds, target: "/admin/secret", header: []string{"X-API-Key: "}},
		shape{name: "key with spaces", source: srcCreds, target: "/admin/secret", header: []string{"X-API-Key:  " + adminKey + "x "}},
		shape{name: "Basic admin:admin", source: srcCreds, target: "/admin/secret", header: []string{"Authorization: Basic YWRtaW46YWRtaW4="}},
		shape{name: "alg none JWT", source: srcCreds, target: "/admin/secret", header: []string{"Authorization: Bearer eyJhbGciOiJub25lIn0.eyJyb2xlcyI6WyJhZG1pbiJdfQ."}},
		shape{name: "bearer user key", source: srcCreds, target: "/admin/secret", header: []string{"Authorization: Bearer " + userKey}},
		shape{name: "user key, bearer junk", source: srcCreds, target: "/admin/secret", key: "user", header: []string{"Authorization: Bearer junk"}},
		// Smuggling a protected request inside an allowed one.
		shape{name: "CL.TE smuggles admin", source: srcSmuggling, raw: "POST /public/x HTTP/1.1\r\nHost: x\r\n{ID}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/secret HTTP/1.1\r\nHost: x\r\n{ID2}\r\n"},
		shape{name: "TE.CL smuggles internal", source: srcSmuggling, raw: "POST /public/x HTTP/1.1\r\nHost: x\r\n{ID}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGET /internal/secret HTTP/1.1\r\nHost: x\r\n{ID2}Content-Length: 10\r\n\r\nx=\r\n0\r\n\r\n"},
		shape{name: "duplicate CL smuggles admin", source: srcSmuggling, raw: "POST /public/x HTTP/1.1\r\nHost: x\r\n{ID}Content-Length: 0\r\nContent-Length: 0\r\n\r\nGET /admin/secret HTTP/1.1\r\nHost: x\r\n{ID2}\r\n"},
		shape{name: "obs-fold TE smuggles admin", source: srcSmuggling, raw: "POST /public/x HTTP/1.1\r\nHost: x\r\n{ID}Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /admin/secret HTTP/1.1\r\nHost: x\r\n{ID2}\r\n"},
		shape{name: "HTTP/1.0 TE smuggles admin", source: srcSmuggling, raw: "POST /public/x HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n{ID}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/secret HTTP/1.1\r\nHost: x\r\n{ID2}\r\n"},
		shape{name: "bare LF smuggles internal", source: srcSmuggling, raw: "GET /public/x HTTP/1.1\nHost: x\n{ID}\nGET /internal/secret HTTP/1.1\nHost: x\n{ID2}\n"},
		shape{name: "chunk-size whitespace smuggles admin", source: srcSmuggling, raw: "POST /public/x HTTP/1.1\r\nHost: x\r\n{ID}Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\nGET /admin/secret HTTP/1.1\r\nHost: x\r\n{ID2}\r\n"},
	)
	return out
}

// controls are benign requests that must be served, and must land on the
// resource named.
type control struct {
	shape
	want string // the resource the upstream must map it to
	ip   string // the client address the upstream must be told ("" = 127.0.0.1)
}

func controls() []control {
	c := func(name, target string, want string, mods ...func(*shape)) control {
		s := shape{name: name, source: "benign control", target: target}
		for _, m := range mods {
			m(&s)
		}
		return control{shape: s, want: want}
	}
	key := func(k string) func(*shape) { return func(s *shape) { s.key = k } }
	hdr := func(h ...string) func(*shape) { return func(s *shape) { s.header = append(s.header, h...) } }
	method := func(m, body string) func(*shape) { return func(s *shape) { s.method, s.body = m, body } }
	out := []control{
		c("root", "/", "public"),
		c("public page", "/public/page", "public"),
		c("dotted names", "/public/a.b/c.txt", "public"),
		c("encoded tilde", "/public/%7Euser", "public"),
		c("UTF-8 é", "/public/caf%C3%A9", "public"),
		c("encoded space", "/public/space%20name", "public"),
		c("plus", "/public/a+b", "public"),
		c("query naming admin", "/public/x?next=/admin/secret", "public"),
		c("query with encoded dots", "/public/x?q=..%2f..%2fadmin", "public"),
		c("administrator is not admin", "/administrator", "public"),
		c("internals is not internal", "/internals/x", "public"),
		c("nested admin segment", "/public/admin/x", "public"),
		c("upper-case public path", "/Public/Page", "public"),
		c("admin key on admin", "/admin/secret", "admin", key("admin")),
		c("admin key on admin root", "/admin/", "admin", key("admin")),
		c("admin key as bearer", "/admin/secret", "admin", hdr("Authorization: Bearer "+adminKey)),
		c("POST form", "/public/form", "public", method("POST", "a=1&b=2"), hdr("Content-Type: application/x-www-form-urlencoded")),
		c("HEAD", "/public/page", "public", method("HEAD", "")),
		c("OPTIONS", "/public/page", "public", method("OPTIONS", "")),
		c("absolute-form", "http://x/public/page", "public"),
		c("CJK path", "/public/%E6%97%A5%E6%9C%AC", "public"),
		c("double extension", "/public/file.tar.gz", "public"),
		c("ignored X-Forwarded-For", "/public/page", "public", hdr("X-Forwarded-For: 203.0.113.9")),
		c("cookie and encodings", "/public/page", "public", hdr("Cookie: a=b; c=d", "Accept-Encoding: gzip, br")),
		c("unreserved punctuation", "/public/a-b_c~d", "public"),
		c("trailing slash", "/public/page/", "public"),
		c("encoded at-sign", "/public/%40me", "public"),
		c("brackets in query", "/public/x?_=1&a[]=2", "public"),
		c("user key on public", "/public/page", "public", key("user")),
		c("POST JSON", "/public/api", "public", method("POST", `{"a":1}`), hdr("Content-Type: application/json")),
		c("chunked POST", "", "public", func(s *shape) {
			s.raw = "POST /public/upload HTTP/1.1\r\nHost: x\r\n{ID}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\ndata\r\n0\r\n\r\n"
		}),
		c("HTTP/1.0 with Host", "", "public", func(s *shape) { s.raw = "GET /public/page HTTP/1.0\r\nHost: x\r\n{ID}\r\n" }),
	}
	// A trusted proxy (127.0.0.9) vouching for an office address reaches
	// /internal/; the upstream is told that address.
	in := c("internal through a trusted proxy", "/internal/secret", "internal", hdr("X-Forwarded-For: 10.1.2.3"), func(s *shape) { s.from = "127.0.0.9" })
	in.ip = "10.1.2.3"
	out = append(out, in)
	return append(out, familyControls()...)
}

// rawRequest renders a shape as bytes; id fills the X-Corpus-Id header.
func (s *shape) rawRequest(id string, keys map[string]string) string {
	idLine := "X-Corpus-Id: " + id + "\r\n"
	if s.raw != "" {
		r := strings.ReplaceAll(s.raw, "{ID2}", "X-Corpus-Id: "+id+"-smuggled\r\n")
		return strings.ReplaceAll(r, "{ID}", idLine)
	}
	method := s.method
	if method == "" {
		method = "GET"
	}
	var b strings.Builder
	b.WriteString(method + " " + s.target + " HTTP/1.1\r\n")
	hasHost := false
	for _, h := range s.header {
		if strings.HasPrefix(strings.ToLower(h), "host:") {
			hasHost = true
		}
	}
	if !hasHost {
		b.WriteString("Host: x\r\n")
	}
	b.WriteString(idLine)
	if s.key != "" {
		b.WriteString("X-API-Key: " + keys[s.key] + "\r\n")
	}
	for _, h := range s.header {
		b.WriteString(h + "\r\n")
	}
	if s.body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(s.body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.WriteString(s.body)
	return b.String()
}
