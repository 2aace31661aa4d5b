package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/warden-gateway/warden/internal/engine"
)

const (
	kindRefused = "newly_refused"
	kindAllowed = "newly_allowed"
	kindCode    = "code_changed"
	// maxReplayExamples bounds each list and each group's examples, so a
	// replay of any size holds a bounded summary.
	maxReplayExamples = 100
	maxGroupExamples  = 5
	maxSkipped        = 20
	// replayChunk is how much of the log one worker takes at a time.
	replayChunk = 256 << 10
)

type chunk struct {
	data      []byte
	firstLine int
}

// replayWith judges every request of in under rt and, with a baseline,
// under base too, on workers goroutines: the reader hands out chunks of
// whole lines, each worker keeps its own partial summary, and the partials
// are merged at the end. Memory is the chunks in flight and the bounded
// summaries, whatever the size of the log.
func replayWith(rt, base *engine.Runtime, in io.Reader, now time.Time, workers int) (*replaySummary, error) {
	if workers < 1 {
		workers = 1
	}
	newEngine := func(r *engine.Runtime) *engine.Engine {
		if r == nil {
			return nil
		}
		e := engine.New(nil)
		e.Swap(r)
		e.Now = func() time.Time { return now }
		return e
	}
	eng, baseEng := newEngine(rt), newEngine(base)
	chunks := make(chan chunk, workers)
	free := make(chan []byte, workers*2+1)
	parts := make([]*partial, workers)
	var wg sync.WaitGroup
	for i := range parts {
		p := newPartial()
		parts[i] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := &judger{eng: eng, base: baseEng, header: http.Header{}}
			for c := range chunks {
				p.run(j, c)
				select {
				case free <- c.data[:0]:
				default:
				}
			}
		}()
	}
	err := readChunks(in, chunks, free)
	close(chunks)
	wg.Wait()
	sum := merge(parts)
	return sum, err
}

// readChunks splits in into chunks of whole lines; a line longer than a
// chunk grows its chunk (up to 4 MiB, then it is cut).
func readChunks(in io.Reader, out chan<- chunk, free chan []byte) error {
	var carry []byte
	line := 1
	for {
		var buf []byte
		select {
		case buf = <-free:
		default:
			buf = make([]byte, 0, replayChunk+4096)
		}
		buf = append(buf, carry...)
		carry = carry[:0]
		if cap(buf)-len(buf) < replayChunk/2 {
			nb := make([]byte, len(buf), len(buf)+replayChunk)
			copy(nb, buf)
			buf = nb
		}
		n, err := io.ReadFull(in, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		eof := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !eof {
			return err
		}
		if !eof {
			cut := bytes.LastIndexByte(buf, '\n')
			if cut < 0 && len(buf) < 4<<20 {
				// One line fills the chunk: keep reading it.
				carry = append(carry[:0], buf...)
				continue
			}
			if cut >= 0 {
				carry = append(carry[:0], buf[cut+1:]...)
				buf = buf[:cut+1]
			}
		}
		if len(buf) > 0 {
			out <- chunk{data: buf, firstLine: line}
			line += bytes.Count(buf, []byte{'\n'})
		}
		if eof {
			return nil
		}
	}
}

// partial is one worker's summary.
type partial struct {
	requests, unchanged, skippedN int
	counts                        map[string]int
	lists                         map[string][]replayChange
	groups                        map[groupKey]*replayGroup
	skipped                       []string
}

type groupKey struct{ kind, before, after, beforeRule, rule string }

func newPartial() *partial {
	return &partial{counts: map[string]int{}, lists: map[string][]replayChange{}, groups: map[groupKey]*replayGroup{}}
}

func (p *partial) run(j *judger, c chunk) {
	data := c.data
	line := c.firstLine
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var text []byte
		if i < 0 {
			text, data = data, nil
		} else {
			text, data = data[:i], data[i+1:]
		}
		n := line
		line++
		text = bytes.TrimSpace(text)
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		rec, ok, why := j.parse(text)
		if !ok {
			if why != "" {
				p.skippedN++
				if len(p.skipped) < maxSkipped {
					p.skipped = append(p.skipped, fmt.Sprintf("line %d: %s", n, why))
				}
			}
			continue
		}
		rec.line = n
		p.requests++
		kind, ch := j.judge(rec)
		if kind == "" {
			p.unchanged++
			continue
		}
		p.add(kind, ch)
	}
}

func (p *partial) add(kind string, ch replayChange) {
	p.counts[kind]++
	if l := p.lists[kind]; len(l) < maxReplayExamples {
		p.lists[kind] = append(l, ch)
	}
	k := groupKey{kind, ch.Before, ch.After, ch.BeforeRule, ch.Rule}
	g := p.groups[k]
	if g == nil {
		g = &replayGroup{Kind: kind, Before: ch.Before, After: ch.After, BeforeRule: ch.BeforeRule, Rule: ch.Rule}
		p.groups[k] = g
	}
	g.Count++
	if len(g.Examples) < maxGroupExamples {
		g.Examples = append(g.Examples, ch)
	}
}

