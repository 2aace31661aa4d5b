package importer

import (
	"regexp"
	"testing"
)

func TestWidenLookarounds(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		matches  []string // matched by the original (PCRE) and so by the result
	}{
		{`/\.(?!well-known\/)`, `/\.`, []string{"/.git", "/.env"}},
		{`^(\.(?!well-known).*|Entries.*)$`, `^(\..*|Entries.*)$`, []string{".htaccess", "Entries.x"}},
		{`a(?<!b)c(?=d)`, `acd`[:2], []string{"ac"}},
		{`x[(?!]y(?!z)`, `x[(?!]y`, []string{"x(y"}},
	} {
		got, ok := WidenLookarounds(tc.in)
		if !ok || got != tc.want {
			t.Errorf("%q: %q %v, want %q", tc.in, got, ok, tc.want)
			continue
		}
		re := regexp.MustCompile(got)
		for _, m := range tc.matches {
			if !re.MatchString(m) {
				t.Errorf("%q does not match %q", got, m)
			}
		}
	}
	if _, ok := WidenLookarounds(`plain`); ok {
		t.Error("a pattern without lookaround is not widened")
	}
	if _, ok := WidenLookarounds(`(?!unclosed`); ok {
		t.Error("an unclosed group is refused")
	}
}
