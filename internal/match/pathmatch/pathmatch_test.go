package pathmatch

import (
	"strings"
	"testing"
)

func mustNew(t *testing.T, k Kind, v string, ci, spellings bool) Pattern {
	t.Helper()
	p, err := New(k, v, ci)
	if err != nil {
		t.Fatal(err)
	}
	p.Spellings = spellings
	return p
}

// TestSpellings: a refusing pattern matches the spellings servers serve as
// the same file, and nothing else; without Spellings only what is written.
func TestSpellings(t *testing.T) {
	for _, c := range []struct {
		kind      Kind
		value     string
		match     []string
		dontMatch []string
	}{
		{Exact, "/wp-login.php",
			[]string{"/wp-login.php", "/wp-login.php/", "/wp-login.php/x", "/wp-login.php/x/y.php", "/wp-login.php;jsessionid=1", "/WP-LOGIN.PHP/"},
			[]string{"/wp-login.phpx", "/wp-login.php.bak", "/wp-login.ph", "/x/wp-login.php", "/wp-login", "/"}},
		{Exact, "/config.json",
			[]string{"/config.json", "/config.json/"},
			[]string{"/config.json/x", "/config.json.bak"}},
		{Exact, "/backup/index.html",
			[]string{"/backup/index.html", "/backup/", "/backup", "/backup;x/index.html"},
			[]string{"/backup/other.html", "/backup/x/", "/backupx", "/"}},
		{Exact, "/admin/",
			[]string{"/admin/", "/admin", "/admin/index.html", "/admin/default.aspx", "/admin/index.php/x"},
			[]string{"/admin/x", "/administrator"}},
		{Exact, "/admin",
			[]string{"/admin", "/admin/", "/admin/index.php"},
			[]string{"/admin/x", "/admin.php"}},
		{Exact, "/index.php",
			[]string{"/index.php", "/", "/index.php/anything"},
			[]string{"/x/", "/index.html.bak"}},
		{Prefix, "/admin/",
			[]string{"/admin", "/admin/x", "/admin;x/secret", "/admin;x"},
			[]string{"/administrator", "/public/admin/"}},
		{Glob, "/**/.git/**",
			[]string{"/.git/config", "/a/.git/x", "/a/.git", "/.git"},
			[]string{"/a/.gitignore", "/git/x"}},
		{Glob, "/secret/*.php",
			[]string{"/secret/a.php", "/secret/a.php/", "/secret/a.php/info"},
			[]string{"/secret/a.phps", "/secret/x/a.php"}},
		{Regex, `^/private/[0-9]+\.php$`,
			[]string{"/private/12.php", "/private/12.php/", "/private/12.php/x"},
			[]string{"/private/x.php", "/private/12.phpx"}},
	} {
		p := mustNew(t, c.kind, c.value, true, true)
		for _, s := range c.match {
			if !p.Match(s, strings.ToLower(s)) {
				t.Errorf("%s %q with spellings does not match %q", c.kind, c.value, s)
			}
		}
		for _, s := range c.dontMatch {
			if p.Match(s, strings.ToLower(s)) {
				t.Errorf("%s %q with spellings matches %q", c.kind, c.value, s)
			}
		}
		plain := mustNew(t, c.kind, c.value, false, false)
		if c.kind == Exact && plain.Match(c.value+"/", c.value+"/") && !strings.HasSuffix(c.value, "/") {
			t.Errorf("%q without spellings matches a trailing slash", c.value)
		}
	}
}

