package importer

import (
	"fmt"
	"slices"
	"strconv"
)

// Note is one thing the importer did not translate exactly.
type Note struct {
	File string
	Line int
	// Kind is "not translated" (the directive has no effect in the output)
	// or "approximate" (it has, but not with exactly the server's meaning).
	Kind      string
	Directive string
	Why       string
}

// Note kinds.
const (
	NotTranslated = "not translated"
	Approximate   = "approximate"
)

// String is the stderr form: FILE:LINE: not translated: <directive> (<why>).
func (n Note) String() string {
	loc := n.File
	if n.Line > 0 {
		loc += ":" + strconv.Itoa(n.Line)
	}
	return fmt.Sprintf("%s: %s: %s (%s)", loc, n.Kind, n.Directive, n.Why)
}

// Result is a translated policy and what could not be translated.
type Result struct {
	// YAML is a warden config.
	YAML  []byte
	Notes []Note
}

// DedupeNotes drops repeated notes (a directive inherited by several
// locations is reported once) and orders them by file, in the order files
// were first mentioned, then by line.
func DedupeNotes(notes []Note) []Note {
	seen := map[Note]bool{}
	fileOrder := map[string]int{}
	var out []Note
	for _, n := range notes {
		if _, ok := fileOrder[n.File]; !ok {
			fileOrder[n.File] = len(fileOrder)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	slices.SortStableFunc(out, func(a, b Note) int {
		if d := fileOrder[a.File] - fileOrder[b.File]; d != 0 {
			return d
		}
		return a.Line - b.Line
	})
	return out
}
