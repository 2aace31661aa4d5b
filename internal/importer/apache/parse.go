package apache

import (
	"fmt"
	"strings"

	"github.com/warden-gateway/warden/internal/importer"
)

// apDirective is one Apache directive or container (<Directory ...>).
type apDirective struct {
	name    string // as written; compare with strings.EqualFold
	args    []string
	file    string
	line    int
	isBlock bool
	block   []*apDirective
}

func (d *apDirective) is(name string) bool { return strings.EqualFold(d.name, name) }

func (d *apDirective) text() string {
	var b strings.Builder
	if d.isBlock {
		b.WriteString("<")
	}
	b.WriteString(d.name)
	for _, a := range d.args {
		b.WriteByte(' ')
		if a == "" || strings.ContainsAny(a, " \t\"") {
			fmt.Fprintf(&b, "%q", a)
		} else {
			b.WriteString(a)
		}
	}
	if d.isBlock {
		b.WriteString(">")
	}
	return b.String()
}

// parseApache reads .htaccess syntax: one directive a line, backslash
// continuations, # comments, and <Container args> ... </Container> blocks.
func parseApache(path string) ([]*apDirective, error) {
	data, err := importer.ReadConfigFile(path)
	if err != nil {
		return nil, fmt.Errorf("read apache config: %w", err)
	}
	type frame struct {
		d    *apDirective
		list *[]*apDirective
	}
	var top []*apDirective
	stack := []frame{{list: &top}}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		text := strings.TrimRight(lines[i], "\r")
		for strings.HasSuffix(text, "\\") && i+1 < len(lines) {
			i++
			text = strings.TrimSuffix(text, "\\") + strings.TrimRight(lines[i], "\r")
		}
		text = strings.TrimSpace(text)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		cur := stack[len(stack)-1]
		if strings.HasPrefix(text, "</") {
			name := strings.TrimSpace(strings.TrimSuffix(text[2:], ">"))
			if cur.d == nil || !strings.EqualFold(cur.d.name, name) {
				return nil, fmt.Errorf("%s:%d: </%s> without a matching <%s>", path, lineNo, name, name)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		if strings.HasPrefix(text, "<") {
			if !strings.HasSuffix(text, ">") {
				return nil, fmt.Errorf("%s:%d: container line must end with >", path, lineNo)
			}
			words, err := apWords(strings.TrimSuffix(text[1:], ">"))
			if err != nil || len(words) == 0 {
				return nil, fmt.Errorf("%s:%d: malformed container", path, lineNo)
			}
			d := &apDirective{name: words[0], args: words[1:], file: path, line: lineNo, isBlock: true}
			*cur.list = append(*cur.list, d)
			stack = append(stack, frame{d: d, list: &d.block})
			continue
		}
		words, err := apWords(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, lineNo, err)
		}
		*cur.list = append(*cur.list, &apDirective{name: words[0], args: words[1:], file: path, line: lineNo})
	}
	if len(stack) > 1 {
		d := stack[len(stack)-1].d
		return nil, fmt.Errorf("%s:%d: <%s> is not closed", path, d.line, d.name)
	}
	return top, nil
}

// apWords splits a line into words as Apache's ap_getword_conf does:
// whitespace separates, "..." and '...' quote, and a backslash before the
// quote character escapes it.
func apWords(s string) ([]string, error) {
	var out []string
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		if q := s[i]; q == '"' || q == '\'' {
			i++
			var b strings.Builder
			closed := false
			for i < len(s) {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == q || s[i+1] == '\\') {
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if s[i] == q {
					closed = true
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quote")
			}
			out = append(out, b.String())
			continue
		}
		start := i
		for i < len(s) && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		out = append(out, s[start:i])
	}
}