// merge adds the partials up; lists keep the earliest lines, so the result
// does not depend on how the work was split.
func merge(parts []*partial) *replaySummary {
	sum := &replaySummary{Counts: map[string]int{kindRefused: 0, kindAllowed: 0, kindCode: 0}}
	lists := map[string][]replayChange{}
	groups := map[groupKey]*replayGroup{}
	for _, p := range parts {
		sum.Requests += p.requests
		sum.Unchanged += p.unchanged
		sum.SkippedCount += p.skippedN
		sum.Skipped = append(sum.Skipped, p.skipped...)
		for k, n := range p.counts {
			sum.Counts[k] += n
		}
		for k, l := range p.lists {
			lists[k] = append(lists[k], l...)
		}
		for k, g := range p.groups {
			if have := groups[k]; have != nil {
				have.Count += g.Count
				have.Examples = append(have.Examples, g.Examples...)
			} else {
				cp := *g
				groups[k] = &cp
			}
		}
	}
	byLine := func(l []replayChange, max int) []replayChange {
		sort.Slice(l, func(i, j int) bool { return l[i].Line < l[j].Line })
		if len(l) > max {
			l = l[:max]
		}
		if l == nil {
			l = []replayChange{}
		}
		return l
	}
	sum.NewlyRefused = byLine(lists[kindRefused], maxReplayExamples)
	sum.NewlyAllowed = byLine(lists[kindAllowed], maxReplayExamples)
	sum.CodeChanged = byLine(lists[kindCode], maxReplayExamples)
	for _, g := range groups {
		g.Examples = byLine(g.Examples, maxGroupExamples)
		sum.Groups = append(sum.Groups, *g)
	}
	order := map[string]int{kindRefused: 0, kindAllowed: 1, kindCode: 2}
	sort.Slice(sum.Groups, func(i, j int) bool {
		a, b := &sum.Groups[i], &sum.Groups[j]
		if a.Kind != b.Kind {
			return order[a.Kind] < order[b.Kind]
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Examples[0].Line < b.Examples[0].Line
	})
	if sum.Groups == nil {
		sum.Groups = []replayGroup{}
	}
	sort.Slice(sum.Skipped, func(i, j int) bool { return skippedLine(sum.Skipped[i]) < skippedLine(sum.Skipped[j]) })
	if len(sum.Skipped) > maxSkipped {
		sum.Skipped = sum.Skipped[:maxSkipped]
	}
	return sum
}

func skippedLine(s string) int {
	n := 0
	fmt.Sscanf(s, "line %d:", &n)
	return n
}

// judger judges records on one worker, reusing its buffers.
type judger struct {
	eng, base *engine.Engine
	header    http.Header
	o, ob     engine.Outcome
}

func words(action, code string) string {
	if code != "" {
		return action + " " + code
	}
	return action
}

// replayJudge judges a recorded request as far as replay can: a request
// decided after the rules (by the WAF, or an upstream's failure) only as far
// as the rules, since the handler never saw it; any other as explain does.
// Rate limits and bans are left alone (SkipEffects): replay charges nothing.
func replayJudge(eng *engine.Engine, w *engine.Wire, o *engine.Outcome, stage string) {
	if stage == "waf" || stage == "upstream" {
		eng.Judge(w, o)
		return
	}
	eng.Explain(w, o)
}

// judge decides rec under the new policy and compares it with the
// baseline's decision, or with the recorded one. kind is "" when nothing
// changed.
func (j *judger) judge(rec *replayRecord) (kind string, ch replayChange) {
	w, known := j.wireOf(rec)
	// Judge resets the rest of the outcome; these it keeps.
	o := &j.o
	o.Front, o.Known, o.SkipWAF, o.SkipEffects, o.ID = "replay", known, true, true, "replay"
	replayJudge(j.eng, &w, o, rec.Stage)
	d := &o.Decision
	ip := rec.ClientIP
	if o.HasRequest {
		ip = o.Request.ClientIP.String()
	}
	after := words(d.Action.String(), string(d.Code))
	ch = replayChange{Line: rec.line, ClientIP: ip, After: after, Rule: d.Rule, Reason: d.Reason}
	if j.base != nil {
		// Both policies judge the same request; the header map was only
		// read, but Judge drops names from it, so judge a fresh copy.
		w2, known2 := j.wireOf(rec)
		ob := &j.ob
		ob.Front, ob.Known, ob.SkipWAF, ob.SkipEffects, ob.ID = "replay", known2, true, true, "replay"
		replayJudge(j.base, &w2, ob, rec.Stage)
		bd := &ob.Decision
		ch.Before, ch.BeforeRule = words(bd.Action.String(), string(bd.Code)), bd.Rule
		switch {
		case bd.Allowed() && !d.Allowed():
			kind = kindRefused
		case !bd.Allowed() && d.Allowed():
			kind = kindAllowed
		case !d.Allowed() && (bd.Code != d.Code || bd.Action != d.Action):
			kind = kindCode
		}
		if kind != "" {
			ch.Request = rec.Method + " " + w.Target
		}
		return kind, ch
	}
	ch.Before = words(rec.Action, rec.Code)
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
			kind = kindRefused
		}
	case wasAllowed && !d.Allowed():
		if rec.Action != "allow" {
			kind = kindCode
		} else {
			kind = kindRefused
		}
	case !wasAllowed && d.Allowed():
		kind = kindAllowed
	case !d.Allowed() && rec.Code != string(d.Code):
		kind = kindCode
	}
	if kind != "" {
		ch.Request = rec.Method + " " + w.Target
	}
	return kind, ch
}
