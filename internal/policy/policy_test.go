package policy_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/policy"
)

// decisionTable is one file of testdata/decide: a policy and the requests
// it is asked about, each with the decision it must give (in the manner of
// Coraza's and the CRS's regression tests).
type decisionTable struct {
	Policy string         `yaml:"policy"`
	Cases  []decisionCase `yaml:"cases"`
}

type decisionCase struct {
	Name string `yaml:"name"`
	// Req is "METHOD TARGET", the target exactly as on the wire.
	Req     string            `yaml:"req"`
	IP      string            `yaml:"ip"`   // the TCP peer; default 100.64.0.10
	Host    string            `yaml:"host"` // default example.com
	Headers map[string]string `yaml:"headers"`
	Want    struct {
		Action string `yaml:"action"`
		Code   string `yaml:"code"`
		Status int    `yaml:"status"`
		Rule   string `yaml:"rule"`
		Reason string `yaml:"reason"`
	} `yaml:"want"`
}

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func compileYAML(t *testing.T, name, src string) *policy.Policy {
	t.Helper()
	cfg, err := config.Parse(name, []byte(src))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	p, err := policy.Compile(cfg)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return p
}

// wireRequest builds the request net/http would hand the gateway for
// "METHOD TARGET" from peer.
func wireRequest(t *testing.T, req, peer, host string, headers map[string]string) *http.Request {
	t.Helper()
	method, target, ok := strings.Cut(req, " ")
	if !ok {
		t.Fatalf("req %q: want METHOD TARGET", req)
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("req %q: %v", req, err)
	}
	if peer == "" {
		peer = "100.64.0.10"
	}
	if host == "" {
		host = "example.com"
	}
	r := &http.Request{Method: method, URL: u, RequestURI: target, Host: host,
		RemoteAddr: net.JoinHostPort(peer, "50000"), Header: http.Header{}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func TestDecisionTables(t *testing.T) {
	files, err := filepath.Glob("testdata/decide/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no decision tables: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var table decisionTable
			dec := yaml.NewDecoder(strings.NewReader(string(data)))
			dec.KnownFields(true)
			if err := dec.Decode(&table); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if len(table.Cases) == 0 {
				t.Fatalf("%s has no cases", file)
			}
			pol := compileYAML(t, file, table.Policy)
			for i, c := range table.Cases {
				name := c.Name
				if name == "" {
					name = c.Req
				}
				t.Run(fmt.Sprintf("%02d %s", i, name), func(t *testing.T) {
					r := wireRequest(t, c.Req, c.IP, c.Host, c.Headers)
					req, err := canonical.From(r, &pol.Canonical)
					if err != nil {
						t.Fatalf("canonical: %v", err)
					}
					var tr decision.Trace
					d := pol.Decide(req, testNow, &tr)
					checkDecision(t, c, d)
					// The trace is a view, not a cause: asking for it
					// changes nothing, and it ends at the deciding rule.
					if plain := pol.Decide(req, testNow, nil); !sameDecision(plain, d) {
						t.Errorf("with a trace %+v, without %+v", d, plain)
					}
					if len(tr.Steps) == 0 {
						t.Fatal("empty trace")
					}
					last := tr.Steps[len(tr.Steps)-1]
					if last.Rule != d.Rule || !last.Matched {
						t.Errorf("trace ends at %+v, decision by %q\n%+v", last, d.Rule, tr.Steps)
					}
					if d.Rule != "(default)" && (d.RuleLine == 0 || last.Line != d.RuleLine) {
						t.Errorf("rule line %d, trace line %d", d.RuleLine, last.Line)
					}
				})
			}
		})
	}
}

func checkDecision(t *testing.T, c decisionCase, d decision.Decision) {
	t.Helper()
	w := c.Want
	if d.Action.String() != w.Action {
		t.Errorf("action %s (%s %q by %s), want %s", d.Action, d.Code, d.Reason, d.Rule, w.Action)
	}
	if w.Code != "" && string(d.Code) != w.Code {
		t.Errorf("code %q, want %q", d.Code, w.Code)
	}
	if w.Action == "allow" && d.Code != "" {
		t.Errorf("an allow carries code %q", d.Code)
	}
	if w.Action != "allow" {
		if !d.Code.Known() {
			t.Errorf("refusal with unknown code %q", d.Code)
		}
		want := w.Status
		if want == 0 {
			want = d.Code.Status()
		}
		if d.Status != want {
			t.Errorf("status %d, want %d", d.Status, want)
		}
		if (d.Status == 401) != (d.WWWAuthenticate != "") {
			t.Errorf("status %d with WWW-Authenticate %q", d.Status, d.WWWAuthenticate)
		}
	}
	if w.Rule != "" && d.Rule != w.Rule {
		t.Errorf("rule %q, want %q", d.Rule, w.Rule)
	}
	if w.Reason != "" && d.Reason != w.Reason {
		t.Errorf("reason %q, want %q", d.Reason, w.Reason)
	}
}

