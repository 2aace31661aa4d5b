package files

import (
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/warden-gateway/warden/internal/decision"
)

// writeFile creates dir/rel with content and mode, making parent directories.
func writeFile(t *testing.T, dir, rel, content string, mode fs.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; set it exactly.
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// result is what one Serve call did.
type result struct {
	rec     *httptest.ResponseRecorder
	refusal *Refusal
}

// serve calls Serve with the decoded path of target, as the gateway would.
// A refusal must leave the response untouched.
func serve(t *testing.T, s *Server, method, target string, header map[string]string) result {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	ref := s.Serve(rec, req, req.URL.Path)
	if ref != nil {
		if len(rec.Header()) != 0 || rec.Body.Len() != 0 || rec.Flushed {
			t.Fatalf("%s %s: refusal %+v but the response was written to: header %v body %q",
				method, target, ref, rec.Header(), rec.Body.String())
		}
		if !ref.Code.Known() {
			t.Fatalf("%s %s: refusal code %q is not a stable code", method, target, ref.Code)
		}
	}
	return result{rec: rec, refusal: ref}
}

func wantBody(t *testing.T, r result, status int, body string) {
	t.Helper()
	if r.refusal != nil {
		t.Fatalf("want %d %q, got refusal %+v", status, body, r.refusal)
	}
	if r.rec.Code != status || r.rec.Body.String() != body {
		t.Fatalf("want %d %q, got %d %q", status, body, r.rec.Code, r.rec.Body.String())
	}
}

func wantRefusal(t *testing.T, r result, code decision.ReasonCode) *Refusal {
	t.Helper()
	if r.refusal == nil {
		t.Fatalf("want refusal %s, got %d %q", code, r.rec.Code, r.rec.Body.String())
	}
	if r.refusal.Code != code {
		t.Fatalf("want refusal %s, got %+v", code, r.refusal)
	}
	return r.refusal
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create files owned by other users")
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope")
	if _, err := New(Config{Root: missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing root: want error naming %s, got %v", missing, err)
	}
	file := writeFile(t, dir, "file.txt", "x", 0o644)
	if _, err := New(Config{Root: file}); err == nil || !strings.Contains(err.Error(), file) ||
		!strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("file as root: want error naming %s, got %v", file, err)
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("no root and no FS: want error")
	}
	if _, err := New(Config{Root: dir, ListingPaths: []string{"/pub/"}, NoListingPaths: []string{"/pub"}}); err == nil {
		t.Fatal("same prefix on and off: want error")
	}
	if _, err := New(Config{Root: dir, ListingPaths: []string{"pub/"}}); err == nil {
		t.Fatal("relative listing prefix: want error")
	}
	if _, err := New(Config{Root: dir, Index: []string{"a/index.html"}}); err == nil {
		t.Fatal("index with a slash: want error")
	}
}

func TestIndexDocuments(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "index.html", "top", 0o644)
	writeFile(t, dir, "docs/index.html", "docs html", 0o644)
	writeFile(t, dir, "docs/index.htm", "docs htm", 0o644)
	writeFile(t, dir, "only-html/index.html", "only html", 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "dir-index/index.htm"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "dir-index/index.html", "skipped the directory", 0o644)

	def := newServer(t, Config{Root: dir})
	wantBody(t, serve(t, def, "GET", "/", nil), 200, "top")
	r := serve(t, def, "GET", "/docs/", nil)
	wantBody(t, r, 200, "docs html")
	if ct := r.rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("index Content-Type = %q", ct)
	}

	ordered := newServer(t, Config{Root: dir, Index: []string{"index.htm", "index.html"}})
	wantBody(t, serve(t, ordered, "GET", "/docs/", nil), 200, "docs htm")
	wantBody(t, serve(t, ordered, "GET", "/only-html/", nil), 200, "only html")
	wantBody(t, serve(t, ordered, "GET", "/dir-index/", nil), 200, "skipped the directory")
}

