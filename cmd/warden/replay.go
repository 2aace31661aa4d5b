package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
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
	// UserAgent and Referer come from access logs (warden's JSON access
	// log, combined logs), which keep them as fields, not Headers.
	UserAgent string `json:"user_agent,omitempty"`
	Referer   string `json:"referer,omitempty"`
}

type replayChange struct {
	Line     int    `json:"line"`
	Request  string `json:"request"`
	ClientIP string `json:"client_ip"`
	Before   string `json:"before"`
	After    string `json:"after"`
	// BeforeRule is the rule that decided under --baseline.
	BeforeRule string `json:"before_rule,omitempty"`
	Rule       string `json:"rule,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// replayGroup counts the changes of one kind with the same decisions and
// rule, with the first examples: what an operator reads to judge a change.
type replayGroup struct {
	Kind       string         `json:"kind"` // newly_refused, newly_allowed, code_changed
	Before     string         `json:"before"`
	After      string         `json:"after"`
	BeforeRule string         `json:"before_rule,omitempty"`
	Rule       string         `json:"rule,omitempty"`
	Count      int            `json:"count"`
	Examples   []replayChange `json:"examples"`
}

type replaySummary struct {
	Requests  int `json:"requests"`
	Unchanged int `json:"unchanged"`
	// Counts are the changes by kind; the lists below hold only the first
	// maxReplayExamples of each (memory stays bounded on any log).
	Counts       map[string]int `json:"counts"`
	Groups       []replayGroup  `json:"groups"`
	NewlyRefused []replayChange `json:"newly_refused"`
	NewlyAllowed []replayChange `json:"newly_allowed"`
	CodeChanged  []replayChange `json:"code_changed"`
	SkippedCount int            `json:"skipped_count"`
	Skipped      []string       `json:"skipped,omitempty"`
}

// cmdReplay judges recorded requests under a (changed) policy and reports
// what it would decide differently: the "review your deny rules" advice,
// before the change reaches anyone.
func cmdReplay(args []string) int {
	fl := flag.NewFlagSet("replay", flag.ContinueOnError)
	cfgPath := fl.String("config", "", "the policy to judge the requests with")
	basePath := fl.String("baseline", "", "the policy in service: compare the two on every request instead of the recorded decisions")
	asJSON := fl.Bool("json", false, "print JSON")
	workers := fl.Int("workers", runtime.GOMAXPROCS(0), "requests judged in parallel")
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return 2
	}
	if *cfgPath == "" || len(pos) != 1 {
		fmt.Fprintln(os.Stderr, "usage: warden replay --config NEW.yaml [--baseline OLD.yaml] [--json] LOG   (warden's decision or access log, an nginx/Apache combined log, or lines of METHOD URL [IP]; - for stdin)")
		return 2
	}
	rt, err := loadRuntime(*cfgPath)
	if err != nil {
		printErrors(err)
		return 1
	}
	defer rt.Close()
	var base *engine.Runtime
	if *basePath != "" {
		if base, err = loadRuntime(*basePath); err != nil {
			printErrors(err)
			return 1
		}
		defer base.Close()
	}
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
	sum, err := replayWith(rt, base, in, time.Now(), *workers)
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
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	printReplay(w, sum)
	for _, s := range sum.Skipped {
		fmt.Fprintln(os.Stderr, "skipped: "+s)
	}
	if sum.SkippedCount > len(sum.Skipped) {
		fmt.Fprintf(os.Stderr, "skipped: %d more lines\n", sum.SkippedCount-len(sum.Skipped))
	}
	return 0
}

func printReplay(w io.Writer, sum *replaySummary) {
	fmt.Fprintf(w, "%d requests: %d unchanged, %d newly refused, %d newly allowed, %d with another code\n",
		sum.Requests, sum.Unchanged, sum.Counts[kindRefused], sum.Counts[kindAllowed], sum.Counts[kindCode])
	titles := map[string]string{kindRefused: "newly refused", kindAllowed: "newly allowed", kindCode: "another code"}
	for _, g := range sum.Groups {
		fmt.Fprintf(w, "%s: %d × %s -> %s", titles[g.Kind], g.Count, g.Before, g.After)
		if g.BeforeRule != "" {
			fmt.Fprintf(w, " (was rule %s)", g.BeforeRule)
		}
		if g.Rule != "" {
			fmt.Fprintf(w, " (rule %s)", g.Rule)
		}
		fmt.Fprintln(w)
		for _, c := range g.Examples {
			fmt.Fprintf(w, "  line %d: %s from %s", c.Line, c.Request, c.ClientIP)
			if c.Reason != "" {
				fmt.Fprintf(w, ": %s", c.Reason)
			}
			fmt.Fprintln(w)
		}
	}
}

// replay judges the requests of in under rt against what was recorded.
func replay(rt *engine.Runtime, in io.Reader, now time.Time) (*replaySummary, error) {
	return replayWith(rt, nil, in, now, 1)
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
		if err := json.Unmarshal([]byte(text), &rec); err != nil {
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
// headers the record kept, in the judger's header map. The caller is the
// one the record names (its credentials were never logged).
func (j *judger) wireOf(rec *replayRecord) (engine.Wire, *identity.Result) {
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
	h := j.header
	clear(h)
	for k, v := range rec.Headers {
		h.Set(k, v)
	}
	if rec.UserAgent != "" {
		h["User-Agent"] = []string{rec.UserAgent}
	}
	if rec.Referer != "" {
		h["Referer"] = []string{rec.Referer}
	}
	w := engine.Wire{Method: rec.Method, Target: target, Proto: "HTTP/1.1", Host: host, RemoteAddr: peer, Header: h}
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