// TestSpellingsIndex: the index must find a rule for every spelling it
// matches, or the rule is never tried.
func TestSpellingsIndex(t *testing.T) {
	values := []struct {
		kind  Kind
		value string
	}{{Exact, "/wp-login.php"}, {Exact, "/backup/index.html"}, {Exact, "/index.php"}, {Prefix, "/admin/secret/"}, {Exact, "/a/b/c.php"}}
	var ix Index
	pats := make([]Pattern, len(values))
	for i, v := range values {
		pats[i] = mustNew(t, v.kind, v.value, true, true)
		ix.Add(i, &pats[i])
	}
	for _, s := range []string{"/wp-login.php/", "/wp-login.php;x", "/backup/", "/backup", "/", "/admin;x/secret/y", "/a;p/b/c.php", "/a/b;p/c.php/x"} {
		lower := strings.ToLower(s)
		want := -1
		for i := range pats {
			if pats[i].Match(s, lower) {
				want = i
				break
			}
		}
		if want < 0 {
			t.Errorf("%q: no pattern matches (test is wrong)", s)
			continue
		}
		var c Candidates
		ix.Lookup(s, lower, &c)
		found := false
		for r := c.Next(); r >= 0; r = c.Next() {
			if r == want {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: the index does not offer rule %d (%q)", s, want, values[want].value)
		}
	}
}

// TestCoversAcrossCase: a case-sensitive prefix without letters covers a
// case-insensitive rule; a pattern without spellings covers one with
// spellings only when it matches every path.
func TestCoversAcrossCase(t *testing.T) {
	root := mustNew(t, Prefix, "/", false, false)
	login := mustNew(t, Exact, "/wp-login.php", true, true)
	if !root.Covers(&login) {
		t.Error(`allow prefix "/" does not cover a case-insensitive exact /wp-login.php`)
	}
	year := mustNew(t, Prefix, "/2024/", false, false)
	report := mustNew(t, Exact, "/2024/report", true, false)
	if !year.Covers(&report) {
		t.Error(`prefix "/2024/" does not cover case-insensitive "/2024/report"`)
	}
	wp := mustNew(t, Prefix, "/wp-", false, false)
	if wp.Covers(&login) {
		t.Error(`case-sensitive "/wp-" covers a case-insensitive rule: /WP-LOGIN.PHP escapes it`)
	}
	exact := mustNew(t, Exact, "/wp-login.php", true, false)
	if exact.Covers(&login) {
		t.Error("a pattern without spellings covers one with them: /wp-login.php/ escapes it")
	}
	if !login.Covers(&exact) {
		t.Error("a pattern with spellings does not cover the same one without")
	}
}

func TestSpellingsDoNotAllocate(t *testing.T) {
	g := mustNew(t, Glob, "/**/.git/**", true, true)
	e := mustNew(t, Exact, "/admin/", true, true)
	allocs := testing.AllocsPerRun(100, func() {
		for _, s := range []string{"/static/app", "/static/", "/x/y.php/z"} {
			if g.Match(s, s) || e.Match(s, s) {
				t.Fatal(s)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations", allocs)
	}
}

func TestHasExtension(t *testing.T) {
	exts := []string{"bak", "cgi"}
	for _, c := range []struct {
		path            string
		plain, spelling bool
	}{
		{"/db.bak", true, true},
		{"/db.bak/", false, true},
		{"/db.bak//", false, true},
		{"/db.bak;x", false, true},
		{"/run.cgi/x/y", false, true},
		{"/db.bak/x", false, false}, // a static file takes no PATH_INFO
		{"/db.bak.txt", false, false},
		{"/bak/", false, false},
		{"/x.bak/y.bak", true, true},
		{"/", false, false},
	} {
		if got := HasExtension(c.path, exts, false); got != c.plain {
			t.Errorf("HasExtension(%q) = %v, want %v", c.path, got, c.plain)
		}
		if got := HasExtension(c.path, exts, true); got != c.spelling {
			t.Errorf("HasExtension(%q, spellings) = %v, want %v", c.path, got, c.spelling)
		}
	}
}

// FuzzSpellingsIndex: whatever the pattern and the path, a pattern with
// spellings that matches a path is offered by the index for that path
// (else the rule would never be tried), and matching never panics.
func FuzzSpellingsIndex(f *testing.F) {
	for _, s := range [][3]string{
		{"0", "/wp-login.php", "/wp-login.php/x"},
		{"0", "/backup/index.html", "/backup/"},
		{"0", "/index.php", "/"},
		{"1", "/admin/", "/admin;x/y"},
		{"2", "/**/.git/**", "/a/.git"},
		{"2", "/a/*.php", "/a/b.php/c"},
		{"3", "^/x/[0-9]+\\.cgi$", "/x/1.cgi/y"},
		{"0", "/ind", "/"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, kind, value, path string) {
		if len(kind) != 1 || kind[0] < '0' || kind[0] > '3' || len(path) == 0 || path[0] != '/' {
			return
		}
		p, err := New(Kind(kind[0]-'0'), value, true)
		if err != nil {
			return
		}
		p.Spellings = true
		lower := strings.ToLower(path)
		if !p.Match(path, lower) {
			return
		}
		var ix Index
		ix.Add(0, &p)
		var c Candidates
		ix.Lookup(path, lower, &c)
		if c.Overflow {
			return
		}
		if c.Next() != 0 {
			t.Fatalf("%s %q matches %q but the index does not offer it (literal %q)", p.Kind, value, path, p.literalPrefix())
		}
	})
}
