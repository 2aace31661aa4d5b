package nginx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/importer"
	"github.com/warden-gateway/warden/internal/importer/importtest"
)

func TestNginxTokenizer(t *testing.T) {
	dir := t.TempDir()
	importtest.WriteFile(t, dir, "conf.d/a.conf", "location /inc/ { deny all; }\n")
	p := importtest.WriteFile(t, dir, "nginx.conf", "server { # comment\n  auth_basic \"Say \\\"hi\\\"\"; # another\n  location ~ \\.php$ { return 404; }\n  include conf.d/*.conf;\n  if ( $invalid_referer ) { return 403; }\n  set ${x}y 'a b';\n}\n")
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
		got = append(got, d.text()+"@"+filepath.Base(d.file)+":"+importtest.Itoa(d.line))
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
		p := importtest.WriteFile(t, dir, "nginx.conf", text)
		if _, err := parseNginx(p); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want one containing %q", text, err, wantErr)
		}
	}
}

func TestNginxSiteTranslation(t *testing.T) {
	conf := filepath.Join("testdata", "site", "site.conf")
	res, err := Import(conf)
	if err != nil {
		t.Fatal(err)
	}
	y := string(res.YAML)
	notes := importtest.NotesText(res)
	for _, want := range []string{
		// Every rule names its source line.
		"# testdata/site/site.conf:20: end of location = /health",
		"# testdata/site/site.conf:22: location /admin/: allow 10.1.2.3 (line 22); deny all (line 23)",
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
			t.Errorf("output lacks %q:\n%s", want, importtest.Numbered(res.YAML))
		}
	}
	for _, want := range []string{
		"testdata/site/site.conf:3: not translated: user nobody nogroup (not an access-control setting)",
		"testdata/site/mime.types:1: not translated: types {...} (not an access-control setting)",
		"testdata/site/site.conf:18: not translated: deny 10.1.0.0/16 (never applies: earlier allow/deny directives already decide every address it names)",
		"testdata/site/site.conf:43: not translated: return 301 /new/ (only return with a 4xx or 5xx status is translated; redirects and pages are not)",
		"testdata/site/site.conf:44: not translated: location ~ (?<name>x)\\k<name> {...} (the regex is not valid in Go's RE2 syntax",
		"testdata/site/site.conf:45: not translated: error_page 403 /403.html (warden renders its own refusal pages",
		"testdata/site/site.conf:47: not translated: server {...} (only the first server block is translated",
		"testdata/site/site.conf:15: approximate: root ../site (a relative root is relative to nginx's prefix",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	// Every note has the documented shape.
	for _, n := range res.Notes {
		if n.Line == 0 || n.Kind != importer.NotTranslated && n.Kind != importer.Approximate || n.Directive == "" || n.Why == "" {
			t.Errorf("malformed note %+v", n)
		}
	}
	importtest.CompileImported(t, filepath.Join("testdata", "site"), res)
}

// TestNginxRegionOrder checks nginx's location selection on the compiled
// policy: exact first, ^~ over regexes, regexes in file order over plain
// prefixes, the longest prefix last; each region shields its paths from the
// rules of less specific locations.
func TestNginxRegionOrder(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	p := importtest.WriteFile(t, dir, "nginx.conf", `server {
  root `+filepath.Join(dir, "www")+`;
  location = /a { deny all; }
  location ^~ /keep/ { }
  location ~ \.bak$ { return 404; }
  location ~ ^/a { return 403; }
  location /a/b/ { }
  location / { deny 10.0.0.1; }
}
`)
	res, err := Import(p)
	if err != nil {
		t.Fatal(err)
	}
	rt := importtest.CompileImported(t, dir, res)
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
		d := importtest.DecideFor(t, rt, tc.path, tc.ip)
		if d != tc.status {
			t.Errorf("%s from %s: status %d, want %d\n%s", tc.path, tc.ip, d, tc.status, importtest.Numbered(res.YAML))
		}
	}
}