func TestDirectoryRedirect(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "docs/index.html", "docs", 0o644)
	writeFile(t, dir, "my docs/index.html", "spaced", 0o644)
	s := newServer(t, Config{Root: dir})

	for target, location := range map[string]string{
		"/docs":            "/docs/",
		"/docs?x=1&y=%2F":  "/docs/?x=1&y=%2F",
		"/my%20docs?q=a+b": "/my%20docs/?q=a+b",
	} {
		r := serve(t, s, "GET", target, nil)
		if r.refusal != nil || r.rec.Code != http.StatusMovedPermanently {
			t.Fatalf("%s: want 301, got %d %+v", target, r.rec.Code, r.refusal)
		}
		if got := r.rec.Header().Get("Location"); got != location {
			t.Fatalf("%s: Location = %q, want %q", target, got, location)
		}
	}
	// A file with a trailing slash is no directory.
	writeFile(t, dir, "file.txt", "x", 0o644)
	wantRefusal(t, serve(t, s, "GET", "/file.txt/", nil), decision.NotFound)
}

func TestListingPerPath(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"pub/a", "pub/private/deeper", "pub/private/open", "other", "publicity"} {
		writeFile(t, dir, d+"/file.txt", "x", 0o644)
	}
	s := newServer(t, Config{
		Root:           dir,
		ListingPaths:   []string{"/pub/", "/pub/private/open"},
		NoListingPaths: []string{"/pub/private/"},
	})
	for p, on := range map[string]bool{
		"/":                    false,
		"/other/":              false,
		"/publicity/":          false, // "/pub/" is a folder prefix, not a string prefix of /publicity/
		"/pub/":                true,
		"/pub/a/":              true,
		"/pub/private/":        false,
		"/pub/private/deeper/": false,
		"/pub/private/open/":   true,
	} {
		r := serve(t, s, "GET", p, nil)
		if on {
			if r.refusal != nil || r.rec.Code != 200 || !strings.Contains(r.rec.Body.String(), "Index of "+p) {
				t.Fatalf("%s: want listing, got %d %+v", p, r.rec.Code, r.refusal)
			}
			continue
		}
		ref := wantRefusal(t, r, decision.DirectoryListingDisabled)
		if ref.Reason != "directory listing is disabled for "+p {
			t.Fatalf("%s: reason %q", p, ref.Reason)
		}
	}

	// Listing on by default, off below one prefix.
	s = newServer(t, Config{Root: dir, Listing: true, NoListingPaths: []string{"/pub/private"}})
	if r := serve(t, s, "GET", "/other/", nil); r.refusal != nil {
		t.Fatalf("default on: %+v", r.refusal)
	}
	wantRefusal(t, serve(t, s, "GET", "/pub/private/deeper/", nil), decision.DirectoryListingDisabled)
}

func TestListingContent(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "b.txt", "bb", 0o644)
	writeFile(t, dir, "<script>.txt", "odd", 0o644)
	writeFile(t, dir, "a & b.txt", "amp", 0o644)
	writeFile(t, dir, "javascript:alert(1)", "js", 0o644)
	writeFile(t, dir, ".secret", "hidden", 0o644)
	writeFile(t, dir, "zdir/x", "x", 0o644)
	writeFile(t, dir, ".git/config", "x", 0o644)
	s := newServer(t, Config{Root: dir, Listing: true})

	r := serve(t, s, "GET", "/", nil)
	if r.refusal != nil || r.rec.Code != 200 {
		t.Fatalf("listing: %d %+v", r.rec.Code, r.refusal)
	}
	body := r.rec.Body.String()
	if ct := r.rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if r.rec.Header().Get("X-Content-Type-Options") != "nosniff" || r.rec.Header().Get("Content-Security-Policy") == "" {
		t.Fatalf("listing headers: %v", r.rec.Header())
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "secret") || strings.Contains(body, ".git") {
		t.Fatalf("listing leaks raw markup or dotfiles:\n%s", body)
	}
	hrefs := regexp.MustCompile(`<a href="([^"]*)">([^<]*)</a>`).FindAllStringSubmatch(body, -1)
	var got []string
	for _, h := range hrefs {
		got = append(got, h[1]+" "+h[2])
	}
	want := []string{
		"./zdir/ zdir/", // directories first
		"./%3Cscript%3E.txt &lt;script&gt;.txt",
		"./a%20&amp;%20b.txt a &amp; b.txt",
		"./b.txt b.txt",
		"./javascript:alert%281%29 javascript:alert(1)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("listing links:\n%s\nwant:\n%s\nbody:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), body)
	}
	if strings.Contains(body, `href="../"`) {
		t.Fatal("the top directory has no parent link")
	}

	// The link, resolved by a client and decoded, reaches the file.
	wantBody(t, serve(t, s, "GET", "/%3Cscript%3E.txt", nil), 200, "odd")
	sub := serve(t, s, "GET", "/zdir/", nil)
	if !strings.Contains(sub.rec.Body.String(), `href="../"`) {
		t.Fatal("a subdirectory listing links to its parent")
	}

	head := serve(t, s, "HEAD", "/", nil)
	if head.refusal != nil || head.rec.Body.Len() != 0 || head.rec.Header().Get("Content-Length") == "" {
		t.Fatalf("HEAD listing: %+v body %q header %v", head.refusal, head.rec.Body.String(), head.rec.Header())
	}
}

func TestDotfiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, ".env", "SECRET=1", 0o644)
	writeFile(t, dir, "app/.git/config", "x", 0o644)
	writeFile(t, dir, ".well-known/security.txt", "Contact: x", 0o644)
	writeFile(t, dir, ".well-known/.hidden", "x", 0o644)
	writeFile(t, dir, "sub/.well-known/x", "x", 0o644)
	s := newServer(t, Config{Root: dir})

	for _, p := range []string{"/.env", "/app/.git/config", "/.well-known/.hidden", "/sub/.well-known/x", "/.env/"} {
		ref := wantRefusal(t, serve(t, s, "GET", p, nil), decision.PathForbidden)
		if ref.Reason != "dotfiles are not served" {
			t.Fatalf("%s: reason %q", p, ref.Reason)
		}
	}
	// Refused before the disk is looked at: a missing dotfile is not 404.
	wantRefusal(t, serve(t, s, "GET", "/.missing", nil), decision.PathForbidden)
	wantBody(t, serve(t, s, "GET", "/.well-known/security.txt", nil), 200, "Contact: x")

	open := newServer(t, Config{Root: dir, ServeDotfiles: true})
	wantBody(t, serve(t, open, "GET", "/.env", nil), 200, "SECRET=1")
	wantBody(t, serve(t, open, "GET", "/.well-known/.hidden", nil), 200, "x")
}

func TestBadPaths(t *testing.T) {
	s := newServer(t, Config{Root: t.TempDir()})
	for _, p := range []string{"", "relative", "/a/../b", "/a/./b", "/a//b", "/a\x00b", "/.."} {
		req := httptest.NewRequest("GET", "/", nil)
		rec := httptest.NewRecorder()
		ref := s.Serve(rec, req, p)
		if ref == nil || ref.Code != decision.BadRequest {
			t.Fatalf("%q: want bad_request, got %+v", p, ref)
		}
		if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
			t.Fatalf("%q: response written", p)
		}
	}
}

func TestMissing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "file.txt", "x", 0o644)
	s := newServer(t, Config{Root: dir})
	for _, p := range []string{"/nope", "/nope/", "/dir/nope.txt", "/file.txt/below"} {
		ref := wantRefusal(t, serve(t, s, "GET", p, nil), decision.NotFound)
		if ref.Reason != "not found" {
			t.Fatalf("%s: reason %q", p, ref.Reason)
		}
	}
}

