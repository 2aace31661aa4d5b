package main

// One table of requests, run through every front end that judges with the
// engine: the gateway (a real listener), the Go middleware (a real
// listener), and `warden explain` (the CLI, in a child process). Each must
// give the same decision, code, status and decision record, so the front
// ends cannot drift apart again. Then `warden replay` of the gateway's own
// decision log, under the same policy, must report no change.

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/authz/authztest"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/middleware"
)

// frontCase is one request of the shared table.
type frontCase struct {
	name    string
	method  string
	target  string
	peer    string // 127.0.0.x: the client connects from this address
	headers []string
	// handler: the case turns on the gateway's file handler (a dotfile,
	// listing off), which the middleware does not have.
	handler bool
	// want: action and code the table asserts on top of the fronts agreeing
	want string
}

var frontCases = []frontCase{
	{name: "public page", method: "GET", target: "/pub/hello.txt", want: "allow"},
	{name: "blocked address", method: "GET", target: "/pub/hello.txt", peer: "127.0.0.66", want: "deny ip_blocked"},
	{name: "blocked via trusted proxy", method: "GET", target: "/pub/hello.txt", peer: "127.0.0.10", headers: []string{"X-Forwarded-For: 127.0.0.66"}, want: "deny ip_blocked"},
	{name: "spoofed forwarded-for", method: "GET", target: "/pub/hello.txt", peer: "127.0.0.20", headers: []string{"X-Forwarded-For: 127.0.0.66"}, want: "allow"},
	{name: "no credentials", method: "GET", target: "/admin/x", want: "deny unauthenticated"},
	{name: "wrong key", method: "GET", target: "/admin/x", headers: []string{"X-API-Key: nope"}, want: "deny invalid_credentials"},
	{name: "missing role", method: "GET", target: "/admin/x", headers: []string{"X-API-Key: " + frontUserKey}, want: "deny role_required"},
	{name: "admin", method: "GET", target: "/admin/x", headers: []string{"X-API-Key: " + frontAdminKey}, want: "allow"},
	{name: "admin, other case", method: "GET", target: "/ADMIN/x", want: "deny unauthenticated"},
	{name: "concealed", method: "GET", target: "/internal/secret", want: "conceal not_found"},
	{name: "denied method", method: "DELETE", target: "/pub/hello.txt", want: "deny path_forbidden"},
	{name: "user agent", method: "GET", target: "/pub/hello.txt", headers: []string{"User-Agent: sqlmap/1.7"}, want: "deny user_agent_blocked"},
	{name: "hotlink", method: "GET", target: "/img/logo.png", headers: []string{"Referer: https://elsewhere.example/"}, want: "deny hotlink_blocked"},
	{name: "own referer", method: "GET", target: "/img/logo.png", headers: []string{"Referer: http://site.example/pub/"}, want: "allow"},
	{name: "dot segments above the root", method: "GET", target: "/%2e%2e/etc/passwd", want: "deny bad_request"},
	{name: "encoded slash", method: "GET", target: "/admin%2Fx", want: "deny bad_request"},
	{name: "path override header", method: "GET", target: "/pub/hello.txt", headers: []string{"X-Original-URL: /admin/x"}, want: "deny bad_request"},
	{name: "method override header", method: "POST", target: "/pub/hello.txt", headers: []string{"X-HTTP-Method-Override: DELETE"}, want: "deny bad_request"},
	{name: "underscore header dropped", method: "GET", target: "/pub/hello.txt", headers: []string{"X_Original_URL: /admin/x"}, want: "allow"},
	{name: "sql injection", method: "GET", target: "/pub/search?q=1%27%20OR%20%271%27%3D%271", want: "deny waf_blocked"},
	{name: "benign query", method: "GET", target: "/pub/search?q=knitting+patterns", want: "allow"},
	{name: "dotfile (the WAF first)", method: "GET", target: "/pub/.env", handler: true, want: "deny waf_blocked"},
	{name: "dotfile", method: "GET", target: "/pub/.hidden", handler: true, want: "deny path_forbidden"},
	{name: "listing off", method: "GET", target: "/pub/", handler: true, want: "deny directory_listing_disabled"},
	{name: "no such file", method: "GET", target: "/pub/nothing-here", handler: true, want: "conceal not_found"},
}

