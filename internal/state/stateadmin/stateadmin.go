// Package stateadmin is the admin side of bans: an HTTP handler a running
// warden serves on its admin listener (loopback or a Unix socket), and the
// client `warden bans list|add|remove` uses to talk to it.
//
//	GET    /v1/bans                     the bans in force
//	POST   /v1/bans  {"target","for"|"until","reason"}   ban by hand
//	DELETE /v1/bans?target=...          lift a ban
//
// A target is a state key ("ip:203.0.113.9", "net:198.51.100.0/24"), or an
// address or CIDR, which is turned into one.
package stateadmin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/state"
)

// Ban is one ban as the API shows it.
type Ban struct {
	Key    string    `json:"key"`
	Until  time.Time `json:"until"`
	Level  int       `json:"level"`
	Reason string    `json:"reason"`
}

// AddRequest bans a target by hand: for a duration, or until a time.
type AddRequest struct {
	Target string    `json:"target"`
	For    string    `json:"for,omitempty"` // "1h", "7d"
	Until  time.Time `json:"until,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

type listResponse struct {
	Bans []Ban `json:"bans"`
}

type removeResponse struct {
	Key    string `json:"key"`
	Lifted bool   `json:"lifted"`
}

type errorResponse struct {
	Error string `json:"error"`
}

// ParseTarget turns what an operator types into a ban key: a key as warden
// writes it (ip:, net:, user:, key:, hdr:), an IP address (its ip: key) or
// a CIDR (its net: key, masked).
func ParseTarget(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("a ban needs a target: an address, a CIDR or a key such as ip:203.0.113.9")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return state.IPKey(a), nil
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return "net:" + netip.PrefixFrom(p.Addr().Unmap(), min(p.Bits(), p.Addr().Unmap().BitLen())).Masked().String(), nil
	}
	kind, val, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("target %q: want an address, a CIDR or a key such as ip:203.0.113.9", s)
	}
	switch kind {
	case "ip":
		a, err := netip.ParseAddr(val)
		if err != nil {
			return "", fmt.Errorf("target %q: %v", s, err)
		}
		return state.IPKey(a), nil
	case "net":
		return ParseTarget(val)
	case "user", "key", "hdr":
		if val == "" || len(s) > 200 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			return "", fmt.Errorf("target %q: not a key warden writes (printable, no spaces, at most 200 bytes)", s)
		}
		return s, nil
	}
	return "", fmt.Errorf("target %q: unknown kind %q (ip, net, user, key, hdr)", s, kind)
}

// Handler serves the ban API on store; now is the engine's clock.
func Handler(store state.Store, now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/bans", func(w http.ResponseWriter, r *http.Request) {
		bans, err := store.ListBans(r.Context(), now())
		if err != nil && !errors.Is(err, state.ErrUnavailable) {
			reply(w, http.StatusServiceUnavailable, errorResponse{err.Error()})
			return
		}
		out := listResponse{Bans: []Ban{}}
		for _, b := range bans {
			out.Bans = append(out.Bans, Ban(b))
		}
		if err != nil {
			// The local fallback's list: say so rather than pass it off
			// as the fleet's.
			w.Header().Set("Warning", `199 warden "shared store unavailable; this replica's bans only"`)
		}
		reply(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /v1/bans", func(w http.ResponseWriter, r *http.Request) {
		var req AddRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			reply(w, http.StatusBadRequest, errorResponse{"body: " + err.Error()})
			return
		}
		key, err := ParseTarget(req.Target)
		if err != nil {
			reply(w, http.StatusBadRequest, errorResponse{err.Error()})
			return
		}
		t := now()
		until := req.Until
		if req.For != "" {
			d, err := state.ParseDuration(req.For)
			if err != nil || d <= 0 {
				reply(w, http.StatusBadRequest, errorResponse{fmt.Sprintf("for %q: want a duration such as 1h or 7d", req.For)})
				return
			}
			until = t.Add(d)
		}
		if !until.After(t) {
			reply(w, http.StatusBadRequest, errorResponse{"a ban needs a duration (for) or an end in the future (until)"})
			return
		}
		reason := req.Reason
		if reason == "" {
			reason = "set by hand"
		}
		if err := store.Ban(r.Context(), key, until, reason, t); err != nil {
			reply(w, http.StatusServiceUnavailable, errorResponse{err.Error()})
			return
		}
		reply(w, http.StatusCreated, Ban{Key: key, Until: until, Reason: reason})
	})
	mux.HandleFunc("DELETE /v1/bans", func(w http.ResponseWriter, r *http.Request) {
		key, err := ParseTarget(r.URL.Query().Get("target"))
		if err != nil {
			reply(w, http.StatusBadRequest, errorResponse{err.Error()})
			return
		}
		lifted, err := store.Unban(r.Context(), key, now())
		if err != nil {
			reply(w, http.StatusServiceUnavailable, errorResponse{err.Error()})
			return
		}
		reply(w, http.StatusOK, removeResponse{Key: key, Lifted: lifted})
	})
	return guard(mux)
}

// guard refuses what a web page could send to a loopback admin port: a
// browser request carries Origin (or a form content type), and a DNS
// rebinding attack arrives with a Host that is a name, not the loopback
// address or socket the listener is on.
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" {
			reply(w, http.StatusForbidden, errorResponse{"the admin API does not answer browsers"})
			return
		}
		if !localHost(r.Host) {
			reply(w, http.StatusForbidden, errorResponse{fmt.Sprintf("host %q: the admin API answers only on a loopback address or a Unix socket", r.Host)})
			return
		}
		if r.Method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			reply(w, http.StatusUnsupportedMediaType, errorResponse{"send application/json"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || host == unixHost {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// unixHost is the Host the client sends over a Unix socket.
const unixHost = "warden-admin.sock"

// Client talks to a running warden's admin listener: "127.0.0.1:9901",
// "[::1]:9901" or "unix:/run/warden/admin.sock".
type Client struct {
	// Token is the admin listener's bearer token (admin.token_file's
	// content); every path but health needs it.
	Token string
	addr  string
	base  string
	http  *http.Client
}

// ErrUnauthorized is the admin listener refusing the token: wrong or
// missing.
var ErrUnauthorized = errors.New("the admin token is wrong or missing")

// UnreachableError is a client that could not reach the admin listener at
// all (nothing listening, no such socket).
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach warden's admin listener at %s: %v", e.Addr, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// NewClient makes a client for addr.
func NewClient(addr string) (*Client, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	base := "http://"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return nil, errors.New("admin address unix: needs a socket path")
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
		base += unixHost
	} else {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("admin address %q: want host:port or unix:/path", addr)
		}
		if !localHost(host) {
			return nil, fmt.Errorf("admin address %q: the admin API listens on loopback or a Unix socket", addr)
		}
		base += addr
	}
	return &Client{addr: addr, base: base, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &UnreachableError{Addr: c.addr, Err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("admin API at %s: %w", c.addr, ErrUnauthorized)
	}
	if resp.StatusCode >= 300 {
		var e errorResponse
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("admin API: %s", e.Error)
		}
		return fmt.Errorf("admin API: %s", resp.Status)
	}
	return json.Unmarshal(b, out)
}

// List returns the bans in force.
func (c *Client) List(ctx context.Context) ([]Ban, error) {
	var out listResponse
	err := c.do(ctx, http.MethodGet, "/v1/bans", nil, &out)
	return out.Bans, err
}

// Add bans a target by hand.
func (c *Client) Add(ctx context.Context, req AddRequest) (Ban, error) {
	var out Ban
	err := c.do(ctx, http.MethodPost, "/v1/bans", req, &out)
	return out, err
}

// Remove lifts a target's ban and reports whether one was in force.
func (c *Client) Remove(ctx context.Context, target string) (bool, error) {
	var out removeResponse
	err := c.do(ctx, http.MethodDelete, "/v1/bans?target="+url.QueryEscape(target), nil, &out)
	return out.Lifted, err
}