func TestSymlinks(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	writeFile(t, outside, "secret.txt", "outside secret", 0o644)
	writeFile(t, dir, "real/inside.txt", "inside", 0o644)
	links := map[string]string{
		"passwd":        "/etc/passwd",
		"abs-secret":    filepath.Join(outside, "secret.txt"),
		"outdir":        outside,
		"rel-escape":    "../" + filepath.Base(outside) + "/secret.txt",
		"inside-link":   "real/inside.txt",
		"real/up-link":  "../real/inside.txt",
		"dangling-link": "nowhere.txt",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	s := newServer(t, Config{Root: dir, Listing: true})

	for _, p := range []string{"/passwd", "/abs-secret", "/outdir/secret.txt", "/outdir/", "/outdir", "/rel-escape"} {
		ref := wantRefusal(t, serve(t, s, "GET", p, nil), decision.NotFound)
		if !strings.Contains(ref.Detail, "outside the root") {
			t.Fatalf("%s: detail should name the escape, got %q", p, ref.Detail)
		}
	}
	wantRefusal(t, serve(t, s, "GET", "/dangling-link", nil), decision.NotFound)
	wantBody(t, serve(t, s, "GET", "/inside-link", nil), 200, "inside")
	wantBody(t, serve(t, s, "GET", "/real/up-link", nil), 200, "inside")

	body := serve(t, s, "GET", "/", nil).rec.Body.String()
	if !strings.Contains(body, "inside-link") || strings.Contains(body, "passwd") || strings.Contains(body, "outdir") {
		t.Fatalf("listing should show inner links only:\n%s", body)
	}
}

func TestFileNotReadable(t *testing.T) {
	dir := t.TempDir()
	locked := writeFile(t, dir, "locked.txt", "no", 0o000)
	writeFile(t, dir, "owner-only.txt", "yes", 0o400)
	// The owner class applies to the owner even when "other" may read:
	// POSIX picks one class, it does not add them up.
	writeFile(t, dir, "others-only.txt", "no", 0o044)
	writeFile(t, dir, "noexec/inside.txt", "no", 0o644)
	writeFile(t, dir, "noread/inside.txt", "no", 0o644)
	writeFile(t, dir, "noread/index.html", "no", 0o644)
	writeFile(t, dir, "locked-index/index.html", "no", 0o000)
	for d, mode := range map[string]fs.FileMode{"noexec": 0o644, "noread": 0o311} {
		p := filepath.Join(dir, d)
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(p, 0o755) })
	}
	s := newServer(t, Config{Root: dir, Listing: true})

	ref := wantRefusal(t, serve(t, s, "GET", "/locked.txt", nil), decision.FileNotReadable)
	if ref.Reason != "the file is not readable by the server" {
		t.Fatalf("reason %q", ref.Reason)
	}
	for _, want := range []string{locked, "----------", "chmod "} {
		if !strings.Contains(ref.Detail, want) {
			t.Fatalf("detail %q lacks %q", ref.Detail, want)
		}
	}
	if os.Geteuid() == 0 && !strings.Contains(ref.Detail, "chmod u+r "+locked) {
		t.Fatalf("as the owner the fix is u+r: %q", ref.Detail)
	}
	wantBody(t, serve(t, s, "GET", "/owner-only.txt", nil), 200, "yes")
	wantRefusal(t, serve(t, s, "GET", "/others-only.txt", nil), decision.FileNotReadable)

	// A directory without x hides what is inside, even a readable file.
	ref = wantRefusal(t, serve(t, s, "GET", "/noexec/inside.txt", nil), decision.FileNotReadable)
	if ref.Reason != "the directory is not readable by the server" || !strings.Contains(ref.Detail, "+x") {
		t.Fatalf("noexec: %+v", ref)
	}
	wantRefusal(t, serve(t, s, "GET", "/noexec/", nil), decision.FileNotReadable)
	// os.Root opens every directory on the way, which needs r as well as x
	// (unlike a plain path lookup), so a --x directory hides its files too.
	ref = wantRefusal(t, serve(t, s, "GET", "/noread/inside.txt", nil), decision.FileNotReadable)
	if !strings.Contains(ref.Detail, "lack read (r) permission") || !strings.Contains(ref.Detail, "+r ") {
		t.Fatalf("noread: %+v", ref)
	}
	wantRefusal(t, serve(t, s, "GET", "/noread/", nil), decision.FileNotReadable)
	wantRefusal(t, serve(t, s, "GET", "/locked-index/", nil), decision.FileNotReadable)
}

func TestPermissionClasses(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	const stranger = 54321 // a uid and gid this process does not have
	for name, mode := range map[string]fs.FileMode{"other-readable.txt": 0o604, "group-readable.txt": 0o640} {
		p := writeFile(t, dir, name, name, mode)
		if err := os.Chown(p, stranger, stranger); err != nil {
			t.Fatal(err)
		}
	}
	s := newServer(t, Config{Root: dir})
	wantBody(t, serve(t, s, "GET", "/other-readable.txt", nil), 200, "other-readable.txt")
	// Root could read it, but the server judges as an unprivileged uid 0.
	ref := wantRefusal(t, serve(t, s, "GET", "/group-readable.txt", nil), decision.FileNotReadable)
	if !strings.Contains(ref.Detail, "other bits") || !strings.Contains(ref.Detail, "chmod o+r ") {
		t.Fatalf("detail %q", ref.Detail)
	}
}

func TestFIFOIsNotServed(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	s := newServer(t, Config{Root: dir})
	done := make(chan result, 1)
	go func() { done <- serve(t, s, "GET", "/pipe", nil) }()
	select {
	case r := <-done:
		wantRefusal(t, r, decision.NotFound)
	case <-time.After(5 * time.Second):
		t.Fatal("serving a FIFO blocked")
	}
}

