// Package importtest runs the importers' differential and golden tests:
// real nginx and Apache against warden on the imported policy.
package importtest

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
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/proctest"

	"github.com/warden-gateway/warden/internal/importer"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway"
)

// The differential tests run real nginx and Apache over a docroot made
// here, import their configuration, run warden on the result over the same
// docroot, send every server the same requests from several 127.0.0.x
// addresses with several Referers and credentials, and require the same
// status for each.

// WorldDir makes a folder every user can read (the servers' workers run as
// nobody), removed when the test ends.
func WorldDir(t *testing.T) string {
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

// SiteFiles is the docroot every case serves.
var SiteFiles = []string{
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

func MakeSite(t *testing.T, root string) {
	t.Helper()
	for _, f := range SiteFiles {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("content of /"+f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// DefaultPaths are requested in every case.
var DefaultPaths = []string{
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
	method string
	path   string
	source string
	header map[string]string
	v      variant
}

func (p probe) String() string {
	s := fmt.Sprintf("%s %s from %s with %s", p.method, p.path, p.source, p.v.name)
	for k, v := range p.header {
		s += fmt.Sprintf(" %s: %q", k, v)
	}
	return s
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
			req, err := http.NewRequest(p.method, base+p.path, nil)
			if err != nil {
				panic(err)
			}
			req.Host = "example.com"
			for k, v := range p.header {
				if strings.EqualFold(k, "Host") {
					req.Host = v
					continue
				}
				req.Header.Set(k, v)
			}
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

// StartNginx writes nginx.conf around a server body and runs nginx on it.
func StartNginx(t *testing.T, dir, body string) (base, confPath string) {
	t.Helper()
	port := proctest.FreePort(t)
	confPath = WriteNginxConf(t, dir, port, body)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	proctest.StartNginx(t, dir, confPath, addr)
	return "http://" + addr, confPath
}

// WriteNginxConf writes dir/nginx.conf: one server on 127.0.0.1:port for
// example.com with root dir/www around body. Workers run as nobody, which
// is why the test folders are world-readable.
func WriteNginxConf(t *testing.T, dir string, port int, body string) string {
	t.Helper()
	return proctest.NginxConf(t, dir, "user nobody nogroup;\n", fmt.Sprintf(`  server {
    listen 127.0.0.1:%[2]d;
    server_name example.com;
    root %[1]s/www;
%[3]s
  }`, dir, port, body))
}

var ApacheModules = []string{
	"mpm_event", "authz_core", "authz_host", "access_compat", "auth_basic", "authn_file", "authn_core",
	"authz_user", "dir", "autoindex", "rewrite",
}

// StartApache writes httpd.conf for a docroot under dir (plus an included
// file of <Directory> blocks when dirsConf is not empty) and runs Apache.
func StartApache(t *testing.T, dir, dirsConf, serverConf string) string {
	t.Helper()
	apache := proctest.Program(t, "apache2")
	port := proctest.FreePort(t)
	var b strings.Builder
	fmt.Fprintf(&b, "ServerRoot %s\nListen 127.0.0.1:%d\nServerName example.com\n", dir, port)
	fmt.Fprintf(&b, "PidFile %[1]s/httpd.pid\nErrorLog %[1]s/error.log\nLogLevel warn\nDefaultRuntimeDir %[1]s\nMutex posixsem\n", dir)
	b.WriteString("User nobody\nGroup nogroup\nStartServers 1\nThreadsPerChild 16\nMaxRequestWorkers 16\nServerLimit 1\n")
	for _, m := range ApacheModules {
		fmt.Fprintf(&b, "LoadModule %s_module /usr/lib/apache2/modules/mod_%s.so\n", m, m)
	}
	fmt.Fprintf(&b, `DocumentRoot %[1]s/www
<Directory />
  AllowOverride None
  Require all denied
</Directory>
<Directory %[1]s/www>
  %[2]s
  AllowOverride All
  Require all granted
</Directory>
<FilesMatch "^\.ht">
  Require all denied
</FilesMatch>
`, dir, serverConf)
	if dirsConf != "" {
		fmt.Fprintf(&b, "Include %s/dirs.conf\n", dir)
	}
	conf := filepath.Join(dir, "httpd.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	proctest.Start(t, addr, proctest.Options{Dir: dir, ExtraLog: filepath.Join(dir, "error.log")}, apache, "-f", conf, "-DFOREGROUND")
	return "http://" + addr
}

// StartWarden compiles the imported YAML as `warden check` would and serves
// it.
func StartWarden(t *testing.T, dir string, yml []byte) string {
	t.Helper()
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, yml, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, yml)
	if err != nil {
		t.Fatalf("imported config does not parse: %v\n%s", err, Numbered(yml))
	}
	srv := gateway.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	rt, err := gateway.Build(cfg, gateway.Options{}, srv.UpstreamError)
	if err != nil {
		t.Fatalf("imported config does not compile: %v\n%s", err, Numbered(yml))
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

func Numbered(b []byte) string {
	var out strings.Builder
	for i, l := range strings.Split(string(b), "\n") {
		fmt.Fprintf(&out, "%4d  %s\n", i+1, l)
	}
	return out.String()
}

// MakeHtpasswd writes a bcrypt user file with the real htpasswd tool.
func MakeHtpasswd(t *testing.T, path string) {
	t.Helper()
	htpasswd := proctest.Program(t, "htpasswd")
	out, err := exec.Command(htpasswd, "-bcB", path, "alice", "secret").CombinedOutput()
	if err != nil {
		t.Fatalf("htpasswd: %v\n%s", err, out)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Divergence is a request where warden deliberately answers otherwise
// than the server. It must be announced (Note is a substring of the
// import's notes) and on the safe side: warden refuses (4xx/5xx) where the
// server served, or refuses with another status.
type Divergence struct {
	Path string // "" for every path
	// PathPrefix, when set, matches every path under it instead.
	PathPrefix string
	// Variant, when set, limits it to requests whose variant name (as the
	// failure messages print it) contains this.
	Variant string
	Method  string // "" for GET
	Source  string // "" for every source
	Note    string
	Why     string
}

// Request is one extra request a case sends, from every source.
type Request struct {
	Method string
	Path   string
	Header map[string]string
	// User and Password send Basic credentials when User is set.
	User, Password string
}

// Case is one differential test: a configuration for the real server, the
// same docroot, the same requests.
type Case struct {
	Name string
	// Source names where the configuration comes from (the project file or
	// documentation page it follows).
	Source string
	// Family groups cases in the summary (docs/import.md).
	Family string
	// Nginx is the body of the server block; {{DIR}}, {{HTPASSWD}} and
	// {{UPSTREAM}} are replaced.
	Nginx string
	// Htaccess maps docroot-relative .htaccess paths to their text;
	// DirsConf is a file of <Directory> blocks ({{DIR}} replaced);
	// ServerConf is put into Apache's <Directory DOCROOT> (default
	// "Options FollowSymLinks").
	Htaccess   map[string]string
	DirsConf   string
	ServerConf *string
	// Files adds docroot-relative files; Symlinks maps a docroot-relative
	// link to its target.
	Files    []string
	Symlinks map[string]string
	// Paths adds GET requests to DefaultPaths, with every variant.
	Paths []string
	// Requests adds requests with their own method, headers, credentials.
	Requests []Request
	// AllHashKinds writes a user per hash kind into the user file (see
	// HashUsers), and tries each.
	AllHashKinds bool
	// Notes are substrings the importer's notes must contain.
	Notes []string
	// Direct, for golden cases only, imports a configuration kept in place
	// under testdata/<Name>/ (relative paths and all).
	Direct func() (*importer.Result, error)
	// Diverge lists announced differences.
	Diverge []Divergence
}

func divergenceFor(list []Divergence, p probe) (Divergence, bool) {
	for _, d := range list {
		m := d.Method
		if m == "" {
			m = http.MethodGet
		}
		pathOK := d.Path == "" || d.Path == p.path
		if d.PathPrefix != "" {
			pathOK = strings.HasPrefix(p.path, d.PathPrefix)
		}
		if pathOK && m == p.method && (d.Source == "" || d.Source == p.source) &&
			(d.Variant == "" || strings.Contains(p.v.name, d.Variant)) {
			return d, true
		}
	}
	return Divergence{}, false
}

func expand(s, dir, upstream string) string {
	return strings.NewReplacer("{{DIR}}", dir, "{{HTPASSWD}}", filepath.Join(dir, "users.htpasswd"), "{{UPSTREAM}}", upstream).Replace(s)
}

// Stats counts a case's requests: those answered alike, and those where
// warden refused (announced) while the server did otherwise.
type Stats struct {
	Requests, Agree, Diverged int
}

// Importers are the translators Run calls (passed in, since the translator
// packages' tests import this one).
type Importers struct {
	Nginx    func(conf string) (*importer.Result, error)
	Htaccess func(docroot string, files ...string) (*importer.Result, error)
}

// Run runs one case against the real server and warden and returns its
// counts.
func Run(t *testing.T, c Case, imp Importers, upstream string) Stats {
	dir := WorldDir(t)
	if c.Nginx == "" && c.Htaccess == nil && c.DirsConf == "" {
		Load(t, &c, filepath.Join("testdata", c.Name))
	}
	MakeSite(t, filepath.Join(dir, "www"))
	setupFiles(t, c, dir, upstream)
	htp := filepath.Join(dir, "users.htpasswd")
	MakeHtpasswd(t, htp)
	var extraVariants []variant
	if c.AllHashKinds {
		for _, u := range HashUsers(t, htp) {
			extraVariants = append(extraVariants, variant{name: u.Kind + " credentials", user: u.User, pwd: u.Password},
				variant{name: u.Kind + " wrong password", user: u.User, pwd: u.Password + "x"})
		}
	}
	var serverBase string
	if c.Nginx != "" {
		serverBase, _ = StartNginx(t, dir, expand(c.Nginx, dir, upstream))
	} else {
		serverConf := "Options FollowSymLinks"
		if c.ServerConf != nil {
			serverConf = *c.ServerConf
		}
		serverBase = StartApache(t, dir, c.DirsConf, serverConf)
	}
	res, err := importCase(t, c, imp, dir, upstream, 0)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	var noteText strings.Builder
	for _, n := range res.Notes {
		noteText.WriteString(n.String() + "\n")
	}
	notes := noteText.String()
	for _, want := range c.Notes {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q; got:\n%s", want, notes)
		}
	}
	wardenBase := StartWarden(t, dir, res.YAML)

	clients := map[string]*http.Client{}
	for _, s := range sources {
		clients[s] = clientFrom(s)
	}
	var probes []probe
	vs := append(append([]variant{}, variants...), extraVariants...)
	for _, p := range append(append([]string{}, DefaultPaths...), c.Paths...) {
		for _, s := range sources {
			for _, v := range vs {
				probes = append(probes, probe{method: http.MethodGet, path: p, source: s, v: v})
			}
		}
	}
	for _, r := range c.Requests {
		m := r.Method
		if m == "" {
			m = http.MethodGet
		}
		for _, s := range sources {
			probes = append(probes, probe{method: m, path: r.Path, source: s, header: r.Header,
				v: variant{name: "own headers", user: r.User, pwd: r.Password}})
		}
	}
	want := statuses(t, serverBase, probes, clients)
	got := statuses(t, wardenBase, probes, clients)
	var bad []string
	st := Stats{Requests: len(probes)}
	for i, p := range probes {
		if want[i] == got[i] {
			st.Agree++
			continue
		}
		if d, ok := divergenceFor(c.Diverge, p); ok {
			safe := got[i] >= 400 && (want[i] < 400 || want[i] != got[i])
			if !safe || !strings.Contains(notes, d.Note) {
				bad = append(bad, fmt.Sprintf("%s: server %d, warden %d; the divergence (%s) must be a refusal by warden, announced with %q", p, want[i], got[i], d.Why, d.Note))
				continue
			}
			st.Diverged++
			continue
		}
		bad = append(bad, fmt.Sprintf("%s: server %d, warden %d", p, want[i], got[i]))
	}
	if len(bad) > 0 {
		if len(bad) > 40 && os.Getenv("WARDEN_DIFF_ALL") == "" {
			bad = append(bad[:40], fmt.Sprintf("... and %d more", len(bad)-40))
		}
		t.Errorf("%d of %d requests differ:\n%s\nimported config:\n%s\nnotes:\n%s", len(bad), len(probes), strings.Join(bad, "\n"), Numbered(res.YAML), notes)
	}
	t.Logf("%d requests: %d alike, %d announced divergences", st.Requests, st.Agree, st.Diverged)
	return st
}

// Summary collects the counts of cases by family and prints them when the
// test ends (go test -v shows them; docs/import.md quotes them).
type Summary struct {
	mu       sync.Mutex
	byFamily map[string]*Stats
	cases    map[string]int
}

// Add records one case's counts.
func (s *Summary) Add(family string, st Stats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byFamily == nil {
		s.byFamily, s.cases = map[string]*Stats{}, map[string]int{}
	}
	if family == "" {
		family = "other"
	}
	f := s.byFamily[family]
	if f == nil {
		f = &Stats{}
		s.byFamily[family] = f
	}
	f.Requests += st.Requests
	f.Agree += st.Agree
	f.Diverged += st.Diverged
	s.cases[family]++
}

// Print logs one line per family, sorted, and the total.
func (s *Summary) Print(t *testing.T, server string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fams []string
	for f := range s.byFamily {
		fams = append(fams, f)
	}
	sort.Strings(fams)
	var total Stats
	for _, f := range fams {
		st := s.byFamily[f]
		t.Logf("summary %s | %s | %d cases | %d requests | %d alike | %d announced divergences", server, f, s.cases[f], st.Requests, st.Agree, st.Diverged)
		total.Requests += st.Requests
		total.Agree += st.Agree
		total.Diverged += st.Diverged
	}
	t.Logf("summary %s | total | %d requests | %d alike | %d announced divergences", server, total.Requests, total.Agree, total.Diverged)
}

// UpstreamServer answers every proxied request with 200, except
// /api/teapot (418), so that proxying is seen in the statuses.
func UpstreamServer(t *testing.T) string {
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

// setupFiles adds the case's files, symlinks and .htaccess files to the
// docroot dir/www, and its <Directory> file as dir/dirs.conf.
func setupFiles(t *testing.T, c Case, dir, upstream string) {
	t.Helper()
	www := filepath.Join(dir, "www")
	write := func(p, text string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range c.Files {
		write(filepath.Join(www, f), "content of /"+f+"\n")
	}
	for link, target := range c.Symlinks {
		if err := os.Symlink(expand(target, dir, upstream), filepath.Join(www, link)); err != nil {
			t.Fatal(err)
		}
	}
	for rel, text := range c.Htaccess {
		write(filepath.Join(www, rel), expand(text, dir, upstream))
	}
	if c.DirsConf != "" {
		write(filepath.Join(dir, "dirs.conf"), expand(c.DirsConf, dir, upstream))
	}
}

// importCase runs the importer on the case's input under dir. port, when
// not 0, is the port the nginx configuration listens on (Run has already
// written it with the server's port).
func importCase(t *testing.T, c Case, imp Importers, dir, upstream string, port int) (*importer.Result, error) {
	t.Helper()
	if c.Nginx != "" {
		conf := filepath.Join(dir, "nginx.conf")
		if port != 0 {
			conf = WriteNginxConf(t, dir, port, expand(c.Nginx, dir, upstream))
		}
		return imp.Nginx(conf)
	}
	var files []string
	rels := make([]string, 0, len(c.Htaccess))
	for rel := range c.Htaccess {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		files = append(files, filepath.Join(dir, "www", rel))
	}
	if c.DirsConf != "" {
		files = append(files, filepath.Join(dir, "dirs.conf"))
	}
	return imp.Htaccess(filepath.Join(dir, "www"), files...)
}

// DefaultsFiles, DefaultsSymlinks and DefaultsPaths probe what the servers
// do by default: dotfiles and dot-folders (with .well-known), symlinks to
// files and folders, encoded slashes, a slash after a file name.
var (
	DefaultsFiles    = []string{".env", ".git/config", ".well-known/acme-challenge/token", "sub/.hidden", ".htpasswd", "backup.sql", "x.conf~"}
	DefaultsSymlinks = map[string]string{"link.txt": "a.txt", "linkdir": "sub", "outside": "{{DIR}}/users.htpasswd"}
	DefaultsPaths    = []string{
		"/.env", "/.git/config", "/.git/", "/.well-known/acme-challenge/token", "/sub/.hidden", "/.htpasswd", "/backup.sql", "/x.conf~",
		"/link.txt", "/linkdir/a.txt", "/linkdir/", "/outside",
		"/sub%2Fa.txt", "/sub%2fx.log", "/a.txt/", "/a.txt/x", "/index.html/", "/%2e%65nv",
	}
)

// DefaultsDiverge are the announced divergences DefaultsPaths meet: warden
// refuses dotfiles, %2F and symlinks out of the root, which the servers
// serve by default.
var DefaultsDiverge = []Divergence{
	{Path: "/.env", Note: "serves dotfiles", Why: "dotfile"},
	{Path: "/%2e%65nv", Note: "serves dotfiles", Why: "dotfile, encoded"},
	{Path: "/.git/config", Note: "serves dotfiles", Why: "dot-folder"},
	{Path: "/.git/", Note: "serves dotfiles", Why: "dot-folder"},
	{Path: "/.htpasswd", Note: "serves dotfiles", Why: "dotfile"},
	{Path: "/sub/.hidden", Note: "serves dotfiles", Why: "dotfile"},
	{Path: "/outside", Note: "follows symlinks that lead out of the root", Why: "symlink out of the root"},
	{Path: "/sub%2Fa.txt", Note: "decodes %2F in paths", Why: "encoded slash"},
	{Path: "/sub%2fx.log", Note: "decodes %2F in paths", Why: "encoded slash"},
	{Path: "/pub/", Method: "POST", Note: "answers methods other than GET and HEAD on a folder listing", Why: "POST on a listing"},
}

// ApacheMethodsDiverge: Apache serves static files to POST and OPTIONS,
// warden refuses them (405).
var ApacheMethodsDiverge = []Divergence{
	{Method: "POST", Note: "answers POST and OPTIONS to a static file", Why: "POST on a static file"},
	{Method: "OPTIONS", Note: "answers POST and OPTIONS to a static file", Why: "OPTIONS on a static file"},
}
