package pathmatch

import "testing"

// The substring test in front of a glob only ever refuses what the glob
// itself would refuse: every literal run stays whole in a match, "/**/"
// standing for one "/" included.
func TestGlobNeedNeverChangesAMatch(t *testing.T) {
	globs := []string{"/**/.*", "/**/.git/**", "/a/**/b", "/a/**/", "/**/x.php", "/api/v1/orders/*/export/**",
		"/*.bak", "/**/wp-*.php", "/a?c/**", "/**/**/x", "/files/**/secret*", "/.env*", "/x/*/y/**/z.txt"}
	segs := []string{"", "a", "b", ".git", "x.php", "wp-login.php", "abc", ".env", "secret.txt", "export", "orders", "api", "v1", "y", "z.txt", "config", "x"}
	var paths []string
	for _, a := range segs {
		paths = append(paths, "/"+a, "/"+a+"/")
		for _, b := range segs {
			paths = append(paths, "/"+a+"/"+b, "/"+a+"/"+b+"/")
			for _, c := range []string{"", ".git", "z.txt", "secret1"} {
				paths = append(paths, "/"+a+"/"+b+"/"+c)
			}
		}
	}
	paths = append(paths, "/api/v1/orders/7/export/all", "/x/q/y/z.txt", "/x/q/y/r/s/z.txt", "/.git/config")
	matched := 0
	for _, g := range globs {
		p, err := New(Glob, g, false)
		if err != nil {
			t.Fatal(err)
		}
		if p.need == "" && len(g) > 4 {
			t.Logf("%s: no literal run to search for", g)
		}
		for _, s := range paths {
			want := globMatch(p.Value, s)
			if got := p.matchOne(s); got != want {
				t.Errorf("%s on %q: %v with the substring test, %v without (need %q)", g, s, got, want, p.need)
			}
			if want {
				matched++
			}
		}
	}
	if matched < 50 {
		t.Fatalf("only %d matches: the table no longer exercises the globs", matched)
	}
}
