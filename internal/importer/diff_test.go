package importer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
)

// The differential tests run real nginx and Apache over a docroot made
// here, import their configuration, run warden on the result over the same
// docroot, send every server the same requests from several 127.0.0.x
// addresses with several Referers and credentials, and require the same
// status for each.

// program finds a Debian program the tests drive; without it the test
// fails under CI=true and is skipped otherwise.
func program(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (scripts/test.sh installs it)", name)
	}
	t.Skipf("%s is not installed; scripts/test.sh installs it", name)
	return ""
}

// worldDir makes a folder every user can read (the servers' workers run as
// nobody), removed when the test ends.
func worldDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "warden-import-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// siteFiles is the docroot every case serves.
var siteFiles = []string{
	"index.html", "a.txt", "x.bak", "app.log", "conf.ini", "secret.txt", "Notes.TXT",
	"img/logo.png", "img/pic.gif", "img/index.html",
	"admin/index.html", "admin/a.txt", "admin/x.bak",
	"team/a.txt", "team/index.html",
	"sub/a.txt", "sub/x.log", "sub/index.html",
	"pub/f.txt", "pub/g.txt",
	"noindex/f.txt",
	"home/home.html", "home/h.txt",
	"static/a.txt", "static/x.bak",
	"internal/a.txt", "internal/index.html",
	"deep/a.txt", "deep/er/a.txt", "deep/er/index.html",
	"private/a.txt",
}