const (
	frontUA       = "fronts-test/1.0"
	frontAdminKey = "front-admin-key"
	frontUserKey  = "front-user-key"
)

func frontPolicy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"site/pub/hello.txt":   "hello\n",
		"site/pub/search":      "results\n",
		"site/pub/.env":        "SECRET=1\n",
		"site/pub/.hidden":     "hidden\n",
		"site/admin/x":         "admin area\n",
		"site/img/logo.png":    "png\n",
		"site/internal/secret": "secret\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := `server_names: [site.example]
trusted_proxies: [127.0.0.10]
log: { decisions: all }
ip_lists:
  blocked: { cidrs: [127.0.0.66/32] }
identity:
  api_keys:
    header: X-API-Key
    keys:
      - { id: ops, sha256: "` + identity.HashKey(frontUserKey) + `", roles: [user] }
      - { id: root, sha256: "` + identity.HashKey(frontAdminKey) + `", roles: [admin] }
rules:
  - name: blocked-addresses
    when: { ip_list: blocked }
    action: deny
  - name: no-delete
    when: { methods: [DELETE] }
    action: deny
  - name: scanners
    when: { user_agent: { substring: [sqlmap, nikto] } }
    action: deny
  - name: hotlinks
    when: { path: { prefix: [/img/] }, referer_not_in: [none, server_names] }
    action: deny
  - name: admin-area
    when: { path: { prefix: [/admin/] } }
    require: { roles_any: [admin] }
    action: allow
  - name: hide-internal
    when: { path: { prefix: [/internal/] } }
    action: conceal
waf:
  mode: block
handle:
  - path: /
    root: ./site
