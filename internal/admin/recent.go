package admin

import (
	"sort"
	"sync"
	"time"

	"github.com/warden-gateway/warden/internal/engine"
)

// DefaultRecent is how many records the admin page keeps: enough to find a
// support request's id from the last minutes on a busy site, bounded so
// memory stays flat (a record with its trace is about a kilobyte).
const DefaultRecent = 4096

// Minutes is how far back the refusals chart reaches.
const Minutes = 60

// Entry is one kept request.
type Entry struct {
	Time   time.Time
	Record engine.Record
}

// Recent keeps the last records of refused (and logged) requests in a ring,
// and per-minute refusal counts by code for the chart. It is an engine
// observer; safe for concurrent use.
type Recent struct {
	mu      sync.Mutex
	ring    []Entry
	next    int
	full    bool
	minutes [Minutes]minute
}

type minute struct {
	start  int64 // unix minute
	counts map[string]int
	total  int // requests seen, refused or not
}

// NewRecent makes a ring of n records.
func NewRecent(n int) *Recent {
	if n < 1 {
		n = 1
	}
	return &Recent{ring: make([]Entry, n)}
}

// Observe keeps o when it was refused or the log settings ask for it, and
// counts it in its minute.
func (r *Recent) Observe(o *engine.Outcome) {
	at := o.Now
	if at.IsZero() {
		at = time.Now()
	}
	keep := o.Refused() || o.ShouldLog()
	var rec engine.Record
	if keep {
		// Made outside the lock: the trace is words built on demand.
		rec = o.Record()
	}
	code := ""
	if o.Refused() {
		code = string(o.Decision.Code)
		if !o.Decision.Code.Known() {
			code = "other"
		}
	}
	m := at.Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	b := &r.minutes[m%Minutes]
	if b.start != m {
		*b = minute{start: m}
	}
	b.total++
	if code != "" {
		if b.counts == nil {
			b.counts = make(map[string]int, 4)
		}
		b.counts[code]++
	}
	if keep {
		r.ring[r.next] = Entry{Time: at, Record: rec}
		r.next++
		if r.next == len(r.ring) {
			r.next, r.full = 0, true
		}
	}
}

// Find returns the newest kept record with the request id.
func (r *Recent) Find(id string) (Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.ring)
	for i := 1; i <= n; i++ {
		e := &r.ring[(r.next-i+n)%n]
		if e.Time.IsZero() {
			break
		}
		if e.Record.RequestID == id {
			return *e, true
		}
	}
	return Entry{}, false
}

// Entries returns the kept records, newest first.
func (r *Recent) Entries() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.ring)
	out := make([]Entry, 0, n)
	for i := 1; i <= n; i++ {
		e := r.ring[(r.next-i+n)%n]
		if e.Time.IsZero() {
			break
		}
		out = append(out, e)
	}
	return out
}

// Series is the refusals of the last Minutes minutes up to now, by code:
// Counts[code][i] is minute i (0 the oldest).
type Series struct {
	Start  time.Time
	Codes  []string
	Counts map[string][]int
	Totals []int // every request, refused or not
}

// Series returns the chart's data.
func (r *Recent) Series(now time.Time) Series {
	end := now.Unix() / 60
	first := end - Minutes + 1
	s := Series{Start: time.Unix(first*60, 0).UTC(), Counts: map[string][]int{}, Totals: make([]int, Minutes)}
	r.mu.Lock()
	for i := range r.minutes {
		b := &r.minutes[i]
		if b.start < first || b.start > end {
			continue
		}
		idx := int(b.start - first)
		s.Totals[idx] = b.total
		for code, n := range b.counts {
			c := s.Counts[code]
			if c == nil {
				c = make([]int, Minutes)
				s.Counts[code] = c
			}
			c[idx] += n
		}
	}
	r.mu.Unlock()
	for c := range s.Counts {
		s.Codes = append(s.Codes, c)
	}
	sort.Strings(s.Codes)
	return s
}

// Count is one row of a top list.
type Count struct {
	Key string
	N   int
}

// Top counts the kept refusals by key and returns the n largest.
func Top(entries []Entry, n int, key func(*engine.Record) string) []Count {
	m := map[string]int{}
	for i := range entries {
		rec := &entries[i].Record
		if rec.Action == "allow" {
			continue
		}
		if k := key(rec); k != "" {
			m[k]++
		}
	}
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].N != out[j].N {
			return out[i].N > out[j].N
		}
		return out[i].Key < out[j].Key
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