func makeSite(t *testing.T, root string) {
	t.Helper()
	for _, f := range siteFiles {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("content of /"+f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// defaultPaths are requested in every case.
var defaultPaths = []string{
	"/", "/index.html", "/a.txt", "/missing.txt", "/x.bak", "/app.log", "/conf.ini", "/secret.txt", "/Notes.TXT", "/A.TXT",
	"/img/logo.png", "/img/pic.gif", "/img/", "/img/missing.png",
	"/admin", "/admin/", "/admin/a.txt", "/admin/x.bak", "/ADMIN/a.txt",
	"/team/a.txt", "/team/",
	"/sub", "/sub/", "/sub/a.txt", "/sub/x.log",
	"/pub/", "/pub/f.txt",
	"/noindex/", "/noindex/f.txt",
	"/home/", "/home/h.txt",
	"/static/a.txt", "/static/x.bak",
	"/internal/", "/internal/a.txt",
	"/deep/a.txt", "/deep/er/a.txt", "/deep/er/",
	"/private/a.txt",
	// Spellings that canonicalize to the paths above.
	"/%61dmin/a.txt", "//admin/a.txt", "/admin/./a.txt", "/pub/../admin/a.txt", "/img/logo%2Epng",
}

// variant is one way of asking: a Referer and credentials.
type variant struct {
	name      string
	referer   string // "" sends none
	user, pwd string
}

var variants = []variant{
	{name: "no referer"},
	{name: "server_names referer", referer: "https://example.com/page"},
	{name: "wildcard referer", referer: "https://cdn.example.org/x"},
	{name: "regex referer", referer: "http://img.trusted.test/p"},
	{name: "foreign referer", referer: "https://evil.test/x"},
	{name: "blocked referer", referer: "evil.test"},
	{name: "good credentials", user: "alice", pwd: "secret"},
	{name: "bad credentials", user: "alice", pwd: "wrong"},
}

// sources are the client addresses requests come from.
var sources = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}

type probe struct {
	path   string
	source string
	v      variant
}

func (p probe) String() string {
	return fmt.Sprintf("GET %s from %s with %s", p.path, p.source, p.v.name)
}

func clientFrom(source string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4},
		// Redirects are statuses to compare, not to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// statuses sends every probe to base and returns the statuses.
func statuses(t *testing.T, base string, probes []probe, clients map[string]*http.Client) []int {
	t.Helper()
	out := make([]int, len(probes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var mu sync.Mutex
	var firstErr error
	for i, p := range probes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			req, err := http.NewRequest(http.MethodGet, base+p.path, nil)
			if err != nil {
				panic(err)
			}
			req.Host = "example.com"
			if p.v.referer != "" {
				req.Header.Set("Referer", p.v.referer)
			}
			if p.v.user != "" {
				req.SetBasicAuth(p.v.user, p.v.pwd)
			}
			resp, err := clients[p.source].Do(req)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %v", p, err)
				}
				mu.Unlock()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			out[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening waits until addr accepts connections or the process ends.
func waitListening(t *testing.T, addr string, exited <-chan struct{}, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("server exited before listening on %s:\n%s", addr, logs())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server not listening on %s after 15s:\n%s", addr, logs())
}

// startProcess runs a server in the foreground, its output in a file (a
// pipe would stay open in worker processes), and stops it when the test
// ends: SIGTERM, which makes the master stop its workers, then SIGKILL to
// its process group if it lingers.
func startProcess(t *testing.T, addr, dir, logFile, name string, args ...string) {
	t.Helper()
	out, err := os.CreateTemp(dir, "server-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		// Workers of the group this test started, should any outlive their
		// master.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	logs := func() string {
		b, _ := os.ReadFile(out.Name())
		s := string(b)
		if logFile != "" {
			if b, err := os.ReadFile(logFile); err == nil {
				s += string(b)
			}
		}
		return s
	}
	waitListening(t, addr, exited, logs)
}

// startNginx writes nginx.conf around a server body and runs nginx on it.
func startNginx(t *testing.T, dir, body string) (base, confPath string) {
	t.Helper()
	nginx := program(t, "nginx")
	port := freePort(t)
	for _, sub := range []string{"tmp", "logs"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o755)
	}
	conf := fmt.Sprintf(`user nobody nogroup;
worker_processes 1;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  server {
    listen 127.0.0.1:%[2]d;
    server_name example.com;
    root %[1]s/www;
%[3]s
  }
}
`, dir, port, body)
	confPath = filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startProcess(t, addr, dir, "", nginx, "-p", dir, "-c", confPath,
		"-g", "daemon off; master_process on; pid "+filepath.Join(dir, "nginx.pid")+"; error_log stderr;")
	return "http://" + addr, confPath
}

var apacheModules = []string{
	"mpm_event", "authz_core", "authz_host", "access_compat", "auth_basic", "authn_file", "authn_core",
	"authz_user", "dir", "autoindex", "rewrite",
}

// startApache writes httpd.conf for a docroot under dir (plus an included
// file of <Directory> blocks when dirsConf is not empty) and runs Apache.
func startApache(t *testing.T, dir, dirsConf string) string {
	t.Helper()
	apache := program(t, "apache2")
	port := freePort(t)
	var b strings.Builder
	fmt.Fprintf(&b, "ServerRoot %s\nListen 127.0.0.1:%d\nServerName example.com\n", dir, port)
	fmt.Fprintf(&b, "PidFile %[1]s/httpd.pid\nErrorLog %[1]s/error.log\nLogLevel warn\nDefaultRuntimeDir %[1]s\nMutex posixsem\n", dir)
	b.WriteString("User nobody\nGroup nogroup\nStartServers 1\nThreadsPerChild 16\nMaxRequestWorkers 16\nServerLimit 1\n")
	for _, m := range apacheModules {
		fmt.Fprintf(&b, "LoadModule %s_module /usr/lib/apache2/modules/mod_%s.so\n", m, m)
	}
	fmt.Fprintf(&b, `DocumentRoot %[1]s/www
<Directory />
  AllowOverride None
  Require all denied
</Directory>
<Directory %[1]s/www>
  Options FollowSymLinks
  AllowOverride All
  Require all granted
</Directory>
<FilesMatch "^\.ht">
  Require all denied
</FilesMatch>
`, dir)
	if dirsConf != "" {
		fmt.Fprintf(&b, "Include %s/dirs.conf\n", dir)
	}
	conf := filepath.Join(dir, "httpd.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startProcess(t, addr, dir, filepath.Join(dir, "error.log"), apache, "-f", conf, "-DFOREGROUND")
	return "http://" + addr
}

// startWarden compiles the imported YAML as `warden check` would and serves
// it.
func startWarden(t *testing.T, dir string, yml []byte) string {
	t.Helper()
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, yml, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, yml)
	if err != nil {
		t.Fatalf("imported config does not parse: %v\n%s", err, numbered(yml))
	}
	srv := gateway.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	rt, err := gateway.Build(cfg, gateway.Options{}, srv.UpstreamError)
	if err != nil {
		t.Fatalf("imported config does not compile: %v\n%s", err, numbered(yml))
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt.Start(ctx)
	srv.Swap(rt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		hs.Close()
		cancel()
		rt.Close()
	})
	return "http://" + ln.Addr().String()
}

func numbered(b []byte) string {
	var out strings.Builder
	for i, l := range strings.Split(string(b), "\n") {
		fmt.Fprintf(&out, "%4d  %s\n", i+1, l)
	}
	return out.String()
}

// makeHtpasswd writes a bcrypt user file with the real htpasswd tool.
func makeHtpasswd(t *testing.T, path string) {
	t.Helper()
	htpasswd := program(t, "htpasswd")
	out, err := exec.Command(htpasswd, "-bcB", path, "alice", "secret").CombinedOutput()
	if err != nil {
		t.Fatalf("htpasswd: %v\n%s", err, out)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// divergence is a request where warden deliberately answers otherwise
// than the server; the test checks that exact pair of statuses.
type divergence struct {
	path   string
	source string // "" for every source
	server int
	warden int
	why    string
}

type diffCase struct {
	name string
	// nginx is the body of the server block; {{DIR}}, {{HTPASSWD}} and
	// {{UPSTREAM}} are replaced.
	nginx string
	// htaccess maps docroot-relative .htaccess paths to their text;
	// dirsConf is a file of <Directory> blocks ({{DIR}} replaced).
	htaccess map[string]string
	dirsConf string
	// paths adds requests to defaultPaths.
	paths []string
	// notes are substrings the importer's notes must contain.
	notes []string
	// diverge lists deliberate differences.
	diverge []divergence
}

func divergenceFor(list []divergence, p probe) (divergence, bool) {
	for _, d := range list {
		if d.path == p.path && (d.source == "" || d.source == p.source) {
			return d, true
		}
	}
	return divergence{}, false
}

func expand(s, dir, upstream string) string {
	return strings.NewReplacer("{{DIR}}", dir, "{{HTPASSWD}}", filepath.Join(dir, "users.htpasswd"), "{{UPSTREAM}}", upstream).Replace(s)
}

func runDiff(t *testing.T, c diffCase, upstream string) {
	dir := worldDir(t)
	makeSite(t, filepath.Join(dir, "www"))
	makeHtpasswd(t, filepath.Join(dir, "users.htpasswd"))

	var serverBase string
	var res *Result
	var err error
	if c.nginx != "" {
		var confPath string
		serverBase, confPath = startNginx(t, dir, expand(c.nginx, dir, upstream))
		res, err = Nginx(confPath)
	} else {
		var files []string
		for rel, text := range c.htaccess {
			p := filepath.Join(dir, "www", rel)
			if err := os.WriteFile(p, []byte(expand(text, dir, upstream)), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, p)
		}
		if c.dirsConf != "" {
			p := filepath.Join(dir, "dirs.conf")
			if err := os.WriteFile(p, []byte(expand(c.dirsConf, dir, upstream)), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, p)
		}
		serverBase = startApache(t, dir, c.dirsConf)
		res, err = Htaccess(filepath.Join(dir, "www"), files...)
	}
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	var noteText strings.Builder
	for _, n := range res.Notes {
		noteText.WriteString(n.String() + "\n")
	}
	for _, want := range c.notes {
		if !strings.Contains(noteText.String(), want) {
			t.Errorf("notes lack %q; got:\n%s", want, noteText.String())
		}
	}
	wardenBase := startWarden(t, dir, res.YAML)

	clients := map[string]*http.Client{}
	for _, s := range sources {
		clients[s] = clientFrom(s)
	}
	var probes []probe
	for _, p := range append(append([]string{}, defaultPaths...), c.paths...) {
		for _, s := range sources {
			for _, v := range variants {
				probes = append(probes, probe{path: p, source: s, v: v})
			}
		}
	}
	want := statuses(t, serverBase, probes, clients)
	got := statuses(t, wardenBase, probes, clients)
	var bad []string
	for i, p := range probes {
		if d, ok := divergenceFor(c.diverge, p); ok {
			if want[i] != d.server || got[i] != d.warden {
				bad = append(bad, fmt.Sprintf("%s: server %d, warden %d; the known divergence (%s) is server %d, warden %d", p, want[i], got[i], d.why, d.server, d.warden))
			}
			continue
		}
		if want[i] != got[i] {
			bad = append(bad, fmt.Sprintf("%s: server %d, warden %d", p, want[i], got[i]))
		}
	}
	if len(bad) > 0 {
		if len(bad) > 40 {
			bad = append(bad[:40], fmt.Sprintf("... and %d more", len(bad)-40))
		}
		t.Errorf("%d of %d requests differ:\n%s\nimported config:\n%s\nnotes:\n%s", len(bad), len(probes), strings.Join(bad, "\n"), numbered(res.YAML), noteText.String())
	}
	// Every status class must have been seen across the case, or the case
	// exercises less than it claims; checked by the callers' expectations.
	t.Logf("%d requests, all alike", len(probes))
}

// upstreamServer answers every proxied request with 200, except
// /api/teapot (418), so that proxying is seen in the statuses.
func upstreamServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/teapot" {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		fmt.Fprintf(w, "upstream %s\n", r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

var nginxCases = []diffCase{
	{
		name: "allow-deny-order-and-inheritance",
		nginx: `
    allow 127.0.0.1;
    allow 127.0.0.2;
    deny 127.0.0.3;
    allow 127.0.0.0/29;
    deny all;
    location /admin/ { deny 127.0.0.2; allow 127.0.0.0/30; deny all; }
    location /pub/ { autoindex on; }
    location /static/ { allow all; }
    location /sub/ { deny 127.0.0.4; }
`,
		notes: []string{"events {...} (not an access-control setting)"},
	},
	{
		name: "auth-basic-and-satisfy",
		nginx: `
    location /admin/ { auth_basic "Admin"; auth_basic_user_file {{HTPASSWD}}; }
    location /team/ {
      satisfy any;
      allow 127.0.0.2;
      deny 127.0.0.3;
      auth_basic "Admin";
      auth_basic_user_file {{HTPASSWD}};
    }
    location /sub/ {
      deny 127.0.0.4;
      auth_basic "Admin";
      auth_basic_user_file {{HTPASSWD}};
    }
    location /deep/ {
      satisfy any;
      allow 127.0.0.1;
      deny all;
      auth_basic "Admin";
      auth_basic_user_file {{HTPASSWD}};
      location /deep/er/ { auth_basic off; }
    }
`,
	},
	{
		name: "server-level-auth-with-off",
		nginx: `
    auth_basic "Site";
    auth_basic_user_file {{HTPASSWD}};
    location /static/ { auth_basic off; }
    location /pub/ { autoindex on; }
`,
	},
	{
		name: "valid-referers",
		nginx: `
    valid_referers none blocked server_names *.example.org;
    location /img/ {
      valid_referers server_names ~\.trusted\.test;
      if ($invalid_referer) { return 403; }
    }
    location ~* \.(bak|log)$ {
      if ($invalid_referer) { return 404; }
    }
    location /sub/ {
      if ($invalid_referer) { return 403; }
    }
`,
	},
	{
		name: "server-level-referer-check",
		nginx: `
    valid_referers none server_names *.example.org;
    if ($invalid_referer) { return 403; }
    location /img/ { valid_referers server_names; }
    location /pub/ { autoindex on; deny 127.0.0.5; }
`,
	},
	{
		name: "location-selection",
		nginx: `
    location = /a.txt { return 403; }
    location = /index.html { deny 127.0.0.2; }
    location ^~ /static/ { }
    location ~ \.bak$ { deny all; }
    location ~* \.LOG$ { return 404; }
    location ~ ^/admin/ { deny 127.0.0.3; }
    location /admin/ { deny all; }
    location /internal/ { internal; }
    location /deep/ { deny 127.0.0.2; }
    location /deep/er/ { }
    location / { deny 127.0.0.5; }
`,
		// nginx serves / by an internal redirect to /index.html, whose exact
		// location denies 127.0.0.2: the import applies that deny to / too.
	},
	{
		name: "server-return-and-content",
		nginx: `
    index index.html home.html;
    location /pub/ { autoindex on; }
    location /home/ { index home.html; }
    location /noindex/ { autoindex off; deny 127.0.0.4; }
    location /private/ { return 410; }
    location /img/ { root {{DIR}}/www; autoindex on; }
`,
	},
	{
		name: "proxy-pass",
		nginx: `
    location /api/ {
      allow 127.0.0.1;
      allow 127.0.0.2;
      deny all;
      proxy_pass {{UPSTREAM}};
    }
    location / { deny 127.0.0.5; }
`,
		paths: []string{"/api", "/api/", "/api/users", "/api/teapot", "/API/users"},
		// nginx redirects /api to /api/ (301) before checking access, and
		// warden's upstream handler answers /api with the same redirect.
	},
}

var apacheCases = []diffCase{
	{
		name: "require-ip-and-containers",
		htaccess: map[string]string{
			".htaccess":         "Require ip 127.0.0.1 127.0.0.2 127.0.0.4\n",
			"admin/.htaccess":   "<RequireAll>\n  Require ip 127.0.0.0/29\n  Require not ip 127.0.0.2\n</RequireAll>\n",
			"sub/.htaccess":     "Require all denied\n",
			"static/.htaccess":  "Require all granted\n",
			"team/.htaccess":    "<RequireAny>\n  Require ip 127.0.0.3\n  <RequireAll>\n    Require ip 127.0.0.0/30\n    Require not ip 127.0.0.1\n  </RequireAll>\n</RequireAny>\n",
			"deep/.htaccess":    "<RequireAll>\n  Require ip 127.0.0.0/29\n  <RequireNone>\n    Require ip 127.0.0.4 127.0.0.5\n  </RequireNone>\n</RequireAll>\n",
			"deep/er/.htaccess": "Require ip 127.0.0.1\nRequire not ip 127.0.0.2\n",
		},
	},
	{
		name: "valid-user",
		htaccess: map[string]string{
			"admin/.htaccess":   "AuthType Basic\nAuthName \"Admin\"\nAuthUserFile {{HTPASSWD}}\nRequire valid-user\n",
			"team/.htaccess":    "AuthType Basic\nAuthName \"Admin\"\nAuthUserFile {{HTPASSWD}}\n<RequireAny>\n  Require ip 127.0.0.2\n  Require valid-user\n</RequireAny>\n",
			"sub/.htaccess":     "AuthType Basic\nAuthName \"Admin\"\nAuthUserFile {{HTPASSWD}}\n<RequireAll>\n  Require valid-user\n  Require not ip 127.0.0.3\n</RequireAll>\n",
			"deep/.htaccess":    "AuthType Basic\nAuthName \"Admin\"\nAuthUserFile {{HTPASSWD}}\nRequire valid-user\n",
			"deep/er/.htaccess": "Require all granted\n",
		},
	},
	{
		name: "order-allow-deny",
		htaccess: map[string]string{
			".htaccess":        "Order deny,allow\nDeny from 127.0.0.3 127.0.0.4\nAllow from 127.0.0.4\n",
			"admin/.htaccess":  "Order allow,deny\nAllow from 127.0.0\nDeny from 127.0.0.2\n",
			"sub/.htaccess":    "Order allow,deny\n",
			"static/.htaccess": "Order deny,allow\nDeny from all\nAllow from 127.0.0.1 127.0.0.5/32\n",
			"team/.htaccess":   "Order Allow,Deny\nAllow from all\nDeny from 127.0.0.0/255.255.255.252\n",
		},
	},
	{
		name: "options-index-files",
		htaccess: map[string]string{
			".htaccess":      "Options -Indexes\nDirectoryIndex index.html home.html\n<FilesMatch \"\\.(bak|log|ini)$\">\n  Require all denied\n</FilesMatch>\n<Files secret.txt>\n  Order allow,deny\n  Deny from all\n</Files>\n",
			"pub/.htaccess":  "Options +Indexes\n",
			"home/.htaccess": "DirectoryIndex home.html\n",
			"img/.htaccess":  "Options Indexes\n<FilesMatch \"^pic\">\n  Require ip 127.0.0.1\n</FilesMatch>\n",
		},
	},
	{
		name: "referer-rewrite",
		htaccess: map[string]string{
			".htaccess":      "RewriteEngine On\nRewriteCond %{HTTP_REFERER} !^$\nRewriteCond %{HTTP_REFERER} !^https?://(www\\.)?example\\.com/ [NC]\nRewriteCond %{HTTP_REFERER} !^https?://[^/]+\\.example\\.org/ [NC]\nRewriteRule \\.(png|gif)$ - [F,NC]\nRewriteRule ^private/ - [F]\n",
			"sub/.htaccess":  "AuthType Basic\nAuthName \"Admin\"\nAuthUserFile {{HTPASSWD}}\nRequire valid-user\nRewriteEngine On\nRewriteCond %{HTTP_REFERER} !^https?://example\\.com/\nRewriteRule ^a\\.txt$ - [F]\n",
			"deep/.htaccess": "Options -FollowSymLinks\n",
			"img/.htaccess":  "RewriteEngine On\nRewriteCond %{HTTP_REFERER} !^$\nRewriteCond %{HTTP_REFERER} !^https?://[^/]*trusted\\.test/\nRewriteRule ^pic - [F]\n",
		},
	},
	{
		name: "directory-blocks",
		dirsConf: `<Directory {{DIR}}/www/admin>
  Require ip 127.0.0.1
</Directory>
<Directory "{{DIR}}/www/team">
  AuthType Basic
  AuthName "Team"
  AuthUserFile {{HTPASSWD}}
  <RequireAny>
    Require valid-user
    Require ip 127.0.0.5
  </RequireAny>
</Directory>
<Directory {{DIR}}/www/pub>
  Options +Indexes
</Directory>
<Directory {{DIR}}/www/sub>
  Order deny,allow
  Deny from 127.0.0.2
</Directory>
`,
	},
}

func TestDifferentialNginx(t *testing.T) {
	program(t, "nginx")
	program(t, "htpasswd")
	up := upstreamServer(t)
	for _, c := range nginxCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runDiff(t, c, up)
		})
	}
}

func TestDifferentialApache(t *testing.T) {
	program(t, "apache2")
	program(t, "htpasswd")
	for _, c := range apacheCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runDiff(t, c, "")
		})
	}
}
