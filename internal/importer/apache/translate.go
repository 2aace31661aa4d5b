// Package apache translates Apache 2.4 access control (.htaccess files and
// <Directory> blocks) into a warden policy, written through package
// importer's shared model.
package apache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/warden-gateway/warden/internal/importer"

	"github.com/warden-gateway/warden/internal/match/referer"
)

// Import translates Apache access control into a warden policy: .htaccess
// files (which apply to the folder that holds them) and files of
// <Directory> blocks, for a site whose DocumentRoot is docroot.
//
// The server configuration above the files is assumed to grant everyone
// (Require all granted), to list no folders and to use index.html.
func Import(docroot string, files ...string) (*importer.Result, error) {
	return ImportWith(ServerDefaults{Options: []string{"FollowSymLinks"}, DirectoryIndex: []string{"index.html"}}, docroot, files...)
}

// ServerDefaults is what the server configuration above the document root
// says, which .htaccess files inherit.
type ServerDefaults struct {
	// Options of the <Directory> holding the document root; Debian's stock
	// apache2.conf has "Indexes FollowSymLinks" for /var/www/.
	Options []string
	// DirectoryIndex of the server (Debian's dir.conf lists index.html,
	// index.cgi, index.pl, index.php, index.xhtml, index.htm).
	DirectoryIndex []string
	// Source names where the defaults come from, for notes (a flag).
	Source string
}

// DebianDefaults are the defaults of Debian's stock apache2.conf and
// dir.conf for /var/www.
var DebianDefaults = ServerDefaults{
	Options:        []string{"Indexes", "FollowSymLinks"},
	DirectoryIndex: []string{"index.html", "index.cgi", "index.pl", "index.php", "index.xhtml", "index.htm"},
	Source:         "Debian's stock apache2.conf",
}

// FindHtaccess lists every .htaccess file under docroot, parents before
// the folders they hold, as Apache reads them walking down to a request's
// folder (it does not follow symlinked folders here: Apache reads those
// only with FollowSymLinks, and then as the folder they point to).
func FindHtaccess(docroot string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(docroot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == ".htaccess" {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", docroot, err)
	}
	return out, nil
}

// ImportWith is Import with the server's defaults given. With no files,
// every .htaccess under docroot is read.
func ImportWith(def ServerDefaults, docroot string, files ...string) (*importer.Result, error) {
	root, err := filepath.Abs(docroot)
	if err != nil {
		return nil, fmt.Errorf("document root %s: %w", docroot, err)
	}
	if len(files) == 0 {
		if files, err = FindHtaccess(root); err != nil {
			return nil, err
		}
	}
	t := &apTranslator{docroot: filepath.Clean(root), scopes: map[string]*apScope{}, defaults: def}
	for _, f := range files {
		dirs, err := parseApache(f)
		if err != nil {
			return nil, err
		}
		if err := t.file(f, dirs); err != nil {
			return nil, err
		}
	}
	return t.translate()
}

// apAuthz is a node of mod_authz_core's tree: a Require line (provider) or
// a <RequireAll|RequireAny|RequireNone> section.
// userRolePlaceholders names the roles of Require user NAME; they are the
// roles HtpasswdFile.UserRole grants.
func userRolePlaceholders(users []string) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = importer.UserRoleName(u)
	}
	return out
}

type apAuthz struct {
	d        *apDirective
	and      bool // RequireAll; RequireAny and the implicit top level are "or"
	negate   bool // Require not ..., RequireNone
	children []*apAuthz
	// provider, for Require lines: "ip" (set), "all" (granted), "valid-user",
	// or "" for one the importer cannot evaluate.
	provider string
	granted  bool
	set      importer.IPSet
	users    []string // Require user NAME...
}

// The callers eval considers: nobody signed in, a signed-in user no
// Require user names (anyUser), or a named user.
const (
	noUser  = ""
	anyUser = "\x00any"
)

