package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/warden-gateway/warden/internal/engine"
)

// explainOutput is the --json form of explain: the decision record the
// gateway would log for the request (always, whatever log.decisions says),
// with the URL as given.
type explainOutput struct {
	URL string `json:"url"`
	engine.Record
}

func cmdExplain(args []string) int {
	fl := flag.NewFlagSet("explain", flag.ContinueOnError)
	cfgPath := fl.String("config", "", "policy file")
	asJSON := fl.Bool("json", false, "print JSON")
	ip := fl.String("ip", "127.0.0.1", "the TCP peer address of the request")
	var hdrs headerFlags
	fl.Var(&hdrs, "header", "a request header 'Name: value' (repeatable)")
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return 2
	}
	if *cfgPath == "" || len(pos) != 2 {
		fmt.Fprintln(os.Stderr, "usage: warden explain --config FILE [--json] METHOD URL [--ip IP] [--header 'K: V']...")
		return 2
	}
	rt, err := loadRuntime(*cfgPath)
	if err != nil {
		printErrors(err)
		return 1
	}
	defer rt.Close()
	wire, err := explainWire(pos[0], pos[1], *ip, hdrs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden explain: %v\n", err)
		return 2
	}
	eng := engine.New(nil)
	// The configured store, so that explain shows the real count of a
	// shared (Redis) rate limit and whether the client is banned; explain
	// only reads it.
	if store, err := engine.OpenStore(rt.Config, nil); err != nil {
		fmt.Fprintf(os.Stderr, "warden explain: %v (counts and bans not shown)\n", err)
	} else if store != nil {
		eng.SetStore(store)
		defer store.Close()
	}
	eng.Swap(rt)
	o := &engine.Outcome{Front: "explain"}
	eng.Explain(&wire, o)
	out := explainOutput{URL: pos[1], Record: o.Record()}
	if out.Status == 0 && !o.Refused() {
		out.Status = 200
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return 0
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "%s %s\n", out.Method, out.URL)
	if out.Path != "" {
		fmt.Fprintf(w, "  canonical path: %s   client ip: %s\n", out.Path, out.ClientIP)
	}
	if len(out.Dropped) > 0 {
		fmt.Fprintf(w, "  headers dropped before the rules: %s\n", strings.Join(out.Dropped, ", "))
	}
	if out.Principal != "" {
		fmt.Fprintf(w, "  caller: %s (roles: %s)\n", out.Principal, strings.Join(out.Roles, ","))
	}
	fmt.Fprintf(w, "decision: %s", out.Action)
	if out.Code != "" {
		fmt.Fprintf(w, " %d %s — %s", out.Status, out.Code, out.Reason)
	}
	fmt.Fprintf(w, "   (decided by: %s)\n", out.Stage)
	if out.Rule != "" {
		fmt.Fprintf(w, "rule: %s", out.Rule)
		if out.RuleAt != "" {
			fmt.Fprintf(w, " (%s)", out.RuleAt)
		}
		fmt.Fprintln(w)
	}
	if out.Detail != "" {
		fmt.Fprintf(w, "detail: %s\n", out.Detail)
	}
	if out.Handler != "" {
		fmt.Fprintf(w, "handler: %s\n", out.Handler)
	}
	if out.Challenge != "" {
		fmt.Fprintf(w, "challenge: %s\n", out.Challenge)
	}
	if out.Bot != "" {
		fmt.Fprintf(w, "bot: %s\n", out.Bot)
	}
	if out.WouldDeny != nil {
		fmt.Fprintf(w, "report-only rule %s (%s) would refuse with %s\n", out.WouldDeny.Rule, out.WouldDeny.RuleAt, out.WouldDeny.Code)
	}
	for _, rl := range out.RateLimits {
		fmt.Fprintf(w, "rate limit %s: key %s, %d left\n", rl.Rule, rl.Key, rl.Remaining)
	}
	if out.WAF != nil {
		fmt.Fprintf(w, "waf: score %d, rules %v", out.WAF.Score, out.WAF.RuleIDs)
		if out.WAF.WouldBlock && !out.WAF.Blocked {
			fmt.Fprint(w, " (would block: detect mode)")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "trace:")
	for _, s := range out.Trace {
		mark := "  -"
		if s.Matched {
			mark = "  +"
		}
		at := ""
		if s.Line > 0 {
			at = fmt.Sprintf(" (line %d)", s.Line)
		}
		fmt.Fprintf(w, "%s %s%s: %s\n", mark, s.Rule, at, s.Note)
	}
	return 0
}

// explainWire builds the request explain judges. The URL's path and query
// are used exactly as written, as they would arrive on the wire.
func explainWire(method, rawURL, ip string, hdrs []string) (engine.Wire, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return engine.Wire{}, fmt.Errorf("URL: %w", err)
	}
	if u.Host == "" {
		return engine.Wire{}, fmt.Errorf("URL %q needs a scheme and host, like http://example.com/path", rawURL)
	}
	// The raw request target, as a client would send it.
	target := rawURL[strings.Index(rawURL, u.Host)+len(u.Host):]
	if target == "" {
		target = "/"
	}
	if net.ParseIP(ip) == nil {
		return engine.Wire{}, fmt.Errorf("--ip %q is not an IP address", ip)
	}
	w := engine.Wire{
		Method: strings.ToUpper(method), Target: target, Proto: "HTTP/1.1", Host: u.Host,
		RemoteAddr: net.JoinHostPort(ip, "40000"), Header: make(map[string][]string), TLS: u.Scheme == "https",
	}
	for _, h := range hdrs {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return engine.Wire{}, fmt.Errorf("--header %q: want 'Name: value'", h)
		}
		w.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return w, nil
}