// TestTraceRecordsEveryRuleLookedAt: explain must show why earlier rules
// did not decide.
func TestTraceRecordsEveryRuleLookedAt(t *testing.T) {
	pol := compileYAML(t, "t.yaml", `
rules:
  - name: by-method
    when: { methods: [POST] }
    action: deny
  - name: by-ip
    when: { ip: [192.0.2.0/24] }
    action: deny
  - name: by-host
    when: { hosts: [other.example] }
    action: deny
  - name: unrelated-path
    when: { path: { prefix: /elsewhere/ } }
    action: deny
`)
	req, err := canonical.From(wireRequest(t, "GET /x", "198.51.100.1", "", nil), &pol.Canonical)
	if err != nil {
		t.Fatal(err)
	}
	var tr decision.Trace
	d := pol.Decide(req, testNow, &tr)
	if !d.Allowed() {
		t.Fatalf("got %+v", d)
	}
	var got []string
	for _, s := range tr.Steps {
		got = append(got, fmt.Sprintf("%s line=%d matched=%v: %s", s.Rule, s.Line, s.Matched, s.Note))
	}
	want := []string{
		"by-method line=3 matched=false: method GET not listed",
		"by-ip line=6 matched=false: client 198.51.100.1 not in the rule's ip list",
		"by-host line=9 matched=false: host example.com not listed",
		// unrelated-path is not a candidate for /x: the path index skips it.
		"(default) line=0 matched=true: no rule decided; default is allow",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("trace:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestManyRulesKeepFileOrder: the path index narrows the candidates but
// must never change which rule wins.
func TestManyRulesKeepFileOrder(t *testing.T) {
	var b strings.Builder
	b.WriteString("rules:\n  - name: narrow-first\n    when: { path: { prefix: /p7/special/ } }\n    action: allow\n")
	for i := range 300 {
		fmt.Fprintf(&b, "  - name: r%d\n    when: { path: { prefix: /p%d/ } }\n    action: deny\n", i, i)
		if i == 150 {
			b.WriteString("  - name: secrets\n    when: { path: { glob: \"/**/secret\" } }\n    action: conceal\n")
		}
	}
	b.WriteString("  - name: everything\n    when: { methods: [GET] }\n    action: conceal\n")
	pol := compileYAML(t, "many.yaml", b.String())
	for _, c := range []struct{ path, rule string }{
		{"/p7/x", "r7"}, {"/p70/x", "r70"}, {"/p299/", "r299"}, {"/P42/x", "r42"}, {"/q/", "everything"},
		{"/p7/special/x", "narrow-first"}, {"/p7/secret", "r7"}, {"/p200/secret", "secrets"}, {"/q/secret", "secrets"},
	} {
		req, err := canonical.From(wireRequest(t, "GET "+c.path, "", "", nil), &pol.Canonical)
		if err != nil {
			t.Fatal(err)
		}
		if d := pol.Decide(req, testNow, nil); d.Rule != c.rule {
			t.Errorf("%s: decided by %q, want %q", c.path, d.Rule, c.rule)
		}
	}
}

// TestIPListFromFile: lists load from files of one CIDR a line, relative
// to the config's folder, and a bad line is reported as file:line.
func TestIPListFromFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good.txt", "# spammers\n192.0.2.0/24\n\n  198.51.100.7  # one host\n2001:db8::/32\n")
	write("w.yaml", "ip_lists:\n  bad: { files: [good.txt] }\nrules:\n  - name: b\n    when: { ip_list: bad }\n    action: deny\n")
	cfg, err := config.Load(filepath.Join(dir, "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for ip, blocked := range map[string]bool{"192.0.2.9": true, "198.51.100.7": true, "198.51.100.8": false, "2001:db8:1::1": true, "2001:db9::1": false} {
		req, err := canonical.From(wireRequest(t, "GET /", ip, "", nil), &pol.Canonical)
		if err != nil {
			t.Fatal(err)
		}
		if d := pol.Decide(req, testNow, nil); (d.Code == decision.IPBlocked) != blocked {
			t.Errorf("%s: %+v, want blocked=%v", ip, d, blocked)
		}
	}

	write("bad.txt", "192.0.2.0/24\n10.0.0.1/8\nnonsense\n")
	write("w.yaml", "ip_lists:\n  bad: { files: [bad.txt, missing.txt] }\n")
	cfg, err = config.Load(filepath.Join(dir, "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = policy.Compile(cfg)
	msg := fmt.Sprint(err)
	for _, must := range []string{
		filepath.Join(dir, "bad.txt") + `:2: "10.0.0.1/8" has host bits set; did you mean 10.0.0.0/8?`,
		filepath.Join(dir, "bad.txt") + `:3: "nonsense" is not an IP address or CIDR`,
		"missing.txt",
	} {
		if !strings.Contains(msg, must) {
			t.Errorf("error does not say %q:\n%s", must, msg)
		}
	}
}

// compileErrors returns the error lines of compiling src.
func compileErrors(t *testing.T, src string) []string {
	t.Helper()
	cfg, err := config.Parse("p.yaml", []byte(src))
	if err != nil {
		return []string{"parse: " + err.Error()}
	}
	_, err = policy.Compile(cfg)
	if err == nil {
		return nil
	}
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string // each a full error line
	}{
		{"bad CIDR", `
rules:
  - name: a
    when: { ip: [10.0.0.300/8] }
    action: deny
`, []string{`p.yaml:4: ip: "10.0.0.300/8" is not a valid CIDR`}},
		{"bad regex", `
rules:
  - name: a
    when: { path: { regex: "^/(a" } }
    action: allow
`, []string{"p.yaml:4: rule \"a\": bad path regex \"^/(a\": missing closing ): `^/(a`"}},
		{"bad regex in a case-insensitive rule", `
rules:
  - name: a
    when: { path: { regex: "^/(a" } }
    action: deny
`, []string{"p.yaml:4: rule \"a\": bad path regex \"^/(a\": missing closing ): `^/(a`"}},
		{"unknown ip list", `
ip_lists:
  office: { cidrs: [10.0.0.0/8] }
rules:
  - name: a
    when: { ip_list: ofice }
    action: deny
`, []string{`p.yaml:6: ip: no ip list named "ofice" (known lists: office)`}},
		{"bad action", `
rules:
  - name: a
    action: block
`, []string{`p.yaml:4: rule "a": action must be allow, deny, conceal or challenge, not "block"`}},
		{"no action", `
rules:
  - name: a
    when: { methods: [GET] }
`, []string{`p.yaml:3: rule "a" has no action (add action: allow, deny or conceal)`}},
		{"bad status", `
rules:
  - name: a
    action: deny
    status: 200
`, []string{`p.yaml:3: rule "a": status 200 is not a 4xx or 5xx refusal`}},
		{"status on allow", `
rules:
  - name: a
    action: allow
    status: 403
`, []string{`p.yaml:3: rule "a": status only applies to deny`}},
		{"unknown code", `
rules:
  - name: a
    action: deny
    code: nope
`, []string{`p.yaml:5: rule "a": unknown code "nope" (see the reason codes in DESIGN.md)`}},
		{"duplicate name", `
rules:
  - name: a
    when: { methods: [GET] }
    action: deny
  - name: a
    when: { methods: [POST] }
    action: deny
`, []string{`p.yaml:6: rule name "a" already used at line 3 (give each rule its own name)`}},
		{"require without identity", `
rules:
  - name: a
    require: { roles_any: [admin] }
    action: allow
`, []string{`p.yaml:4: rule "a" requires a caller but no authenticator is configured (configure identity: api_keys, jwt, htpasswd or headers)`}},
		{"bad default", `
default: maybe
`, []string{`p.yaml:2: default must be allow or deny, not "maybe"`}},
		{"bad host", `
rules:
  - name: a
    when: { hosts: ["a*.example.com"] }
    action: deny
`, []string{`p.yaml:4: rule "a": bad host "a*.example.com" (write example.com or *.example.com)`}},
		{"bad method", `
rules:
  - name: a
    when: { methods: [G3T] }
    action: deny
`, []string{`p.yaml:4: rule "a": "G3T" is not an HTTP method`}},
		{"path without slash", `
rules:
  - name: a
    when: { path: { prefix: admin/ } }
    action: deny
`, []string{`p.yaml:4: rule "a": prefix path "admin/" must start with /`}},
		{"bad trusted proxy", `
trusted_proxies: [10.0.0.0/33]
`, []string{`p.yaml:2: trusted_proxies: "10.0.0.0/33" is not a valid CIDR`}},
		{"many at once", `
trusted_proxies: [nope]
ip_lists:
  x: { cidrs: [1.2.3.4/40] }
rules:
  - name: a
    when: { ip: [bad], path: { glob: "/a/***" } }
    action: deny
  - name: b
    action: bounce
`, []string{
			`p.yaml:2: trusted_proxies: "nope" is not an IP address or CIDR`,
			`p.yaml:4: ip_lists.x: "1.2.3.4/40" is not a valid CIDR`,
			`p.yaml:7: rule "a": glob "/a/***": use * (within a segment) or ** (across segments)`,
			`p.yaml:7: ip: "bad" is not an IP address or CIDR`,
			`p.yaml:10: rule "b": action must be allow, deny, conceal or challenge, not "bounce"`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := compileErrors(t, c.src)
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// TestShadowing: a rule that can never match because an earlier rule always
// decides first is an error; a rule that can still match is not.
func TestShadowing(t *testing.T) {
	const shadowed = "can never match"
	cases := []struct {
		name  string
		rules string
		want  string // "" → compiles; else the line and rules of the error
	}{
		{"narrower prefix after broader", `
  - name: a
    when: { path: { prefix: /a/ } }
    action: deny
  - name: b
    when: { path: { prefix: /a/b/ } }
    action: allow
`, `p.yaml:6: rule "b" can never match: rule "a" (line 3)`},
		{"broader prefix after narrower is fine", `
  - name: b
    when: { path: { prefix: /a/b/ } }
    action: allow
  - name: a
    when: { path: { prefix: /a/ } }
    action: deny
`, ""},
		{"exact under a prefix", `
  - name: a
    when: { path: { prefix: /static/ } }
    action: deny
  - name: b
    when: { path: { exact: /static/secret.txt } }
    action: allow
`, `p.yaml:6: rule "b" can never match: rule "a" (line 3)`},
		{"a case-sensitive allow leaves other spellings to a later deny", `
  - name: a
    when: { path: { prefix: /static/ } }
    action: allow
  - name: b
    when: { path: { exact: /static/secret.txt } }
    action: deny
`, ""},
		{"glob covers exact", `
  - name: git
    when: { path: { glob: "/**/.git/**" } }
    action: conceal
  - name: b
    when: { path: { exact: /src/.git/config } }
    action: deny
`, `p.yaml:6: rule "b" can never match: rule "git" (line 3)`},
		{"glob does not cover another glob it may overlap", `
  - name: git
    when: { path: { glob: "/**/.git/**" } }
    action: conceal
  - name: b
    when: { path: { glob: "/src/**" } }
    action: deny
`, ""},
		{"match-all rule shadows everything after", `
  - name: all
    action: deny
  - name: b
    when: { path: { prefix: /x/ } }
    action: allow
  - name: c
    when: { methods: [GET] }
    action: allow
`, `p.yaml:5: rule "b" can never match: rule "all" (line 3)
p.yaml:8: rule "c" can never match: rule "all" (line 3)`},
		{"methods narrower", `
  - name: a
    when: { methods: [GET, POST] }
    action: deny
  - name: b
    when: { methods: [POST], path: { prefix: /x/ } }
    action: deny
`, `p.yaml:6: rule "b" can never match: rule "a" (line 3)`},
		{"methods not covered", `
  - name: a
    when: { methods: [GET] }
    action: deny
  - name: b
    when: { methods: [GET, POST] }
    action: deny
`, ""},
		{"earlier rule has a method limit", `
  - name: a
    when: { path: { prefix: /a/ }, methods: [GET] }
    action: deny
  - name: b
    when: { path: { prefix: /a/b/ } }
    action: allow
`, ""},
		{"ip inside earlier CIDR", `
  - name: a
    when: { ip: [10.0.0.0/8] }
    action: deny
  - name: b
    when: { ip: [10.1.0.0/16], path: { prefix: /x/ } }
    action: allow
`, `p.yaml:6: rule "b" can never match: rule "a" (line 3)`},
		{"ip partly outside", `
  - name: a
    when: { ip: [10.0.0.0/9] }
    action: deny
  - name: b
    when: { ip: [10.0.0.0/8] }
    action: allow
`, ""},
		{"same host", `
  - name: a
    when: { hosts: [a.example] }
    action: deny
  - name: b
    when: { hosts: [a.example], path: { prefix: /x/ } }
    action: deny
`, `p.yaml:6: rule "b" can never match: rule "a" (line 3)`},
		{"host limited earlier, later for all hosts", `
  - name: a
    when: { hosts: [a.example] }
    action: deny
  - name: b
    when: { path: { prefix: /x/ } }
    action: deny
`, ""},
		{"a gate never shadows", `
  - name: gate
    when: { path: { prefix: /app/ } }
    require: { authenticated: true }
  - name: b
    when: { path: { prefix: /app/x/ } }
    action: deny
`, ""},
		{"require with action shadows", `
  - name: a
    when: { path: { prefix: /app/ } }
    require: { authenticated: true }
    action: allow
  - name: b
    when: { path: { prefix: /app/x/ } }
    action: deny
`, `p.yaml:7: rule "b" can never match: rule "a" (line 3)`},
		{"case-sensitive allow does not shadow a case-insensitive deny", `
  - name: a
    when: { path: { prefix: /a/ } }
    action: allow
  - name: b
    when: { path: { prefix: /a/b/ } }
    action: deny
`, ""},
		{"case-insensitive deny shadows a case-sensitive allow", `
  - name: a
    when: { path: { prefix: /a/ } }
    action: deny
  - name: b
    when: { path: { prefix: /A/b/ } }
    action: allow
`, `p.yaml:6: rule "b" can never match: rule "a" (line 3)`},
		{"case-sensitive allow on / shadows a case-insensitive conceal (issue 10)", `
  - name: site
    when: { path: { prefix: / } }
    action: allow
  - name: login
    when: { path: { exact: /wp-login.php } }
    action: conceal
`, `p.yaml:6: rule "login" can never match: rule "site" (line 3)`},
		{"case-sensitive allow on a caseless prefix shadows a gate-less require", `
  - name: years
    when: { path: { glob: "/**" } }
    action: allow
  - name: report
    when: { path: { prefix: /2024/ } }
    require: { authenticated: true }
    action: allow
`, `p.yaml:6: rule "report" can never match: rule "years" (line 3)`},
		{"an exact allow does not shadow the same path refused in every spelling", `
  - name: a
    when: { path: { exact: /x.php, case_sensitive: false } }
    action: allow
  - name: b
    when: { path: { exact: /x.php } }
    action: deny
`, ""},
		{"same not_ip list", `
  - name: a
    when: { not_ip_list: office }
    action: deny
  - name: b
    when: { not_ip_list: office, path: { prefix: /x/ } }
    action: deny
`, `p.yaml:6: rule "b" can never match: rule "a" (line 3)`},
		{"extensions", `
  - name: a
    when: { extensions: [bak, old] }
    action: deny
  - name: b
    when: { extensions: [bak] }
    action: deny
`, `p.yaml:6: rule "b" can never match: rule "a" (line 3)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The rules come first so that the lines in the cases are
			// the lines of the file.
			src := "\nrules:" + c.rules + "ip_lists:\n  office: { cidrs: [10.0.0.0/8] }\n" +
				"identity:\n  api_keys:\n    keys: [{ id: k, sha256: \"sha256:2fa2c5832397118fa0f8952824014f7dbc9d50a39f50b11133b26d077dd81c12\" }]\n"
			got := compileErrors(t, src)
			if c.want == "" {
				if len(got) != 0 {
					t.Fatalf("want no error, got:\n%s", strings.Join(got, "\n"))
				}
				return
			}
			want := strings.Split(c.want, "\n")
			ok := len(got) == len(want)
			for i := 0; ok && i < len(got); i++ {
				ok = strings.HasPrefix(got[i], want[i]) && strings.Contains(got[i], shadowed)
			}
			if !ok {
				t.Fatalf("got:\n%s\nwant errors starting:\n%s", strings.Join(got, "\n"), c.want)
			}
		})
	}
}

// TestAllowPathDoesNotAllocate: the common case must cost no garbage.
func TestAllowPathDoesNotAllocate(t *testing.T) {
	pol := compileYAML(t, "a.yaml", `
ip_lists:
  bad: { cidrs: [192.0.2.0/24] }
rules:
  - name: bad
    when: { ip_list: bad }
    action: deny
  - name: admin
    when: { path: { prefix: /admin/ } }
    action: deny
  - name: git
    when: { path: { glob: "/**/.git/**" } }
    action: conceal
`)
	req, err := canonical.From(wireRequest(t, "GET /static/app.js", "198.51.100.1", "", nil), &pol.Canonical)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if d := pol.Decide(req, testNow, nil); !d.Allowed() {
			t.Fatal(d)
		}
	})
	if allocs != 0 {
		t.Fatalf("allow path allocates %.1f times per decision", allocs)
	}
}

// sameDecision compares decisions field by field; the caller is compared by
// identity and roles, since each evaluation verifies credentials anew.
func sameDecision(a, b decision.Decision) bool {
	ac, bc := a.Caller, b.Caller
	a.Caller, b.Caller = nil, nil
	if a != b || (ac == nil) != (bc == nil) {
		return false
	}
	return ac == nil || ac.ID == bc.ID && slices.Equal(ac.Roles, bc.Roles)
}