// userNames lists the names of every Require user line in the tree.
func (n *apAuthz) userNames() []string {
	var out []string
	if n.provider == "user" {
		out = append(out, n.users...)
	}
	for _, c := range n.children {
		for _, u := range c.userNames() {
			if !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	return out
}

// mod_authz_core's results.
type authzStatus int

const (
	authzDenied authzStatus = iota
	authzGranted
	authzNeutral
	authzDeniedNoUser
)

// authzPartition maps each result to the client addresses that get it.
type authzPartition map[authzStatus]importer.IPSet

// eval evaluates the tree for every client address at once, with or
// without an authenticated user, following apply_authz_sections: "and"
// stops at the first denial, "or" at the first grant, and negation turns a
// grant into a denial and a denial into neutral.
func (n *apAuthz) eval(user string) authzPartition {
	var res authzPartition
	if n.children == nil && n.provider != "" || n.children == nil && n.d != nil && !n.d.isBlock {
		switch n.provider {
		case "ip":
			res = authzPartition{authzGranted: n.set, authzDenied: n.set.Complement()}
		case "all":
			if n.granted {
				res = authzPartition{authzGranted: importer.AllAddrs()}
			} else {
				res = authzPartition{authzDenied: importer.AllAddrs()}
			}
		case "valid-user":
			if user != noUser {
				res = authzPartition{authzGranted: importer.AllAddrs()}
			} else {
				res = authzPartition{authzDeniedNoUser: importer.AllAddrs()}
			}
		case "user":
			switch {
			case user == noUser:
				res = authzPartition{authzDeniedNoUser: importer.AllAddrs()}
			case slices.Contains(n.users, user):
				res = authzPartition{authzGranted: importer.AllAddrs()}
			default:
				res = authzPartition{authzDenied: importer.AllAddrs()}
			}
		default:
			// Unknown providers never grant (reported when parsed).
			if n.negate {
				res = authzPartition{authzGranted: importer.AllAddrs()}
			} else {
				res = authzPartition{authzDenied: importer.AllAddrs()}
			}
		}
	} else {
		res = authzPartition{authzNeutral: importer.AllAddrs()}
		for _, c := range n.children {
			cr := c.eval(user)
			next := authzPartition{}
			for as, aset := range res {
				for cs, cset := range cr {
					both := aset.Intersect(cset)
					if both.IsEmpty() {
						continue
					}
					r := combineAuthz(n.and, as, cs)
					next[r] = next[r].Union(both)
				}
			}
			res = next
		}
	}
	if n.negate {
		neg := authzPartition{}
		for s, set := range res {
			switch s {
			case authzGranted:
				s = authzDenied
			case authzDenied, authzDeniedNoUser:
				s = authzNeutral
			}
			neg[s] = neg[s].Union(set)
		}
		res = neg
	}
	return res
}

func combineAuthz(and bool, acc, child authzStatus) authzStatus {
	if child == authzNeutral {
		return acc
	}
	if and {
		switch {
		case acc == authzDenied:
			return authzDenied
		case child == authzDenied:
			return authzDenied
		case child == authzDeniedNoUser:
			return authzDeniedNoUser
		case acc == authzNeutral:
			return child
		}
		return acc
	}
	switch {
	case acc == authzGranted:
		return authzGranted
	case child == authzGranted:
		return authzGranted
	case child == authzDeniedNoUser && (acc == authzDenied || acc == authzNeutral):
		return authzDeniedNoUser
	case acc == authzNeutral:
		return child
	}
	return acc
}

// apLegacy is mod_access_compat's Order/Allow/Deny.
type apLegacy struct {
	order          string // "deny,allow" (default), "allow,deny", "mutual-failure"
	allows, denies importer.IPSet
	ds             []*apDirective
}

// denied is the set of addresses mod_access_compat refuses.
func (l *apLegacy) denied() importer.IPSet {
	if l.order == "deny,allow" {
		return l.denies.Minus(l.allows)
	}
	return l.allows.Minus(l.denies).Complement()
}

type apCond struct {
	d                   *apDirective
	test, pattern       string
	negate, nocase, orF bool
}

type apRewrite struct {
	d       *apDirective
	conds   []apCond
	pattern string
	nocase  bool
	status  int // 403 for [F], 410 for [G]; 0 when the rule is not a refusal
	prefix  string
}

type apFiles struct {
	d       *apDirective
	scope   *apScope // the directory it sits in
	basenRe string   // regex a whole file name must match
	literal string   // the name of a <Files> section without wildcards
	authz   *apAuthz
	legacy  *apLegacy
}

// apScope is the configuration of one directory: a .htaccess file or a
// <Directory> block.
type apScope struct {
	prefix        string
	decl          *apDirective
	authz         *apAuthz
	legacy        *apLegacy
	authType      *apDirective
	authName      *apDirective
	authUserFile  *apDirective
	options       []*apDirective
	dirIndex      *apDirective
	rewriteEngine *apDirective
	rewriteSet    bool
	rewrites      []*apRewrite
	pendingConds  []apCond
	files         []*apFiles
	// broken is a directive Apache refuses to load; every request below
	// the folder then gets 500.
	broken *apDirective
}

// apEffective is a directory's configuration after Apache's merging:
// authz, legacy access and rewrite rules are replaced as a whole by a deeper
// directory that sets them; the rest is inherited setting by setting.
type apEffective struct {
	authz        *apAuthz
	legacy       *apLegacy
	authUserFile *apDirective
	authName     *apDirective
	authType     *apDirective
	rewriteOn    bool
	rewrites     []*apRewrite
	listing      bool
	// symlinks: FollowSymLinks or SymLinksIfOwnerMatch is on, without which
	// per-directory mod_rewrite refuses every request (403).
	symlinks    bool
	follow      bool // FollowSymLinks (Apache's default)
	ownerMatch  bool // SymLinksIfOwnerMatch
	symlinksSrc *apDirective
	index       []string
	indexSrc    *apDirective
	broken      *apDirective
}

type apTranslator struct {
	docroot string
	scopes  map[string]*apScope
	notes   []importer.Note
	// htpasswd is the first AuthUserFile in use.
	htpasswd *apDirective
	realm    string
	// namedUsers are the users of Require user lines in effect.
	namedUsers []string
	defaults   ServerDefaults
}

func (t *apTranslator) note(d *apDirective, kind, why string) {
	t.notes = append(t.notes, importer.Note{File: d.file, Line: d.line, Kind: kind, Directive: d.text(), Why: why})
}

func (t *apTranslator) src(d *apDirective) importer.Note {
	return importer.Note{File: d.file, Line: d.line, Directive: d.text()}
}

func (t *apTranslator) comment(d *apDirective, what string) string {
	return fmt.Sprintf("%s:%d: %s", d.file, d.line, what)
}

// prefixFor maps a folder to the URL prefix it serves under the docroot.
func (t *apTranslator) prefixFor(dir string) (string, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	rel, err := filepath.Rel(t.docroot, filepath.Clean(abs))
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	if rel == "." {
		return "/", true
	}
	return "/" + filepath.ToSlash(rel) + "/", true
}

func (t *apTranslator) scope(prefix string, decl *apDirective) *apScope {
	s, ok := t.scopes[prefix]
	if !ok {
		s = &apScope{prefix: prefix, decl: decl}
		t.scopes[prefix] = s
	}
	return s
}

func (t *apTranslator) file(path string, dirs []*apDirective) error {
	var top []*apDirective
	for _, d := range dirs {
		if d.isBlock && d.is("Directory") && !utf8.ValidString(strings.Join(d.args, " ")) {
			t.note(d, importer.NotTranslated, "not valid UTF-8")
			continue
		}
		if d.isBlock && d.is("Directory") {
			if len(d.args) != 1 || d.args[0] == "~" {
				t.note(d, importer.NotTranslated, "only <Directory /path> with a plain folder is translated; its rules are NOT applied")
				continue
			}
			dir := d.args[0]
			if strings.ContainsAny(dir, "*?[") {
				t.note(d, importer.NotTranslated, "wildcard folders are not translated; its rules are NOT applied")
				continue
			}
			prefix, ok := t.prefixFor(dir)
			if !ok {
				t.note(d, importer.NotTranslated, "the folder is outside the document root "+t.docroot)
				continue
			}
			t.body(d.block, t.scope(prefix, d), true)
			continue
		}
		if d.isBlock && (d.is("DirectoryMatch") || d.is("Location") || d.is("LocationMatch") || d.is("VirtualHost")) {
			t.note(d, importer.NotTranslated, "only .htaccess directives and <Directory> blocks are translated; its rules are NOT applied")
			continue
		}
		top = append(top, d)
	}
	if len(top) == 0 {
		return nil
	}
	prefix, ok := t.prefixFor(filepath.Dir(path))
	if !ok {
		return fmt.Errorf("%s: a .htaccess file applies to its own folder, and %s is not inside the document root %s", path, filepath.Dir(path), t.docroot)
	}
	t.body(top, t.scope(prefix, nil), true)
	return nil
}

// Directives with no bearing on who gets in.
var apIrrelevant = map[string]bool{
	"addtype": true, "addhandler": true, "addcharset": true, "adddefaultcharset": true, "addencoding": true,
	"addoutputfilterbytype": true, "header": true, "requestheader": true, "expiresactive": true, "expiresbytype": true,
	"expiresdefault": true, "filesetag": true, "setenv": true, "setenvif": true, "setenvifnocase": true,
	"defaulttype": true, "forcetype": true, "sethandler": true, "php_value": true, "php_flag": true,
	"indexoptions": true, "indexignore": true, "headername": true, "readmename": true, "addicon": true,
	"addiconbytype": true, "addiconbyencoding": true, "defaulticon": true, "addlanguage": true, "languagepriority": true,
	"fileetag": true, "contentdigest": true, "allowoverride": true, "allowoverridelist": true,
}

// body reads the directives of a directory scope (dir true) or of a
// <Files> section or Require container (dir false) into s.
func (t *apTranslator) body(dirs []*apDirective, s *apScope, dir bool) {
	for _, d := range dirs {
		t.directive(d, s, &s.authz, &s.legacy, dir)
	}
	if b := t.checkAuthz(s.authz); b != nil && s.broken == nil {
		s.broken = b
	}
	for _, f := range s.files {
		if b := t.checkAuthz(f.authz); b != nil && s.broken == nil {
			s.broken = b
		}
	}
	if len(s.pendingConds) > 0 {
		for _, c := range s.pendingConds {
			t.note(c.d, importer.NotTranslated, "RewriteCond without a following RewriteRule")
		}
		s.pendingConds = nil
	}
}

func (t *apTranslator) directive(d *apDirective, s *apScope, authz **apAuthz, legacy **apLegacy, dir bool) {
	for _, a := range append([]string{d.name}, d.args...) {
		if !utf8.ValidString(a) {
			t.note(d, importer.NotTranslated, "not valid UTF-8")
			return
		}
	}
	name := strings.ToLower(d.name)
	if d.isBlock {
		switch name {
		case "requireall", "requireany", "requirenone":
			node := t.authzSection(d)
			addAuthz(authz, node, d)
		case "ifmodule":
			if len(d.args) == 1 && strings.HasPrefix(d.args[0], "!") {
				t.note(d, importer.NotTranslated, "the module is assumed to be loaded, so this block does not apply")
				return
			}
			for _, c := range d.block {
				t.directive(c, s, authz, legacy, dir)
			}
		case "files", "filesmatch":
			if !dir {
				t.note(d, importer.NotTranslated, "<Files> sections cannot nest")
				return
			}
			t.filesSection(d, s)
		case "limit", "limitexcept":
			t.note(d, importer.NotTranslated, "per-method access rules are not translated; its rules are NOT applied")
		case "directory":
			t.note(d, importer.NotTranslated, "<Directory> is only translated at the top level of a file")
		default:
			t.note(d, importer.NotTranslated, "this section is not translated; its rules are NOT applied")
		}
		return
	}
	switch name {
	case "require":
		addAuthz(authz, t.requireLine(d), d)
	case "order":
		l := ensureLegacy(legacy)
		l.ds = append(l.ds, d)
		if len(d.args) != 1 {
			t.note(d, importer.NotTranslated, "Order takes deny,allow or allow,deny")
			return
		}
		switch o := strings.ToLower(strings.ReplaceAll(d.args[0], " ", "")); o {
		case "deny,allow", "allow,deny", "mutual-failure":
			l.order = o
		default:
			t.note(d, importer.NotTranslated, "Order takes deny,allow, allow,deny or mutual-failure")
		}
	case "allow", "deny":
		l := ensureLegacy(legacy)
		l.ds = append(l.ds, d)
		if len(d.args) < 2 || !strings.EqualFold(d.args[0], "from") {
			t.note(d, importer.NotTranslated, "expected "+d.name+" from ...")
			return
		}
		for _, a := range d.args[1:] {
			var set importer.IPSet
			if strings.EqualFold(a, "all") {
				set = importer.AllAddrs()
			} else if strings.HasPrefix(strings.ToLower(a), "env=") {
				t.note(d, importer.NotTranslated, a+": environment conditions are not translated (treated as never matching)")
				continue
			} else {
				var err error
				if set, err = importer.ParseApacheAddr(a); err != nil {
					t.note(d, importer.NotTranslated, err.Error()+" (treated as never matching)")
					continue
				}
			}
			if name == "allow" {
				l.allows = l.allows.Union(set)
			} else {
				l.denies = l.denies.Union(set)
			}
		}
	case "satisfy":
		if len(d.args) == 1 && strings.EqualFold(d.args[0], "all") {
			return
		}
		t.note(d, importer.NotTranslated, "only Satisfy All (the default) is translated: Order/Allow/Deny and Require must both pass")
	case "authtype":
		if len(d.args) != 1 || !strings.EqualFold(d.args[0], "basic") {
			t.note(d, importer.NotTranslated, "only AuthType Basic is translated")
			return
		}
		s.authType = d
	case "authname":
		s.authName = d
	case "authuserfile":
		if len(d.args) != 1 {
			t.note(d, importer.NotTranslated, "takes one file")
			return
		}
		s.authUserFile = d
	case "authbasicprovider":
		if len(d.args) == 1 && strings.EqualFold(d.args[0], "file") {
			return
		}
		t.note(d, importer.NotTranslated, "only the file provider (htpasswd) is translated")
	case "options":
		if !dir {
			t.note(d, importer.NotTranslated, "Options belongs to a folder")
			return
		}
		s.options = append(s.options, d)
		var other []string
		for _, a := range d.args {
			o := strings.ToLower(strings.TrimLeft(a, "+-"))
			if o != "indexes" && o != "all" && o != "none" && o != "followsymlinks" && o != "symlinksifownermatch" {
				other = append(other, a)
			}
		}
		if len(other) > 0 {
			t.note(d, importer.NotTranslated, "only Indexes (and FollowSymLinks for mod_rewrite) is translated, not "+strings.Join(other, " "))
		}
	case "directoryindex":
		if !dir {
			t.note(d, importer.NotTranslated, "DirectoryIndex belongs to a folder")
			return
		}
		if len(d.args) == 0 {
			t.note(d, importer.NotTranslated, "DirectoryIndex needs at least one file name")
			return
		}
		for _, a := range d.args {
			if strings.EqualFold(a, "disabled") || strings.Contains(a, "/") {
				t.note(d, importer.NotTranslated, "only plain index file names are translated")
				return
			}
		}
		s.dirIndex = d
	case "rewriteengine":
		if len(d.args) != 1 {
			t.note(d, importer.NotTranslated, "takes on or off")
			return
		}
		s.rewriteEngine = d
		s.rewriteSet = true
	case "rewritecond":
		t.rewriteCond(d, s)
	case "rewriterule":
		t.rewriteRule(d, s)
	case "rewritebase":
		s.rewriteSet = true
		t.note(d, importer.NotTranslated, "only refusing rewrite rules ([F], [G]) are translated; the base does not change them")
	case "rewriteoptions":
		s.rewriteSet = true
		t.note(d, importer.NotTranslated, "rewrite options are not translated; rules of parent folders are not inherited")
	case "errordocument":
		t.note(d, importer.NotTranslated, "warden renders its own refusal pages")
	case "authgroupfile":
		t.note(d, importer.NotTranslated, "groups are not translated")
	default:
		if apIrrelevant[name] {
			t.note(d, importer.NotTranslated, "not an access-control setting")
			return
		}
		t.note(d, importer.NotTranslated, "unknown to the importer")
	}
}

// checkAuthz drops what Apache refuses to load: a negated requirement
// (Require not, RequireNone) directly inside an "any" section, where it
// could never decide, and a section with only negated requirements.
// It returns the first offending directive, or nil.
func (t *apTranslator) checkAuthz(n *apAuthz) *apDirective {
	if n == nil || n.children == nil {
		return nil
	}
	var bad *apDirective
	for _, c := range n.children {
		if c.negate && !n.and {
			t.note(c.d, importer.NotTranslated, "Apache refuses a negated requirement inside RequireAny, RequireNone or at the top level; the folder is translated as answering 500, as Apache does for a .htaccess it cannot load")
			if bad == nil {
				bad = c.d
			}
			continue
		}
		if b := t.checkAuthz(c); b != nil && bad == nil {
			bad = b
		}
	}
	positive := false
	for _, c := range n.children {
		if !c.negate {
			positive = true
		}
	}
	if !positive && len(n.children) > 0 {
		t.note(n.d, importer.NotTranslated, "Apache refuses a section with only negated requirements; the folder is translated as answering 500")
		if bad == nil {
			bad = n.d
		}
	}
	return bad
}

func ensureLegacy(l **apLegacy) *apLegacy {
	if *l == nil {
		*l = &apLegacy{order: "deny,allow"}
	}
	return *l
}

// addAuthz appends a Require line or section to the implicit top-level
// "any" section of a scope.
func addAuthz(root **apAuthz, n *apAuthz, d *apDirective) {
	if n == nil {
		return
	}
	if *root == nil {
		*root = &apAuthz{d: d, children: []*apAuthz{}}
	}
	(*root).children = append((*root).children, n)
}

func (t *apTranslator) authzSection(d *apDirective) *apAuthz {
	n := &apAuthz{d: d, children: []*apAuthz{}}
	switch strings.ToLower(d.name) {
	case "requireall":
		n.and = true
	case "requirenone":
		n.negate = true
	}
	for _, c := range d.block {
		switch {
		case c.isBlock && (c.is("RequireAll") || c.is("RequireAny") || c.is("RequireNone")):
			n.children = append(n.children, t.authzSection(c))
		case !c.isBlock && c.is("Require"):
			if r := t.requireLine(c); r != nil {
				n.children = append(n.children, r)
			}
		default:
			t.note(c, importer.NotTranslated, "only Require lines and Require sections belong in "+d.name)
		}
	}
	return n
}

func (t *apTranslator) requireLine(d *apDirective) *apAuthz {
	args := d.args
	n := &apAuthz{d: d}
	if len(args) > 0 && strings.EqualFold(args[0], "not") {
		n.negate = true
		args = args[1:]
	}
	if len(args) == 0 {
		t.note(d, importer.NotTranslated, "Require without a provider")
		return nil
	}
	switch strings.ToLower(args[0]) {
	case "all":
		if len(args) != 2 || !strings.EqualFold(args[1], "granted") && !strings.EqualFold(args[1], "denied") {
			t.note(d, importer.NotTranslated, "Require all takes granted or denied")
			return nil
		}
		n.provider, n.granted = "all", strings.EqualFold(args[1], "granted")
	case "ip":
		n.provider = "ip"
		for _, a := range args[1:] {
			set, err := importer.ParseApacheAddr(a)
			if err != nil {
				t.note(d, importer.Approximate, err.Error()+" (treated as never matching)")
				continue
			}
			n.set = n.set.Union(set)
		}
	case "local":
		n.provider = "ip"
		lo, _ := importer.ParseApacheAddr("127.0.0.0/8")
		lo6, _ := importer.ParseApacheAddr("::1")
		n.set = lo.Union(lo6)
		t.note(d, importer.Approximate, "local is translated as 127.0.0.0/8 and ::1; Apache also counts the server's own addresses")
	case "valid-user":
		n.provider = "valid-user"
	case "user":
		if len(args) < 2 {
			t.note(d, importer.NotTranslated, "Require user without a name")
			return nil
		}
		n.provider, n.users = "user", args[1:]
	default:
		t.note(d, importer.Approximate, "this Require provider is not translated; it is treated as never granting")
	}
	return n
}

// filesSection reads <Files name> or <FilesMatch regex> into a file-name
// regex and its access rules.
func (t *apTranslator) filesSection(d *apDirective, s *apScope) {
	if len(d.args) != 1 && !(len(d.args) == 2 && d.args[0] == "~") {
		t.note(d, importer.NotTranslated, "malformed section; its rules are NOT applied")
		return
	}
	pat := d.args[len(d.args)-1]
	isRegex := d.is("FilesMatch") || len(d.args) == 2
	var re string
	if isRegex {
		var err error
		if re, err = basenameRegex(pat); err != nil {
			t.note(d, importer.NotTranslated, err.Error()+"; its rules are NOT applied")
			return
		}
	} else {
		re = wildcardRegex(pat)
	}
	f := &apFiles{d: d, scope: s, basenRe: re}
	if !isRegex && !strings.ContainsAny(pat, "*?[") {
		f.literal = pat
	}
	for _, c := range d.block {
		var unused *apScope = &apScope{}
		name := strings.ToLower(c.name)
		switch name {
		case "require", "requireall", "requireany", "requirenone", "order", "allow", "deny", "satisfy", "ifmodule":
			t.directive(c, unused, &f.authz, &f.legacy, false)
		default:
			t.note(c, importer.NotTranslated, "only access rules (Require, Order/Allow/Deny) of a <Files> section are translated")
		}
	}
	s.files = append(s.files, f)
}

// filesOverlap reports whether some file name could match both sections;
// it errs on yes.
func filesOverlap(a, b *apFiles) bool {
	matches := func(re, name string) bool {
		m, err := regexp.MatchString("^"+re+"$", name)
		return err != nil || m
	}
	switch {
	case a.literal != "" && b.literal != "":
		return a.literal == b.literal
	case a.literal != "":
		return matches(b.basenRe, a.literal)
	case b.literal != "":
		return matches(a.basenRe, b.literal)
	}
	return true
}

// wildcardRegex turns a <Files> wildcard (*, ?) into a regex for a whole
// file name.
func wildcardRegex(w string) string {
	var b strings.Builder
	for _, c := range w {
		switch c {
		case '*':
			b.WriteString("[^/]*")
		case '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

// basenameRegex turns a FilesMatch regex, which Apache searches for in the
// file name, into one that a whole file name must match: anchors stay
// anchors, an unanchored side gets [^/]*, and everything that could match a
// slash is kept from doing so (a file name has none), so that the regex
// cannot match across folders once it is applied to a path.
func basenameRegex(pat string) (string, error) {
	re, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return "", fmt.Errorf("the regex is not valid in Go's RE2 syntax: %v", err)
	}
	startAnchored, endAnchored := false, false
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	if len(subs) > 0 && (subs[0].Op == syntax.OpBeginText || subs[0].Op == syntax.OpBeginLine) {
		startAnchored = true
		subs = subs[1:]
	}
	if len(subs) > 0 && (subs[len(subs)-1].Op == syntax.OpEndText || subs[len(subs)-1].Op == syntax.OpEndLine) {
		endAnchored = true
		subs = subs[:len(subs)-1]
	}
	var core strings.Builder
	for _, s := range subs {
		if hasAnchor(s) {
			return "", fmt.Errorf("anchors inside the regex are not translated")
		}
		noSlash(s)
		core.WriteString(s.String())
	}
	out := core.String()
	if !startAnchored {
		out = "[^/]*" + out
	}
	if !endAnchored {
		out += "[^/]*"
	}
	return "(?:" + out + ")", nil
}

func hasAnchor(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText:
		return true
	}
	for _, s := range re.Sub {
		if hasAnchor(s) {
			return true
		}
	}
	return false
}

// noSlash rewrites re in place so that no part of it matches '/'.
func noSlash(re *syntax.Regexp) {
	switch re.Op {
	case syntax.OpAnyChar:
		re.Op = syntax.OpCharClass
		re.Rune = []rune{0, '/' - 1, '/' + 1, 0x10FFFF}
	case syntax.OpAnyCharNotNL:
		re.Op = syntax.OpCharClass
		re.Rune = []rune{0, '\n' - 1, '\n' + 1, '/' - 1, '/' + 1, 0x10FFFF}
	case syntax.OpCharClass:
		var out []rune
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if lo <= '/' && '/' <= hi {
				if lo < '/' {
					out = append(out, lo, '/'-1)
				}
				if hi > '/' {
					out = append(out, '/'+1, hi)
				}
				continue
			}
			out = append(out, lo, hi)
		}
		re.Rune = out
	case syntax.OpLiteral:
		// A literal slash can never match a file name; leave it, the regex
		// then simply never matches.
	}
	for _, s := range re.Sub {
		noSlash(s)
	}
}

func (t *apTranslator) rewriteCond(d *apDirective, s *apScope) {
	s.rewriteSet = true
	if len(d.args) < 2 || len(d.args) > 3 {
		t.note(d, importer.NotTranslated, "malformed RewriteCond")
		s.pendingConds = append(s.pendingConds, apCond{d: d})
		return
	}
	c := apCond{d: d, test: d.args[0], pattern: d.args[1]}
	if strings.HasPrefix(c.pattern, "!") {
		c.negate = true
		c.pattern = c.pattern[1:]
	}
	if len(d.args) == 3 {
		for _, f := range strings.Split(strings.Trim(d.args[2], "[]"), ",") {
			switch strings.ToLower(strings.TrimSpace(f)) {
			case "nc", "nocase":
				c.nocase = true
			case "or", "ornext":
				c.orF = true
			default:
				c.orF = true // unknown flag: make the condition untranslatable
			}
		}
	}
	s.pendingConds = append(s.pendingConds, c)
}

func (t *apTranslator) rewriteRule(d *apDirective, s *apScope) {
	s.rewriteSet = true
	conds := s.pendingConds
	s.pendingConds = nil
	r := &apRewrite{d: d, conds: conds, prefix: s.prefix}
	if len(d.args) < 2 || len(d.args) > 3 {
		t.note(d, importer.NotTranslated, "malformed RewriteRule")
		return
	}
	r.pattern = d.args[0]
	if len(d.args) == 3 {
		for _, f := range strings.Split(strings.Trim(d.args[2], "[]"), ",") {
			switch f = strings.ToLower(strings.TrimSpace(f)); {
			case f == "f" || f == "forbidden":
				r.status = 403
			case f == "g" || f == "gone":
				r.status = 410
			case strings.HasPrefix(f, "r=") || strings.HasPrefix(f, "redirect="):
				// mod_rewrite: a code outside 300-399 drops the
				// substitution and answers with that status.
				_, code, _ := strings.Cut(f, "=")
				if n, err := strconv.Atoi(code); err == nil && n >= 400 && n <= 599 {
					r.status = n
				}
			case f == "nc" || f == "nocase":
				r.nocase = true
			}
		}
	}
	if r.status == 0 {
		t.note(d, importer.NotTranslated, "only refusing rewrite rules ([F], [G], [R=4xx]) are translated")
		for _, c := range conds {
			t.note(c.d, importer.NotTranslated, "belongs to a rewrite rule that is not translated")
		}
		return
	}
	s.rewrites = append(s.rewrites, r)
}

// ruleFor translates a refusing rewrite rule for the paths of region
// prefix (which lies at or below the folder that defines the rule). ok is
// false when the rule is not translated (and reported) or cannot match in
// the region.
func (t *apTranslator) rewriteRuleOut(r *apRewrite, region string) (importer.Rule, bool) {
	out := importer.Rule{Name: importer.OrRoot(importer.Slug(region)) + "-rewrite", Src: t.src(r.d), Action: "deny"}
	switch r.status {
	case 403:
	case 404:
		out.Action = "conceal"
	default:
		out.Status = r.status
	}
	if strings.HasPrefix(r.pattern, "!") {
		t.note(r.d, importer.NotTranslated, "negated rewrite patterns are not translated; the refusal is NOT applied")
		return out, false
	}
	// The pattern is searched for in the path below the folder that
	// defines the rule (per-directory rewriting strips that prefix).
	re, err := syntax.Parse(r.pattern, syntax.Perl)
	if err != nil {
		t.note(r.d, importer.NotTranslated, "the regex is not valid in Go's RE2 syntax: "+err.Error()+"; the refusal is NOT applied")
		return out, false
	}
	body := r.pattern
	anchored := false
	if re.Op == syntax.OpConcat && len(re.Sub) > 0 && (re.Sub[0].Op == syntax.OpBeginText || re.Sub[0].Op == syntax.OpBeginLine) {
		anchored = true
		body = strings.TrimPrefix(r.pattern, "^")
		if body == r.pattern {
			t.note(r.d, importer.NotTranslated, "the anchor is not where the importer expects it; the refusal is NOT applied")
			return out, false
		}
		re.Sub = re.Sub[1:]
	} else if re.Op == syntax.OpBeginText || re.Op == syntax.OpBeginLine {
		anchored, body = true, ""
		re = &syntax.Regexp{Op: syntax.OpEmptyMatch}
	}
	if hasBeginAnchor(re) {
		t.note(r.d, importer.NotTranslated, "anchors inside the pattern are not translated; the refusal is NOT applied")
		return out, false
	}
	var full string
	switch {
	case region == r.prefix:
		if anchored {
			full = "^" + regexp.QuoteMeta(r.prefix) + "(?:" + body + ")"
		} else {
			full = "^" + regexp.QuoteMeta(r.prefix) + ".*(?:" + body + ")"
		}
	case anchored:
		// The region is a subfolder: keep the rule only if its paths can
		// match, judged by the literal start of the pattern.
		rel := strings.TrimPrefix(region, r.prefix)
		lit := literalStart(r.pattern)
		if !strings.HasPrefix(lit, rel) && !strings.HasPrefix(rel, lit) {
			return out, false
		}
		full = "^" + regexp.QuoteMeta(r.prefix) + "(?:" + body + ")"
		if !strings.HasPrefix(lit, rel) {
			t.note(r.d, importer.Approximate, "in "+region+" the rule is also tried before that folder's own access rules")
		}
	default:
		full = "^" + regexp.QuoteMeta(region) + ".*(?:" + body + ")"
		if canMatchSlash(re) {
			t.note(r.d, importer.Approximate, "in "+region+" only matches below that folder are found")
		}
	}
	if _, err := regexp.Compile(full); err != nil {
		t.note(r.d, importer.NotTranslated, "the regex is not valid in Go's RE2 syntax: "+err.Error()+"; the refusal is NOT applied")
		return out, false
	}
	out.Path = &importer.PathMatch{Regex: []string{full}, CaseSensitive: !r.nocase}
	comment := r.d.text()
	refererList := true
	for _, c := range r.conds {
		if !strings.EqualFold(c.test, "%{HTTP_REFERER}") || c.orF || !c.negate {
			refererList = false
		}
	}
	if !refererList {
		// Conditions on headers, the query, the path and the method become
		// a CEL condition, with mod_rewrite's [OR] binding tighter than the
		// implicit AND between lines.
		expr, err := condsExpr(r.conds)
		if err != nil {
			t.note(r.d, importer.NotTranslated, err.Error()+"; the rule's refusal is NOT applied")
			return out, false
		}
		out.Expr = expr
		for _, c := range r.conds {
			comment += fmt.Sprintf("; %s (line %d)", c.d.text(), c.d.line)
		}
		out.Comment = t.comment(r.d, comment)
		return out, true
	}
	for _, c := range r.conds {
		entries, ok := t.refererEntries(c)
		if !ok {
			return out, false
		}
		out.RefererNotIn = append(out.RefererNotIn, entries...)
		comment += fmt.Sprintf("; %s (line %d)", c.d.text(), c.d.line)
	}
	if len(out.RefererNotIn) > 0 && needsHostEntry(out.RefererNotIn) {
		// valid_referers takes none only alongside a host entry; this one
		// names a host no browser sends (RFC 6761 reserves .invalid).
		out.RefererNotIn = append(out.RefererNotIn, "referer.invalid")
		comment += "; referer.invalid is a placeholder host: none needs a host entry beside the regexes"
	}
	if len(out.RefererNotIn) > 0 {
		if _, err := referer.Compile(out.RefererNotIn, []string{""}); err != nil {
			t.note(r.d, importer.NotTranslated, "its Referer conditions do not translate to a valid list ("+err.Error()+"); the refusal is NOT applied")
			return out, false
		}
	}
	out.Comment = t.comment(r.d, comment)
	if len(out.RefererNotIn) > 0 {
		out.Name = importer.OrRoot(importer.Slug(region)) + "-referer"
	}
	return out, true
}

func hasBeginAnchor(re *syntax.Regexp) bool {
	if re.Op == syntax.OpBeginLine || re.Op == syntax.OpBeginText {
		return true
	}
	for _, s := range re.Sub {
		if hasBeginAnchor(s) {
			return true
		}
	}
	return false
}

func canMatchSlash(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return true
	case syntax.OpLiteral:
		return slices.Contains(re.Rune, '/')
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] <= '/' && '/' <= re.Rune[i+1] {
				return true
			}
		}
	}
	for _, s := range re.Sub {
		if canMatchSlash(s) {
			return true
		}
	}
	return false
}

