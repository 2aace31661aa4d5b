package bypass

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/gateway/gatewaytest"
	"github.com/warden-gateway/warden/internal/identity"
)

const (
	adminKey = "corpus-admin-key-0123456789"
	userKey  = "corpus-user-key-0123456789"
)

var keyHashAdmin = identity.HashKey(adminKey)

// policy protects /admin/ by role, /internal/ by client address, the files
// /wp-login.php and /backup/index.html by exact path, .bak, .sql and .cgi
// files by extension, and every write
// method; 127.0.0.9 is the one trusted proxy.
const policy = `
trusted_proxies: [127.0.0.9]
identity:
  api_keys:
    header: X-API-Key
    bearer: true
    keys:
      - { id: admin, sha256: "%s", roles: [admin] }
      - { id: user, sha256: "%s", roles: [user] }
rules:
  - name: internal-by-address
    when: { path: { prefix: /internal/ }, not_ip: [10.0.0.0/8] }
    action: deny
  - name: admin-by-role
    when: { path: { prefix: /admin/ } }
    require: { roles_any: [admin] }
    action: allow
  - name: no-wp-login
    when: { path: { exact: /wp-login.php } }
    action: conceal
  - name: no-backup-index
    when: { path: { exact: /backup/index.html } }
    action: deny
  - name: no-dumps-or-cgi
    when: { extensions: [bak, sql, cgi] }
    action: deny
  - name: no-writes
    when: { methods: [DELETE, PUT, PATCH] }
    action: deny
handle:
  - path: /
    upstream: %s
`

