package bypass

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// lenient is an upstream that gives every request the most generous reading
// some real server gives it, so that any disagreement between warden and a
// real server shows up as a request that lands on a protected resource. It
// decodes percent-escapes repeatedly (and IIS's %uXXXX), folds overlong
// UTF-8 and fullwidth/compatibility forms to ASCII (Windows "best fit"),
// truncates at NUL, treats '\' as '/', strips ";params" from segments
// (Tomcat/Jetty), trims trailing dots, spaces and "::$DATA" from segments
// (Windows), expands 8.3 short names, follows nginx's alias off-by-slash,
// cleans dot segments, lower-cases, ignores a trailing slash, honours
// X-Original-URL / X-Rewrite-URL and method-override headers, and believes
// every client-address and identity header it is given.
type lenient struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen map[string][]visit // by X-Corpus-Id
}

// visit is what the upstream made of one request.
type visit struct {
	Target   string // the request target as received
	Path     string // the path after lenient interpretation
	Resource string // "admin", "internal" or "public"
	Method   string // after method overrides
	ClientIP string // the client address it would believe
	// ClientIPs are the addresses each convention present names (X-Real-IP,
	// Forwarded, leftmost X-Forwarded-For, ...): all must be the same.
	ClientIPs []string
	Roles     string // the roles it would believe (X-Warden-Roles)
	Body      string
	// Forged names the headers that reached it with a value the corpus
	// marks as the client's forgery (it contains "forged"): a host, port
	// or scheme the upstream would build links and redirects with.
	Forged []string
}

func newLenient(t *testing.T) *lenient {
	t.Helper()
	l := &lenient{seen: map[string][]visit{}}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		v := interpret(r)
		v.Body = string(body)
		l.mu.Lock()
		id := r.Header.Get("X-Corpus-Id")
		l.seen[id] = append(l.seen[id], v)
		l.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "resource "+v.Resource+"\n")
	}))
	t.Cleanup(l.srv.Close)
	return l
}

// visits returns what reached the upstream under a corpus id, including
// requests smuggled behind it (id + "-smuggled").
func (l *lenient) visits(id string) []visit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append(append([]visit(nil), l.seen[id]...), l.seen[id+"-smuggled"]...)
}

func interpret(r *http.Request) visit {
	// CGI and PHP read "X_Real_IP" and "X-Real-IP" alike (both become
	// HTTP_X_REAL_IP), so underscores count as dashes here.
	// Of two spellings, the underscore one is read first: the most
	// generous reading for an attacker.
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		ui, uj := strings.Contains(names[i], "_"), strings.Contains(names[j], "_")
		if ui != uj {
			return ui
		}
		return names[i] < names[j]
	})
	h := http.Header{}
	for _, k := range names {
		nk := http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
		h[nk] = append(h[nk], r.Header[k]...)
	}
	r.Header = h
	v := visit{Target: r.RequestURI}
	target := r.RequestURI
	for _, h := range pathHeaders {
		if o := r.Header.Get(h); o != "" {
			target = o
			break
		}
	}
	// The "ReverseProxied"/PrefixMiddleware WSGI recipes: the prefix is
	// SCRIPT_NAME and is cut off PATH_INFO before routing.
	for _, h := range []string{"X-Script-Name", "X-Forwarded-Prefix"} {
		if pre := strings.TrimRight(r.Header.Get(h), "/"); pre != "" && strings.HasPrefix(target, pre+"/") {
			target = target[len(pre):]
			break
		}
	}
	v.Path = lenientPath(target)
	v.Resource = resourceOf(v.Path)
	v.Method = strings.ToUpper(r.Method)
	for _, h := range []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X-Forwarded-Method", "X-Original-Method"} {
		if o := r.Header.Get(h); o != "" {
			v.Method = strings.ToUpper(strings.TrimSpace(o))
		}
	}
	v.ClientIP = believedClient(r)
	v.ClientIPs = believedClients(r)
	v.Roles = r.Header.Get("X-Warden-Roles")
	for name, vals := range r.Header {
		for _, val := range vals {
			if strings.Contains(strings.ToLower(val), "forged") {
				v.Forged = append(v.Forged, name)
			}
		}
	}
	sort.Strings(v.Forged)
	return v
}