// literalStart is the literal text an anchored pattern starts with.
func literalStart(pat string) string {
	re, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return ""
	}
	if re.Op != syntax.OpConcat {
		return ""
	}
	var b strings.Builder
	for _, s := range re.Sub[1:] {
		if s.Op != syntax.OpLiteral || s.Flags&syntax.FoldCase != 0 {
			break
		}
		b.WriteString(string(s.Rune))
	}
	return b.String()
}

// Scheme prefixes of Referer regexes, which nginx-style referer rules leave
// out: they match what follows http:// or https://.
var refererSchemes = []string{`https?://`, `https?:\/\/`, `http(s)?://`, `http(s)?:\/\/`, `(http|https)://`, `(https|http)://`, `https{0,1}://`, `(https?)://`}

// refererEntries turns a negated Referer condition into referer_not_in
// entries: ^$ is "none"; ^https?://host/ in its usual shapes becomes host
// entries (example.com, www.example.com, .example.com, *.example.com);
// anything else after ^https?:// becomes the regex ~^rest, which referer
// rules match against the Referer without its scheme.
func (t *apTranslator) refererEntries(c apCond) ([]string, bool) {
	if c.pattern == "^$" {
		return []string{"none"}, true
	}
	p := c.pattern
	if !strings.HasPrefix(p, "^") {
		t.note(c.d, importer.Approximate, "an unanchored Referer pattern is matched against the Referer without its http:// or https://; Referers with other schemes are refused")
		return []string{"~" + caseFlag(c) + p}, true
	}
	rest := p[1:]
	scheme := false
	for _, s := range refererSchemes {
		if strings.HasPrefix(strings.ToLower(rest), s) {
			rest, scheme = rest[len(s):], true
			break
		}
	}
	if !scheme {
		for _, s := range []string{"http://", `http:\/\/`, "https://", `https:\/\/`} {
			if strings.HasPrefix(strings.ToLower(rest), s) {
				t.note(c.d, importer.Approximate, "Referer rules accept http:// and https:// alike; this pattern names one scheme")
				rest, scheme = rest[len(s):], true
				break
			}
		}
	}
	if !scheme {
		t.note(c.d, importer.NotTranslated, "a Referer pattern must be ^$ or start with ^https?:// to be translated; the rule's refusal is NOT applied")
		return nil, false
	}
	if hosts, terminated, ok := refererHosts(rest); ok {
		if !terminated {
			t.note(c.d, importer.Approximate, "the pattern also accepts hosts that merely begin with "+hosts[len(hosts)-1]+" (such as "+hosts[len(hosts)-1]+".evil.test); the host entry accepts that host only")
		}
		return hosts, true
	}
	return []string{"~" + caseFlag(c) + "^" + rest}, true
}

