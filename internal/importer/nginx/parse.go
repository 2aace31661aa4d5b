package nginx

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/warden-gateway/warden/internal/importer"
)

// ngxDirective is one nginx directive: name, arguments, and a block when it
// has one.
type ngxDirective struct {
	name    string
	args    []string
	file    string
	line    int
	isBlock bool
	block   []*ngxDirective
}

// text is the directive as written, for notes.
func (d *ngxDirective) text() string {
	s := d.name
	for _, a := range d.args {
		if a == "" || strings.ContainsAny(a, " \t;{}\"'") {
			s += " " + fmt.Sprintf("%q", a)
		} else {
			s += " " + a
		}
	}
	if d.isBlock {
		s += " {...}"
	}
	return s
}

// parseNginx reads a configuration the way nginx's tokenizer does: words,
// quoted strings with nginx's escapes, # comments, and ; { } as structure.
// include directives are expanded, relative to the folder of the main file
// (nginx's configuration prefix).
func parseNginx(path string) ([]*ngxDirective, error) {
	p := &ngxParser{confDir: filepath.Dir(path)}
	return p.file(path, 0)
}

type ngxParser struct {
	confDir string
	// open are the files being read, innermost last, to refuse include
	// cycles (which nginx would follow until it runs out of file handles).
	open []string
}

const (
	maxIncludeDepth  = 16
	maxIncludedFiles = 1000
)

func (p *ngxParser) file(path string, depth int) ([]*ngxDirective, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read nginx config: %w", err)
	}
	for _, o := range p.open {
		if o == abs {
			return nil, fmt.Errorf("%s includes itself", path)
		}
	}
	p.open = append(p.open, abs)
	defer func() { p.open = p.open[:len(p.open)-1] }()
	data, err := importer.ReadConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("read nginx config: %w", err)
	}
	toks, err := tokenizeNginx(path, string(data))
	if err != nil {
		return nil, err
	}
	pos := 0
	dirs, err := p.block(path, toks, &pos, false, depth)
	if err != nil {
		return nil, err
	}
	return dirs, nil
}

type ngxToken struct {
	text string
	line int
	// punct is ';', '{' or '}' for structure; 0 for words.
	punct byte
}

func (p *ngxParser) block(path string, toks []ngxToken, pos *int, inBlock bool, depth int) ([]*ngxDirective, error) {
	var out []*ngxDirective
	var cur *ngxDirective
	for *pos < len(toks) {
		t := toks[*pos]
		*pos++
		switch t.punct {
		case ';':
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: unexpected \";\"", path, t.line)
			}
			if cur.name == "include" {
				inc, err := p.include(cur, depth)
				if err != nil {
					return nil, err
				}
				out = append(out, inc...)
			} else {
				out = append(out, cur)
			}
			cur = nil
		case '{':
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: unexpected \"{\"", path, t.line)
			}
			cur.isBlock = true
			inner, err := p.block(path, toks, pos, true, depth)
			if err != nil {
				return nil, err
			}
			cur.block = inner
			out = append(out, cur)
			cur = nil
		case '}':
			if cur != nil {
				return nil, fmt.Errorf("%s:%d: directive %q is not terminated by \";\"", path, cur.line, cur.name)
			}
			if !inBlock {
				return nil, fmt.Errorf("%s:%d: unexpected \"}\"", path, t.line)
			}
			return out, nil
		default:
			if cur == nil {
				cur = &ngxDirective{name: t.text, file: path, line: t.line}
			} else {
				cur.args = append(cur.args, t.text)
			}
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: unexpected end of file, expecting \";\" or \"}\"", path, cur.line)
	}
	if inBlock {
		return nil, fmt.Errorf("%s: unexpected end of file, expecting \"}\"", path)
	}
	return out, nil
}

func (p *ngxParser) include(d *ngxDirective, depth int) ([]*ngxDirective, error) {
	if len(d.args) != 1 {
		return nil, fmt.Errorf("%s:%d: include takes one file or pattern", d.file, d.line)
	}
	if depth >= maxIncludeDepth {
		return nil, fmt.Errorf("%s:%d: includes nested more than %d deep", d.file, d.line, maxIncludeDepth)
	}
	pat := d.args[0]
	if !filepath.IsAbs(pat) {
		pat = filepath.Join(p.confDir, pat)
	}
	var files []string
	if strings.ContainsAny(pat, "*?[") {
		m, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: include %s: %v", d.file, d.line, d.args[0], err)
		}
		files = m
	} else {
		files = []string{pat}
	}
	if len(files) > maxIncludedFiles {
		return nil, fmt.Errorf("%s:%d: include %s matches %d files (more than %d)", d.file, d.line, d.args[0], len(files), maxIncludedFiles)
	}
	sort.Strings(files)
	var out []*ngxDirective
	for _, f := range files {
		dirs, err := p.file(f, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: include: %w", d.file, d.line, err)
		}
		out = append(out, dirs...)
	}
	return out, nil
}

// tokenizeNginx splits a configuration into tokens.
func tokenizeNginx(path, src string) ([]ngxToken, error) {
	var toks []ngxToken
	line := 1
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			toks = append(toks, ngxToken{text: string(c), line: line, punct: c})
			i++
		case c == '"' || c == '\'':
			start := line
			quote := c
			i++
			var b strings.Builder
			closed := false
			for i < len(src) {
				ch := src[i]
				if ch == '\\' && i+1 < len(src) {
					i += unescape(&b, src[i+1])
					continue
				}
				if ch == '\n' {
					line++
				}
				if ch == quote {
					closed = true
					i++
					break
				}
				b.WriteByte(ch)
				i++
			}
			if !closed {
				return nil, fmt.Errorf("%s:%d: unterminated quoted string", path, start)
			}
			if i < len(src) && src[i] == ')' {
				// ngx_conf_read_token lets ")" follow a quoted string
				// (if ($x = "")) and drops it.
				i++
			} else if i < len(src) && !strings.ContainsRune(" \t\r\n;{}", rune(src[i])) {
				return nil, fmt.Errorf("%s:%d: unexpected %q after quoted string", path, line, src[i])
			}
			toks = append(toks, ngxToken{text: b.String(), line: start})
		default:
			start := line
			var b strings.Builder
			for i < len(src) {
				ch := src[i]
				if ch == '\\' && i+1 < len(src) {
					i += unescape(&b, src[i+1])
					continue
				}
				if ch == '$' && i+1 < len(src) && src[i+1] == '{' {
					// ${name}: the braces belong to the variable.
					end := strings.IndexByte(src[i:], '}')
					if end < 0 {
						return nil, fmt.Errorf("%s:%d: unterminated ${", path, line)
					}
					b.WriteString(src[i : i+end+1])
					i += end + 1
					continue
				}
				if strings.ContainsRune(" \t\r\n;{}", rune(ch)) {
					break
				}
				b.WriteByte(ch)
				i++
			}
			toks = append(toks, ngxToken{text: b.String(), line: start})
		}
	}
	return toks, nil
}

// unescape applies nginx's escapes after a backslash: \" \' \\ lose the
// backslash, \t \r \n become control characters, anything else is kept as
// written (so regexes keep their \. and \d). It returns the bytes consumed.
func unescape(b *strings.Builder, next byte) int {
	switch next {
	case '"', '\'', '\\':
		b.WriteByte(next)
	case 't':
		b.WriteByte('\t')
	case 'r':
		b.WriteByte('\r')
	case 'n':
		b.WriteByte('\n')
	default:
		b.WriteByte('\\')
		b.WriteByte(next)
	}
	return 2
}
