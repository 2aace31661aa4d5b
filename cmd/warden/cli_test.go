package main

// The CLI is tested as users run it: the test binary re-executes itself as
// `warden` (see TestMain), so every case is a real process with real
// arguments, exit code, stdout and stderr.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/identity"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata/check")

// TestMain runs the command itself when asked to, so that tests can start
// `warden` as a child process without building it first.
func TestMain(m *testing.M) {
	if os.Getenv("WARDEN_TEST_RUN_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// wardenCmd is the command `warden args...` run in dir.
func wardenCmd(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WARDEN_TEST_RUN_MAIN=1")
	return cmd
}

type result struct {
	code           int
	stdout, stderr string
}

func warden(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := wardenCmd(t, dir, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("warden %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// TestCheckGolden: `warden check` on each config of testdata/check gives
// the exit code and output of its .golden file. Run with -update after a
// deliberate change of messages.
func TestCheckGolden(t *testing.T) {
	configs, err := filepath.Glob("testdata/check/*.yaml")
	if err != nil || len(configs) < 5 {
		t.Fatalf("configs: %v %v", configs, err)
	}
	for _, cfg := range configs {
		name := filepath.Base(cfg)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			r := warden(t, "testdata/check", "check", "--config", name)
			got := fmt.Sprintf("$ warden check --config %s\nexit %d\n--- stdout\n%s--- stderr\n%s", name, r.code, r.stdout, r.stderr)
			// Absolute paths depend on where the repository is checked out.
			abs, err := filepath.Abs("testdata/check")
			if err != nil {
				t.Fatal(err)
			}
			got = strings.ReplaceAll(got, abs, "$TESTDATA")
			golden := strings.TrimSuffix(cfg, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./cmd/warden -run TestCheckGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

var errLineRe = regexp.MustCompile(`^[^:\s]+\.(yaml|txt):\d+: \S`)

// TestCheckContract checks what the golden files must all hold, so that an
// -update cannot bless a broken output: exit 1 and only file:line lines on
// stderr for a bad config, exit 0 and nothing on stderr for a good one.
func TestCheckContract(t *testing.T) {
	for _, c := range []struct {
		file  string
		lines int // error lines expected
		must  []string
	}{
		{"ok.yaml", 0, nil},
		{"unknown_keys.yaml", 7, []string{
			`unknown_keys.yaml:3: unknown key "trusted_proxy" in config (did you mean "trusted_proxies"?)`,
			`unknown_keys.yaml:6: unknown key "wehn" in config.rules[0] (did you mean "when"?)`,
			`unknown_keys.yaml:7: unknown key "acton" in config.rules[0] (did you mean "action"?)`,
			`unknown_keys.yaml:10: unknown key "prefx" in config.rules[1].when.path (did you mean "prefix"?)`,
			`unknown_keys.yaml:11: unknown key "method" in config.rules[1].when (did you mean "methods"?)`,
			`unknown_keys.yaml:15: unknown key "upstrem" in config.handle[0] (did you mean "upstream"?)`,
			`unknown_keys.yaml:16: config.handle[0].timeout: "soon" is not a duration`,
		}},
		{"semantics.yaml", 9, []string{
			`semantics.yaml:4: ip_lists.office: "10.1.2.3/16" has host bits set; did you mean 10.1.0.0/16?`,
			`semantics.yaml:4: ip_lists.office: "300.1.1.1" is not an IP address or CIDR`,
			`semantics.yaml:5: ip_lists.office: spam.txt:2: "not-an-ip" is not an IP address or CIDR`,
			`spam.txt:4: "2001:db8::1/32" has host bits set`,
			`semantics.yaml:8: rule "bad-regex": bad path regex "^/api/(v1|v2"`,
			`semantics.yaml:11: ip: no ip list named "offices" (known lists: office)`,
			`semantics.yaml:15: rule "bad-action": action must be allow, deny, conceal or challenge, not "block"`,
			`semantics.yaml:19: rule "bad-code": unknown code "forbidden"`,
			`semantics.yaml:21: not_ip: "192.168.1.0/33" is not a valid CIDR`,
		}},
		{"shadowed.yaml", 2, []string{
			`shadowed.yaml:7: rule "api-health" can never match: rule "api" (line 4)`,
			`shadowed.yaml:13: rule "post-upload" can never match: rule "everything-post" (line 10)`,
		}},
		{"yaml_syntax.yaml", 1, []string{"yaml_syntax.yaml:"}},
		{"handlers.yaml", 0, []string{
			`handlers.yaml:4: `, "no-such-folder",
			`handlers.yaml:5: handler needs upstream (a URL) or root (a folder)`,
			`handlers.yaml:6: handle path "api2/" must start with /`,
			`handlers.yaml:8: a handler has either upstream or root, not both`,
			`handlers.yaml:11: refusals.detail must be reason or minimal, not "everything"`,
		}},
	} {
		t.Run(c.file, func(t *testing.T) {
			r := warden(t, "testdata/check", "check", "--config", c.file)
			if c.file == "ok.yaml" {
				if r.code != 0 || r.stderr != "" || r.stdout != "ok.yaml: ok (3 rules)\n" {
					t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
				}
				return
			}
			if r.code != 1 || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q; want exit 1 and errors on stderr", r.code, r.stdout)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			for _, l := range lines {
				if !errLineRe.MatchString(l) {
					t.Errorf("not a file:line: message line: %q", l)
				}
			}
			if c.lines > 0 && len(lines) != c.lines {
				t.Errorf("%d error lines, want %d:\n%s", len(lines), c.lines, r.stderr)
			}
			for _, m := range c.must {
				if !strings.Contains(r.stderr, m) {
					t.Errorf("stderr lacks %q:\n%s", m, r.stderr)
				}
			}
		})
	}
}

func TestCheckUsage(t *testing.T) {
	if r := warden(t, ".", "check"); r.code != 2 || !strings.Contains(r.stderr, "usage: warden check --config FILE") {
		t.Errorf("no config: %+v", r)
	}
	if r := warden(t, ".", "check", "--config", "testdata/check/nope.yaml"); r.code != 1 || !strings.Contains(r.stderr, "nope.yaml") {
		t.Errorf("missing file: %+v", r)
	}
	if r := warden(t, ".", "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %+v", r)
	}
	if r := warden(t, ".", "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "warden ") {
		t.Errorf("version: %+v", r)
	}
}

// explainOut mirrors the --json output that scripts rely on: the decision
// record, with the URL as given.
type explainOut struct {
	Method    string   `json:"method"`
	URL       string   `json:"url"`
	ClientIP  string   `json:"client_ip"`
	Path      string   `json:"path"`
	Decision  string   `json:"action"`
	Status    int      `json:"status"`
	Code      string   `json:"code"`
	Reason    string   `json:"reason"`
	Rule      string   `json:"rule"`
	RuleAt    string   `json:"rule_at"`
	Handler   string   `json:"handler"`
	Principal string   `json:"principal"`
	Roles     []string `json:"roles"`
	Stage     string   `json:"stage"`
	Trace     []struct {
		Rule    string `json:"rule"`
		Line    int    `json:"line"`
		Matched bool   `json:"matched"`
		Note    string `json:"note"`
	} `json:"trace"`
}

func writeExplainConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := `trusted_proxies: [10.0.0.1]
ip_lists:
  blocked: { cidrs: [203.0.113.0/24] }
identity:
  api_keys:
    header: X-API-Key
    keys:
      - { id: ops, sha256: "` + identity.HashKey("k") + `", roles: [ops] }
      - { id: root, sha256: "` + identity.HashKey("root-key") + `", roles: [admin] }
rules:
  - name: blocked
    when: { ip_list: blocked }
    action: deny
  - name: no-delete
    when: { methods: [DELETE] }
    action: deny
  - name: admin-area
    when: { path: { prefix: /admin/ } }
    require: { roles_any: [admin] }
    action: allow
handle:
  - path: /
    upstream: http://127.0.0.1:9
`
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func explainJSON(t *testing.T, args ...string) explainOut {
	t.Helper()
	r := warden(t, ".", append([]string{"explain"}, args...)...)
	if r.code != 0 {
		t.Fatalf("explain %v: exit %d\n%s", args, r.code, r.stderr)
	}
	var out explainOut
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("explain --json output is not JSON: %v\n%s", err, r.stdout)
	}
	return out
}

func TestExplainJSON(t *testing.T) {
	cfg := writeExplainConfig(t)

	// The example of the issue: a known caller without the role.
	out := explainJSON(t, "--config", cfg, "--json", "GET", "http://x/admin/", "--ip", "1.2.3.4", "--header", "X-API-Key: k")
	if out.Decision != "deny" || out.Status != 403 || out.Code != "role_required" || out.Reason != "account lacks role: admin" ||
		out.Rule != "admin-area" || out.RuleAt != cfg+":17" || out.ClientIP != "1.2.3.4" || out.Path != "/admin/" ||
		out.Method != "GET" || out.URL != "http://x/admin/" || out.Principal != "ops" || !slices.Equal(out.Roles, []string{"ops"}) || out.Stage != "policy" {
		t.Errorf("explain: %+v", out)
	}
	var steps []string
	for _, s := range out.Trace {
		steps = append(steps, fmt.Sprintf("%s:%d:%v", s.Rule, s.Line, s.Matched))
	}
	if got := strings.Join(steps, " "); got != "blocked:11:false no-delete:14:false admin-area:17:true" {
		t.Errorf("trace %s\n%+v", got, out.Trace)
	}
	if n := out.Trace[2].Note; !strings.Contains(n, "account lacks role: admin") {
		t.Errorf("deciding step note %q", n)
	}
	if n := out.Trace[0].Note; !strings.Contains(n, "1.2.3.4") {
		t.Errorf("non-matching step says why: %q", n)
	}

	// No key: 401. The right key: allow, and where it would go.
	out = explainJSON(t, "--config", cfg, "--json", "GET", "http://x/admin/", "--ip", "1.2.3.4")
	if out.Decision != "deny" || out.Status != 401 || out.Code != "unauthenticated" {
		t.Errorf("no key: %+v", out)
	}
	out = explainJSON(t, "--config", cfg, "--json", "--header", "X-API-Key: root-key", "GET", "http://x/%61dmin/panel")
	if out.Decision != "allow" || out.Status != 200 || out.Code != "" || out.Path != "/admin/panel" || out.Handler != "upstream /" {
		t.Errorf("admin: %+v", out)
	}
	// The same facts as the gateway: the client address through trusted
	// proxies only, the default when no rule decides.
	out = explainJSON(t, "--config", cfg, "--json", "GET", "http://x/", "--ip", "10.0.0.1", "--header", "X-Forwarded-For: 203.0.113.5")
	if out.Decision != "deny" || out.Code != "ip_blocked" || out.ClientIP != "203.0.113.5" {
		t.Errorf("via trusted proxy: %+v", out)
	}
	out = explainJSON(t, "--config", cfg, "--json", "GET", "http://x/", "--ip", "192.0.2.9", "--header", "X-Forwarded-For: 203.0.113.5")
	if out.Decision != "allow" || out.ClientIP != "192.0.2.9" || out.Rule != "(default)" {
		t.Errorf("spoofed XFF: %+v", out)
	}
	out = explainJSON(t, "--config", cfg, "--json", "DELETE", "http://x/a")
	if out.Decision != "deny" || out.Code != "path_forbidden" || out.Rule != "no-delete" {
		t.Errorf("delete: %+v", out)
	}
	// A path with no single meaning: bad_request, as the gateway answers.
	out = explainJSON(t, "--config", cfg, "--json", "GET", "http://x/x/..;/admin/")
	if out.Decision != "deny" || out.Status != 400 || out.Code != "bad_request" || len(out.Trace) != 0 {
		t.Errorf("bad path: %+v", out)
	}
}

func TestExplainText(t *testing.T) {
	cfg := writeExplainConfig(t)
	r := warden(t, ".", "explain", "--config", cfg, "GET", "http://x/admin/", "--header", "X-API-Key: k")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, must := range []string{"GET http://x/admin/", "decision: deny 403 role_required", "rule: admin-area (" + cfg + ":17)", "trace:", "+ admin-area (line 17)"} {
		if !strings.Contains(r.stdout, must) {
			t.Errorf("explain output lacks %q:\n%s", must, r.stdout)
		}
	}
	for _, bad := range [][]string{
		{"explain", "--config", cfg, "GET"},
		{"explain", "--config", cfg, "GET", "/admin/"},
		{"explain", "--config", cfg, "GET", "http://x/", "--ip", "nope"},
		{"explain", "--config", cfg, "GET", "http://x/", "--header", "no colon"},
	} {
		if r := warden(t, ".", bad...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)\n%s", bad, r.code, r.stderr)
		}
	}
}

// servedProcess is `warden serve` running as a child process.
type servedProcess struct {
	cmd    *exec.Cmd
	base   string
	stderr *lockedBuffer
}

var servingRe = regexp.MustCompile(`(?:on|demo on) (http://127\.0\.0\.1:\d+)`)

// startServe runs `warden serve args... --listen 127.0.0.1:0` and waits for
// the address it prints; it fails at once if the process exits instead.
func startServe(t *testing.T, args ...string) *servedProcess {
	t.Helper()
	cmd := wardenCmd(t, ".", append(append([]string{"serve"}, args...), "--listen", "127.0.0.1:0")...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &servedProcess{cmd: cmd, stderr: &lockedBuffer{}}
	found := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.stderr.WriteString(line + "\n")
			if m := servingRe.FindStringSubmatch(line); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = cmd.Wait()
	})
	select {
	case p.base = <-found:
	case <-exited:
		t.Fatalf("warden serve exited before serving:\n%s", p.stderr)
	case <-time.After(15 * time.Second):
		t.Fatalf("warden serve printed no address:\n%s", p.stderr)
	}
	return p
}

// lockedBuffer is the child's stderr, read by the test while it is written.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func httpGet(t *testing.T, url string, headers ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeDemo: with no config, the embedded demo answers and prints keys
// that work.
func TestServeDemo(t *testing.T) {
	p := startServe(t)
	if code, _ := httpGet(t, p.base+"/"); code != 200 {
		t.Errorf("/: %d", code)
	}
	if code, body := httpGet(t, p.base+"/admin/", "Accept: application/json"); code != 401 || !strings.Contains(body, `"code":"unauthenticated"`) {
		t.Errorf("/admin/ without a key: %d %s", code, body)
	}
	m := regexp.MustCompile(`admin API key: (\S+)`).FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no admin key printed:\n%s", p.stderr)
	}
	if code, _ := httpGet(t, p.base+"/admin/", "X-API-Key: "+m[1]); code != 200 {
		t.Errorf("/admin/ with the printed admin key: %d", code)
	}
	// The refusals the demo promises on its first screen.
	for _, c := range []struct {
		path, header, code string
	}{
		{"/internal/", "", "not_found"},
		{"/admin/", "X-API-Key: wrong", "invalid_credentials"},
		{"/images/logo.svg", "Referer: https://elsewhere.example/", "hotlink_blocked"},
		{"/private/", "", "directory_listing_disabled"},
		{"/", "X-Forwarded-For: 203.0.113.7", "ip_blocked"},
		{"/%2e%2e/etc/passwd", "", "bad_request"},
	} {
		hs := []string{"Accept: application/json"}
		if c.header != "" {
			hs = append(hs, c.header)
		}
		if _, body := httpGet(t, p.base+c.path, hs...); !strings.Contains(body, `"code":"`+c.code+`"`) {
			t.Errorf("%s %s: want %s, got %s", c.path, c.header, c.code, body)
		}
	}
	if code, _ := httpGet(t, p.base+"/images/logo.svg"); code != 200 {
		t.Errorf("image without a Referer: %d", code)
	}
}

// TestServeReload: SIGHUP swaps in a new policy; a broken one is refused
// and the old one keeps serving.
func TestServeReload(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("home"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "w.yaml")
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const base = "handle:\n  - path: /\n    root: .\n"
	write(base)
	p := startServe(t, "--config", cfg)
	if code, body := httpGet(t, p.base+"/"); code != 200 || body != "home" {
		t.Fatalf("before reload: %d %q", code, body)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, p.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	write(base + "rules:\n  - name: closed\n    action: deny\n")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("the new policy", func() bool { code, _ := httpGet(t, p.base+"/"); return code == 403 })

	write(base + "rules:\n  - name: broken\n    action: nope\n")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("the failed reload to be logged", func() bool { return strings.Contains(p.stderr.String(), "reload failed") })
	if code, _ := httpGet(t, p.base+"/"); code != 403 {
		t.Errorf("after a failed reload the previous policy must keep serving; got %d", code)
	}
}

func TestServeRefusesABrokenConfig(t *testing.T) {
	r := warden(t, "testdata/check", "serve", "--config", "semantics.yaml", "--listen", "127.0.0.1:0")
	if r.code != 1 || !strings.Contains(r.stderr, "not serving") || !strings.Contains(r.stderr, `semantics.yaml:15: rule "bad-action"`) {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}
