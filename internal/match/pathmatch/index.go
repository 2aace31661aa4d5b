package pathmatch

import (
	"slices"
	"strings"
)

// Index maps a path to the rules whose patterns could match it, in rule
// order. It is a radix tree over the patterns' literal prefixes: a request
// walks it once along its path and collects the rule lists hung on the nodes
// it passes, instead of testing every rule.
type Index struct {
	sensitive   node
	insensitive node
	// always are rules with no path pattern, or a pattern with no literal
	// prefix; they are candidates for every path.
	always []int32
	n      int32
}

type node struct {
	label    string
	rules    []int32
	first    []byte // first byte of each child's label, for a quick scan
	children []*node
}

// Add registers rule (its position in the policy) under pattern p. A rule
// with several patterns is added once per pattern. Rules are added in
// increasing order.
func (ix *Index) Add(rule int, p *Pattern) {
	lit := p.literalPrefix()
	if lit == "" || lit == "/" {
		ix.AddAlways(rule)
		return
	}
	root := &ix.sensitive
	if p.CaseInsensitive {
		root = &ix.insensitive
	}
	n := root.insert(lit)
	if len(n.rules) == 0 || n.rules[len(n.rules)-1] != int32(rule) {
		n.rules = append(n.rules, int32(rule))
	}
}

// AddAlways registers a rule that must be tested for every path.
func (ix *Index) AddAlways(rule int) {
	if len(ix.always) == 0 || ix.always[len(ix.always)-1] != int32(rule) {
		ix.always = append(ix.always, int32(rule))
	}
}

func (n *node) insert(key string) *node {
	for {
		if key == "" {
			return n
		}
		i := slices.Index(n.first, key[0])
		if i < 0 {
			c := &node{label: key}
			n.first = append(n.first, key[0])
			n.children = append(n.children, c)
			return c
		}
		c := n.children[i]
		common := commonPrefix(c.label, key)
		if common < len(c.label) {
			// split c at common
			mid := &node{label: c.label[:common], first: []byte{c.label[common]}, children: []*node{c}}
			c.label = c.label[common:]
			n.children[i] = mid
			c = mid
		}
		n, key = c, key[common:]
	}
}

func commonPrefix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// maxLists bounds the lists one lookup merges without allocating.
const maxLists = 48

// Candidates is the scratch space of one lookup; it lives on the caller's
// stack.
type Candidates struct {
	lists [maxLists][]int32
	pos   [maxLists]int
	n     int
	// Overflow is set when more lists were hit than fit: the caller must
	// then test every rule (still correct, only slower).
	Overflow bool
}

// Lookup fills c with the candidate lists for a path.
func (ix *Index) Lookup(path, lower string, c *Candidates) {
	c.n = 0
	c.Overflow = false
	c.push(ix.always)
	walk(&ix.sensitive, path, c)
	walk(&ix.insensitive, lower, c)
}

func (c *Candidates) push(l []int32) {
	if len(l) == 0 {
		return
	}
	if c.n == maxLists {
		c.Overflow = true
		return
	}
	c.lists[c.n] = l
	c.pos[c.n] = 0
	c.n++
}

func walk(n *node, s string, c *Candidates) {
	for {
		c.push(n.rules)
		if s == "" {
			return
		}
		i := -1
		for j, b := range n.first {
			if b == s[0] {
				i = j
				break
			}
		}
		if i < 0 {
			return
		}
		child := n.children[i]
		if !strings.HasPrefix(s, child.label) {
			return
		}
		n, s = child, s[len(child.label):]
	}
}

// Next returns the next candidate rule in increasing order, or -1.
func (c *Candidates) Next() int {
	best := int32(-1)
	for i := 0; i < c.n; i++ {
		if c.pos[i] < len(c.lists[i]) {
			if v := c.lists[i][c.pos[i]]; best < 0 || v < best {
				best = v
			}
		}
	}
	if best < 0 {
		return -1
	}
	for i := 0; i < c.n; i++ {
		if c.pos[i] < len(c.lists[i]) && c.lists[i][c.pos[i]] == best {
			c.pos[i]++
		}
	}
	return int(best)
}
