package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
)

// errLines returns the "file:line: message" lines of a Parse error.
func errLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		t.Fatal("want errors, got none")
	}
	var j interface{ Unwrap() []error }
	if !errors.As(err, &j) {
		t.Fatalf("want a joined list of errors, got %T %v", err, err)
	}
	var out []string
	for _, e := range j.Unwrap() {
		var ce *config.Error
		if !errors.As(e, &ce) {
			t.Fatalf("error %v is %T, not *config.Error", e, e)
		}
		out = append(out, ce.Error())
	}
	return out
}

func TestParseValidKeepsValuesAndPositions(t *testing.T) {
	src := `listen: 127.0.0.1:9000
trusted_proxies: [10.0.0.0/8, "::1"]
default: deny
paths: { allow_semicolon: yes }
ip_lists:
  bad:
    cidrs: [192.0.2.0/24]
    files: bad.txt
rules:
  - name: admin
    when:
      path: { prefix: [/admin/], case_sensitive: true }
      methods: GET
    require: { roles_any: [admin] }
    action: allow
  - name: hide
    when: { path: { glob: "/**/.git/**" } }
    action: conceal
handle:
  - path: /
    upstream: http://127.0.0.1:1
    timeout: 1500ms
limits:
  max_body_bytes: 0x100
`
	cfg, err := config.Parse("w.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9000" || cfg.Default.Value != "deny" || !cfg.Paths.AllowSemicolon {
		t.Errorf("top level: %+v", cfg)
	}
	if got := cfg.TrustedProxies; len(got) != 2 || got[1].Value != "::1" || got[1].Pos != (config.Pos{File: "w.yaml", Line: 2, Col: 31}) {
		t.Errorf("trusted_proxies: %+v", got)
	}
	bad := cfg.IPLists["bad"]
	if len(bad.CIDRs) != 1 || len(bad.Files) != 1 || bad.Files[0].Value != "bad.txt" || bad.Files[0].Pos.Line != 8 {
		t.Errorf("a single value where a list is expected should be a list of one: %+v", bad)
	}
	if len(cfg.Rules) != 2 {
		t.Fatalf("rules: %+v", cfg.Rules)
	}
	r := cfg.Rules[0]
	if r.Pos.Line != 10 || r.Name.Value != "admin" || r.Action.Value != "allow" || r.Action.Pos.Line != 15 {
		t.Errorf("rule 0: %+v", r)
	}
	if r.When.Path == nil || len(r.When.Path.Prefix) != 1 || r.When.Path.Prefix[0].Value != "/admin/" ||
		r.When.Path.CaseSensitive == nil || !*r.When.Path.CaseSensitive || r.When.Path.Pos.Line != 12 {
		t.Errorf("rule 0 path: %+v", r.When.Path)
	}
	if len(r.When.Methods) != 1 || r.When.Methods[0].Value != "GET" {
		t.Errorf("rule 0 methods: %+v", r.When.Methods)
	}
	if r.Require == nil || len(r.Require.RolesAny) != 1 || r.Require.Pos.Line != 14 {
		t.Errorf("rule 0 require: %+v", r.Require)
	}
	if cfg.Rules[1].When.Path.Glob[0].Value != "/**/.git/**" || cfg.Rules[1].Pos.Line != 16 {
		t.Errorf("rule 1: %+v", cfg.Rules[1])
	}
	if h := cfg.Handle[0]; h.Timeout.Duration != 1500*time.Millisecond || h.Timeout.Pos.Line != 22 || h.Upstream.Value != "http://127.0.0.1:1" {
		t.Errorf("handler: %+v", h)
	}
	if cfg.Limits.MaxBodyBytes != 256 {
		t.Errorf("max_body_bytes 0x100 = %d", cfg.Limits.MaxBodyBytes)
	}
	if cfg.Pos.File != "w.yaml" {
		t.Errorf("config position %+v", cfg.Pos)
	}
}

func TestParseEmptyAndNull(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "listen:\nrules:\n"} {
		cfg, err := config.Parse("e.yaml", []byte(src))
		if err != nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		if cfg.Listen != "" || len(cfg.Rules) != 0 || cfg.Pos.File != "e.yaml" {
			t.Errorf("%q: want the zero config, got %+v", src, cfg)
		}
	}
}