func TestConditionalAndRange(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "data.txt", "0123456789abcdef", 0o644)
	mtime := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Config{Root: dir})
	// A real server on loopback, so the bytes go through net/http.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ref := s.Serve(w, r, r.URL.Path); ref != nil {
			http.Error(w, string(ref.Code), ref.Code.Status())
		}
	}))
	defer srv.Close()

	get := func(header map[string]string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest("GET", srv.URL+"/data.txt", nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	resp, body := get(nil)
	wantETag := fmt.Sprintf(`"%x-%x"`, mtime.Unix(), 16)
	if resp.StatusCode != 200 || body != "0123456789abcdef" || resp.Header.Get("ETag") != wantETag {
		t.Fatalf("GET: %d %q ETag %q want %q", resp.StatusCode, body, resp.Header.Get("ETag"), wantETag)
	}
	if resp.Header.Get("Last-Modified") != mtime.Format(http.TimeFormat) {
		t.Fatalf("Last-Modified %q", resp.Header.Get("Last-Modified"))
	}
	if resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers: %v", resp.Header)
	}

	resp, body = get(map[string]string{"Range": "bytes=4-7"})
	if resp.StatusCode != http.StatusPartialContent || body != "4567" || resp.Header.Get("Content-Range") != "bytes 4-7/16" {
		t.Fatalf("Range: %d %q %q", resp.StatusCode, body, resp.Header.Get("Content-Range"))
	}
	resp, body = get(map[string]string{"Range": "bytes=-3"})
	if resp.StatusCode != http.StatusPartialContent || body != "def" {
		t.Fatalf("suffix Range: %d %q", resp.StatusCode, body)
	}
	resp, _ = get(map[string]string{"If-None-Match": wantETag})
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	resp, _ = get(map[string]string{"If-None-Match": `"other"`})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("If-None-Match other: %d", resp.StatusCode)
	}
	resp, _ = get(map[string]string{"If-Modified-Since": mtime.Add(time.Hour).Format(http.TimeFormat)})
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-Modified-Since: %d", resp.StatusCode)
	}
	resp, _ = get(map[string]string{"If-Modified-Since": mtime.Add(-time.Hour).Format(http.TimeFormat)})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("If-Modified-Since earlier: %d", resp.StatusCode)
	}
}

func TestMethodsAndHead(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.txt", "hello", 0o644)
	writeFile(t, dir, "docs/index.html", "docs", 0o644)
	s := newServer(t, Config{Root: dir})

	for _, p := range []string{"/a.txt", "/docs/", "/docs"} {
		r := serve(t, s, "POST", p, nil)
		if r.refusal != nil || r.rec.Code != http.StatusMethodNotAllowed || r.rec.Header().Get("Allow") != "GET, HEAD" {
			t.Fatalf("POST %s: %d %v %+v", p, r.rec.Code, r.rec.Header(), r.refusal)
		}
	}
	// Path refusals come before the method.
	wantRefusal(t, serve(t, s, "DELETE", "/nope", nil), decision.NotFound)

	r := serve(t, s, "HEAD", "/a.txt", nil)
	if r.refusal != nil || r.rec.Code != 200 || r.rec.Body.Len() != 0 || r.rec.Header().Get("Content-Length") != "5" {
		t.Fatalf("HEAD: %d %q %v", r.rec.Code, r.rec.Body.String(), r.rec.Header())
	}
}

func TestContentType(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "style.css", "body{}", 0o644)
	writeFile(t, dir, "page.html", "<p>", 0o644)
	writeFile(t, dir, "upload", "<!doctype html><script>alert(1)</script>", 0o644)
	s := newServer(t, Config{Root: dir})
	for p, want := range map[string]string{
		"/style.css": "text/css; charset=utf-8",
		"/page.html": "text/html; charset=utf-8",
		"/upload":    "application/octet-stream", // not sniffed as HTML
	} {
		r := serve(t, s, "GET", p, nil)
		if got := r.rec.Header().Get("Content-Type"); got != want {
			t.Fatalf("%s: Content-Type %q, want %q", p, got, want)
		}
		if r.rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: no nosniff", p)
		}
	}
}