// startWarden runs warden as `warden serve` does, in front of up.
func startWarden(t *testing.T, up *lenient) string {
	t.Helper()
	cfg, err := config.Parse("bypass.yaml", []byte(fmt.Sprintf(policy, keyHashAdmin, identity.HashKey(userKey), up.srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	return gatewaytest.Start(t, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), nil).Addr
}

// outcome is what the client saw.
type outcome struct {
	status int    // 0: no parsable answer (connection closed)
	code   string // X-Warden refusal code from the JSON body, if any
}

// send writes a shape's bytes from its source address and reads the first
// answer.
func send(t *testing.T, addr string, s *shape, id string) outcome {
	t.Helper()
	from := s.from
	if from == "" {
		from = "127.0.0.1"
	}
	d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("%s: dial: %v", s.name, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	keys := map[string]string{"admin": adminKey, "user": userKey}
	if _, err := io.WriteString(conn, s.rawRequest(id, keys)); err != nil {
		return outcome{}
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return outcome{}
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	o := outcome{status: resp.StatusCode}
	if i := strings.Index(string(body), `"code":"`); i >= 0 {
		rest := string(body)[i+8:]
		o.code, _, _ = strings.Cut(rest, `"`)
	}
	// Drain whatever else the server says (smuggled answers), so that the
	// upstream has seen everything before it is asked.
	for {
		r2, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		io.Copy(io.Discard, r2.Body)
		r2.Body.Close()
	}
	return o
}

// TestBypassCorpus is the CI bar: no shape reaches a protected resource, no
// forged client address or role reaches the upstream, and no benign control
// is refused.
func TestBypassCorpus(t *testing.T) {
	up := newLenient(t)
	addr := startWarden(t, up)

	shapes := corpus()
	if len(shapes) < 150 {
		t.Fatalf("the corpus has %d shapes; the bar is 150", len(shapes))
	}
	tally := map[string]int{}
	var bypasses []string
	for i := range shapes {
		s := &shapes[i]
		id := "a" + strconv.Itoa(i)
		o := send(t, addr, s, id)
		visits := up.visits(id)
		switch {
		case o.status == 0:
			tally["connection closed without an answer"]++
		case o.code != "":
			tally[fmt.Sprintf("%d %s", o.status, o.code)]++
		default:
			tally[fmt.Sprintf("%d (served by upstream, or net/http's own answer)", o.status)]++
		}
		for _, v := range visits {
			var why []string
			if v.Resource != "public" {
				why = append(why, "reached "+v.Resource)
			}
			switch v.Method {
			case "DELETE", "PUT", "PATCH":
				why = append(why, "ran "+v.Method)
			}
			wantIP := s.client
			if wantIP == "" {
				wantIP = "127.0.0.1"
			}
			for _, ip := range append([]string{v.ClientIP}, v.ClientIPs...) {
				if ip != wantIP {
					why = append(why, "upstream is told client "+ip+", the rules judged "+wantIP)
					break
				}
			}
			if len(v.Forged) > 0 {
				why = append(why, "upstream got the client's "+strings.Join(v.Forged, ", "))
			}
			if strings.Contains(v.Roles, "admin") {
				why = append(why, "upstream believes roles "+v.Roles)
			}
			if len(why) > 0 {
				bypasses = append(bypasses, fmt.Sprintf("%s [%s]: %s (sent %q, upstream got %q → %s; client saw %d %s)",
					s.name, s.source, strings.Join(why, ", "), s.target, v.Target, v.Path, o.status, o.code))
			}
		}
	}
	var lines []string
	for k, n := range tally {
		lines = append(lines, fmt.Sprintf("%4d  %s", n, k))
	}
	sort.Strings(lines)
	t.Logf("%d attack shapes:\n%s", len(shapes), strings.Join(lines, "\n"))
	for _, b := range bypasses {
		t.Errorf("BYPASS %s", b)
	}

	ctrls := controls()
	if len(ctrls) < 30 {
		t.Fatalf("%d controls; the bar is 30", len(ctrls))
	}
	for i := range ctrls {
		c := &ctrls[i]
		id := "c" + strconv.Itoa(i)
		o := send(t, addr, &c.shape, id)
		visits := up.visits(id)
		wantIP := c.ip
		if wantIP == "" {
			wantIP = "127.0.0.1"
		}
		switch {
		case o.status < 200 || o.status > 299:
			t.Errorf("FALSE REFUSAL %s (%s %q): %d %s", c.name, c.method, c.target, o.status, o.code)
		case len(visits) != 1:
			t.Errorf("control %s: upstream saw it %d times", c.name, len(visits))
		case visits[0].Resource != c.want:
			t.Errorf("control %s: landed on %s (%q), want %s", c.name, visits[0].Resource, visits[0].Path, c.want)
		case visits[0].ClientIP != wantIP || slices.ContainsFunc(visits[0].ClientIPs, func(ip string) bool { return ip != wantIP }):
			t.Errorf("control %s: upstream told client %s (all readings %v), want %s", c.name, visits[0].ClientIP, visits[0].ClientIPs, wantIP)
		case len(visits[0].Forged) > 0:
			t.Errorf("control %s: upstream got forged %v", c.name, visits[0].Forged)
		case c.body != "" && visits[0].Body != c.body:
			t.Errorf("control %s: body %q, want %q", c.name, visits[0].Body, c.body)
		}
	}
}

// TestLenientUpstreamReadsTheTricks keeps the upstream honest: without
// warden in front, the tricks it is meant to model do reach the protected
// resources, so a pass of the corpus means warden stopped them.
func TestLenientUpstreamReadsTheTricks(t *testing.T) {
	reached := 0
	for _, p := range []string{"admin", "internal"} {
		for _, tr := range pathTricks {
			if resourceOf(lenientPath(tr.target(p))) == p {
				reached++
			}
		}
	}
	if min := len(pathTricks) * 2 * 8 / 10; reached < min {
		t.Errorf("only %d of %d path tricks reach their target on the bare upstream; want at least %d", reached, 2*len(pathTricks), min)
	}
	for _, c := range []struct{ in, want string }{
		{"/public/..;/admin/x", "/admin/x"},
		{"/public/%252e%252e/admin/x", "/admin/x"},
		{"/static../internal/x", "/internal/x"},
		{"/ADMIN~1/x", "/admin/x"},
		{"/%EF%BD%81dmin/x", "/admin/x"},
		{"/admin%3f/x", "/admin"},
		{"/public/..%c0%afadmin", "/admin"},
		{"/admin::$DATA/x", "/admin/x"},
	} {
		if got := lenientPath(c.in); got != c.want {
			t.Errorf("lenientPath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
