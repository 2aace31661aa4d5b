package bot

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// A parser for the parts of Structured Field Values (RFC 9651, formerly
// RFC 8941) that HTTP Message Signatures use: Dictionaries whose members are
// Items or Inner Lists, with Parameters. It keeps each member's raw text,
// since the signature base is built from the serialized values (RFC 9421
// §2.3, §2.5) and a conforming signer sends them serialized.

type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBoolean
)

type sfItem struct {
	kind    sfKind
	str     string // string, token, decimal text
	num     int64
	bytes   []byte
	boolean bool
	params  []sfParam
	raw     string // the item with its parameters, as sent
}

type sfParam struct {
	key string
	val sfItem
}

type sfMember struct {
	key    string
	isList bool
	item   sfItem   // when !isList
	list   []sfItem // when isList
	params []sfParam
	raw    string // the member's value with its parameters, as sent
}

func param(ps []sfParam, key string) (sfItem, bool) {
	for _, p := range ps {
		if p.key == key {
			return p.val, true
		}
	}
	return sfItem{}, false
}

var errSF = errors.New("malformed structured field")

type sfParser struct {
	s string
	i int
}

func (p *sfParser) skipSP() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func parseDictionary(s string) ([]sfMember, error) {
	p := &sfParser{s: s}
	p.skipSP()
	var out []sfMember
	for p.i < len(p.s) {
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		start := p.i
		m := sfMember{key: key}
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			start = p.i
			if p.i < len(p.s) && p.s[p.i] == '(' {
				m.isList = true
				if m.list, err = p.innerList(); err != nil {
					return nil, err
				}
				if m.params, err = p.params(); err != nil {
					return nil, err
				}
			} else {
				if m.item, err = p.item(); err != nil {
					return nil, err
				}
				m.params = m.item.params
			}
		} else {
			m.item = sfItem{kind: sfBoolean, boolean: true}
			if m.params, err = p.params(); err != nil {
				return nil, err
			}
			m.item.params = m.params
		}
		m.raw = p.s[start:p.i]
		out = append(out, m)
		p.skipOWS()
		if p.i >= len(p.s) {
			return out, nil
		}
		if p.s[p.i] != ',' {
			return nil, errSF
		}
		p.i++
		p.skipOWS()
		if p.i >= len(p.s) {
			return nil, errSF // trailing comma
		}
	}
	return out, nil
}

func (p *sfParser) key() (string, error) {
	start := p.i
	if p.i >= len(p.s) || !(p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] == '*') {
		return "", errSF
	}
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) innerList() ([]sfItem, error) {
	p.i++ // '('
	var items []sfItem
	for p.i < len(p.s) {
		p.skipSP()
		if p.i < len(p.s) && p.s[p.i] == ')' {
			p.i++
			return items, nil
		}
		it, err := p.item()
		if err != nil {
			return nil, err
		}
		items = append(items, it)
		if p.i >= len(p.s) || (p.s[p.i] != ' ' && p.s[p.i] != ')') {
			return nil, errSF
		}
	}
	return nil, errSF
}

func (p *sfParser) item() (sfItem, error) {
	start := p.i
	it, err := p.bareItem()
	if err != nil {
		return it, err
	}
	if it.params, err = p.params(); err != nil {
		return it, err
	}
	it.raw = p.s[start:p.i]
	return it, nil
}

func (p *sfParser) params() ([]sfParam, error) {
	var ps []sfParam
	for p.i < len(p.s) && p.s[p.i] == ';' {
		p.i++
		p.skipSP()
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		v := sfItem{kind: sfBoolean, boolean: true}
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			if v, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		ps = append(ps, sfParam{key: k, val: v})
	}
	return ps, nil
}

func (p *sfParser) bareItem() (sfItem, error) {
	if p.i >= len(p.s) {
		return sfItem{}, errSF
	}
	c := p.s[p.i]
	switch {
	case c == '-' || c >= '0' && c <= '9':
		start := p.i
		if c == '-' {
			p.i++
		}
		dot := false
		for p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '.' && !dot) {
			if p.s[p.i] == '.' {
				dot = true
			}
			p.i++
		}
		text := p.s[start:p.i]
		if dot {
			return sfItem{kind: sfDecimal, str: text}, nil
		}
		if len(text) > 16 || text == "-" {
			return sfItem{}, errSF // RFC 9651 §3.3.1: at most 15 digits
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return sfItem{}, errSF
		}
		return sfItem{kind: sfInteger, num: n}, nil
	case c == '"':
		p.i++
		var b strings.Builder
		for p.i < len(p.s) {
			c := p.s[p.i]
			p.i++
			switch {
			case c == '\\':
				if p.i >= len(p.s) || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
					return sfItem{}, errSF
				}
				b.WriteByte(p.s[p.i])
				p.i++
			case c == '"':
				return sfItem{kind: sfString, str: b.String()}, nil
			case c < 0x20 || c > 0x7e:
				return sfItem{}, errSF
			default:
				b.WriteByte(c)
			}
		}
		return sfItem{}, errSF
	case c == ':':
		end := strings.IndexByte(p.s[p.i+1:], ':')
		if end < 0 {
			return sfItem{}, errSF
		}
		b, err := base64.StdEncoding.DecodeString(p.s[p.i+1 : p.i+1+end])
		if err != nil {
			return sfItem{}, errSF
		}
		p.i += end + 2
		return sfItem{kind: sfBytes, bytes: b}, nil
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return sfItem{kind: sfBoolean, boolean: p.s[p.i-1] == '1'}, nil
		}
		return sfItem{}, errSF
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*':
		start := p.i
		p.i++
		for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
			p.i++
		}
		return sfItem{kind: sfToken, str: p.s[start:p.i]}, nil
	}
	return sfItem{}, errSF
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~:/", c) >= 0
}
