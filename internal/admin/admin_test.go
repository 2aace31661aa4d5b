package admin

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/obs"
)

const testToken = "test-token-0123456789abcdef"

// testPolicy serves a folder and refuses by three different rules.
func testPolicy(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>hello</p>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blocked.txt"), []byte("# bad\n198.51.100.0/24\n192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `
trusted_proxies: [127.0.0.0/8]
identity:
  api_keys:
    keys: [{ id: ops, sha256: "sha256:0000000000000000000000000000000000000000000000000000000000000000" }]
ip_lists:
  bad: { cidrs: [203.0.113.0/24], files: [blocked.txt] }
rules:
  - name: blocked-addresses
    when: { ip_list: [bad] }
    action: deny
  - name: no-secrets
    when: { path: { prefix: [/secret/] } }
    action: deny
  - name: hidden
    when: { path: { prefix: [/hidden/] } }
    action: conceal
  - name: admin-area
    when: { path: { prefix: [/admin/] } }
    require: { authenticated: true }
    action: allow
handle:
  - path: /
    root: ` + dir + `
`
	cfg, err := config.Parse(filepath.Join(dir, "warden.yaml"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// traffic is known traffic: how many requests of each kind.
var traffic = []struct {
	path, xff string
	n         int
	status    int
}{
	{"/", "", 5, 200},
	{"/secret/x", "", 3, 403},
	{"/hidden/y", "", 2, 404},
	{"/admin/", "", 4, 401},
	{"/", "203.0.113.9", 6, 403},
	{"/nope.html", "", 1, 404},
}

func send(t *testing.T, base string) {
	t.Helper()
	for _, tr := range traffic {
		for i := 0; i < tr.n; i++ {
			req, _ := http.NewRequest("GET", base+tr.path, nil)
			if tr.xff != "" {
				req.Header.Set("X-Forwarded-For", tr.xff)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tr.status {
				t.Fatalf("GET %s (xff %q): %d, want %d", tr.path, tr.xff, res.StatusCode, tr.status)
			}
		}
	}
}

func get(t *testing.T, h http.Handler, path, token string) (int, string) {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// metricValue finds one sample's value in the exposition text; labels must
// be given in the order the registry prints them (sorted by name).
func metricValue(t *testing.T, body, name, labels string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetricsAfterKnownTraffic(t *testing.T) {
	cfg := testPolicy(t)
	srv, rt := gatewaytest.Build(t, cfg, slog.New(slog.DiscardHandler))
	adm, err := New(srv.Engine, nil, testToken)
	if err != nil {
		t.Fatal(err)
	}
	adm.Metrics.Loaded(rt, adm.Now())
	inst := gatewaytest.Serve(t, srv, rt, &cfg.Limits, nil)
	send(t, inst.URL())

	if code, _ := get(t, adm, "/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("/metrics without a token: %d, want 401", code)
	}
	if code, _ := get(t, adm, "/metrics", "wrong-token-0123456789"); code != http.StatusUnauthorized {
		t.Fatalf("/metrics with a wrong token: %d, want 401", code)
	}
	code, body := get(t, adm, "/metrics", testToken)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	cases := []struct {
		labels string
		want   float64
	}{
		{`{action="allow",code="",rule="(default)",stage="policy"}`, 5},
		{`{action="deny",code="path_forbidden",rule="no-secrets",stage="policy"}`, 3},
		{`{action="conceal",code="not_found",rule="hidden",stage="policy"}`, 2},
		{`{action="deny",code="unauthenticated",rule="admin-area",stage="policy"}`, 4},
		{`{action="deny",code="ip_blocked",rule="blocked-addresses",stage="policy"}`, 6},
		{`{action="conceal",code="not_found",rule="",stage="handler"}`, 1},
	}
	for _, c := range cases {
		if got := metricValue(t, body, "warden_decisions_total", c.labels); got != c.want {
			t.Errorf("warden_decisions_total%s = %v, want %v", c.labels, got, c.want)
		}
	}
	total := 0
	for _, tr := range traffic {
		total += tr.n
	}
	refused := total - 5
	if got := metricValue(t, body, "warden_request_duration_seconds_count", `{outcome="refused"}`); got != float64(refused) {
		t.Errorf("refused duration count %v, want %d", got, refused)
	}
	if got := metricValue(t, body, "warden_request_duration_seconds_count", `{outcome="allowed"}`); got != 5 {
		t.Errorf("allowed duration count %v, want 5", got)
	}
	if got := metricValue(t, body, "warden_policy_generation", ""); got != 1 {
		t.Errorf("generation %v, want 1", got)
	}
	if got := metricValue(t, body, "warden_ip_list_entries", `{list="bad"}`); got != 3 {
		t.Errorf("list size %v, want 3 (one inline CIDR, two file lines)", got)
	}
	if got := metricValue(t, body, "warden_policy_rules", ""); got != 4 {
		t.Errorf("rules %v, want 4", got)
	}
	for _, name := range []string{"warden_challenges_total", "warden_reloads_total", "warden_upstream_duration_seconds", "warden_bans_active"} {
		if !strings.Contains(body, "# TYPE "+name) {
			t.Errorf("%s is not registered", name)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	cfg := testPolicy(t)
	srv, rt := gatewaytest.Build(t, cfg, slog.New(slog.DiscardHandler))
	old := srv.Swap(nil)
	adm, err := New(srv.Engine, nil, testToken)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, adm, "/healthz", ""); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get(t, adm, "/readyz", ""); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with no policy: %d, want 503", code)
	}
	srv.Swap(old)
	if code, body := get(t, adm, "/readyz", ""); code != 200 || !strings.Contains(body, "4 rules") {
		t.Errorf("/readyz with a policy: %d %q", code, body)
	}
	_ = rt
	if code, _ := get(t, adm, "/", ""); code != http.StatusUnauthorized {
		t.Errorf("the page without a token: %d, want 401", code)
	}
	if _, err := New(srv.Engine, nil, "short"); err == nil {
		t.Error("a short token was accepted")
	}
}

func TestLoginSetsCookie(t *testing.T) {
	cfg := testPolicy(t)
	srv, _ := gatewaytest.Build(t, cfg, slog.New(slog.DiscardHandler))
	adm, _ := New(srv.Engine, nil, testToken)
	r := httptest.NewRequest("GET", "/login?token="+testToken, nil)
	w := httptest.NewRecorder()
	adm.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", w.Code)
	}
	c := w.Result().Cookies()
	if len(c) != 1 || !c[0].HttpOnly || c[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie: %+v", c)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(c[0])
	w = httptest.NewRecorder()
	adm.ServeHTTP(w, r)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "refusals-chart") {
		t.Fatalf("page with the cookie: %d", w.Code)
	}
	r = httptest.NewRequest("GET", "/login?token=nope", nil)
	w = httptest.NewRecorder()
	adm.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("login with a wrong token: %d", w.Code)
	}
}

func TestExplainForm(t *testing.T) {
	cfg := testPolicy(t)
	srv, _ := gatewaytest.Build(t, cfg, slog.New(slog.DiscardHandler))
	adm, _ := New(srv.Engine, nil, testToken)
	post := func(form string) string {
		r := httptest.NewRequest("POST", "/explain", strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", "Bearer "+testToken)
		w := httptest.NewRecorder()
		adm.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("explain: %d", w.Code)
		}
		return w.Body.String()
	}
	body := post("method=GET&url=http%3A%2F%2Fexample.com%2Fsecret%2Fa&ip=127.0.0.1")
	if !strings.Contains(body, `id="explain-result"`) || !strings.Contains(body, "path_forbidden") || !strings.Contains(body, "<b>no-secrets</b>") {
		t.Errorf("explain of a refused request:\n%s", body)
	}
	body = post("method=GET&url=http%3A%2F%2Fexample.com%2F&ip=203.0.113.5")
	if !strings.Contains(body, "ip_blocked") {
		t.Errorf("explain from a blocked address lacks ip_blocked")
	}
	body = post("method=GET&url=nohost&ip=1.2.3.4")
	if !strings.Contains(body, "needs a scheme and host") {
		t.Errorf("a bad URL is not explained as such")
	}
}

// blockedWriter is a log destination that never finishes a write (a full
// pipe), until released.
type blockedWriter struct{ release chan struct{} }

func (b blockedWriter) Write(p []byte) (int, error) { <-b.release; return len(p), nil }

// TestMetricsCountDroppedLogLines: lines a stuck log had to drop show as
// warden_log_dropped_total, the figure the writer itself keeps.
func TestMetricsCountDroppedLogLines(t *testing.T) {
	bw := blockedWriter{make(chan struct{})}
	lw := obs.NewLogWriter(bw, 1)
	defer func() { close(bw.release); lw.Close() }()
	for i := 0; i < 50; i++ {
		lw.Write([]byte(`{"msg":"decision"}` + "\n"))
	}
	if lw.Dropped() == 0 {
		t.Fatal("a stuck writer with a queue of 1 dropped nothing out of 50 lines")
	}
	cfg := testPolicy(t)
	srv, _ := gatewaytest.Build(t, cfg, slog.New(slog.DiscardHandler))
	adm, err := New(srv.Engine, nil, testToken)
	if err != nil {
		t.Fatal(err)
	}
	adm.Metrics.CountLogDrops(lw.Dropped)
	_, body := get(t, adm, "/metrics", testToken)
	if got := metricValue(t, body, "warden_log_dropped_total", ""); got != float64(lw.Dropped()) || got == 0 {
		t.Errorf("warden_log_dropped_total = %v, the writer dropped %d", got, lw.Dropped())
	}
}