func TestFSMode(t *testing.T) {
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	fsys := fstest.MapFS{
		"index.html":          {Data: []byte("demo home"), ModTime: mtime},
		"docs/guide.txt":      {Data: []byte("0123456789"), ModTime: mtime},
		"locked.txt":          {Data: []byte("modes do not matter here"), Mode: 0o000, ModTime: mtime},
		".env":                {Data: []byte("x")},
		".well-known/x.txt":   {Data: []byte("wk")},
		"pub/<b>.txt":         {Data: []byte("b")},
		"pub/.hidden":         {Data: []byte("h")},
		"private/readme.txt":  {Data: []byte("r")},
		"docs/sub/index.html": {Data: []byte("sub")},
	}
	s := newServer(t, Config{FS: fsys, ListingPaths: []string{"/pub/"}})

	wantBody(t, serve(t, s, "GET", "/", nil), 200, "demo home")
	wantBody(t, serve(t, s, "GET", "/docs/sub/", nil), 200, "sub")
	wantBody(t, serve(t, s, "GET", "/locked.txt", nil), 200, "modes do not matter here")
	wantBody(t, serve(t, s, "GET", "/.well-known/x.txt", nil), 200, "wk")
	wantRefusal(t, serve(t, s, "GET", "/.env", nil), decision.PathForbidden)
	wantRefusal(t, serve(t, s, "GET", "/missing.txt", nil), decision.NotFound)
	wantRefusal(t, serve(t, s, "GET", "/private/", nil), decision.DirectoryListingDisabled)
	if r := serve(t, s, "GET", "/docs", nil); r.rec.Code != 301 || r.rec.Header().Get("Location") != "/docs/" {
		t.Fatalf("redirect: %d %v", r.rec.Code, r.rec.Header())
	}

	r := serve(t, s, "GET", "/docs/guide.txt", map[string]string{"Range": "bytes=2-4"})
	wantBody(t, r, http.StatusPartialContent, "234")
	etag := fmt.Sprintf(`"%x-%x"`, mtime.Unix(), 10)
	r = serve(t, s, "GET", "/docs/guide.txt", map[string]string{"If-None-Match": etag})
	if r.rec.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match in FS mode: %d", r.rec.Code)
	}

	listing := serve(t, s, "GET", "/pub/", nil).rec.Body.String()
	if !strings.Contains(listing, `href="./%3Cb%3E.txt">&lt;b&gt;.txt</a>`) || strings.Contains(listing, "hidden") {
		t.Fatalf("FS listing:\n%s", listing)
	}
	if findings, err := s.Unreadable(); err != nil || len(findings) != 0 {
		t.Fatalf("Unreadable in FS mode: %v %v", findings, err)
	}
}

