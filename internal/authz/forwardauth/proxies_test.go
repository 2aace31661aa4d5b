package forwardauth_test

// Real proxies in front of a test upstream, asking warden's forward-auth
// service with the configuration docs/decision-service.md documents (read
// from that file, so the documented snippet is the tested one): nginx with
// auth_request and Caddy with forward_auth. The client must see warden's
// statuses, refusal bodies and WWW-Authenticate; the upstream must see the
// identity headers warden vouches for and never a client's own.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/proctest"

	"github.com/warden-gateway/warden/internal/authz/authztest"
)

// snippet is the fenced block after <!-- snippet:name --> in the docs.
func snippet(t *testing.T, name string) string {
	t.Helper()
	doc, err := os.ReadFile("../../../docs/decision-service.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- snippet:" + regexp.QuoteMeta(name) + " -->\\s*```[a-z]*\\n(.*?)```")
	m := re.FindSubmatch(doc)
	if m == nil {
		t.Fatalf("docs/decision-service.md has no snippet %q", name)
	}
	return string(m[1])
}

// upstream is the application behind the proxy: it records the headers of
// every request that reaches it, by the path asked for.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen map[string]http.Header
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{seen: map[string]http.Header{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen[r.URL.RequestURI()] = r.Header.Clone()
		u.mu.Unlock()
		io.WriteString(w, "the application\n")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) headers(uri string) (http.Header, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	h, ok := u.seen[uri]
	return h, ok
}

// probe is one client request through the proxy and what must come back.
type probe struct {
	name    string
	target  string
	client  string // the client's address, 127.0.0.x
	headers []string
	status  int
	// code is the refusal's code in the body ("" for an allow).
	code string
	// user and roles are what the upstream must see ("" for none).
	user, roles string
	// challenge: a WWW-Authenticate must reach the client.
	challenge bool
	// html: the client asks for a page, and must get warden's.
	html bool
}

func probes(p *authztest.Policy, t *testing.T) []probe {
	admin := p.Token(t, "rita", "admin", "ops")
	return []probe{
		{name: "public page", target: "/pub/hello.txt", status: 200},
		{name: "public page, client sets its own identity", target: "/pub/hello.txt?forged", headers: []string{"X-Warden-User: root", "X-Warden-Roles: admin"}, status: 200},
		{name: "admin by API key", target: "/admin/x", headers: []string{"X-API-Key: " + authztest.AdminKey, "X-Warden-User: someone-else"}, status: 200, user: "root", roles: "admin"},
		{name: "admin by JWT", target: "/admin/x?jwt", headers: []string{"Authorization: Bearer " + admin}, status: 200, user: "rita", roles: "admin,ops"},
		{name: "no credentials", target: "/admin/x?none", status: 401, code: "unauthenticated", challenge: true},
		{name: "no credentials, a browser", target: "/admin/x?browser", status: 401, code: "unauthenticated", challenge: true, html: true},
		{name: "bad key", target: "/admin/x?bad", headers: []string{"X-API-Key: nope"}, status: 401, code: "invalid_credentials", challenge: true},
		{name: "key without the role", target: "/admin/x?user", headers: []string{"X-API-Key: " + authztest.UserKey}, status: 403, code: "role_required"},
		{name: "blocked client address", target: "/pub/hello.txt?blocked", client: authztest.Blocked, status: 403, code: "ip_blocked"},
		{name: "concealed", target: "/internal/secret", status: 404, code: "not_found"},
		{name: "encoded slash", target: "/pub%2Fhello.txt", status: 400, code: "bad_request"},
		{name: "path override header", target: "/pub/hello.txt?override", headers: []string{"X-Original-URL: /admin/x"}, status: 400, code: "bad_request"},
		{name: "sql injection", target: "/pub/search?q=1%27%20OR%20%271%27%3D%271", status: 403, code: "waf_blocked"},
	}
}

func runProbes(t *testing.T, base string, up *upstream, ps []probe) {
	for _, pr := range ps {
		t.Run(pr.name, func(t *testing.T) {
			client := pr.client
			if client == "" {
				client = "127.0.0.1"
			}
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(client)}, Timeout: 5 * time.Second}
			hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 15 * time.Second}
			req, err := http.NewRequest(http.MethodGet, base+pr.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = authztest.SiteHost
			if pr.html {
				req.Header.Set("Accept", "text/html")
				req.Header.Set("User-Agent", "Mozilla/5.0")
			} else {
				req.Header.Set("Accept", "application/json")
			}
			for _, h := range pr.headers {
				k, v, _ := strings.Cut(h, ":")
				req.Header.Set(k, strings.TrimSpace(v))
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != pr.status {
				t.Fatalf("status %d, want %d; body:\n%s", resp.StatusCode, pr.status, body)
			}
			if pr.status == 200 {
				if string(body) != "the application\n" {
					t.Errorf("body %q is not the application's", body)
				}
				h, ok := up.headers(pr.target)
				if !ok {
					t.Fatalf("the upstream never saw %s", pr.target)
				}
				if got := h.Get("X-Warden-User"); got != pr.user {
					t.Errorf("the upstream saw X-Warden-User %q, want %q", got, pr.user)
				}
				if got := h.Get("X-Warden-Roles"); got != pr.roles {
					t.Errorf("the upstream saw X-Warden-Roles %q, want %q", got, pr.roles)
				}
				if id := h.Get("X-Request-Id"); len(id) != 16 {
					t.Errorf("the upstream saw X-Request-Id %q, want warden's 16-digit id", id)
				}
				return
			}
			if _, ok := up.headers(pr.target); ok {
				t.Errorf("a refused request reached the upstream")
			}
			if got := resp.Header.Get("WWW-Authenticate"); pr.challenge != (got != "") {
				t.Errorf("WWW-Authenticate %q (want one: %v)", got, pr.challenge)
			}
			if n := len(resp.Header.Values("WWW-Authenticate")); n > 1 {
				t.Errorf("%d WWW-Authenticate headers, want one", n)
			}
			id := resp.Header.Get("X-Request-Id")
			if len(id) != 16 {
				t.Errorf("X-Request-Id %q, want warden's", id)
			}
			if pr.html {
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
					t.Errorf("Content-Type %q, want warden's HTML page", ct)
				}
				if !strings.Contains(string(body), pr.code) || !strings.Contains(string(body), id) {
					t.Errorf("the page does not name the code %s and request id %s:\n%s", pr.code, id, body)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json; body:\n%s", ct, body)
			}
			var prob struct {
				Status    int    `json:"status"`
				Code      string `json:"code"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(body, &prob); err != nil {
				t.Fatalf("body is not warden's problem+json: %v\n%s", err, body)
			}
			if prob.Code != pr.code || prob.Status != pr.status || prob.RequestID != id {
				t.Errorf("problem %+v, want code %s, status %d, request id %s", prob, pr.code, pr.status, id)
			}
		})
	}
}

// startWarden runs the forward-auth service of the shared policy on a
// free port, peers 127.0.0.1 (where the proxy connects from).
func startWarden(t *testing.T) (*authztest.Policy, string, *authztest.RecordLog) {
	p := authztest.WritePolicy(t, "127.0.0.1/32")
	var log authztest.RecordLog
	addr := authztest.ForwardAuth(t, authztest.Engine(t, p.Config(t), log.Logger()), "127.0.0.1:0")
	return p, addr, &log
}

func TestNginxAuthRequest(t *testing.T) {
	proctest.Program(t, "nginx") // skip (or fail under CI) before anything starts
	p, wardenAddr, log := startWarden(t)
	up := newUpstream(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	port := proctest.FreePort(t)
	site := snippet(t, "nginx")
	site = strings.ReplaceAll(site, "127.0.0.1:9091", wardenAddr)
	site = strings.ReplaceAll(site, "127.0.0.1:8000", strings.TrimPrefix(up.srv.URL, "http://"))
	site = strings.Replace(site, "listen 8080;", fmt.Sprintf("listen 127.0.0.1:%d;", port), 1)
	site = strings.ReplaceAll(site, "include warden_describe.conf;", "include "+filepath.Join(dir, "warden_describe.conf")+";")
	if err := os.WriteFile(filepath.Join(dir, "warden_describe.conf"), []byte(snippet(t, "nginx-describe")), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	srv := proctest.StartNginx(t, dir, proctest.NginxConf(t, dir, "", site), addr)
	runProbes(t, "http://"+addr, up, probes(p, t))
	if t.Failed() {
		t.Logf("nginx:\n%s\nwarden:\n%s", srv.Logs(), log.Text())
	}
	// Each request was judged once: the refusals nginx fetched again from
	// /refusal were not logged again.
	recs := log.ByID(t)
	for id, rs := range recs {
		if len(rs) != 1 {
			t.Errorf("request %s logged %d times", id, len(rs))
		}
	}
	if n := len(recs); n != len(probes(p, t)) {
		t.Errorf("%d decision records for %d requests", n, len(probes(p, t)))
	}
}

func TestCaddyForwardAuth(t *testing.T) {
	caddy := proctest.Program(t, "caddy")
	p, wardenAddr, log := startWarden(t)
	up := newUpstream(t)
	dir := t.TempDir()
	port := proctest.FreePort(t)
	site := snippet(t, "caddy")
	site = strings.ReplaceAll(site, "127.0.0.1:9091", wardenAddr)
	site = strings.ReplaceAll(site, "127.0.0.1:8000", strings.TrimPrefix(up.srv.URL, "http://"))
	site = strings.Replace(site, ":8080 {", fmt.Sprintf("http://:%d {\n\tbind 127.0.0.1", port), 1)
	conf := "{\n\tadmin off\n\tauto_https off\n}\n" + site
	confPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	env := []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
	srv := proctest.Start(t, addr, proctest.Options{Dir: dir, Env: env}, caddy, "run", "--config", confPath, "--adapter", "caddyfile")
	runProbes(t, "http://"+addr, up, probes(p, t))
	if t.Failed() {
		t.Logf("caddy:\n%s\nwarden:\n%s", srv.Logs(), log.Text())
	}
}
