package referer

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/proctest"
)

// These tests run the real nginx (Debian's nginx or nginx-light package)
// with the same valid_referers lists and compare its answer for every
// Referer with ours.

// nginxQuote quotes an argument for nginx.conf. nginx rewrites \" \' \\ \t
// \r \n inside tokens; the tests avoid them rather than escape them.
func nginxQuote(t *testing.T, s string) string {
	t.Helper()
	for _, bad := range []string{`"`, `\\`, `\t`, `\r`, `\n`, `\'`} {
		if strings.Contains(s, bad) {
			t.Fatalf("test value %q contains %q, which nginx.conf would rewrite", s, bad)
		}
	}
	return `"` + s + `"`
}

type location struct {
	entries []string
}

func writeNginxConf(t *testing.T, dir string, port int, serverNames []string, locs []location) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "daemon off;\nmaster_process off;\nworker_processes 1;\n")
	fmt.Fprintf(&b, "error_log %s/error.log;\npid %s/nginx.pid;\n", dir, dir)
	fmt.Fprintf(&b, "events { worker_connections 64; }\nhttp {\n  access_log off;\n")
	for _, tmp := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "  %s_temp_path %s/%s;\n", tmp, dir, tmp)
	}
	fmt.Fprintf(&b, "  server {\n    listen 127.0.0.1:%d;\n", port)
	if len(serverNames) > 0 {
		b.WriteString("    server_name")
		for _, n := range serverNames {
			b.WriteString(" " + nginxQuote(t, n))
		}
		b.WriteString(";\n")
	}
	for i, l := range locs {
		fmt.Fprintf(&b, "    location = /t%d {\n      valid_referers", i)
		for _, e := range l.entries {
			b.WriteString(" " + nginxQuote(t, e))
		}
		b.WriteString(";\n      if ($invalid_referer) { return 403; }\n      return 200;\n    }\n")
	}
	b.WriteString("  }\n}\n")
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startNginx runs nginx in the foreground and stops it when the test ends.
func startNginx(t *testing.T, serverNames []string, locs []location) int {
	t.Helper()
	bin := proctest.Program(t, "nginx")
	dir := t.TempDir()
	port := proctest.FreePort(t)
	conf := writeNginxConf(t, dir, port, serverNames, locs)
	proctest.Start(t, fmt.Sprintf("127.0.0.1:%d", port), proctest.Options{Dir: dir, ExtraLog: filepath.Join(dir, "error.log")}, bin, "-p", dir, "-c", conf)
	return port
}

// nginxStatus sends one raw request (so any bytes reach nginx as written).
func nginxStatus(t *testing.T, port int, path, referer string, present bool) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n"
	if present {
		req += "Referer: " + referer + "\r\n"
	}
	req += "Connection: close\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading nginx's answer for Referer %q: %v", referer, err)
	}
	var proto string
	var status int
	if _, err := fmt.Sscanf(line, "%s %d", &proto, &status); err != nil {
		t.Fatalf("status line %q: %v", line, err)
	}
	return status
}

// nginxAccepts reports whether `nginx -t` accepts a valid_referers line.
func nginxAccepts(t *testing.T, serverNames, entries []string) (bool, string) {
	t.Helper()
	bin := proctest.Program(t, "nginx")
	dir := t.TempDir()
	conf := writeNginxConf(t, dir, proctest.FreePort(t), serverNames, []location{{entries}})
	out, err := exec.Command(bin, "-t", "-p", dir, "-c", conf).CombinedOutput()
	return err == nil, string(out)
}

var diffServerNames = []string{"example.net", "www.example.net", `~^img\d+\.example\.io$`, `~^IMG-(\w+)\.Example\.IO`}