// Shapes of the host part of Referer patterns, as written in hotlink
// snippets, and the valid_referers entries they mean.
var (
	refererHostEnds = []string{`(/.*)?$`, `(/|$)`, `($|/)`, `/.*$`, `/.*`, `/`, `$`}
	// subdomain prefixes: optional (the domain and its subdomains) ...
	refererAnySub = []string{`([^/]+\.)?`, `([^/]*\.)?`, `(.+\.)?`, `(.*\.)?`, `([a-z0-9-]+\.)*`, `([-a-z0-9]+\.)*`, `([a-z0-9.-]+\.)?`}
	// ... and required (subdomains only).
	refererSomeSub = []string{`[^/]+\.`, `.+\.`, `[a-z0-9-]+\.`, `[-a-z0-9]+\.`, `[a-z0-9.-]+\.`}
	literalHost    = regexp.MustCompile(`^[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*$`)
)

// refererHosts recognizes "(www\.)?example\.com/" and similar. terminated
// reports whether the pattern ends the host (with /, $ or the like); without
// that Apache also accepts longer hosts.
func refererHosts(rest string) (hosts []string, terminated, ok bool) {
	for _, end := range refererHostEnds {
		if strings.HasSuffix(rest, end) {
			rest, terminated = strings.TrimSuffix(rest, end), true
			break
		}
	}
	kind := "exact"
	switch {
	case strings.HasPrefix(rest, `(www\.)?`):
		kind, rest = "www", strings.TrimPrefix(rest, `(www\.)?`)
	default:
		for _, p := range refererAnySub {
			if strings.HasPrefix(rest, p) {
				kind, rest = "any", strings.TrimPrefix(rest, p)
				break
			}
		}
		if kind == "exact" {
			for _, p := range refererSomeSub {
				if strings.HasPrefix(rest, p) {
					kind, rest = "some", strings.TrimPrefix(rest, p)
					break
				}
			}
		}
	}
	host := strings.ReplaceAll(rest, `\.`, ".")
	host = strings.ReplaceAll(host, `\-`, "-")
	if !literalHost.MatchString(host) {
		return nil, false, false
	}
	host = strings.ToLower(host)
	switch kind {
	case "www":
		return []string{host, "www." + host}, terminated, true
	case "any":
		return []string{"." + host}, terminated, true
	case "some":
		return []string{"*." + host}, terminated, true
	}
	return []string{host}, terminated, true
}

