package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/gateway"
	"github.com/warden-gateway/warden/internal/identity"
)

// loadRuntime reads and compiles a config the way serve does.
func loadRuntime(path string) (*gateway.Runtime, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return gateway.Build(cfg, gateway.Options{}, nil)
}

func cmdCheck(args []string) int {
	fl := flag.NewFlagSet("check", flag.ContinueOnError)
	cfgPath := fl.String("config", "", "policy file to check")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" && fl.NArg() == 1 {
		*cfgPath = fl.Arg(0)
	}
	if *cfgPath == "" {
		fmt.Fprintln(os.Stderr, "usage: warden check --config FILE")
		return 2
	}
	data, err := os.ReadFile(*cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden check: %v\n", err)
		return 1
	}
	// Shape errors and compile errors are reported together, in file
	// order, so one run shows every mistake.
	cfg, perr := config.ParsePartial(*cfgPath, data)
	var errs config.Errors
	errs = append(errs, asConfigErrors(perr)...)
	var rt *gateway.Runtime
	if cfg != nil {
		var berr error
		rt, berr = gateway.Build(cfg, gateway.Options{}, nil)
		for _, e := range asConfigErrors(berr) {
			if !slices.Contains(cfg.Incomplete, e.Pos) {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		seen := map[string]bool{}
		for _, e := range errs {
			if line := e.Error(); !seen[line] {
				seen[line] = true
				fmt.Fprintln(os.Stderr, line)
			}
		}
		return 1
	}
	fmt.Printf("%s: ok (%d rules)\n", *cfgPath, rt.Policy.RuleCount())
	rt.Close()
	return 0
}

func asConfigErrors(err error) config.Errors {
	if err == nil {
		return nil
	}
	var out config.Errors
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var ce *config.Error
		if errors.As(e, &ce) {
			out = append(out, ce)
		} else {
			out = append(out, &config.Error{Msg: e.Error()})
		}
	}
	return out
}

// printErrors writes one "file:line: message" line per mistake.
func printErrors(err error) {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		for _, e := range j.Unwrap() {
			fmt.Fprintln(os.Stderr, e)
		}
		return
	}
	fmt.Fprintln(os.Stderr, err)
}

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// explainOutput is the --json form of explain.
type explainOutput struct {
	Method    string          `json:"method"`
	URL       string          `json:"url"`
	ClientIP  string          `json:"client_ip,omitempty"`
	Path      string          `json:"canonical_path,omitempty"`
	Decision  string          `json:"decision"`
	Status    int             `json:"status"`
	Code      string          `json:"code,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Rule      string          `json:"rule,omitempty"`
	RuleAt    string          `json:"rule_at,omitempty"`
	Detail    string          `json:"detail,omitempty"`
	Handler   string          `json:"handler,omitempty"`
	Principal string          `json:"principal,omitempty"`
	Trace     []decision.Step `json:"trace"`
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
	r, err := explainRequest(pos[0], pos[1], *ip, hdrs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden explain: %v\n", err)
		return 2
	}
	out := explainOutput{Method: r.Method, URL: pos[1]}
	var d decision.Decision
	var tr decision.Trace
	req, cerr := canonical.From(r, &rt.Policy.Canonical)
	now := time.Now()
	if cerr != nil {
		d = decision.Refuse(decision.BadRequest, cerr.Error())
	} else {
		out.Path, out.ClientIP = req.Path, req.ClientIP.String()
		d, tr = rt.Explain(req, now)
		if d.Allowed() {
			out.Handler = rt.HandlerFor(req.Path)
		}
		if p := rt.Policy.Principal(req, now); p != nil {
			out.Principal = p.ID + " (" + p.Method + ", roles: " + strings.Join(p.Roles, ",") + ")"
		}
	}
	out.Decision = d.Action.String()
	out.Status = d.Status
	if d.Allowed() {
		out.Status = 200
	}
	out.Code, out.Reason, out.Rule, out.Detail, out.Trace = string(d.Code), d.Reason, d.Rule, d.Detail, tr.Steps
	if d.RuleLine > 0 {
		out.RuleAt = fmt.Sprintf("%s:%d", *cfgPath, d.RuleLine)
	}
	if out.Trace == nil {
		out.Trace = []decision.Step{}
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
	if out.Principal != "" {
		fmt.Fprintf(w, "  caller: %s\n", out.Principal)
	}
	fmt.Fprintf(w, "decision: %s", out.Decision)
	if out.Code != "" {
		fmt.Fprintf(w, " %d %s — %s", out.Status, out.Code, out.Reason)
	}
	fmt.Fprintln(w)
	if out.Rule != "" {
		fmt.Fprintf(w, "rule: %s", out.Rule)
		if out.RuleAt != "" {
			fmt.Fprintf(w, " (%s)", out.RuleAt)
		}
		fmt.Fprintln(w)
	}
	if out.Handler != "" {
		fmt.Fprintf(w, "handler: %s\n", out.Handler)
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

// explainRequest builds the request explain judges. The URL's path and query
// are used exactly as written, as they would arrive on the wire.
func explainRequest(method, rawURL, ip string, hdrs []string) (*http.Request, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("URL: %w", err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("URL %q needs a scheme and host, like http://example.com/path", rawURL)
	}
	// The raw request target, as a client would send it.
	target := rawURL[strings.Index(rawURL, u.Host)+len(u.Host):]
	if target == "" {
		target = "/"
	}
	r, err := http.NewRequest(strings.ToUpper(method), rawURL, nil)
	if err != nil {
		return nil, err
	}
	r.RequestURI = target
	if a := net.ParseIP(ip); a == nil {
		return nil, fmt.Errorf("--ip %q is not an IP address", ip)
	}
	r.RemoteAddr = net.JoinHostPort(ip, "40000")
	for _, h := range hdrs {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return nil, fmt.Errorf("--header %q: want 'Name: value'", h)
		}
		r.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if u.Scheme == "https" {
		r.TLS = &tls.ConnectionState{}
	}
	return r, nil
}

func cmdHashKey(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: warden hash-key KEY")
		return 2
	}
	fmt.Println(identity.HashKey(args[0]))
	return 0
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments (warden explain ... METHOD URL --ip IP), and returns
// the positionals.
func parseInterspersed(fl *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fl.Parse(args); err != nil {
			return nil, err
		}
		args = fl.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	return pos, nil
}