var diffLocations = []location{
	// The example of the nginx documentation.
	{[]string{"none", "blocked", "server_names", "*.example.com", "example.*", "www.example.org/galleries/", `~\.google\.`}},
	{[]string{"example.com/pics/", ".example.net", "www.example.*", `~^cdn\.[a-z]+\.com/`}},
	{[]string{"blocked", "example.com"}},
	// Regexes only: https Referers carry a NUL, `.` is one byte.
	{[]string{`~^static\.example\.com/$`, `~^a.b\.io`, `~\.Google\.`}},
	{[]string{"server_names"}},
	// Wildcard specificity and path prefixes.
	{[]string{"*.example.com", "*.foo.example.com/x/", ".bar.example.com/y/"}},
	{[]string{"www.example.*/p/", "www.example.co.*", "none"}},
	{[]string{"None", "example.com:8080", "Blocked.example"}},
	{[]string{"127.0.0.1", "[::1]", "localhost/a"}},
	{[]string{"none", "example.com", "~evil"}},
	{[]string{"server_names", "example.org", "~^(www\\.)?example\\.org/ok"}},
	{[]string{".example.com/only/", "*.www.example.com"}},
	{[]string{"example.*", "*.example.com", "example.com/x"}},
	{[]string{"~^c{256}/$", "~^c{257}"}},
}

var diffReferers = func() []struct {
	value   string
	present bool
} {
	values := []string{
		"", "blocked", "-", "http://", "http://a.b", "http://a.bc", "https://a.b", "http://i.ru", "HTTP://EXAMPLE.COM/", "hTTpS://example.com/pics/1",
		"https://www.example.com/x", "http://example.com", "http://example.com/", "http://example.com:8080/pics/a.jpg",
		"http://example.com/pics/", "http://example.com/pics", "http://example.com/Pics/x", "http://example.com/pics/x?y",
		"https://sub.example.com", "http://a.b.sub.example.com/", "http://example.org", "http://example.org/ok", "http://www.example.org/ok/1",
		"http://example.org.evil.com/", "http://www.example.org/galleries/x", "http://www.example.org/galleries", "http://www.example.org/other",
		"http://evil.com/?www.google.com", "https://www.google.de/search", "http://www.Google.com/", "http://www.example.co.uk/",
		"http://img12.example.io", "http://img12.example.io/", "http://IMG-abc.example.io/x", "http://img-abc.example.io/x",
		"https://static.example.com/", "http://static.example.com/", "http://axb.io/", "http://a\xc3\xa9b.io/", "https://axb.io",
		"http://foo.example.com/x/1", "http://foo.example.com/y", "http://q.foo.example.com/y", "http://bar.example.com/y/",
		"http://bar.example.com/z", "http://x.bar.example.com/y/1", "http://bar.example.com", "http://www.example.co.uk/p/",
		"http://www.example.co.jp/p/", "http://www.example.co/", "http://www.example/", "http://www.example.co.x/",
		"http://none/", "http://None/", "http://blocked.example/", "http://example.com:8080/", "http://127.0.0.1/", "http://127.0.0.1:8080/x",
		"http://[::1]/", "http://localhost/a/b", "http://localhost/b", "http://localhost",
		"http://" + strings.Repeat("a", 250) + ".net/", "http://" + strings.Repeat("a", 251) + ".com/", "http://" + strings.Repeat("b", 300) + "/",
		"ftp://example.com/", "//example.com/", "example.com", "https://example.com./", "http://.example.com/",
		"http://user@example.com/", "http://example.com@evil.com/", "http://evil.example.com.evil/", "https://cdn.abc.com/", "https://cdn.abc.com",
		"http://www.example.net/", "http://example.net", "http://sub.example.net/", "http://EXAMPLE.NET/",
		"http://x.www.example.com/", "http://www.example.com/only/1", "http://example.com/only/", "http://example.com:1/only/x",
		"http://evil.com/", "http://notexample.com/", "http://example.com.", "https://example.co", "http://ex ample.com/",
		"http://example.com\\x/", "http://EXAMPLE.com:443/pics/x", "http://example.com:/pics/", "http://example.com:x/pics/",
		"http:///x", "http://:80/x", "https:///", "http://" + strings.Repeat("c", 256) + "/", "http://" + strings.Repeat("c", 257) + "/",
		"http://" + strings.Repeat("d", 252) + ".com", "http://" + strings.Repeat("d", 253) + ".com/",
		"http://IMG7.EXAMPLE.IO/", "http://img7.example.io:8080/",
	}
	out := []struct {
		value   string
		present bool
	}{{"", false}}
	for _, v := range values {
		out = append(out, struct {
			value   string
			present bool
		}{v, true})
	}
	return out
}()