func TestUnreadable(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	writeFile(t, dir, "ok.txt", "fine", 0o644)
	locked := writeFile(t, dir, "docs/locked.txt", "no", 0o000)
	writeFile(t, dir, "docs/fine.txt", "yes", 0o644)
	writeFile(t, dir, ".private/locked", "dotfiles are not served anyway", 0o000)
	writeFile(t, dir, "noexec/hidden.txt", "not reported on its own", 0o000)
	noexec := filepath.Join(dir, "noexec")
	if err := os.Chmod(noexec, 0o300); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(noexec, 0o755) })
	escape := filepath.Join(dir, "escape")
	if err := os.Symlink("/etc/passwd", escape); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "outdir")); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Config{Root: dir})

	findings, err := s.Unreadable()
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]Finding{}
	for _, f := range findings {
		byPath[f.Path] = f
	}
	if len(findings) != 4 {
		t.Fatalf("want 4 findings (locked file, noexec dir, two escaping links), got %d: %+v", len(findings), findings)
	}
	f, ok := byPath[locked]
	if !ok || f.URLPath != "/docs/locked.txt" || f.Mode.Perm() != 0 || !strings.HasPrefix(f.Fix, "chmod ") ||
		!strings.HasSuffix(f.Fix, "+r "+locked) {
		t.Fatalf("locked file finding: %+v", f)
	}
	f, ok = byPath[noexec]
	if !ok || !strings.Contains(f.Problem, "read (r)") || !strings.HasSuffix(f.Fix, "+r "+noexec) {
		t.Fatalf("noexec dir finding: %+v", f)
	}
	f, ok = byPath[escape]
	if !ok || !strings.Contains(f.Problem, "/etc/passwd") || !strings.Contains(f.Problem, "outside the root") {
		t.Fatalf("escaping link finding: %+v", f)
	}
	if _, ok := byPath[filepath.Join(dir, "outdir")]; !ok {
		t.Fatalf("escaping dir link not reported: %+v", findings)
	}

	// The server refuses exactly what the doctor reported.
	wantRefusal(t, serve(t, s, "GET", "/docs/locked.txt", nil), decision.FileNotReadable)
	wantBody(t, serve(t, s, "GET", "/docs/fine.txt", nil), 200, "yes")
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/www/a.txt": "/srv/www/a.txt",
		"/srv/my file":   "'/srv/my file'",
		"/srv/it's":      `'/srv/it'\''s'`,
		"/srv/$(rm -rf)": "'/srv/$(rm -rf)'",
	} {
		if got := shellQuote(in); got != want {
			t.Fatalf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSymlinkToDotfile: a link is another name for its target, so a link
// (or a linked directory on the way) that resolves to a dotfile is refused
// like the dotfile, and answered as 404; links to ordinary files still
// serve, and serve_dotfiles serves them all.
func TestSymlinkToDotfile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, ".env", "SECRET=1", 0o644)
	writeFile(t, dir, ".git/config", "[core]", 0o644)
	writeFile(t, dir, "app/.secrets/key.pem", "KEY", 0o644)
	writeFile(t, dir, "app/public/ok.txt", "ok", 0o644)
	writeFile(t, dir, "site/.index.html", "hidden index", 0o644)
	writeFile(t, dir, ".well-known/security.txt", "Contact: x", 0o644)
	links := map[string]string{
		"innocent.txt":      ".env",
		"assets":            ".git",
		"app/public/key":    "../.secrets/key.pem",
		"app/public/deeper": "../../app/.secrets",
		"chain1":            "chain2",
		"chain2":            ".env",
		"via-dir":           "app/public/deeper",
		"site/index.html":   ".index.html",
		"ok-link.txt":       "app/public/ok.txt",
		"security-link.txt": ".well-known/security.txt",
		"app/public/up-ok":  "../public/ok.txt",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	s := newServer(t, Config{Root: dir, Listing: true})
	for _, p := range []string{"/innocent.txt", "/assets/config", "/assets/", "/assets", "/app/public/key",
		"/app/public/deeper/key.pem", "/chain1", "/via-dir/key.pem", "/site/"} {
		ref := wantRefusal(t, serve(t, s, "GET", p, nil), decision.NotFound)
		if !strings.Contains(ref.Detail, "dotfile") {
			t.Errorf("%s: detail %q does not say why", p, ref.Detail)
		}
	}
	wantBody(t, serve(t, s, "GET", "/ok-link.txt", nil), 200, "ok")
	wantBody(t, serve(t, s, "GET", "/app/public/up-ok", nil), 200, "ok")
	// .well-known at the top is served, so a link to it is too.
	wantBody(t, serve(t, s, "GET", "/security-link.txt", nil), 200, "Contact: x")
	// The listing does not offer the links either.
	body := serve(t, s, "GET", "/app/public/", nil).rec.Body.String()
	if !strings.Contains(body, "up-ok") || strings.Contains(body, "key") || strings.Contains(body, "deeper") {
		t.Errorf("listing shows links to dotfiles:\n%s", body)
	}

	open := newServer(t, Config{Root: dir, ServeDotfiles: true})
	wantBody(t, serve(t, open, "GET", "/innocent.txt", nil), 200, "SECRET=1")
	wantBody(t, serve(t, open, "GET", "/via-dir/key.pem", nil), 200, "KEY")

	// warden doctor names each link to a dotfile, once (not what lies
	// behind a linked directory).
	findings, err := s.Unreadable()
	if err != nil {
		t.Fatal(err)
	}
	var linked []string
	for _, f := range findings {
		if strings.Contains(f.Problem, "dotfile") {
			linked = append(linked, f.URLPath)
		}
	}
	for _, want := range []string{"/innocent.txt", "/assets", "/chain1", "/app/public/key", "/via-dir", "/site/index.html"} {
		if !slices.Contains(linked, want) {
			t.Errorf("doctor does not name %s: %v", want, linked)
		}
	}

	// The protections against leaving the root still hold (TestSymlinks).
	outside := t.TempDir()
	writeFile(t, outside, ".env", "OUTSIDE", 0o644)
	if err := os.Symlink("../"+filepath.Base(outside)+"/.env", filepath.Join(dir, "out-env")); err != nil {
		t.Fatal(err)
	}
	ref := wantRefusal(t, serve(t, s, "GET", "/out-env", nil), decision.NotFound)
	if !strings.Contains(ref.Detail, "outside the root") {
		t.Errorf("out-env: %q", ref.Detail)
	}
}
