package useragent

import (
	"errors"
	"fmt"
	"sort"
)

// automaton is an Aho-Corasick automaton over all literal strings of a Set,
// compiled to a dense DFA whose alphabet is the set of byte classes that
// occur in the literals, with ASCII upper case folded onto lower case. One
// pass over the user agent, one table load per byte, finds every occurrence
// of every literal, overlapping ones included; that is what makes a Set with
// thousands of patterns cost about as much as one with ten.
type automaton struct {
	class   [256]uint8 // byte → input class; 0 = a byte no literal contains
	nclass  uint32
	trans   []uint32 // [state*nclass + class] → next state*nclass, | hasOutput
	outFrom []int32  // per state id: outputs are outs[outFrom[id]:outFrom[id+1]]
	dict    []int32  // per state id: nearest proper suffix state with outputs, or -1
	outs    []output
}

// hasOutput marks transitions into states where some literal ends (here or
// at a suffix), so the scan loop tests one bit instead of loading metadata.
const hasOutput = 1 << 31

// maxTableEntries bounds the DFA (4 bytes an entry): 64 Mi entries is 256 MB,
// far beyond any real user-agent list (10,000 patterns need ~15 MB).
const maxTableEntries = 64 << 20

// action is what a literal occurrence means for the pattern it belongs to.
type action uint8

const (
	// actMatch: the pattern is a case-insensitive substring; the occurrence
	// is a match.
	actMatch action = iota
	// actVerify: the pattern is a case-sensitive substring; the automaton
	// folds case, so the bytes must be compared.
	actVerify
	// actCandidate: the literal is required by a regex (or glob); the regex
	// must run to decide.
	actCandidate
	// actAtPrefix: every match of the regex begins with the literal; the
	// regex runs anchored where the literal begins.
	actAtPrefix
)

type output struct {
	pattern int32
	length  int32 // literal length in bytes, for actVerify and actAtPrefix
	act     action
}

// literalUse ties one literal to one pattern.
type literalUse struct {
	literal string // as written; folded to lower case when inserted
	output
}

var errTooLarge = errors.New("the user-agent patterns need a matching table over 256 MB; split the list or use fewer, more general patterns")

func foldByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// buildAutomaton compiles the literals; nil when there are none.
func buildAutomaton(uses []literalUse) (*automaton, error) {
	if len(uses) == 0 {
		return nil, nil
	}
	a := &automaton{}

	// Input classes: one per distinct (folded) byte that occurs in a literal.
	var seen [256]bool
	maxStates := 1
	for _, u := range uses {
		for i := 0; i < len(u.literal); i++ {
			seen[foldByte(u.literal[i])] = true
		}
		maxStates += len(u.literal)
	}
	next := uint8(1)
	for c := 0; c < 256; c++ {
		if seen[c] {
			a.class[c] = next
			next++
		}
	}
	for c := 'A'; c <= 'Z'; c++ {
		a.class[c] = a.class[c+'a'-'A']
	}
	a.nclass = uint32(next)
	if uint64(maxStates)*uint64(a.nclass) > maxTableEntries {
		return nil, errTooLarge
	}

	// Trie. Row 0 is the root; 0 in a row means "no edge yet", which is
	// unambiguous because no trie edge leads back to the root.
	n := a.nclass
	a.trans = make([]uint32, uint64(maxStates)*uint64(n))
	ownOuts := make([][]output, 1, maxStates)
	states := uint32(1)
	for _, u := range uses {
		s := uint32(0)
		for i := 0; i < len(u.literal); i++ {
			c := uint32(a.class[foldByte(u.literal[i])])
			t := a.trans[s*n+c]
			if t == 0 {
				t = states
				states++
				ownOuts = append(ownOuts, nil)
				a.trans[s*n+c] = t
			}
			s = t
		}
		ownOuts[s] = append(ownOuts[s], u.output)
	}
	a.trans = a.trans[:states*n]

	// Breadth-first: failure links, then the missing transitions filled in
	// from the failure state's row (already complete: it is shallower).
	fail := make([]uint32, states)
	a.dict = make([]int32, states)
	a.dict[0] = -1
	queue := make([]uint32, 0, states)
	for c := uint32(0); c < n; c++ {
		if t := a.trans[c]; t != 0 {
			fail[t] = 0
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		f := fail[s]
		switch {
		case f == 0:
			a.dict[s] = -1
		case len(ownOuts[f]) > 0:
			a.dict[s] = int32(f)
		default:
			a.dict[s] = a.dict[f]
		}
		for c := uint32(0); c < n; c++ {
			t := a.trans[s*n+c]
			if t == 0 {
				a.trans[s*n+c] = a.trans[f*n+c]
				continue
			}
			fail[t] = a.trans[f*n+c]
			queue = append(queue, t)
		}
	}

	// Outputs, sorted by pattern index so a scan can stop at the first
	// output no better than what it already has.
	a.outFrom = make([]int32, states+1)
	for s := uint32(0); s < states; s++ {
		outs := ownOuts[s]
		sort.Slice(outs, func(i, j int) bool { return outs[i].pattern < outs[j].pattern })
		a.outFrom[s] = int32(len(a.outs))
		a.outs = append(a.outs, outs...)
	}
	a.outFrom[states] = int32(len(a.outs))
	if len(a.outs) > 1<<31-1 {
		return nil, fmt.Errorf("too many literal occurrences (%d)", len(a.outs))
	}

	// Premultiply targets and flag the ones that reach an output.
	for i, t := range a.trans {
		v := t * n
		if len(ownOuts[t]) > 0 || a.dict[t] >= 0 {
			v |= hasOutput
		}
		a.trans[i] = v
	}
	return a, nil
}

// bytes reports the size of the matching tables, for diagnostics.
func (a *automaton) bytes() int {
	if a == nil {
		return 0
	}
	return len(a.trans)*4 + len(a.outFrom)*4 + len(a.dict)*4 + len(a.outs)*12
}