`
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// comparable keeps what must be the same whichever front end judged: the
// request id, the front end's name, its handler, the peer's port, what was
// sent and the WAF's log lines (they carry the request id) differ.
func comparable(r engine.Record) engine.Record {
	r.RequestID, r.Front, r.Handler, r.Peer, r.Bytes = "", "", "", "", 0
	if r.Action == "allow" {
		// What an allowed request's handler answered: the middleware's
		// application is not warden's to see.
		r.Status = 0
	}
	if r.WAF != nil {
		w := *r.WAF
		w.Matches = nil
		r.WAF = &w
	}
	return r
}

// clientFromPeer dials from the case's 127.0.0.x address.
func clientFromPeer(peer string) *http.Client {
	if peer == "" {
		peer = "127.0.0.1"
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(peer)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func send(t *testing.T, base string, c frontCase) (status int, id string) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "site.example"
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", frontUA)
	for _, h := range c.headers {
		k, v, _ := strings.Cut(h, ":")
		if k == "User-Agent" {
			req.Header.Del(k)
		}
		req.Header[k] = append(req.Header[k], strings.TrimSpace(v)) // as written: X_Original_URL keeps its '_'
	}
	resp, err := clientFromPeer(c.peer).Do(req)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Request-Id")
}

func TestFrontEndsAgree(t *testing.T) {
	policyPath := frontPolicy(t)
	cfg, err := config.Load(policyPath)
	if err != nil {
		t.Fatal(err)
	}

	var gwLog, mwLog authztest.RecordLog
	gw := gatewaytest.Start(t, cfg, slog.New(slog.NewJSONHandler(&gwLog, nil)), nil)

	src, err := os.ReadFile(policyPath)
	if err != nil {
		t.Fatal(err)
	}
	guard, err := middleware.New(policyPath, src)
	if err != nil {
		t.Fatal(err)
	}
	defer guard.Close()
	guard.WithLogger(slog.New(slog.NewJSONHandler(&mwLog, nil)))
	app := httptest.NewUnstartedServer(guard.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "the application\n")
	})))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app.Listener = ln
	app.Start()
	defer app.Close()

	type sent struct{ gwStatus, mwStatus int }
	ids := map[string][2]string{}
	statuses := map[string]sent{}
	for _, c := range frontCases {
		gs, gid := send(t, gw.URL(), c)
		var ms int
		var mid string
		if !c.handler {
			ms, mid = send(t, app.URL, c)
		}
		ids[c.name] = [2]string{gid, mid}
		statuses[c.name] = sent{gs, ms}
	}
	gwRecs, mwRecs := gwLog.ByID(t), mwLog.ByID(t)

	for _, c := range frontCases {
		t.Run(c.name, func(t *testing.T) {
			gid, mid := ids[c.name][0], ids[c.name][1]
			if len(gwRecs[gid]) != 1 {
				t.Fatalf("gateway: %d decision records for %s, want exactly one:\n%s", len(gwRecs[gid]), gid, gwLog.Text())
			}
			g := gwRecs[gid][0]
			got := strings.TrimSpace(g.Action + " " + g.Code)
			if got != c.want {
				t.Errorf("gateway decided %q (stage %s, rule %s, reason %s), want %q", got, g.Stage, g.Rule, g.Reason, c.want)
			}
			wantStatus := g.Status
			if st := statuses[c.name].gwStatus; st != wantStatus {
				t.Errorf("gateway answered %d, its record says %d", st, wantStatus)
			}

			// explain, in a child process, as a user runs it.
			args := []string{"explain", "--config", policyPath, "--json", c.method, "http://site.example" + c.target, "--ip", peerOr(c.peer), "--header", "Accept: application/json"}
			ua := "User-Agent: " + frontUA
			for _, h := range c.headers {
				if strings.HasPrefix(h, "User-Agent:") {
					ua = h
					continue
				}
				args = append(args, "--header", h)
			}
			args = append(args, "--header", ua)
			r := warden(t, ".", args...)
			if r.code != 0 {
				t.Fatalf("explain: exit %d: %s", r.code, r.stderr)
			}
			var ex explainOutput
			if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil {
				t.Fatalf("explain output: %v\n%s", err, r.stdout)
			}
			if e := ex.Record; !reflect.DeepEqual(comparable(e), comparable(g)) {
				t.Errorf("explain and the gateway disagree:\nexplain %+v\ngateway %+v", comparable(e), comparable(g))
			}

			if c.handler {
				return
			}
			if len(mwRecs[mid]) != 1 {
				t.Fatalf("middleware: %d decision records for %s, want exactly one", len(mwRecs[mid]), mid)
			}
			m := mwRecs[mid][0]
			if !reflect.DeepEqual(comparable(m), comparable(g)) {
				t.Errorf("the middleware and the gateway disagree:\nmiddleware %+v\ngateway    %+v", comparable(m), comparable(g))
			}
			if st := statuses[c.name].mwStatus; st != wantStatus {
				t.Errorf("middleware answered %d, want %d", st, wantStatus)
			}
		})
	}

	// The gateway's own log, replayed under the same policy: no change.
	rt, err := loadRuntime(policyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	sum, err := replay(rt, strings.NewReader(gwLog.Text()), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Requests != len(frontCases) || sum.Unchanged != sum.Requests || len(sum.Skipped) > 0 {
		t.Errorf("replay of the gateway's own log: %d requests (want %d), %d unchanged, newly refused %+v, newly allowed %+v, other code %+v, skipped %q",
			sum.Requests, len(frontCases), sum.Unchanged, sum.NewlyRefused, sum.NewlyAllowed, sum.CodeChanged, sum.Skipped)
	}
}

func peerOr(p string) string {
	if p == "" {
		return "127.0.0.1"
	}
	return p
}
