package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/warden-gateway/warden/internal/canonical"
	"github.com/warden-gateway/warden/internal/decision"
	"github.com/warden-gateway/warden/internal/gateway"
)

// replayRecord is one request to judge again: a line of warden's decision
// log (JSON), or "METHOD URL [IP]".
type replayRecord struct {
	Method   string            `json:"method"`
	Host     string            `json:"host"`
	Path     string            `json:"path"`
	RawURI   string            `json:"raw_uri"`
	ClientIP string            `json:"client_ip"`
	Action   string            `json:"action"`
	Code     string            `json:"code"`
	Headers  map[string]string `json:"headers"`
	line     int
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

func replay(rt *gateway.Runtime, in io.Reader, now time.Time) (*replaySummary, error) {
	sum := &replaySummary{NewlyRefused: []replayChange{}, NewlyAllowed: []replayChange{}, CodeChanged: []replayChange{}}
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
		judge(rt, rec, now, sum)
	}
	return sum, sc.Err()
}

// parseReplayLine reads a decision-log record or "METHOD URL [IP]". Log
// records that are not decisions (WAF details, reload notices) are passed
// over silently.
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
		if rec.Method == "" || rec.Path == "" && rec.RawURI == "" {
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
	rec.Method, rec.RawURI = f[0], f[1]
	if len(f) == 3 {
		rec.ClientIP = f[2]
	}
	rec.Action = "" // unknown: only the new decision is shown
	return rec, true, ""
}

func judge(rt *gateway.Runtime, rec replayRecord, now time.Time, sum *replaySummary) {
	target := rec.RawURI
	if target == "" {
		target = canonical.Escape(rec.Path)
	}
	host := rec.Host
	if host == "" {
		host = "localhost"
	}
	rawURL := target
	if !strings.Contains(target, "://") {
		rawURL = "http://" + host + target
	}
	ip := rec.ClientIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	var hdrs []string
	for k, v := range rec.Headers {
		hdrs = append(hdrs, k+": "+v)
	}
	label := rec.Method + " " + target
	r, err := explainRequest(rec.Method, rawURL, ip, hdrs)
	if err != nil {
		sum.Skipped = append(sum.Skipped, fmt.Sprintf("line %d: %v", rec.line, err))
		sum.Requests--
		return
	}
	if net.ParseIP(ip) == nil {
		return
	}
	var d decision.Decision
	req, cerr := canonical.From(r, &rt.Policy.Canonical)
	if cerr != nil {
		d = decision.Refuse(decision.BadRequest, cerr.Error())
	} else {
		d = rt.Policy.Decide(req, now, nil)
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
	wasAllowed := rec.Action == "allow"
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
		sum.NewlyRefused = append(sum.NewlyRefused, ch)
	case !wasAllowed && d.Allowed():
		sum.NewlyAllowed = append(sum.NewlyAllowed, ch)
	case !d.Allowed() && rec.Code != string(d.Code):
		sum.CodeChanged = append(sum.CodeChanged, ch)
	default:
		sum.Unchanged++
	}
}
