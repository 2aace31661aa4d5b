package config

import (
	"regexp"
	"strings"
	"testing"
)

// errorLine is one reported mistake: "file:line: message", or "file: ..."
// only for mistakes that have no line (none in a file that parsed as YAML).
var errorLine = regexp.MustCompile(`^fuzz\.yaml:([1-9][0-9]*): \S`)

// FuzzParse feeds arbitrary bytes to the config decoder: it must never
// panic, and every error must carry the file and a line, so that
// `warden check` can always point at the mistake.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"listen: 127.0.0.1:8080\n",
		"rules:\n  - name: a\n    when: { path: { prefix: /admin/ } }\n    action: deny\n",
		"limits: { max_body_bytes: 10, read_header_timeout: 5s }\n",
		"rules: [ { name: x, when: { methods: GET }, action: allow } ]\n",
		"ip_lists:\n  a: { cidrs: [10.0.0.0/8] }\n",
		"a: &x [1]\nb: *x\n",
		"rules:\n  - nmae: typo\n",
		"- not a mapping\n",
		"limits: { read_timeout: -5s }\n",
		"handle:\n  - path: /\n    upstream: http://127.0.0.1:1\n    timeout: forever\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil {
			if cfg == nil {
				t.Fatal("no config and no error")
			}
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !errorLine.MatchString(line) {
				t.Fatalf("error without file:line: %q\n(input %q)", line, data)
			}
		}
	})
}