// needsHostEntry reports a list with none (or blocked) and regexes but no
// host entry, which the referer matcher refuses, as nginx does.
func needsHostEntry(entries []string) bool {
	special := false
	for _, e := range entries {
		switch {
		case e == "none" || e == "blocked":
			special = true
		case strings.HasPrefix(e, "~"):
		default:
			return false
		}
	}
	return special
}

// caseFlag keeps Apache's case-sensitive matching (no [NC]); nginx-style
// referer regexes are otherwise matched without regard to case.
func caseFlag(c apCond) string {
	if c.nocase {
		return ""
	}
	return "(?-i)"
}

// effective merges the scopes from the document root down to prefix.
func (t *apTranslator) effective(prefix string) apEffective {
	e := apEffective{index: []string{"index.html"}}
	if len(t.defaults.DirectoryIndex) > 0 {
		e.index = slices.Clone(t.defaults.DirectoryIndex)
	}
	e.listing = applyOptions(false, t.defaults.Options, "indexes")
	e.follow = applyOptions(false, t.defaults.Options, "followsymlinks")
	e.ownerMatch = applyOptions(false, t.defaults.Options, "symlinksifownermatch")
	e.symlinks = e.follow || e.ownerMatch
	var chain []*apScope
	for p, s := range t.scopes {
		if strings.HasPrefix(prefix, p) {
			chain = append(chain, s)
		}
	}
	slices.SortFunc(chain, func(a, b *apScope) int { return len(a.prefix) - len(b.prefix) })
	for _, s := range chain {
		if s.broken != nil && e.broken == nil {
			e.broken = s.broken
		}
		if s.authz != nil {
			e.authz = s.authz
		}
		if s.legacy != nil {
			e.legacy = s.legacy
		}
		if s.authUserFile != nil {
			e.authUserFile = s.authUserFile
		}
		if s.authName != nil {
			e.authName = s.authName
		}
		if s.authType != nil {
			e.authType = s.authType
		}
		if s.rewriteEngine != nil {
			e.rewriteOn = strings.EqualFold(s.rewriteEngine.args[0], "on")
		}
		if s.rewriteSet {
			e.rewrites = s.rewrites
		}
		for _, o := range s.options {
			e.listing = applyOptions(e.listing, o.args, "indexes")
			e.follow = applyOptions(e.follow, o.args, "followsymlinks")
			e.ownerMatch = applyOptions(e.ownerMatch, o.args, "symlinksifownermatch")
			if on := e.follow || e.ownerMatch; on != e.symlinks {
				e.symlinks, e.symlinksSrc = on, o
			}
		}
		if s.dirIndex != nil {
			e.index, e.indexSrc = s.dirIndex.args, s.dirIndex
		}
	}
	return e
}

