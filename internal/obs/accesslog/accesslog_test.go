package accesslog

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
)

func policy(t *testing.T, extra string) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	os.Mkdir(site, 0o755)
	os.WriteFile(filepath.Join(site, "index.html"), []byte("<p>hello, world</p>\n"), 0o644)
	src := `
rules:
  - name: no-secrets
    when: { path: { prefix: [/secret/] } }
    action: deny
  - name: hidden
    when: { path: { prefix: [/hidden/] } }
    action: conceal
handle:
  - path: /
    root: ./site
log:
` + extra
	path := filepath.Join(dir, "warden.yaml")
	cfg, err := config.Parse(path, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, dir
}

type sent struct {
	id, target string
	status     int
	bytes      int
}

func fetch(t *testing.T, base, target, ua, ref string) sent {
	t.Helper()
	req, _ := http.NewRequest("GET", base+target, nil)
	req.Header.Set("User-Agent", ua)
	if ref != "" {
		req.Header.Set("Referer", ref)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return sent{id: res.Header.Get("X-Request-Id"), target: target, status: res.StatusCode, bytes: len(body)}
}

func start(t *testing.T, cfg *config.Config) (*Log, string) {
	t.Helper()
	srv, rt := gatewaytest.Build(t, cfg, slog.New(slog.DiscardHandler))
	al := New()
	if err := al.Configure(FromConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(al.Close)
	srv.Engine.Observe(al.Observe)
	inst := gatewaytest.Serve(t, srv, rt, &cfg.Limits, nil)
	return al, inst.URL()
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// combinedRE is nginx's combined format, as log analysers read it, with
// warden's request id and duration after it.
var combinedRE = regexp.MustCompile(`^(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)" ([0-9a-f]{16}) (\d+\.\d{3})$`)

func TestCombinedOneLinePerRequest(t *testing.T) {
	cfg, dir := policy(t, "  access: { file: access.log }\n")
	_, base := start(t, cfg)
	ua := `curl/8.0 "quoted" \ back`
	var want []sent
	want = append(want, fetch(t, base, "/?q=1&x=%20y", ua, "https://ref.example/p"))
	want = append(want, fetch(t, base, "/secret/a", ua, ""))
	want = append(want, fetch(t, base, "/hidden/b", ua, ""))
	want = append(want, fetch(t, base, "/missing.html", ua, ""))
	lines := readLines(t, filepath.Join(dir, "access.log"))
	if len(lines) != len(want) {
		t.Fatalf("%d lines for %d requests:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, l := range lines {
		m := combinedRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d is not combined: %s", i, l)
		}
		w := want[i]
		if m[4] != "GET "+w.target+" HTTP/1.1" {
			t.Errorf("request %q, want GET %s HTTP/1.1", m[4], w.target)
		}
		if st, _ := strconv.Atoi(m[5]); st != w.status {
			t.Errorf("%s: status %d, client saw %d", w.target, st, w.status)
		}
		if n, _ := strconv.Atoi(m[6]); n != w.bytes {
			t.Errorf("%s: bytes %d, client read %d", w.target, n, w.bytes)
		}
		if m[8] != `curl/8.0 \x22quoted\x22 \x5C back` {
			t.Errorf("user agent %q not escaped as nginx does", m[8])
		}
		if m[9] != w.id {
			t.Errorf("request id %s, client saw %s", m[9], w.id)
		}
	}
	if m := combinedRE.FindStringSubmatch(lines[0]); m[7] != "https://ref.example/p" {
		t.Errorf("referer %q", m[7])
	}
	if want[3].status != 404 {
		t.Fatalf("missing file: %d", want[3].status)
	}
}

func TestJSONFields(t *testing.T) {
	cfg, dir := policy(t, "  access: { file: access.json, format: json }\n")
	_, base := start(t, cfg)
	s := fetch(t, base, "/?a=b", "ua/1", "")
	r := fetch(t, base, "/secret/x", "ua/2", "")
	lines := readLines(t, filepath.Join(dir, "access.json"))
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var e0, e1 Entry
	json.Unmarshal([]byte(lines[0]), &e0)
	json.Unmarshal([]byte(lines[1]), &e1)
	if e0.RequestID != s.id || e0.Status != 200 || e0.Bytes != int64(s.bytes) || e0.Query != "a=b" || e0.UserAgent != "ua/1" || e0.Action != "allow" {
		t.Errorf("allowed line: %+v (sent %+v)", e0, s)
	}
	if e1.RequestID != r.id || e1.Status != 403 || e1.Code != "path_forbidden" || e1.Rule != "no-secrets" || e1.Bytes != int64(r.bytes) {
		t.Errorf("refused line: %+v (sent %+v)", e1, r)
	}
}

func TestRotateBySize(t *testing.T) {
	cfg, dir := policy(t, "  access: { file: access.log, max_bytes: 600, max_files: 2 }\n")
	_, base := start(t, cfg)
	const n = 20
	for i := 0; i < n; i++ {
		fetch(t, base, "/", "ua", "")
	}
	p := filepath.Join(dir, "access.log")
	cur := readLines(t, p)
	one := readLines(t, p+".1")
	two := readLines(t, p+".2")
	if _, err := os.Stat(p + ".3"); err == nil {
		t.Error("more rotated files kept than max_files")
	}
	for _, f := range []string{p, p + ".1", p + ".2"} {
		st, _ := os.Stat(f)
		if st.Size() > 600 {
			t.Errorf("%s is %d bytes, over max_bytes", f, st.Size())
		}
	}
	if len(one) == 0 || len(two) == 0 || len(cur) == 0 {
		t.Fatalf("rotation: %d, %d, %d lines", len(cur), len(one), len(two))
	}
}

func TestReopenAfterLogrotate(t *testing.T) {
	cfg, dir := policy(t, "  access: { file: access.log }\n")
	al, base := start(t, cfg)
	fetch(t, base, "/", "ua", "")
	p := filepath.Join(dir, "access.log")
	if err := os.Rename(p, p+".old"); err != nil {
		t.Fatal(err)
	}
	fetch(t, base, "/", "ua", "") // still written to the moved file
	if err := al.Reopen(); err != nil {
		t.Fatal(err)
	}
	fetch(t, base, "/secret/z", "ua", "")
	if got := len(readLines(t, p+".old")); got != 2 {
		t.Errorf("moved file has %d lines, want 2", got)
	}
	nl := readLines(t, p)
	if len(nl) != 1 || !strings.Contains(nl[0], "/secret/z") {
		t.Errorf("new file: %q", nl)
	}
}

func TestCheckRefusesUnknownFormats(t *testing.T) {
	for _, src := range []string{"log: { format: xml }\n", "log: { access: { format: apache } }\n", "log: { access: { max_bytes: 10 } }\n"} {
		cfg, err := config.Parse("p.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		srv := func() error {
			_, err := buildErr(cfg)
			return err
		}
		err = srv()
		if err == nil || !strings.Contains(err.Error(), "p.yaml:1") {
			t.Errorf("%q: %v, want an error at p.yaml:1", src, err)
		}
	}
	for _, src := range []string{"log: { format: text }\n", "log: { format: json, access: { format: combined, file: stdout } }\n"} {
		cfg, _ := config.Parse("p.yaml", []byte(src))
		if _, err := buildErr(cfg); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func buildErr(cfg *config.Config) (any, error) {
	rt, err := engine.Build(cfg, engine.Options{})
	if rt != nil {
		rt.Close()
	}
	return rt, err
}