func TestParseAlias(t *testing.T) {
	src := `ip_lists:
  a: &office { cidrs: [10.1.0.0/16] }
  b: *office
`
	cfg, err := config.Parse("a.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.IPLists["b"]; len(b.CIDRs) != 1 || b.CIDRs[0].Value != "10.1.0.0/16" {
		t.Fatalf("alias not followed: %+v", b)
	}
}

// TestParseErrors: every mistake of a file comes back at once, each at its
// line, in file order.
func TestParseErrors(t *testing.T) {
	src := `listne: 127.0.0.1:8080
default: deny
trusted_proxy: [10.0.0.1]
rules:
  - name: a
    wehn: { path: { prefix: /a/ } }
    action: deny
  - name: b
    when:
      path: { prefx: /b/ }
      methods: { GET: 1 }
    action: deny
    status: lots
handle:
  - path: /
    timeout: 5 seconds
    listing: maybe
    zzzzzzzzzz: 1
refusals: [a, b]
ip_lists:
  x: { cidrs: [1.2.3.4] }
  x: { cidrs: [5.6.7.8] }
default: allow
`
	got := errLines(t, mustFail(config.Parse("bad.yaml", []byte(src))))
	want := []string{
		`bad.yaml:1: unknown key "listne" in config (did you mean "listen"?)`,
		`bad.yaml:3: unknown key "trusted_proxy" in config (did you mean "trusted_proxies"?)`,
		`bad.yaml:6: unknown key "wehn" in config.rules[0] (did you mean "when"?)`,
		`bad.yaml:10: unknown key "prefx" in config.rules[1].when.path (did you mean "prefix"?)`,
		`bad.yaml:11: config.rules[1].when.methods: want a list, got a mapping`,
		`bad.yaml:13: config.rules[1].status: want a whole number, got "lots"`,
		`bad.yaml:16: config.handle[0].timeout: "5 seconds" is not a duration (write it as 500ms, 5s or 2m)`,
		`bad.yaml:17: config.handle[0].listing: want true or false, got "maybe"`,
		// far from every known key: the hint lists them instead
		`bad.yaml:18: unknown key "zzzzzzzzzz" in config.handle[0] (known keys: host, path, upstream, preserve_host, timeout, max_connections, root, index, listing, listing_on, listing_off, serve_dotfiles)`,
		`bad.yaml:19: config.refusals: want a mapping of settings, got a list`,
		`bad.yaml:22: config.ip_lists: duplicate key "x"`,
		`bad.yaml:23: duplicate key "default" in config`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func mustFail(_ *config.Config, err error) error { return err }

func TestParseInvalidYAMLHasALine(t *testing.T) {
	src := "rules:\n  - name: a\n    action: [deny\n"
	_, err := config.Parse("broken.yaml", []byte(src))
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want a *config.Error, got %T %v", err, err)
	}
	if ce.Pos.File != "broken.yaml" || ce.Pos.Line == 0 || !strings.HasPrefix(ce.Msg, "not valid YAML") {
		t.Fatalf("got %+v", ce)
	}
	if ce.Msg != "not valid YAML: did not find expected ',' or ']'" {
		t.Fatalf("message %q: the line belongs in the position, not the text", ce.Msg)
	}
	if !strings.HasPrefix(err.Error(), "broken.yaml:") {
		t.Fatalf("error %q does not start with file:line", err)
	}
	// Tabs for indentation are a classic mistake; the line must be right.
	_, err = config.Parse("tab.yaml", []byte("listen: x\nrules:\n\t- name: a\n"))
	if !errors.As(err, &ce) || ce.Pos.Line != 3 {
		t.Fatalf("tab indentation: want an error at line 3, got %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &config.Error{Pos: config.Pos{File: "p.yaml", Line: 7, Col: 3}, Msg: "bad thing", Hint: "do this"}
	if e.Error() != "p.yaml:7: bad thing (do this)" {
		t.Errorf("got %q", e.Error())
	}
	e = &config.Error{Pos: config.Pos{File: "p.yaml"}, Msg: "no line"}
	if e.Error() != "p.yaml: no line" {
		t.Errorf("got %q", e.Error())
	}
	if (config.Errors{}).Err() != nil {
		t.Error("no errors must give a nil error")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "w.yaml")
	if err := os.WriteFile(p, []byte("listen: :1\nrule: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(p)
	if err == nil || !strings.Contains(err.Error(), p+`:2: unknown key "rule" in config (did you mean "rules"?)`) {
		t.Fatalf("got %v", err)
	}
	if _, err := config.Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: got %v", err)
	}
}
