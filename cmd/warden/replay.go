package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/engine"
	"github.com/warden-gateway/warden/internal/identity"
)

// replayRecord is one request to judge again: a decision record of
// warden's log (engine.Record), or "METHOD URL [IP]".
type replayRecord struct {
	engine.Record
	line int
}

type replayChange struct {
	Line     int    `json:"line"`
	Request  string `json:"request"`
	ClientIP string `json:"client_ip"`
	Before   string `json:"before"`
	After    string `json:"after"`
	Rule     string `json:"rule,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

type replaySummary struct {
	Requests     int            `json:"requests"`
	Unchanged    int            `json:"unchanged"`
	NewlyRefused []replayChange `json:"newly_refused"`
	NewlyAllowed []replayChange `json:"newly_allowed"`
	CodeChanged  []replayChange `json:"code_changed"`
	Skipped      []string       `json:"skipped,omitempty"`
}

// cmdReplay judges recorded requests under a (changed) policy and reports
// what it would decide differently: the "review your deny rules" advice,
// before the change reaches anyone.
func cmdReplay(args []string) int {
	fl := flag.NewFlagSet("replay", flag.ContinueOnError)
	cfgPath := fl.String("config", "", "the policy to judge the requests with")
	asJSON := fl.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return 2
	}
	if *cfgPath == "" || len(pos) != 1 {
		fmt.Fprintln(os.Stderr, "usage: warden replay --config FILE [--json] REQUESTS   (a decision log, or lines of METHOD URL [IP]; - for stdin)")
		return 2
	}
	rt, err := loadRuntime(*cfgPath)
	if err != nil {
		printErrors(err)
		return 1
	}
	defer rt.Close()
	in := io.Reader(os.Stdin)
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			fmt.Fprintf(os.Stderr, "warden replay: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	sum, err := replay(rt, in, time.Now())
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden replay: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(sum)
		return 0
	}
	fmt.Printf("%d requests: %d unchanged, %d newly refused, %d newly allowed, %d with another code\n",
		sum.Requests, sum.Unchanged, len(sum.NewlyRefused), len(sum.NewlyAllowed), len(sum.CodeChanged))
	show := func(title string, l []replayChange) {
		if len(l) == 0 {
			return
		}
		fmt.Println(title + ":")
		for _, c := range l {
			fmt.Printf("  line %d: %s from %s: %s -> %s", c.Line, c.Request, c.ClientIP, c.Before, c.After)
			if c.Rule != "" {
				fmt.Printf(" (rule %s: %s)", c.Rule, c.Reason)
			}
			fmt.Println()
		}
	}
	show("newly refused", sum.NewlyRefused)
	show("newly allowed", sum.NewlyAllowed)
	show("another code", sum.CodeChanged)
	for _, s := range sum.Skipped {
		fmt.Fprintln(os.Stderr, "skipped: "+s)
	}
	return 0
}

func replay(rt *engine.Runtime, in io.Reader, now time.Time) (*replaySummary, error) {
	sum := &replaySummary{NewlyRefused: []replayChange{}, NewlyAllowed: []replayChange{}, CodeChanged: []replayChange{}}
	eng := engine.New(nil)
	eng.Swap(rt)
	eng.Now = func() time.Time { return now }
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		rec, ok, why := parseReplayLine(text)
		if !ok {
			if why != "" {
				sum.Skipped = append(sum.Skipped, fmt.Sprintf("line %d: %s", line, why))
			}
			continue
		}
		rec.line = line
		sum.Requests++
		judge(eng, rec, sum)
	}
	return sum, sc.Err()
}

// parseReplayLine reads a decision record or "METHOD URL [IP]". Log records
// that are not decisions (reload notices) are passed over silently.
func parseReplayLine(text string) (replayRecord, bool, string) {
	var rec replayRecord
	if strings.HasPrefix(text, "{") {
		var probe struct {
			Msg string `json:"msg"`
		}
		if err := json.Unmarshal([]byte(text), &probe); err != nil {
			return rec, false, "not valid JSON"
		}
		if probe.Msg != "" && probe.Msg != "decision" {
			return rec, false, ""
		}
		if err := json.Unmarshal([]byte(text), &rec.Record); err != nil {
			return rec, false, "not a decision record: " + err.Error()
		}
		if rec.Method == "" || rec.Path == "" && rec.Target == "" {
			return rec, false, "a decision record without method and path"
		}
		if rec.Action == "" {
			rec.Action = "allow"
		}
		return rec, true, ""
	}
	f := strings.Fields(text)
	if len(f) < 2 || len(f) > 3 {
		return rec, false, "want METHOD URL [IP]"
	}
	rec.Method = f[0]
	u, err := url.Parse(f[1])
	if err != nil || u.Host == "" {
		return rec, false, fmt.Sprintf("URL %q needs a scheme and host", f[1])
	}
	rec.Host = u.Host
	rec.Target = f[1][strings.Index(f[1], u.Host)+len(u.Host):]
	if rec.Target == "" {
		rec.Target = "/"
	}
	if len(f) == 3 {
		if net.ParseIP(f[2]) == nil {
			return rec, false, fmt.Sprintf("%q is not an IP address", f[2])
		}
		rec.ClientIP = f[2]
	}
	rec.Action = "" // unknown: only the new decision is shown
	return rec, true, ""
}

// wireOf rebuilds the request of a record: its target, host, peer and the
// headers the record kept. The caller is the one the record names (its
// credentials were never logged).
func wireOf(rec *replayRecord) (engine.Wire, *identity.Result) {
	target := rec.Target
	if target == "" {
		target = canonical.Escape(rec.Path)
		if rec.Query != "" {
			target += "?" + rec.Query
		}
	}
	host := rec.Host
	if host == "" {
		host = "localhost"
	}
	peer := rec.Peer
	if peer == "" {
		peer = rec.ClientIP
	}
	if peer == "" {
		peer = "127.0.0.1"
	}
	w := engine.Wire{Method: rec.Method, Target: target, Proto: "HTTP/1.1", Host: host, RemoteAddr: peer, Header: http.Header{}}
	for k, v := range rec.Headers {
		w.Header.Set(k, v)
	}
	return w, knownCaller(&rec.Record)
}

// knownCaller is the identity a record names, or nil when it names none
// (no rule asked, and no credentials resolved a caller).
func knownCaller(rec *engine.Record) *identity.Result {
	switch decision.ParseCredentials(rec.Credentials) {
	case decision.CredentialsNone:
		return &identity.Result{}
	case decision.CredentialsInvalid:
		return &identity.Result{Err: fmt.Errorf("%w: %s", identity.ErrInvalid, rec.Detail)}
	case decision.CredentialsUnavailable:
		return &identity.Result{Err: fmt.Errorf("%w: %s", identity.ErrUnavailable, rec.Detail)}
	}
	if rec.Principal != "" {
		return &identity.Result{Principal: &identity.Principal{ID: rec.Principal, Roles: rec.Roles, Scopes: rec.Scopes}}
	}
	if rec.Credentials == "" {
		return nil
	}
	return &identity.Result{}
}

func judge(eng *engine.Engine, rec replayRecord, sum *replaySummary) {
	w, known := wireOf(&rec)
	o := &engine.Outcome{Front: "replay", Known: known, SkipWAF: true, SkipEffects: true}
	if rec.Stage == "waf" || rec.Stage == "upstream" {
		// Decided after the rules: judge as far as the rules (the handler
		// never saw the request).
		eng.Judge(&w, o)
	} else {
		eng.Explain(&w, o)
	}
	d := &o.Decision
	label := rec.Method + " " + w.Target
	ip := rec.ClientIP
	if o.HasRequest {
		ip = o.Request.ClientIP.String()
	}
	after := d.Action.String()
	if d.Code != "" {
		after += " " + string(d.Code)
	}
	before := rec.Action
	if rec.Code != "" {
		before += " " + rec.Code
	}
	ch := replayChange{Line: rec.line, Request: label, ClientIP: ip, Before: before, After: after, Rule: d.Rule, Reason: d.Reason}
	// The WAF judged the body and every header, which the record does not
	// keep, and an upstream's failure is no decision of the policy: a
	// request refused at those stages was allowed by everything replay can
	// judge again.
	wasAllowed := rec.Action == "allow" || rec.Stage == "waf" || rec.Stage == "upstream"
	switch {
	case rec.Action == "":
		// No earlier decision recorded: report refusals only.
		ch.Before = "?"
		if !d.Allowed() {
			sum.NewlyRefused = append(sum.NewlyRefused, ch)
		} else {
			sum.Unchanged++
		}
	case wasAllowed && !d.Allowed():
		if rec.Action != "allow" {
			sum.CodeChanged = append(sum.CodeChanged, ch)
		} else {
			sum.NewlyRefused = append(sum.NewlyRefused, ch)
		}
	case !wasAllowed && d.Allowed():
		sum.NewlyAllowed = append(sum.NewlyAllowed, ch)
	case !d.Allowed() && rec.Code != string(d.Code):
		sum.CodeChanged = append(sum.CodeChanged, ch)
	default:
		sum.Unchanged++
	}
}
