// Package redistest runs a real redis-server for tests: on a free loopback
// port, without persistence, stopped by its own process handle (never by
// name). It can be stopped and started again on the same port, and paused
// (SIGSTOP) to play a Redis that accepts connections but never answers.
//
// Without redis-server the test is skipped, or fails with CI=true, where a
// missing program means a broken test machine (scripts/test.sh installs
// Debian's redis-server).
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/proctest"
)

// Server is one redis-server process the test owns.
type Server struct {
	t    testing.TB
	bin  string
	Addr string
	port string
	cmd  *exec.Cmd
	dir  string
}

// Binary finds redis-server, or skips (fails with CI=true).
func Binary(t testing.TB) string {
	t.Helper()
	return proctest.Program(t, "redis-server")
}

// Start runs a redis-server on a free loopback port; it is stopped when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	_, s.port, _ = net.SplitHostPort(s.Addr)
	l.Close()
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server again on the same port (after Stop).
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("redistest: Restart while running")
	}
	cmd := exec.Command(s.bin, "--port", s.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--protected-mode", "yes", "--loglevel", "warning")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s.ping() {
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("redis-server on %s did not answer PING within 10s; output:\n%s", s.Addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	fmt.Fprint(c, "PING\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Stop kills the server (SIGKILL: an outage, not a shutdown) and waits for
// it. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // a paused process must run to die promptly
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// CPUTime is the server process's user+system CPU time so far, from
// /proc/PID/stat (clock ticks of 10ms on Linux), for benchmarks; 0 when
// unknown.
func (s *Server) CPUTime() time.Duration {
	if s.cmd == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// Pause stops the process with SIGSTOP: the kernel still accepts
// connections, but nothing is answered, the worst kind of outage for a
// client (every call waits for its timeout).
func (s *Server) Pause() {
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Resume continues a paused server.
func (s *Server) Resume() {
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGCONT)
	}
}
