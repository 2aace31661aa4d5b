package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Pos is a place in a config file. Every config value that can be wrong on
// its own carries one, so that errors found long after parsing (a bad CIDR,
// a shadowed rule) still say file:line.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Scalar is a string value with its position.
type Scalar struct {
	Value string
	Pos   Pos
}

// Duration is a time.Duration written as "5s", "250ms", "1h30m".
type Duration struct {
	time.Duration
	Pos Pos
}

// Error is one config mistake at a position, with an optional hint.
type Error struct {
	Pos  Pos
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	s := e.Msg
	if p := e.Pos.String(); p != "" {
		s = p + ": " + s
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Errors collects every mistake found, so one `warden check` shows them all.
type Errors []*Error

func (es *Errors) add(p Pos, hint, format string, args ...any) {
	*es = append(*es, &Error{Pos: p, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// Sort orders errors by file and line, the order an operator fixes them in.
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Pos.File != es[j].Pos.File {
			return es[i].Pos.File < es[j].Pos.File
		}
		return es[i].Pos.Line < es[j].Pos.Line
	})
}

// Err returns the collected errors joined, or nil.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// decoder maps YAML nodes onto config structs strictly: unknown keys,
// duplicate keys and wrong kinds are errors, each with its position. It is a
// small reflective walker because yaml.v3 drops strictness inside custom
// unmarshalers and stops at the first semantic error.
type decoder struct {
	file string
	errs Errors
	// incomplete are the sections that held an unknown key: what compiles
	// from them may be missing the setting the operator meant to give.
	incomplete []Pos
}

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

var (
	scalarType   = reflect.TypeOf(Scalar{})
	durationType = reflect.TypeOf(Duration{})
	posType      = reflect.TypeOf(Pos{})
)

func (d *decoder) decode(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && v.Kind() != reflect.String && v.Type() != scalarType {
		return // "key:" with nothing: leave the zero value
	}
	switch v.Type() {
	case scalarType:
		if n.Kind != yaml.ScalarNode {
			d.errs.add(d.pos(n), "", "%s: want a single value, got %s", what, kindName(n))
			return
		}
		v.Set(reflect.ValueOf(Scalar{Value: n.Value, Pos: d.pos(n)}))
		return
	case durationType:
		if n.Kind != yaml.ScalarNode {
			d.errs.add(d.pos(n), "", "%s: want a duration such as 5s, got %s", what, kindName(n))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil || dur < 0 {
			d.errs.add(d.pos(n), "write it as 500ms, 5s or 2m", "%s: %q is not a duration", what, n.Value)
			return
		}
		v.Set(reflect.ValueOf(Duration{Duration: dur, Pos: d.pos(n)}))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), what)
	case reflect.Struct:
		d.decodeStruct(n, v, what)
	case reflect.Slice:
		if n.Kind == yaml.ScalarNode {
			// A single value where a list is expected: a list of one.
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
			d.decode(n, v.Index(0), what)
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errs.add(d.pos(n), "", "%s: want a list, got %s", what, kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", what, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errs.add(d.pos(n), "", "%s: want a mapping, got %s", what, kindName(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				d.errs.add(d.pos(k), "", "%s: duplicate key %q", what, k.Value)
				continue
			}
			seen[k.Value] = true
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, ev, what+"."+k.Value)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), ev)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errs.add(d.pos(n), "", "%s: want a string, got %s", what, kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := parseBool(n)
		if !ok {
			d.errs.add(d.pos(n), "", "%s: want true or false, got %q", what, n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.errs.add(d.pos(n), "", "%s: want a whole number, got %q", what, n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.errs.add(d.pos(n), "", "%s: want a number, got %q", what, n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.errs.add(d.pos(n), "", "%s: internal: cannot decode into %s", what, v.Type())
	}
}

func parseBool(n *yaml.Node) (bool, bool) {
	if n.Kind != yaml.ScalarNode {
		return false, false
	}
	switch strings.ToLower(n.Value) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, what string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Type == posType {
			v.Field(i).Set(reflect.ValueOf(d.pos(n)))
		}
	}
	if n.Kind != yaml.MappingNode {
		d.errs.add(d.pos(n), "", "%s: want a mapping of settings, got %s", what, kindName(n))
		return
	}
	fields := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = i
		names = append(names, tag)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		if !ok {
			hint := ""
			if s := closest(k.Value, names); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
			} else {
				hint = "known keys: " + strings.Join(names, ", ")
			}
			d.errs.add(d.pos(k), hint, "unknown key %q in %s", k.Value, what)
			d.incomplete = append(d.incomplete, d.pos(n))
			continue
		}
		if seen[k.Value] {
			d.errs.add(d.pos(k), "", "duplicate key %q in %s", k.Value, what)
			continue
		}
		seen[k.Value] = true
		d.decode(val, v.Field(idx), what+"."+k.Value)
	}
}

// closest suggests a known key within edit distance 2, or 3 for keys of
// eight letters or more, so that a singular such as "trusted_proxy" still
// finds "trusted_proxies".
func closest(s string, names []string) string {
	best, bestD := "", 3
	if len(s) >= 8 {
		bestD = 4
	}
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