// pathHeaders are read as the request path, first present wins: Symfony
// and Zend before CVE-2018-14773 and IIS (X-Original-URL, X-Rewrite-URL),
// nginx auth_request setups (X-Original-URI), Traefik forwardAuth and the
// auth services behind it (X-Forwarded-Uri), Kong (X-Forwarded-Path),
// Next.js minimal mode and 13.4 workers (X-Matched-Path, X-Invoke-Path),
// Envoy rewrites (X-Envoy-Original-Path), serverless WSGI/ASGI shims
// (X-Original-Path, X-Original-Pathname, X-Vercel-Original-Pathname,
// X-Forwarded-Url), PHP and .NET routers (X-Request-Uri), and the spellings
// of 403-bypass wordlists.
var pathHeaders = []string{
	"X-Original-Url", "X-Rewrite-Url", "X-Original-Uri", "X-Forwarded-Uri", "X-Forwarded-Path",
	"X-Original-Path", "X-Original-Pathname", "X-Vercel-Original-Pathname", "X-Request-Uri",
	"X-Forwarded-Url", "X-Matched-Path", "X-Invoke-Path", "X-Envoy-Original-Path",
	"X-Envoy-Original-Url", "X-Vercel-Original-Path", "X-Rewrite-Path", "X-Rewrite-Uri", "X-Path-Info",
	"X-Override-Url", "X-Http-Destinationurl", "X-Proxy-Url",
}

// believedClients are the addresses frameworks that trust their proxy
// headers would take as the client, one per convention present: each of
// these headers (nginx real_ip, Rails, Laravel read X-Real-IP; Express with
// "trust proxy" and Rack take the leftmost X-Forwarded-For; Spring and
// Symfony read Forwarded), so an upstream told two different clients is
// caught whichever it believes.
func believedClients(r *http.Request) []string {
	var out []string
	for _, h := range clientHeaders {
		if v := r.Header.Get(h); v != "" {
			out = append(out, strings.TrimSpace(v))
		}
	}
	if f := r.Header.Get("Forwarded"); f != "" {
		for _, part := range strings.Split(f, ";") {
			if k, val, ok := strings.Cut(strings.TrimSpace(part), "="); ok && strings.EqualFold(k, "for") {
				out = append(out, strings.Trim(val, `"[]`))
				break
			}
		}
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		out = append(out, strings.TrimSpace(first))
	}
	return out
}

// believedClient is the address a framework that trusts its proxy headers
// would take as the client: the first of these headers present wins.
func believedClient(r *http.Request) string {
	if all := believedClients(r); len(all) > 0 {
		return all[0]
	}
	host, _, _ := strings.Cut(r.RemoteAddr, ":")
	return host
}

var clientHeaders = []string{
	"True-Client-Ip", "Cf-Connecting-Ip", "Fastly-Client-Ip", "X-Client-Ip", "X-Cluster-Client-Ip",
	"X-Originating-Ip", "X-Remote-Ip", "X-Remote-Addr", "Client-Ip", "X-Custom-Ip-Authorization",
	"X-Original-Remote-Addr", "X-True-Ip", "X-Original-Forwarded-For", "X-Real-Ip",
}

func resourceOf(p string) string {
	for _, name := range []string{"admin", "internal"} {
		if p == "/"+name || strings.HasPrefix(p, "/"+name+"/") {
			return name
		}
	}
	// PHP-FPM (cgi.fix_pathinfo=1) runs /wp-login.php/anything as the
	// script, with the rest as PATH_INFO.
	if p == "/wp-login.php" || strings.HasPrefix(p, "/wp-login.php/") {
		return "wp-login"
	}
	// The folder is its index document (path.Clean already took the
	// trailing slash off).
	if p == "/backup" || p == "/backup/index.html" {
		return "backup-index"
	}
	// By extension: the file itself, or a CGI script before its PATH_INFO
	// (RFC 3875 4.1.5).
	last := p[strings.LastIndexByte(p, '/')+1:]
	for _, ext := range []string{".bak", ".sql", ".cgi"} {
		if strings.HasSuffix(last, ext) {
			return "by-extension"
		}
	}
	if strings.Contains(p, ".cgi/") {
		return "by-extension"
	}
	return "public"
}

var shortName = regexp.MustCompile(`^([a-z0-9]{1,6})~[1-9]$`)

