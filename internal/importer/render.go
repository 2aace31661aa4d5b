package importer

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Render writes the policy as YAML.
func (p *Policy) Render() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	if len(p.Header) > 0 {
		lines := make([]string, len(p.Header))
		for i, l := range p.Header {
			lines[i] = cleanComment(l)
		}
		root.HeadComment = strings.Join(lines, "\n")
	}
	if p.Listen != "" {
		addKV(root, "listen", str(p.Listen))
	}
	if len(p.ServerNames) > 0 {
		addKV(root, "server_names", flowList(p.ServerNames))
	}
	if p.Htpasswd != nil {
		h := &yaml.Node{Kind: yaml.MappingNode}
		addKV(h, "file", str(p.Htpasswd.File))
		if p.Htpasswd.Realm != "" {
			addKV(h, "realm", str(p.Htpasswd.Realm))
		}
		if p.Htpasswd.AllowWeakHashes {
			addKV(h, "allow_weak_hashes", boolean(true))
		}
		if len(p.Htpasswd.Roles) > 0 {
			roles := &yaml.Node{Kind: yaml.MappingNode}
			users := make([]string, 0, len(p.Htpasswd.Roles))
			for u := range p.Htpasswd.Roles {
				users = append(users, u)
			}
			slices.Sort(users)
			for _, u := range users {
				addKV(roles, u, flowList(p.Htpasswd.Roles[u]))
			}
			addKV(h, "roles", roles)
		}
		id := &yaml.Node{Kind: yaml.MappingNode}
		addKV(id, "htpasswd", h)
		addKV(root, "identity", id)
	}
	if len(p.Rules) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range p.Rules {
			if r := &p.Rules[i]; r.RequireAuth && len(r.RequireRoles) == 0 && p.Htpasswd != nil && p.Htpasswd.ValidUserRole != "" {
				r.RequireRoles = []string{p.Htpasswd.ValidUserRole}
			}
			seq.Content = append(seq.Content, p.Rules[i].node())
		}
		addKV(root, "rules", seq)
	}
	if len(p.Handlers) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, h := range p.Handlers {
			n := &yaml.Node{Kind: yaml.MappingNode, HeadComment: cleanComment(h.Comment)}
			addKV(n, "path", str(h.Path))
			if h.Upstream != "" {
				addKV(n, "upstream", str(h.Upstream))
			} else {
				addKV(n, "root", str(h.Root))
				if len(h.Index) > 0 {
					addKV(n, "index", flowList(h.Index))
				}
				if h.Listing {
					addKV(n, "listing", boolean(true))
				}
				if len(h.ListingOn) > 0 {
					addKV(n, "listing_on", flowList(h.ListingOn))
				}
				if len(h.ListingOff) > 0 {
					addKV(n, "listing_off", flowList(h.ListingOff))
				}
			}
			seq.Content = append(seq.Content, n)
		}
		addKV(root, "handle", seq)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("render policy: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render policy: %w", err)
	}
	return buf.Bytes(), nil
}

func (r *Rule) node() *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, HeadComment: cleanComment(r.Comment)}
	addKV(n, "name", str(r.Name))
	when := &yaml.Node{Kind: yaml.MappingNode}
	if r.Path != nil {
		pm := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		if len(r.Path.Exact) > 0 {
			addKV(pm, "exact", flowList(r.Path.Exact))
		}
		if len(r.Path.Prefix) > 0 {
			addKV(pm, "prefix", flowList(r.Path.Prefix))
		}
		if len(r.Path.Regex) > 0 {
			addKV(pm, "regex", flowList(r.Path.Regex))
		}
		addKV(pm, "case_sensitive", boolean(r.Path.CaseSensitive))
		addKV(when, "path", pm)
	}
	if len(r.IP) > 0 {
		addKV(when, "ip", flowList(r.IP))
	}
	if len(r.NotIP) > 0 {
		addKV(when, "not_ip", flowList(r.NotIP))
	}
	if len(r.RefererNotIn) > 0 {
		addKV(when, "referer_not_in", flowList(r.RefererNotIn))
	}
	if len(when.Content) > 0 {
		addKV(n, "when", when)
	}
	if r.Expr != "" {
		addKV(n, "expr", str(r.Expr))
	}
	if r.RequireAuth {
		req := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		if len(r.RequireRoles) > 0 {
			addKV(req, "roles_any", flowList(r.RequireRoles))
		} else {
			addKV(req, "authenticated", boolean(true))
		}
		addKV(n, "require", req)
	}
	if r.Action != "" {
		addKV(n, "action", str(r.Action))
	}
	if r.Status != 0 {
		addKV(n, "status", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(r.Status)})
	}
	if r.Reason != "" {
		addKV(n, "reason", str(r.Reason))
	}
	return n
}

// cleanComment makes text safe for a YAML comment line: valid UTF-8,
// control characters written as escapes.
func cleanComment(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case unicode.IsControl(r):
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func addKV(m *yaml.Node, k string, v *yaml.Node) {
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, v)
}

func str(s string) *yaml.Node {
	// The parsers refuse invalid UTF-8 before it gets here; this only keeps
	// the emitter, which panics on it, safe.
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.ToValidUTF8(s, "\uFFFD")}
}

func boolean(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

func flowList(items []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, s := range items {
		n.Content = append(n.Content, str(s))
	}
	return n
}