func TestAgreesWithNginx(t *testing.T) {
	proctest.Program(t, "nginx")
	port := startNginx(t, diffServerNames, diffLocations)
	checked := 0
	for i, loc := range diffLocations {
		v, err := Compile(loc.entries, diffServerNames)
		if err != nil {
			t.Fatalf("location %d %q: %v", i, loc.entries, err)
		}
		for _, r := range diffReferers {
			status := nginxStatus(t, port, fmt.Sprintf("/t%d", i), r.value, r.present)
			if status != 200 && status != 403 {
				t.Fatalf("nginx answered %d for Referer %q", status, r.value)
			}
			want := status == 200
			if got := v.Valid(r.value, r.present); got != want {
				t.Errorf("valid_referers %q, Referer %q (present %v): Valid = %v, nginx says %v", loc.entries, r.value, r.present, got, want)
			}
			checked++
		}
	}
	t.Logf("%d location × Referer pairs agree with nginx", checked)
}

func TestConfigErrorsAgreeWithNginx(t *testing.T) {
	proctest.Program(t, "nginx")
	cases := [][]string{
		{"none"},
		{"blocked"},
		{"none", "blocked"},
		{"none", "~foo"},
		{"none", "server_names"}, // server names below are regexes only
		{"example.com", "example.com"},
		{"example.com", "EXAMPLE.com"},
		{"example.com", ".example.com"},
		{".example.com", "example.com"},
		{"*.example.com", ".example.com"},
		{"*.example.com", "*.Example.com"},
		{"www.example.*", "www.example.*/x"},
		{"example.com/a", "example.com/b"},
		{"www.*.com"},
		{"*example.com"},
		{"example*"},
		{"a..b"},
		{"*.*"},
		{"*"},
		{"*."},
		{".*"},
		{".example.*"},
		{"~"},
		{"~("},
		{"example.com", "*.example.com", "example.*", "none", "blocked"},
		{"none", "."},
		{"a.*", "*.a", ".b"},
		{"~a", "~b"},
		{"server_names", "example.io"},
	}
	serverNames := []string{`~^img\d+\.example\.io$`}
	for _, entries := range cases {
		accepted, out := nginxAccepts(t, serverNames, entries)
		_, err := Compile(entries, serverNames)
		if accepted != (err == nil) {
			t.Errorf("valid_referers %q: nginx accepts=%v (%s), Compile error = %v", entries, accepted, strings.TrimSpace(out), err)
		}
	}
	// server_names that conflict with an entry.
	accepted, _ := nginxAccepts(t, []string{"example.net"}, []string{"server_names", "example.net"})
	if _, err := Compile([]string{"server_names", "example.net"}, []string{"example.net"}); accepted != (err == nil) {
		t.Errorf("server_names conflict: nginx accepts=%v, Compile error = %v", accepted, err)
	}
}

// TestServerNamesDefaultAgreesWithNginx: a server block without server_name
// has the name "" in nginx, so `server_names` then admits an empty host.
func TestServerNamesDefaultAgreesWithNginx(t *testing.T) {
	proctest.Program(t, "nginx")
	locs := []location{{[]string{"server_names"}}, {[]string{"none", "server_names"}}, {[]string{"server_names", "example.com"}}}
	port := startNginx(t, nil, locs)
	for i, loc := range locs {
		v, err := Compile(loc.entries, []string{""})
		if err != nil {
			t.Fatalf("%q: %v", loc.entries, err)
		}
		for _, r := range diffReferers {
			want := nginxStatus(t, port, fmt.Sprintf("/t%d", i), r.value, r.present) == 200
			if got := v.Valid(r.value, r.present); got != want {
				t.Errorf("valid_referers %q without server_name, Referer %q (present %v): Valid = %v, nginx says %v", loc.entries, r.value, r.present, got, want)
			}
		}
	}
}