// applyOptions applies one Options line to one option (lower-case name):
// +/- adjust it; a list without signs replaces the whole set.
func applyOptions(cur bool, args []string, option string) bool {
	signed := false
	for _, a := range args {
		if strings.HasPrefix(a, "+") || strings.HasPrefix(a, "-") {
			signed = true
		}
	}
	if !signed {
		cur = false
	}
	for _, a := range args {
		switch strings.ToLower(a) {
		case option, "+" + option, "all":
			cur = true
		case "-" + option, "none":
			cur = false
		}
	}
	return cur
}

// sameAccess reports whether two directories decide alike, so that a
// subfolder needs no region of its own.
func sameAccess(a, b *apEffective) bool {
	return a.broken == b.broken && a.authz == b.authz && a.legacy == b.legacy && a.authUserFile == b.authUserFile &&
		a.rewriteOn == b.rewriteOn && slices.Equal(a.rewrites, b.rewrites) && a.symlinks == b.symlinks
}

func (t *apTranslator) translate() (*importer.Result, error) {
	if _, ok := t.scopes["/"]; !ok {
		t.scopes["/"] = &apScope{prefix: "/"}
	}
	prefixes := make([]string, 0, len(t.scopes))
	for p := range t.scopes {
		prefixes = append(prefixes, p)
	}
	// Deepest first: a region ends with an allow, so deeper folders must
	// come before the folders that contain them.
	slices.SortFunc(prefixes, func(a, b string) int {
		if d := strings.Count(b, "/") - strings.Count(a, "/"); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	effs := map[string]apEffective{}
	for _, p := range prefixes {
		effs[p] = t.effective(p)
	}
	// Regions: a folder needs its own only when it decides differently from
	// the folder above it.
	var regions []string
	for _, p := range prefixes {
		if p == "/" {
			regions = append(regions, p)
			continue
		}
		parent := effs[t.parentScope(p)]
		e := effs[p]
		if !sameAccess(&e, &parent) || len(t.scopes[p].files) > 0 {
			regions = append(regions, p)
		}
	}
	var rules []importer.Rule
	// <Files> sections are merged after all <Directory> sections, so their
	// regions come first; within a region the section merged last wins.
	for _, region := range regions {
		e := effs[region]
		var applicable []*apFiles
		for _, p := range prefixes {
			if strings.HasPrefix(region, p) {
				applicable = append(applicable, t.scopes[p].files...)
			}
		}
		slices.SortStableFunc(applicable, func(a, b *apFiles) int { return len(a.scope.prefix) - len(b.scope.prefix) })
		for i, f := range applicable {
			for _, g := range applicable[:i] {
				if filesOverlap(f, g) {
					t.note(f.d, importer.Approximate, fmt.Sprintf("for names that %s (line %d) also matches, Apache merges both sections; warden uses this one's access rules whole", g.d.text(), g.d.line))
					break
				}
			}
		}
		for i := len(applicable) - 1; i >= 0; i-- {
			f := applicable[i]
			fe := e
			if f.authz != nil {
				fe.authz = f.authz
			}
			if f.legacy != nil {
				fe.legacy = f.legacy
			}
			pm := &importer.PathMatch{Regex: []string{"^" + regexp.QuoteMeta(region) + "(?:[^/]*/)*" + f.basenRe + "$"}, CaseSensitive: true}
			label := fmt.Sprintf("%s in %s", f.d.text(), region)
			base := importer.OrRoot(importer.Slug(region)) + "-files-line" + fmt.Sprint(f.d.line)
			rules = append(rules, t.regionRules(base, pm, &fe, region, label, f.d)...)
		}
	}
	for _, region := range regions {
		e := effs[region]
		pm := &importer.PathMatch{Prefix: []string{region}, CaseSensitive: true}
		decl := t.scopes[region].decl
		label := "folder " + region
		if region == "/" {
			pm = nil
		}
		rules = append(rules, t.regionRules(importer.OrRoot(importer.Slug(region)), pm, &e, region, label, decl)...)
	}
	out := &importer.Policy{}
	out.Rules = importer.Prune(rules, &t.notes)
	importer.UniqueNames(out.Rules)
	out.Handlers = t.handlers(prefixes, effs)
	src := t.defaults.Source
	if src == "" {
		src = "server defaults"
	}
	t.notes = append(t.notes, importer.DefaultsNotes(importer.Note{File: src, Directive: "<Directory " + t.docroot + "> Options " + strings.Join(t.defaults.Options, " ")}, importer.Apache)...)
	if t.htpasswd != nil {
		h, notes := importer.HtpasswdFor(t.htpasswd.args[0], t.docroot, t.realm, t.src(t.htpasswd), importer.Apache)
		if !filepath.IsAbs(t.htpasswd.args[0]) {
			t.note(t.htpasswd, importer.Approximate, "a relative AuthUserFile is relative to Apache's ServerRoot; it is read relative to the document root")
		}
		out.Htpasswd = h
		for _, u := range t.namedUsers {
			h.UserRole(u)
		}
		t.notes = append(t.notes, notes...)
	}
	out.Header = []string{
		"Translated by `warden import htaccess --root " + t.docroot + "`.",
		"Rules are tried top to bottom; the first rule that decides wins. Each folder",
		"with its own access rules becomes a region that ends with an allow, deepest",
		"folders first, after the regions of <Files> sections. It assumes the server",
		"configuration above these files grants everyone (Require all granted).",
	}
	y, err := out.Render()
	if err != nil {
		return nil, err
	}
	return &importer.Result{YAML: y, Notes: importer.DedupeNotes(t.notes)}, nil
}

// parentScope is the nearest configured folder above p.
func (t *apTranslator) parentScope(p string) string {
	best := "/"
	for q := range t.scopes {
		if q != p && strings.HasPrefix(p, q) && len(q) > len(best) {
			best = q
		}
	}
	return best
}

// regionRules translates one region: Order/Allow/Deny (access checker),
// then Require (authorization), then refusing rewrite rules (which
// per-directory mod_rewrite runs in the fixup phase, after both), then the
// terminal allow.
func (t *apTranslator) regionRules(base string, pm *importer.PathMatch, e *apEffective, region, label string, decl *apDirective) []importer.Rule {
	var rules []importer.Rule
	if e.broken != nil {
		return append(rules, importer.Rule{Name: base + "-broken", Path: pm, Action: "deny", Status: 500, Src: t.src(e.broken),
			Reason:  "the server configuration for this folder cannot be loaded",
			Comment: t.comment(e.broken, label+": Apache cannot load this configuration and answers 500")})
	}
	if e.legacy != nil {
		d := e.legacy.ds[0]
		var lines []string
		for _, x := range e.legacy.ds {
			lines = append(lines, fmt.Sprintf("%s (line %d)", x.text(), x.line))
		}
		r := importer.Rule{Name: base + "-order", Path: pm, Action: "deny", Src: t.src(d),
			Comment: t.comment(d, label+": "+strings.Join(lines, "; "))}
		if r.SetIP(e.legacy.denied()) {
			rules = append(rules, r)
		}
	}
	if e.authz != nil {
		rules = append(rules, t.authzRules(base, pm, e, label)...)
	}
	filesRegion := pm != nil && pm.Regex != nil
	if filesRegion && closes(rules, pm) {
		// Every request of the region is refused before mod_rewrite runs.
		return rules
	}
	if e.rewriteOn && !e.symlinks {
		d := e.symlinksSrc
		return append(rules, importer.Rule{Name: base + "-rewrite-forbidden", Path: pm, Action: "deny", Src: t.src(d),
			Comment: t.comment(d, label+": RewriteEngine is on without FollowSymLinks or SymLinksIfOwnerMatch, so mod_rewrite refuses every request")})
	}
	if e.rewriteOn {
		for _, rw := range e.rewrites {
			r, ok := t.rewriteRuleOut(rw, region)
			if !ok {
				continue
			}
			r.Name = base + strings.TrimPrefix(r.Name, importer.OrRoot(importer.Slug(region)))
			if filesRegion {
				// RE2 cannot require both the <Files> pattern and the
				// rewrite pattern, so the rule is placed here unrestricted:
				// for other paths it runs before their folder's Require.
				t.note(rw.d, importer.Approximate, "inside the region of "+decl.text()+" the refusal is checked with the rewrite pattern alone; for other paths in "+region+" it may come before their folder's Require")
			}
			rules = append(rules, r)
		}
	}
	end := importer.Rule{Name: base + "-end", Path: pm, Action: "allow", Synthetic: true}
	if decl != nil {
		end.Comment = t.comment(decl, "end of "+label+": rules below never apply to it")
	} else {
		end.Comment = "end of " + label + ": rules below never apply to it"
	}
	return append(rules, end)
}

// closes reports whether rules refuse every request on path pm, whoever
// asks.
func closes(rules []importer.Rule, pm *importer.PathMatch) bool {
	for i := range rules {
		r := &rules[i]
		if r.Decides() && r.Action != "allow" && r.UnconditionalWithin() && importer.PathCovers(r.Path, pm) {
			return true
		}
	}
	return false
}

// authzRules turns the Require tree into address sets: granted without
// signing in, refused with 403, allowed after signing in, and refused with
// 401 even after signing in.
func (t *apTranslator) authzRules(base string, pm *importer.PathMatch, e *apEffective, label string) []importer.Rule {
	var rules []importer.Rule
	anonymous := e.authz.eval(noUser)
	withUser := e.authz.eval(anyUser)
	forbidden := anonymous[authzDenied].Union(anonymous[authzNeutral])
	needUser := anonymous[authzDeniedNoUser]
	passAfter := needUser.Intersect(withUser[authzGranted])
	// Addresses where only some named users pass: grouped by the set of
	// names that pass there.
	type named struct {
		users []string
		addrs importer.IPSet
	}
	var byName []named
	passNamed := importer.IPSet{}
	for _, u := range e.authz.userNames() {
		extra := needUser.Intersect(e.authz.eval(u)[authzGranted]).Minus(passAfter)
		if extra.IsEmpty() {
			continue
		}
		passNamed = passNamed.Union(extra)
		found := false
		for i := range byName {
			if byName[i].addrs.Equal(extra) {
				byName[i].users = append(byName[i].users, u)
				found = true
			}
		}
		if !found {
			byName = append(byName, named{users: []string{u}, addrs: extra})
		}
	}
	never := needUser.Minus(passAfter).Minus(passNamed)
	d := e.authz.d
	desc := t.authzText(e.authz)
	r := importer.Rule{Name: base + "-require", Path: pm, Action: "deny", Src: t.src(d), Comment: t.comment(d, label+": "+desc)}
	if r.SetIP(forbidden) {
		rules = append(rules, r)
	}
	if needUser.IsEmpty() {
		return rules
	}
	if e.authUserFile == nil || e.authType == nil {
		t.note(d, importer.NotTranslated, "Require valid-user needs AuthType Basic and AuthUserFile in effect; sign-in is not translated and these requests are refused")
		r := importer.Rule{Name: base + "-no-auth", Path: pm, Action: "deny", Status: 500, Src: t.src(d), Comment: t.comment(d, label+": sign-in required but not configured")}
		if r.SetIP(needUser) {
			rules = append(rules, r)
		}
		return rules
	}
	t.useHtpasswd(e)
	if !never.IsEmpty() {
		t.note(d, importer.Approximate, "some addresses are refused with 401 even after signing in; warden refuses them with 401 without asking for credentials")
		r := importer.Rule{Name: base + "-refused-users", Path: pm, Action: "deny", Status: 401, Src: t.src(d), Comment: t.comment(d, label+": refused even after signing in")}
		if r.SetIP(never) {
			rules = append(rules, r)
		}
	}
	g := importer.Rule{Name: base + "-auth", Path: pm, RequireAuth: true, Src: t.src(e.authUserFile),
		Comment: t.comment(d, fmt.Sprintf("%s: sign-in via %s (line %d)", label, e.authUserFile.text(), e.authUserFile.line))}
	if g.SetIP(passAfter) {
		rules = append(rules, g)
	}
	if len(byName) > 0 {
		t.note(d, importer.Approximate, "a signed-in user that Require user does not name is refused with 403 role_required; Apache answers 401")
	}
	for _, nm := range byName {
		g := importer.Rule{Name: base + "-users", Path: pm, RequireAuth: true, Src: t.src(d),
			Comment: t.comment(d, fmt.Sprintf("%s: Require user %s; sign-in via %s (line %d)", label, strings.Join(nm.users, " "), e.authUserFile.text(), e.authUserFile.line))}
		t.namedUsers = append(t.namedUsers, nm.users...)
		if g.SetIP(nm.addrs) {
			// The roles are given once the user file is known (translate).
			g.RequireRoles = userRolePlaceholders(nm.users)
			rules = append(rules, g)
		}
	}
	return rules
}

func (t *apTranslator) authzText(n *apAuthz) string {
	var parts []string
	var walk func(n *apAuthz)
	walk = func(n *apAuthz) {
		if n.children == nil {
			parts = append(parts, fmt.Sprintf("%s (line %d)", n.d.text(), n.d.line))
			return
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(parts, "; ")
}

func (t *apTranslator) useHtpasswd(e *apEffective) {
	realm := ""
	if e.authName != nil && len(e.authName.args) > 0 {
		realm = e.authName.args[0]
	}
	if t.htpasswd == nil {
		t.htpasswd, t.realm = e.authUserFile, realm
		return
	}
	if e.authUserFile.args[0] != t.htpasswd.args[0] {
		t.note(e.authUserFile, importer.Approximate, fmt.Sprintf("warden checks one htpasswd file; %s (line %d) is used everywhere", t.htpasswd.args[0], t.htpasswd.line))
	}
}

// handlers serves the document root, with a handler of its own for each
// folder whose DirectoryIndex differs and listing prefixes for Options
// Indexes.
func (t *apTranslator) handlers(prefixes []string, effs map[string]apEffective) []importer.Handler {
	rootEff := effs["/"]
	main := importer.Handler{Path: "/", Root: t.docroot, Listing: rootEff.listing,
		Comment: "DocumentRoot " + t.docroot + "; Apache serves dotfiles other than .ht*, warden none unless serve_dotfiles: true"}
	if !slices.Equal(rootEff.index, []string{"index.html"}) {
		main.Index = rootEff.index
	}
	hs := []importer.Handler{main}
	sorted := slices.Clone(prefixes)
	slices.SortFunc(sorted, func(a, b string) int { return len(a) - len(b) })
	for _, p := range sorted {
		if p == "/" {
			continue
		}
		e := effs[p]
		owner := 0
		for i := range hs {
			if strings.HasPrefix(p, hs[i].Path) && len(hs[i].Path) > len(hs[owner].Path) {
				owner = i
			}
		}
		idx := hs[owner].Index
		if idx == nil {
			idx = []string{"index.html"}
		}
		if !slices.Equal(idx, e.index) {
			h := importer.Handler{Path: p, Root: t.docroot, Listing: e.listing, Index: e.index}
			if e.indexSrc != nil {
				h.Comment = t.comment(e.indexSrc, e.indexSrc.text())
			}
			hs = append(hs, h)
			continue
		}
		h := &hs[owner]
		if e.listing != h.ListingAt(p) {
			if e.listing {
				h.ListingOn = append(h.ListingOn, p)
			} else {
				h.ListingOff = append(h.ListingOff, p)
			}
		}
	}
	return hs
}

// condsExpr writes a chain of RewriteCond lines as one CEL condition.
func condsExpr(conds []apCond) (string, error) {
	var and []string
	var or []string
	for _, c := range conds {
		e, err := condExpr(c)
		if err != nil {
			return "", fmt.Errorf("%s (line %d): %v", c.d.text(), c.d.line, err)
		}
		or = append(or, e)
		if !c.orF {
			and = append(and, "("+strings.Join(or, " || ")+")")
			or = nil
		}
	}
	if len(or) > 0 {
		// A trailing [OR] joins nothing; mod_rewrite treats it as the end.
		and = append(and, "("+strings.Join(or, " || ")+")")
	}
	return strings.Join(and, " && "), nil
}

// condExpr writes one RewriteCond as CEL: its test string as the request
// field warden has, its pattern as an RE2 regex.
func condExpr(c apCond) (string, error) {
	if c.d == nil || c.test == "" {
		return "", errors.New("malformed condition")
	}
	header := func(name string) string {
		q := strconv.Quote(strings.ToLower(name))
		return "(" + q + " in request.headers ? request.headers[" + q + "] : '')"
	}
	var subject string
	switch t := strings.ToUpper(c.test); {
	case t == "%{HTTP_REFERER}":
		subject = header("referer")
	case t == "%{HTTP_USER_AGENT}":
		subject = header("user-agent")
	case t == "%{HTTP_HOST}":
		subject = "request.host"
	case t == "%{QUERY_STRING}":
		subject = "request.query"
	case t == "%{REQUEST_URI}":
		subject = "request.path"
	case t == "%{REQUEST_METHOD}":
		subject = "request.method"
	case strings.HasPrefix(t, "%{HTTP:") && strings.HasSuffix(t, "}"):
		subject = header(c.test[7 : len(c.test)-1])
	default:
		return "", errors.New("the test string " + c.test + " is not translated")
	}
	pat := c.pattern
	if pat == "" || strings.ContainsAny(pat[:1], "<>=") || strings.HasPrefix(pat, "-") {
		return "", errors.New("only regex conditions are translated")
	}
	if c.nocase {
		pat = "(?i)" + pat
	}
	if _, err := regexp.Compile(pat); err != nil {
		return "", errors.New("the regex is not valid in RE2 syntax: " + err.Error())
	}
	e := subject + ".matches(" + strconv.Quote(pat) + ")"
	if c.negate {
		e = "!" + e
	}
	return e, nil
}