// lenientPath is the generous reading of a request target.
func lenientPath(target string) string {
	p := target
	if i := strings.Index(p, "://"); i >= 0 && !strings.HasPrefix(p, "/") {
		rest := p[i+3:]
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			p = rest[j:]
		} else {
			p = "/"
		}
	}
	p = cutAny(p, "?#")
	for i := 0; i < 4; i++ {
		d := decodeLenient(p)
		if d == p {
			break
		}
		p = d
	}
	p = foldCompat(p)
	p = cutAny(p, "\x00?#")
	p = strings.ReplaceAll(p, "\\", "/")
	// nginx: location /static { alias /srv/static/; } serves
	// /static../admin/x as /srv/static/../admin/x.
	if strings.HasPrefix(strings.ToLower(p), "/static") && !strings.HasPrefix(p, "/static/") {
		p = "/static/" + p[len("/static"):]
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		s, _, _ = strings.Cut(s, ";")
		s = strings.ToLower(s)
		s = strings.TrimSuffix(s, "::$data")
		s = strings.TrimSpace(s)
		if s != "." && s != ".." {
			s = strings.TrimRight(s, ". ")
		}
		if m := shortName.FindStringSubmatch(s); m != nil {
			for _, name := range []string{"admin", "internal", "public", "static"} {
				if strings.HasPrefix(name, m[1]) {
					s = name
					break
				}
			}
		}
		segs[i] = s
	}
	p = strings.Join(segs, "/")
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return strings.ToLower(path.Clean(p))
}

func cutAny(s, chars string) string {
	if i := strings.IndexAny(s, chars); i >= 0 {
		return s[:i]
	}
	return s
}

// decodeLenient decodes %XX and %uXXXX once, leaving invalid escapes as
// they are, then reads overlong UTF-8 forms of '.', '/' and '\' as those
// characters (IIS, CVE-2000-0884).
func decodeLenient(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+5 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
				if n, err := strconv.ParseUint(s[i+2:i+6], 16, 32); err == nil {
					b = utf8.AppendRune(b, rune(n))
					i += 5
					continue
				}
			}
			if i+2 < len(s) {
				if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
					b = append(b, byte(n))
					i += 2
					continue
				}
			}
		}
		b = append(b, c)
	}
	out := string(b)
	for _, o := range []struct{ from, to string }{
		{"\xc0\xae", "."}, {"\xe0\x80\xae", "."}, {"\xc0\xaf", "/"}, {"\xe0\x80\xaf", "/"},
		{"\xc1\x9c", "\\"}, {"\xc1\x1c", "\\"}, {"\xc0\x2f", "/"}, {"\xc0\x2e", "."},
	} {
		out = strings.ReplaceAll(out, o.from, o.to)
	}
	return out
}

// foldCompat maps fullwidth and other compatibility characters to the
// ASCII character Windows' best-fit mapping (and NFKC) gives them.
func foldCompat(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			b.WriteByte(byte(r - 0xFF01 + 0x21))
		case r == 0x2215 || r == 0x2044 || r == 0x29F8: // division slash, fraction slash, big solidus
			b.WriteByte('/')
		case r == 0x2216 || r == 0xFE68 || r == 0x29F9: // set minus, small reverse solidus
			b.WriteByte('\\')
		case r == 0x2024 || r == 0xFE52 || r == 0x3002 || r == 0xFF61: // one dot leader, small full stop, ideographic full stop
			b.WriteByte('.')
		case r == 0x00A0 || r == 0x3000:
			b.WriteByte(' ')
		case r == 0x017F: // long s, which some case-folders map to 's'
			b.WriteByte('s')
		case r == 0x0131 || r == 0x0130: // dotless i and dotted I map to 'i' through case mapping
			b.WriteByte('i')
		case r == 0x212A: // Kelvin sign, lower-cased to 'k'
			b.WriteByte('k')
		case r >= 0x1D400 && r <= 0x1D6A3: // mathematical alphanumerics
			off := (r - 0x1D400) % 52
			if off < 26 {
				b.WriteByte(byte('A' + off))
			} else {
				b.WriteByte(byte('a' + off - 26))
			}
		case r >= 0x24B6 && r <= 0x24E9: // circled letters
			off := (r - 0x24B6) % 26
			b.WriteByte(byte('a' + off))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
