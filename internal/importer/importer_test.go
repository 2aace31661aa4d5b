package importer

import (
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
)

// --- address sets ---

// TestIPSetAgainstBruteForce checks union, complement, intersection and the
// minimal prefix list against address-by-address evaluation over a /24.
func TestIPSetAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randomSet := func() (ipSet, [256]bool) {
		var s ipSet
		var in [256]bool
		for range rng.IntN(5) {
			bits := 24 + rng.IntN(9)
			a := netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(256))})
			p := netip.PrefixFrom(a, bits).Masked()
			s = s.union(prefixSet(p))
			for i := range 256 {
				if p.Contains(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})) {
					in[i] = true
				}
			}
		}
		return s, in
	}
	for range 500 {
		a, ain := randomSet()
		b, bin := randomSet()
		u, x, m, c := a.union(b), a.intersect(b), a.minus(b), a.complement()
		for i := range 256 {
			addr := netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
			if got, want := u.contains(addr), ain[i] || bin[i]; got != want {
				t.Fatalf("union %v ∪ %v at %v: %v, want %v", a.strings(), b.strings(), addr, got, want)
			}
			if got, want := x.contains(addr), ain[i] && bin[i]; got != want {
				t.Fatalf("intersect %v ∩ %v at %v: %v, want %v", a.strings(), b.strings(), addr, got, want)
			}
			if got, want := m.contains(addr), ain[i] && !bin[i]; got != want {
				t.Fatalf("minus %v \\ %v at %v: %v, want %v", a.strings(), b.strings(), addr, got, want)
			}
			if got, want := c.contains(addr), !ain[i]; got != want {
				t.Fatalf("complement of %v at %v: %v, want %v", a.strings(), addr, got, want)
			}
		}
		// The prefix list describes the same set, without overlaps.
		var back ipSet
		for _, p := range u.prefixes() {
			if !prefixSet(p).intersect(back).isEmpty() {
				t.Fatalf("prefixes of %v overlap at %v", u.strings(), p)
			}
			back = back.union(prefixSet(p))
		}
		if !back.equal(u) {
			t.Fatalf("prefixes %v do not rebuild the set", u.strings())
		}
	}
}

func TestIPSetComplementCoversBothFamilies(t *testing.T) {
	s, _ := parseNginxAddr("10.0.0.0/8")
	c := s.complement()
	for _, a := range []string{"0.0.0.0", "9.255.255.255", "11.0.0.0", "255.255.255.255", "::", "2001:db8::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if !c.contains(netip.MustParseAddr(a)) {
			t.Errorf("complement of 10.0.0.0/8 lacks %s", a)
		}
	}
	if c.contains(netip.MustParseAddr("10.9.8.7")) || c.contains(netip.MustParseAddr("::ffff:10.9.8.7")) {
		t.Error("complement of 10.0.0.0/8 holds 10.9.8.7 (or its IPv4-mapped form)")
	}
	if got := strings.Join(c.complement().strings(), " "); got != "10.0.0.0/8" {
		t.Errorf("double complement = %s", got)
	}
	if !allAddrs().isAll() || allAddrs().complement().isEmpty() == false {
		t.Error("the full set is not its own double complement")
	}
	if got := strings.Join(allAddrs().strings(), " "); got != "0.0.0.0/0 ::/0" {
		t.Errorf("all addresses render as %q", got)
	}
}

func TestParseApacheAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.1":                       "10.1.0.0/16",
		"10.1.":                      "10.1.0.0/16",
		"192.168.1":                  "192.168.1.0/24",
		"10":                         "10.0.0.0/8",
		"10.1.2.3":                   "10.1.2.3",
		"10.1.0.0/255.255.0.0":       "10.1.0.0/16",
		"10.1.2.0/24":                "10.1.2.0/24",
		"2001:db8::/32":              "2001:db8::/32",
		"::ffff:10.1.2.3":            "10.1.2.3",
		"10.0.0.0/255.255.255.252":   "10.0.0.0/30",
		"172.16.0.0/255.240.0.0":     "172.16.0.0/12",
		"10.1.2.3/255.255.255.255":   "10.1.2.3",
		"10.1.2.128/255.255.255.128": "10.1.2.128/25",
	} {
		s, err := parseApacheAddr(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := strings.Join(s.strings(), " "); got != want {
			t.Errorf("%s = %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"example.com", "10.1.2.3.4", "300.1", "10.0.0.0/255.0.255.0", "1.2.3.4/33", ""} {
		if _, err := parseApacheAddr(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseNginxAddr(t *testing.T) {
	s, err := parseNginxAddr("10.1.2.3/8") // nginx masks the host bits
	if err != nil || strings.Join(s.strings(), " ") != "10.0.0.0/8" {
		t.Errorf("10.1.2.3/8 = %v, %v", s.strings(), err)
	}
	for _, bad := range []string{"unix:", "example.com", "10.0.0.0/40", "fe80::1%eth0"} {
		if _, err := parseNginxAddr(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// --- nginx parsing ---

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNginxTokenizer(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "conf.d/a.conf", "location /inc/ { deny all; }\n")
	p := writeFile(t, dir, "nginx.conf", "server { # comment\n  auth_basic \"Say \\\"hi\\\"\"; # another\n  location ~ \\.php$ { return 404; }\n  include conf.d/*.conf;\n  if ( $invalid_referer ) { return 403; }\n  set ${x}y 'a b';\n}\n")
	dirs, err := parseNginx(p)
	if err != nil {
		t.Fatal(err)
	}
	srv := dirs[0]
	if srv.name != "server" || !srv.isBlock || len(srv.block) != 5 {
		t.Fatalf("parsed %+v", srv)
	}
	got := []string{}
	for _, d := range srv.block {
		got = append(got, d.text()+"@"+filepath.Base(d.file)+":"+itoa(d.line))
	}
	want := []string{
		`auth_basic "Say \"hi\""@nginx.conf:2`,
		`location ~ \.php$ {...}@nginx.conf:3`,
		`location /inc/ {...}@a.conf:1`,
		`if ( $invalid_referer ) {...}@nginx.conf:5`,
		`set "${x}y" "a b"@nginx.conf:6`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for text, wantErr := range map[string]string{
		"server {\n  deny all;\n":          "unexpected end of file",
		"server {\n  deny all\n}\n":        "nginx.conf:2: directive \"deny\" is not terminated",
		"}\n":                              "nginx.conf:1: unexpected \"}\"",
		"server { root \"/x; }\n":          "nginx.conf:1: unterminated quoted string",
		"server { include missing.conf; }": "include",
	} {
		p := writeFile(t, dir, "nginx.conf", text)
		if _, err := parseNginx(p); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want one containing %q", text, err, wantErr)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// decideFor asks the compiled policy about GET path from ip, with no
// credentials: 0 when allowed, else the refusal's status.
func decideFor(t *testing.T, rt *gateway.Runtime, path, ip string) int {
	t.Helper()
	req := &canonical.Request{Method: "GET", Host: "example.com", Path: path, LowerPath: strings.ToLower(path),
		EscapedPath: path, ClientIP: netip.MustParseAddr(ip), PeerIP: netip.MustParseAddr(ip), Header: http.Header{}}
	d := rt.Policy.Decide(req, time.Unix(1_800_000_000, 0), nil)
	if d.Allowed() {
		return 0
	}
	if d.Status != 0 {
		return d.Status
	}
	return d.Code.Status()
}

func mustMatch(t *testing.T, re, s string) bool {
	t.Helper()
	ok, err := regexp.MatchString(re, s)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// compileImported checks that an imported policy passes what `warden check`
// checks, with the YAML written next to base so relative paths resolve.
func compileImported(t *testing.T, base string, res *Result) *gateway.Runtime {
	t.Helper()
	cfgPath := filepath.Join(base, "imported.yaml")
	cfg, err := config.Parse(cfgPath, res.YAML)
	if err != nil {
		t.Fatalf("imported config does not parse: %v\n%s", err, numbered(res.YAML))
	}
	rt, err := gateway.Build(cfg, gateway.Options{}, nil)
	if err != nil {
		t.Fatalf("imported config does not compile: %v\n%s", err, numbered(res.YAML))
	}
	t.Cleanup(rt.Close)
	return rt
}

func notesText(res *Result) string {
	var b strings.Builder
	for _, n := range res.Notes {
		b.WriteString(n.String() + "\n")
	}
	return b.String()
}

func TestNginxSiteTranslation(t *testing.T) {
	conf := filepath.Join("testdata", "nginx", "site.conf")
	res, err := Nginx(conf)
	if err != nil {
		t.Fatal(err)
	}
	y := string(res.YAML)
	notes := notesText(res)
	for _, want := range []string{
		// Every rule names its source line.
		"# testdata/nginx/site.conf:20: end of location = /health",
		"# testdata/nginx/site.conf:22: location /admin/: allow 10.1.2.3 (line 22); deny all (line 23)",
		// First match: 10.0.0.0/8 is allowed before 10.1.0.0/16 is denied,
		// so the deny never applies and everything else is refused.
		"not_ip: [10.0.0.0/8]",
		"not_ip: [10.1.2.3]",
		"require: {authenticated: true}",
		// satisfy any: the allowed network passes without signing in.
		"ip: [10.2.0.0/16]",
		"referer_not_in: [none, blocked, server_names, '*.example.org', ~\\.partner\\.test]",
		"server_names: [example.com, www.example.com]",
		"path: {regex: [\\.(bak|swp)$], case_sensitive: false}",
		"action: conceal",
		"upstream: http://127.0.0.1:9000",
		"listing_on: [/img/]",
		"index: [index.html, index.htm]",
		"listen: :8080",
		"realm: Admin area",
	} {
		if !strings.Contains(y, want) {
			t.Errorf("output lacks %q:\n%s", want, numbered(res.YAML))
		}
	}
	for _, want := range []string{
		"testdata/nginx/site.conf:3: not translated: user nobody nogroup (not an access-control setting)",
		"testdata/nginx/mime.types:1: not translated: types {...} (not an access-control setting)",
		"testdata/nginx/site.conf:18: not translated: deny 10.1.0.0/16 (never applies: earlier allow/deny directives already decide every address it names)",
		"testdata/nginx/site.conf:43: not translated: return 301 /new/ (only return with a 4xx or 5xx status is translated; redirects and pages are not)",
		"testdata/nginx/site.conf:44: not translated: location ~ (?<name>x)\\k<name> {...} (the regex is not valid in Go's RE2 syntax",
		"testdata/nginx/site.conf:45: not translated: error_page 403 /403.html (warden renders its own refusal pages",
		"testdata/nginx/site.conf:47: not translated: server {...} (only the first server block is translated",
		"testdata/nginx/site.conf:15: approximate: root ../site (a relative root is relative to nginx's prefix",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	// Every note has the documented shape.
	for _, n := range res.Notes {
		if n.Line == 0 || n.Kind != NotTranslated && n.Kind != Approximate || n.Directive == "" || n.Why == "" {
			t.Errorf("malformed note %+v", n)
		}
	}
	compileImported(t, filepath.Join("testdata", "nginx"), res)
}

// TestNginxRegionOrder checks nginx's location selection on the compiled
// policy: exact first, ^~ over regexes, regexes in file order over plain
// prefixes, the longest prefix last; each region shields its paths from the
// rules of less specific locations.
func TestNginxRegionOrder(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	p := writeFile(t, dir, "nginx.conf", `server {
  root `+filepath.Join(dir, "www")+`;
  location = /a { deny all; }
  location ^~ /keep/ { }
  location ~ \.bak$ { return 404; }
  location ~ ^/a { return 403; }
  location /a/b/ { }
  location / { deny 10.0.0.1; }
}
`)
	res, err := Nginx(p)
	if err != nil {
		t.Fatal(err)
	}
	rt := compileImported(t, dir, res)
	for _, tc := range []struct {
		path, ip string
		status   int
	}{
		{"/a", "10.0.0.2", 403},         // exact deny
		{"/keep/x.bak", "10.0.0.1", 0},  // ^~ beats the regex and location /
		{"/a/b/x.bak", "10.0.0.2", 404}, // the regex beats a longer plain prefix
		{"/a/b/c", "10.0.0.2", 403},     // regex ^/a (second regex) beats /a/b/
		{"/b/c", "10.0.0.1", 403},       // location /
		{"/b/c", "10.0.0.2", 0},
		{"/x.bak", "10.0.0.1", 404},
	} {
		d := decideFor(t, rt, tc.path, tc.ip)
		if d != tc.status {
			t.Errorf("%s from %s: status %d, want %d\n%s", tc.path, tc.ip, d, tc.status, numbered(res.YAML))
		}
	}
}

// --- Apache ---

func TestApacheAuthzEvaluation(t *testing.T) {
	dir := t.TempDir()
	htp := filepath.Join("testdata", "nginx", "users.htpasswd")
	abs, _ := filepath.Abs(htp)
	for _, tc := range []struct {
		name string
		text string
		// want maps a client address to the outcome without credentials:
		// 0 allowed, 403 refused, 401 asked to sign in.
		want map[string]int
	}{
		{"any of ip and user", "AuthType Basic\nAuthUserFile " + abs + "\nRequire ip 10.0.0.1\nRequire valid-user\n",
			map[string]int{"10.0.0.1": 0, "10.0.0.2": 401}},
		{"all of user and not ip", "AuthType Basic\nAuthUserFile " + abs + "\n<RequireAll>\nRequire valid-user\nRequire not ip 10.0.0.3\n</RequireAll>\n",
			map[string]int{"10.0.0.3": 403, "10.0.0.2": 401}},
		{"none", "<RequireAll>\nRequire all granted\n<RequireNone>\nRequire ip 10.0.0.4\n</RequireNone>\n</RequireAll>\n",
			map[string]int{"10.0.0.4": 403, "10.0.0.5": 0}},
		{"all denied wins in all", "<RequireAll>\nRequire ip 10.0.0.0/8\nRequire all denied\n</RequireAll>\n",
			map[string]int{"10.0.0.1": 403}},
		{"legacy allow,deny", "Order allow,deny\nAllow from 10.0.0\nDeny from 10.0.0.9\n",
			map[string]int{"10.0.0.1": 0, "10.0.0.9": 403, "10.0.1.1": 403}},
		{"legacy deny,allow", "Order deny,allow\nDeny from all\nAllow from 10.0.0.9\n",
			map[string]int{"10.0.0.9": 0, "10.0.0.1": 403}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			p := writeFile(t, root, ".htaccess", tc.text)
			res, err := Htaccess(root, p)
			if err != nil {
				t.Fatal(err)
			}
			rt := compileImported(t, root, res)
			for ip, want := range tc.want {
				if got := decideFor(t, rt, "/x", ip); got != want {
					t.Errorf("%s: %d, want %d\n%s", ip, got, want, numbered(res.YAML))
				}
			}
		})
	}
}

func TestHtaccessTranslation(t *testing.T) {
	root := filepath.Join("testdata", "site")
	res, err := Htaccess(root, filepath.Join(root, ".htaccess"), filepath.Join(root, "private", ".htaccess"))
	if err != nil {
		t.Fatal(err)
	}
	y, notes := string(res.YAML), notesText(res)
	for _, want := range []string{
		`path: {regex: ['^/(?:[^/]*/)*(?:[^/]*\.(ini|log|bak))$'], case_sensitive: true}`,
		"path: {prefix: [/private/], case_sensitive: true}",
		// Order deny,allow: everyone but the allowed networks.
		"not_ip: [10.0.0.0/8, 172.16.0.0/16]",
		"referer_not_in: [none, example.com, www.example.com]",
		"index: [index.html, index.php]",
		"realm: Members",
	} {
		if !strings.Contains(y, want) {
			t.Errorf("output lacks %q:\n%s", want, numbered(res.YAML))
		}
	}
	for _, want := range []string{
		"testdata/site/.htaccess:2: not translated: Options -Indexes +FollowSymLinks -MultiViews (only Indexes (and FollowSymLinks for mod_rewrite) is translated, not -MultiViews)",
		"testdata/site/.htaccess:21: approximate: Require host example.com (this Require provider is not translated; it is treated as never granting)",
		"testdata/site/.htaccess:22: not translated: Header set X-Frame-Options DENY (not an access-control setting)",
		"approximate: AuthUserFile ../nginx/users.htpasswd (a relative AuthUserFile is relative to Apache's ServerRoot",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	compileImported(t, root, res)
}

func TestBasenameRegex(t *testing.T) {
	for _, tc := range []struct {
		pat   string
		match []string
		miss  []string
	}{
		{`\.(ini|log)$`, []string{"/a.ini", "/d/x.log"}, []string{"/a.ini/b", "/a.inix", "/d.log/x"}},
		{`^\.ht`, []string{"/.htaccess", "/d/.htpasswd"}, []string{"/x.htaccess", "/.ht/x"}},
		{`^wp-config\.php$`, []string{"/wp-config.php"}, []string{"/old-wp-config.php"}},
		{`a.b`, []string{"/xa-by"}, []string{"/a/b"}},
		{`[^x]+\.txt`, []string{"/d/f.txt"}, []string{"/d/x.txt"}},
	} {
		re, err := basenameRegex(tc.pat)
		if err != nil {
			t.Fatal(err)
		}
		full := "^/(?:[^/]*/)*" + re + "$"
		for _, p := range tc.match {
			if ok := mustMatch(t, full, p); !ok {
				t.Errorf("%s (as %s) does not match %s", tc.pat, full, p)
			}
		}
		for _, p := range tc.miss {
			if ok := mustMatch(t, full, p); ok {
				t.Errorf("%s (as %s) matches %s", tc.pat, full, p)
			}
		}
	}
}
