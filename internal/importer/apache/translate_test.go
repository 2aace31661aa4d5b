package apache

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/importer/importtest"
)

// --- Apache ---

func TestApacheAuthzEvaluation(t *testing.T) {
	dir := t.TempDir()
	htp := filepath.Join("testdata", "users.htpasswd")
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
			p := importtest.WriteFile(t, root, ".htaccess", tc.text)
			res, err := Import(root, p)
			if err != nil {
				t.Fatal(err)
			}
			rt := importtest.CompileImported(t, root, res)
			for ip, want := range tc.want {
				if got := importtest.DecideFor(t, rt, "/x", ip); got != want {
					t.Errorf("%s: %d, want %d\n%s", ip, got, want, importtest.Numbered(res.YAML))
				}
			}
		})
	}
}

func TestHtaccessTranslation(t *testing.T) {
	root := filepath.Join("testdata", "site")
	res, err := Import(root, filepath.Join(root, ".htaccess"), filepath.Join(root, "private", ".htaccess"))
	if err != nil {
		t.Fatal(err)
	}
	y, notes := string(res.YAML), importtest.NotesText(res)
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
			t.Errorf("output lacks %q:\n%s", want, importtest.Numbered(res.YAML))
		}
	}
	for _, want := range []string{
		"testdata/site/.htaccess:2: not translated: Options -Indexes +FollowSymLinks -MultiViews (only Indexes (and FollowSymLinks for mod_rewrite) is translated, not -MultiViews)",
		"testdata/site/.htaccess:21: approximate: Require host example.com (this Require provider is not translated; it is treated as never granting)",
		"testdata/site/.htaccess:22: not translated: Header set X-Frame-Options DENY (not an access-control setting)",
		"approximate: AuthUserFile ../users.htpasswd (a relative AuthUserFile is relative to Apache's ServerRoot",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	importtest.CompileImported(t, root, res)
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
			if ok := importtest.MustMatch(t, full, p); !ok {
				t.Errorf("%s (as %s) does not match %s", tc.pat, full, p)
			}
		}
		for _, p := range tc.miss {
			if ok := importtest.MustMatch(t, full, p); ok {
				t.Errorf("%s (as %s) matches %s", tc.pat, full, p)
			}
		}
	}
}
