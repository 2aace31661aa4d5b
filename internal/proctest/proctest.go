// Package proctest runs the real programs warden's tests compare against or
// sit behind (nginx, caddy, apache2, redis-server, chromium, htpasswd): it
// finds them, picks free loopback ports, starts them and stops them by
// their own handles when the test ends.
//
// A missing program skips the test on a developer's machine and fails it
// under CI=true, where scripts/test.sh has installed every program a test
// needs: a skip there would hide a missing dependency.
package proctest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Program finds the first of names on PATH or in the Debian system
// directories (root's PATH may lack /usr/sbin, where nginx and apache2
// live).
func Program(t testing.TB, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin", "/usr/local/bin"} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	what := strings.Join(names, " or ")
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI=true; scripts/test.sh installs it)", what)
	}
	t.Skipf("%s is not installed; scripts/test.sh installs it", what)
	return ""
}

// FreePort is a TCP port on 127.0.0.1 that nothing listened on a moment
// ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Process is a server a test started.
type Process struct {
	// Addr is where the server was seen accepting connections.
	Addr string
	cmd  *exec.Cmd
	out  string
	// extraLog is a log file the server writes besides its output (nginx's
	// or Apache's error log), shown with the output when something fails.
	extraLog string
}

// Options are the optional parts of Start.
type Options struct {
	// Dir holds the output file; a temporary folder when empty.
	Dir string
	// Env is added to the test's own environment.
	Env []string
	// ExtraLog is a file the server logs to besides stdout/stderr.
	ExtraLog string
	// Wait is how long the server may take to listen; 20 s when zero.
	Wait time.Duration
}

// Start runs name with args in the foreground in its own process group,
// its output in a file (a pipe would stay open in worker processes), waits
// until addr accepts connections, and stops it when the test ends:
// SIGTERM, which makes a master process stop its workers, then SIGKILL to
// the whole group should anything linger.
func Start(t testing.TB, addr string, opt Options, name string, args ...string) *Process {
	t.Helper()
	dir := opt.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	out, err := os.CreateTemp(dir, "server-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if len(opt.Env) > 0 {
		cmd.Env = append(os.Environ(), opt.Env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Addr: addr, cmd: cmd, out: out.Name(), extraLog: opt.ExtraLog}
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
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	wait := opt.Wait
	if wait == 0 {
		wait = 20 * time.Second
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("%s exited before listening on %s:\n%s", filepath.Base(name), addr, p.Logs())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not listening on %s after %v:\n%s", filepath.Base(name), addr, wait, p.Logs())
	return nil
}

// Logs is what the server has written so far.
func (p *Process) Logs() string {
	b, _ := os.ReadFile(p.out)
	s := string(b)
	if p.extraLog != "" {
		if b, err := os.ReadFile(p.extraLog); err == nil {
			s += string(b)
		}
	}
	return s
}

// Pid is the server's process id (for reading its CPU time or memory).
func (p *Process) Pid() int { return p.cmd.Process.Pid }
