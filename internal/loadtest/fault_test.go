package loadtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawUpstream is a TCP server that reads one request head per connection
// and then misbehaves as told.
type rawUpstream struct {
	ln    net.Listener
	mode  atomic.Value // string
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newRawUpstream(t *testing.T, mode string) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	u.mode.Store(mode)
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns = append(u.conns, c)
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				u.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		for _, c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *rawUpstream) url() string { return "http://" + u.ln.Addr().String() }

func (u *rawUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		switch u.mode.Load().(string) {
		case "hang":
			// Read nothing more, answer nothing, until the gateway gives up.
			io.Copy(io.Discard, c)
			return
		case "reset":
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST instead of FIN
			}
			return
		case "garbage":
			io.WriteString(c, "HTTX/9.9 banana\r\n\x00\x01\x02\r\n\r\n")
			return
		case "half":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it")
			return
		case "huge-header": // over the transport's 10 MiB response-header limit
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 11<<20)+"\r\n\r\n")
			return
		case "bad-length":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello")
			return
		default: // "ok"
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
		}
	}
}

// TestUpstreamFaults: an upstream that hangs, resets, answers garbage,
// breaks its framing or is down gets a 502/504 refusal in warden's format,
// with a request id; warden goes on serving other routes meanwhile, serves
// the same route again once the upstream heals, and keeps no goroutine of
// the failed exchanges.
func TestUpstreamFaults(t *testing.T) {
	ok := newRawUpstream(t, "ok")
	flaky := newRawUpstream(t, "reset")
	ups := map[string]*rawUpstream{}
	var routes strings.Builder
	for _, m := range []string{"hang", "reset", "garbage", "huge-header", "bad-length", "half"} {
		ups[m] = newRawUpstream(t, m)
		// Only the hanging upstream is meant to time out; the others get
		// time enough that a busy machine (11 MiB of header to read) still
		// fails them for what they are, not for being slow.
		timeout := "5s"
		if m == "hang" {
			timeout = "300ms"
		}
		fmt.Fprintf(&routes, "  - path: /%s/\n    upstream: %s\n    timeout: %s\n", m, ups[m].url(), timeout)
	}
	down, _ := net.Listen("tcp", "127.0.0.1:0")
	downAddr := down.Addr().String()
	down.Close()
	w := startWarden(t, "handle:\n"+routes.String()+
		"  - path: /down/\n    upstream: http://"+downAddr+"\n"+
		"  - path: /flaky/\n    upstream: "+flaky.url()+"\n"+
		"  - path: /\n    upstream: "+ok.url()+"\n")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	base := "http://" + w.addr

	baseline := settle(0, 0)
	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{"/hang/x", 504, "upstream_timeout"},
		{"/reset/x", 502, "upstream_error"},
		{"/garbage/x", 502, "upstream_error"},
		{"/huge-header/x", 502, "upstream_error"},
		{"/bad-length/x", 502, "upstream_error"},
		{"/down/x", 502, "upstream_error"},
		{"/flaky/x", 502, "upstream_error"},
	} {
		start := time.Now()
		status, p, err := get(t, client, base+c.path)
		if err != nil || p == nil || status != c.status || p.Code != c.code {
			t.Errorf("%s: %d %+v %v; want %d %s", c.path, status, p, err, c.status, c.code)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("%s took %v", c.path, el)
		}
		// Other routes keep working.
		if status, _, err := get(t, client, base+"/healthy"); status != 200 || err != nil {
			t.Errorf("after %s: healthy route %d %v", c.path, status, err)
		}
	}
	// A response cut short after its headers cannot become a refusal (the
	// status is already sent); the client must see the truncation, not a
	// complete-looking body.
	resp, err := client.Get(base + "/half/x")
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil {
			t.Errorf("/half/: a truncated upstream body arrived as complete: %d %q", resp.StatusCode, body)
		}
	}
	// The flaky upstream heals: the same route serves again.
	flaky.mode.Store("ok")
	if status, _, err := get(t, client, base+"/flaky/x"); status != 200 || err != nil {
		t.Errorf("after the upstream healed: %d %v", status, err)
	}
	// Nothing of the failed exchanges stays behind once idle upstream
	// connections are dropped.
	w.rt.Close()
	client.CloseIdleConnections()
	if n := settle(baseline+8, 5*time.Second); n > baseline+8 {
		t.Errorf("goroutines: %d before the faults, %d after\n%s", baseline, n, goroutineSummary())
	}
}
