// Package nginx translates the access-control directives of an nginx
// configuration (nginx 1.22 semantics) into a warden policy, written through
// package importer's shared model.
package nginx

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/warden-gateway/warden/internal/importer"

	"github.com/warden-gateway/warden/internal/match/referer"
)

// Import translates the access-control directives of an nginx configuration
// (a whole nginx.conf, or a file holding server blocks) into a warden
// policy. One server block is translated; the others are reported.
func Import(path string) (*importer.Result, error) {
	dirs, err := parseNginx(path)
	if err != nil {
		return nil, err
	}
	t := &ngxTranslator{file: path, confDir: filepath.Dir(path), upstreams: map[string]*ngxDirective{}}
	return t.translate(dirs)
}

// ngxAccess is one allow or deny directive.
type ngxAccess struct {
	allow bool
	set   importer.IPSet
	d     *ngxDirective
}

// ngxSettings are the inheritable settings of one level (http, server,
// location). nil or unset fields inherit from the enclosing level.
type ngxSettings struct {
	access     []ngxAccess
	accessSet  bool
	satisfyAny *bool
	authBasic  *ngxDirective // auth_basic "realm" | off
	authFile   *ngxDirective
	referers   []*ngxDirective // several valid_referers lines in one block add up
	root       *ngxDirective
	index      *ngxDirective
	autoindex  *ngxDirective
	proxyPass  *ngxDirective // not inherited
	// limitExcept is the location's limit_except block: its access
	// settings (inheriting the location's) apply to the other methods.
	limitExcept *ngxLimitExcept // not inherited
	internal    *ngxDirective   // not inherited
	steps       []ngxStep       // rewrite-phase steps, not inherited
	serverNames []string
}

// ngxStep is a rewrite-phase refusal: an unconditional return, or a return
// inside if ($invalid_referer).
type ngxLimitExcept struct {
	d       *ngxDirective
	methods []string // upper case; GET implies HEAD
	own     ngxSettings
}

type ngxStep struct {
	referer bool
	// expr is the CEL form of another if condition.
	expr   string
	status int
	d      *ngxDirective // the return (or the if)
}

// inherit fills what s leaves unset from parent, as nginx merges location
// configuration.
func (s ngxSettings) inherit(parent *ngxSettings) ngxSettings {
	if !s.accessSet {
		s.access, s.accessSet = parent.access, parent.accessSet
	}
	if s.satisfyAny == nil {
		s.satisfyAny = parent.satisfyAny
	}
	if s.authBasic == nil {
		s.authBasic = parent.authBasic
	}
	if s.authFile == nil {
		s.authFile = parent.authFile
	}
	if len(s.referers) == 0 {
		s.referers = parent.referers
	}
	if s.root == nil {
		s.root = parent.root
	}
	if s.index == nil {
		s.index = parent.index
	}
	if s.autoindex == nil {
		s.autoindex = parent.autoindex
	}
	return s
}

func (s *ngxSettings) authOn() bool {
	return s.authBasic != nil && !(len(s.authBasic.args) == 1 && s.authBasic.args[0] == "off") && s.authFile != nil
}

func (s *ngxSettings) listing() bool {
	return s.autoindex != nil && len(s.autoindex.args) == 1 && s.autoindex.args[0] == "on"
}

func (s *ngxSettings) indexFiles() []string {
	if s.index == nil {
		return []string{"index.html"}
	}
	return s.index.args
}

func (s *ngxSettings) rootDir() string {
	if s.root == nil {
		return ""
	}
	return s.root.args[0]
}

type ngxLocation struct {
	mod string // "", "=", "^~", "~", "~*"
	uri string
	d   *ngxDirective
	own ngxSettings
	eff ngxSettings
	// parent is the enclosing location of a nested one.
	parent *ngxLocation
}

// top is the outermost location enclosing l (l itself when not nested).
func (l *ngxLocation) top() *ngxLocation {
	for l.parent != nil {
		l = l.parent
	}
	return l
}

func (l *ngxLocation) label() string {
	if l.mod == "" {
		return "location " + l.uri
	}
	return "location " + l.mod + " " + l.uri
}

func (l *ngxLocation) isPrefix() bool { return l.mod == "" || l.mod == "^~" }

func (l *ngxLocation) pathMatcher() *importer.PathMatch {
	switch l.mod {
	case "=":
		return &importer.PathMatch{Exact: []string{l.uri}, CaseSensitive: true}
	case "~":
		return &importer.PathMatch{Regex: []string{l.uri}, CaseSensitive: true}
	case "~*":
		return &importer.PathMatch{Regex: []string{l.uri}, CaseSensitive: false}
	}
	return &importer.PathMatch{Prefix: []string{l.uri}, CaseSensitive: true}
}

func (l *ngxLocation) slug() string {
	switch l.mod {
	case "=":
		return "exact-" + importer.OrRoot(importer.Slug(l.uri))
	case "~", "~*":
		return "regex-line" + strconv.Itoa(l.d.line)
	}
	return importer.OrRoot(importer.Slug(l.uri))
}

type ngxTranslator struct {
	file      string
	confDir   string
	notes     []importer.Note
	upstreams map[string]*ngxDirective
	http      ngxSettings
	server    ngxSettings
	serverD   *ngxDirective
	locations []*ngxLocation
	listen    string
	// htpasswd is the first user file in use; others are reported.
	htpasswd *ngxDirective
	realm    string
}

func (t *ngxTranslator) note(d *ngxDirective, kind, why string) {
	t.notes = append(t.notes, importer.Note{File: d.file, Line: d.line, Kind: kind, Directive: d.text(), Why: why})
}

func (t *ngxTranslator) src(d *ngxDirective) importer.Note {
	return importer.Note{File: d.file, Line: d.line, Directive: d.text()}
}

// Directives with no bearing on who gets in; they are still reported, so
// that the list on stderr accounts for every line.
var ngxIrrelevant = map[string]string{
	"user": "", "worker_processes": "", "pid": "", "error_log": "", "access_log": "", "log_format": "",
	"sendfile": "", "tcp_nopush": "", "tcp_nodelay": "", "keepalive_timeout": "", "keepalive_requests": "",
	"types_hash_max_size": "", "types_hash_bucket_size": "", "server_names_hash_bucket_size": "", "server_tokens": "",
	"default_type": "", "types": "", "charset": "", "gzip": "", "gzip_types": "", "gzip_vary": "", "gzip_proxied": "",
	"gzip_comp_level": "", "gzip_min_length": "", "gzip_disable": "", "expires": "", "add_header": "", "etag": "",
	"worker_connections": "", "multi_accept": "", "use": "", "worker_rlimit_nofile": "", "pcre_jit": "",
	"client_body_temp_path": "", "proxy_temp_path": "", "fastcgi_temp_path": "", "uwsgi_temp_path": "",
	"scgi_temp_path": "", "daemon": "", "master_process": "", "open_file_cache": "", "output_buffers": "",
	"aio": "", "directio": "", "reset_timedout_connection": "", "send_timeout": "", "lingering_close": "",
	"resolver": "", "resolver_timeout": "", "autoindex_exact_size": "", "autoindex_localtime": "", "autoindex_format": "",
	"log_not_found": "", "msie_padding": "", "server_name_in_redirect": "", "port_in_redirect": "", "absolute_redirect": "",
	"proxy_set_header": "warden sets the forwarding headers itself", "proxy_http_version": "", "proxy_buffering": "",
	"proxy_read_timeout": "set the handler's timeout in warden", "proxy_connect_timeout": "", "proxy_send_timeout": "",
	"proxy_redirect": "", "proxy_buffers": "", "proxy_buffer_size": "",
}

func (t *ngxTranslator) translate(top []*ngxDirective) (*importer.Result, error) {
	var servers []*ngxDirective
	for _, d := range top {
		switch d.name {
		case "http":
			for _, h := range d.block {
				switch h.name {
				case "server":
					servers = append(servers, h)
				case "upstream":
					if len(h.args) == 1 {
						t.upstreams[h.args[0]] = h
					}
				default:
					t.directive(h, &t.http, "http")
				}
			}
		case "server":
			servers = append(servers, d)
		case "events":
			t.note(d, importer.NotTranslated, "not an access-control setting")
		default:
			t.directive(d, &t.http, "main")
		}
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("%s: no server block found", t.file)
	}
	for _, s := range servers[1:] {
		t.note(s, importer.NotTranslated, "only the first server block is translated; write one warden config per site")
	}
	t.serverD = servers[0]
	for _, d := range t.serverD.block {
		if !t.utf8OK(d) {
			continue
		}
		switch d.name {
		case "location":
			t.location(d, nil)
		case "listen":
			t.listenDirective(d)
		case "server_name":
			t.server.serverNames = append(t.server.serverNames, d.args...)
		default:
			t.directive(d, &t.server, "server")
		}
	}
	t.server = t.server.inherit(&t.http)
	if t.server.steps == nil {
		t.server.steps = []ngxStep{}
	}
	// Parents come before the locations nested in them.
	for _, l := range t.locations {
		if l.parent != nil {
			l.eff = l.own.inherit(&l.parent.eff)
		} else {
			l.eff = l.own.inherit(&t.server)
		}
	}
	out := &importer.Policy{Listen: t.listen, ServerNames: t.server.serverNames}
	out.Rules = t.rules()
	out.Rules = importer.Prune(out.Rules, &t.notes)
	importer.UniqueNames(out.Rules)
	out.Handlers = t.handlers()
	if t.htpasswd != nil {
		h, notes := importer.HtpasswdFor(t.htpasswd.args[0], t.confDir, t.realm, t.src(t.htpasswd), importer.Nginx)
		out.Htpasswd = h
		t.notes = append(t.notes, notes...)
	}
	out.Header = []string{
		"Translated by `warden import nginx " + t.file + "`.",
		"Rules are tried top to bottom; the first rule that decides wins. Each nginx",
		"location becomes a region of rules that ends with an allow, so that rules of",
		"less specific locations never apply to it. Comments name the source lines.",
	}
	y, err := out.Render()
	if err != nil {
		return nil, err
	}
	return &importer.Result{YAML: y, Notes: importer.DedupeNotes(t.notes)}, nil
}

func (t *ngxTranslator) listenDirective(d *ngxDirective) {
	if len(d.args) == 0 {
		return
	}
	addr := d.args[0]
	for _, a := range d.args[1:] {
		switch a {
		case "default_server", "default", "reuseport":
		default:
			t.note(d, importer.NotTranslated, "listen parameter "+a+" has no warden equivalent here")
		}
	}
	if t.listen != "" {
		t.note(d, importer.NotTranslated, "warden listens on one address; the first listen is used")
		return
	}
	if strings.HasPrefix(addr, "unix:") {
		t.note(d, importer.NotTranslated, "warden does not listen on unix sockets")
		return
	}
	if _, err := strconv.Atoi(addr); err == nil {
		addr = ":" + addr
	}
	t.listen = addr
}

// directive handles one directive of the http, server or location level
// (ctx names it). Directives of location blocks that are only meaningful
// there (internal, proxy_pass, nested location) are handled by location.
func (t *ngxTranslator) directive(d *ngxDirective, s *ngxSettings, ctx string) {
	if !t.utf8OK(d) {
		return
	}
	switch d.name {
	case "allow", "deny":
		if len(d.args) != 1 {
			t.note(d, importer.NotTranslated, "takes one address")
			return
		}
		set, err := importer.ParseNginxAddr(d.args[0])
		if err != nil {
			t.note(d, importer.NotTranslated, err.Error())
			return
		}
		s.access = append(s.access, ngxAccess{allow: d.name == "allow", set: set, d: d})
		s.accessSet = true
	case "satisfy":
		if len(d.args) != 1 || d.args[0] != "any" && d.args[0] != "all" {
			t.note(d, importer.NotTranslated, "satisfy takes any or all")
			return
		}
		anyOf := d.args[0] == "any"
		s.satisfyAny = &anyOf
	case "auth_basic":
		if len(d.args) != 1 {
			t.note(d, importer.NotTranslated, "takes one argument")
			return
		}
		if strings.Contains(d.args[0], "$") {
			t.note(d, importer.NotTranslated, "variables in the realm cannot be translated")
			return
		}
		s.authBasic = d
	case "auth_basic_user_file":
		if len(d.args) != 1 || strings.Contains(d.args[0], "$") {
			t.note(d, importer.NotTranslated, "takes one file name without variables")
			return
		}
		s.authFile = d
	case "valid_referers":
		if ctx == "http" || ctx == "main" {
			t.note(d, importer.NotTranslated, "valid_referers belongs in server or location")
			return
		}
		if len(d.args) == 0 {
			t.note(d, importer.NotTranslated, "valid_referers needs at least one entry")
			return
		}
		s.referers = append(s.referers, d)
	case "root":
		if len(d.args) != 1 || strings.Contains(d.args[0], "$") {
			t.note(d, importer.NotTranslated, "takes one folder without variables")
			return
		}
		s.root = d
	case "index":
		if len(d.args) == 0 {
			t.note(d, importer.NotTranslated, "index needs at least one file name")
			return
		}
		for _, a := range d.args {
			if strings.ContainsAny(a, "/$") {
				t.note(d, importer.NotTranslated, "index documents with a path or variables cannot be translated")
				return
			}
		}
		s.index = d
	case "autoindex":
		if len(d.args) != 1 || d.args[0] != "on" && d.args[0] != "off" {
			t.note(d, importer.NotTranslated, "autoindex takes on or off")
			return
		}
		s.autoindex = d
	case "return":
		if ctx == "http" || ctx == "main" {
			t.note(d, importer.NotTranslated, "return belongs in server or location")
			return
		}
		if st, ok := t.refusalStatus(d); ok {
			s.steps = append(s.steps, ngxStep{status: st, d: d})
		}
	case "if":
		if ctx == "http" || ctx == "main" {
			t.note(d, importer.NotTranslated, "if belongs in server or location")
			return
		}
		t.ifBlock(d, s)
	case "location":
		t.note(d, importer.NotTranslated, "a location here is not supported by the importer (nested or outside a server)")
	case "internal", "proxy_pass":
		t.note(d, importer.NotTranslated, d.name+" is only translated directly inside a location")
	case "error_page":
		t.note(d, importer.NotTranslated, "warden renders its own refusal pages; a status changed by error_page is not reproduced")
	case "try_files", "rewrite", "alias", "set", "break":
		t.note(d, importer.NotTranslated, "rewriting and file lookup beyond root and index are not translated")
	case "limit_except":
		t.note(d, importer.NotTranslated, "per-method access rules are not translated")
	case "auth_request", "auth_jwt", "auth_delay", "secure_link", "limit_req", "limit_conn":
		t.note(d, importer.NotTranslated, "no translation for this access module")
	default:
		if why, ok := ngxIrrelevant[d.name]; ok {
			if why == "" {
				why = "not an access-control setting"
			}
			t.note(d, importer.NotTranslated, why)
			return
		}
		t.note(d, importer.NotTranslated, "unknown to the importer")
	}
}

// refusalStatus reads "return CODE [text]" and keeps the codes warden can
// answer with: 4xx and 5xx other than nginx's 444 (close the connection).
func (t *ngxTranslator) refusalStatus(d *ngxDirective) (int, bool) {
	if len(d.args) == 0 {
		t.note(d, importer.NotTranslated, "return without a code")
		return 0, false
	}
	code, err := strconv.Atoi(d.args[0])
	if err != nil {
		t.note(d, importer.NotTranslated, "only return with a 4xx or 5xx status is translated")
		return 0, false
	}
	if code == 444 {
		t.note(d, importer.NotTranslated, "444 closes the connection without an answer; warden always answers")
		return 0, false
	}
	if code < 400 || code > 599 {
		t.note(d, importer.NotTranslated, "only return with a 4xx or 5xx status is translated; redirects and pages are not")
		return 0, false
	}
	if len(d.args) > 1 {
		t.note(d, importer.Approximate, "the response text is not kept; warden answers with its own refusal body")
	}
	return code, true
}

// ifBlock translates if (CONDITION) { return CODE; }: $invalid_referer,
// and comparisons of $http_* headers, $request_method and $uri with a
// regex (~ ~* !~ !~*) or a string (= !=), as ngx_http_rewrite_module
// evaluates them.
func (t *ngxTranslator) ifBlock(d *ngxDirective, s *ngxSettings) {
	args := slices.Clone(d.args)
	if len(args) > 0 && args[0] == "(" {
		args = args[1:]
	}
	if len(args) > 0 && args[len(args)-1] == ")" {
		args = args[:len(args)-1]
	}
	if len(args) > 0 {
		args[0] = strings.TrimPrefix(args[0], "(")
		// A quoted last value lost its ")" in the tokenizer already.
		if last := d.args[len(d.args)-1]; len(args) > 1 && strings.HasSuffix(last, ")") {
			args[len(args)-1] = strings.TrimSuffix(args[len(args)-1], ")")
		} else if len(args) == 1 {
			args[0] = strings.TrimSuffix(args[0], ")")
		}
	}
	if len(d.block) != 1 || d.block[0].name != "return" {
		for _, c := range d.block {
			if c.name == "return" {
				continue
			}
			t.note(c, importer.NotTranslated, "only a return inside if is translated")
		}
		if len(d.block) == 0 || d.block[len(d.block)-1].name != "return" {
			t.note(d, importer.NotTranslated, "only if (...) { return CODE; } is translated")
			return
		}
	}
	ret := d.block[len(d.block)-1]
	if len(args) == 1 && args[0] == "$invalid_referer" {
		if st, ok := t.refusalStatus(ret); ok {
			s.steps = append(s.steps, ngxStep{referer: true, status: st, d: d})
		}
		return
	}
	expr, why := ngxCondExpr(args)
	if expr == "" {
		t.note(d, importer.NotTranslated, why+"; the refusal is NOT applied")
		return
	}
	if st, ok := t.refusalStatus(ret); ok {
		s.steps = append(s.steps, ngxStep{expr: expr, status: st, d: d})
	}
}

// ngxCondExpr writes an if condition as a CEL expression over the request
// warden evaluates; "" and the reason when it cannot.
func ngxCondExpr(args []string) (string, string) {
	if len(args) != 3 {
		return "", "only comparisons (VAR OP VALUE) and $invalid_referer are translated"
	}
	v, op, val := args[0], args[1], args[2]
	var subject string
	switch {
	case v == "$request_method":
		subject = "request.method"
	case v == "$uri":
		subject = "request.path"
	case strings.HasPrefix(v, "$http_") && len(v) > 6:
		name := strings.ToLower(strings.ReplaceAll(v[6:], "_", "-"))
		// nginx's $http_NAME is empty when the header is absent.
		subject = fmt.Sprintf("(%s in request.headers ? request.headers[%s] : '')", celString(name), celString(name))
	default:
		return "", "the variable " + v + " is not translated (only $http_*, $request_method, $uri)"
	}
	switch op {
	case "=", "!=":
		e := subject + " == " + celString(val)
		if op == "!=" {
			e = subject + " != " + celString(val)
		}
		return e, ""
	case "~", "~*", "!~", "!~*":
		re := val
		if strings.Contains(op, "*") {
			re = "(?i)" + re
		}
		if _, err := regexp.Compile(re); err != nil {
			return "", "the regex is not valid in RE2 syntax: " + err.Error()
		}
		e := subject + ".matches(" + celString(re) + ")"
		if strings.HasPrefix(op, "!") {
			e = "!" + e
		}
		return e, ""
	}
	return "", "unknown operator " + op
}

// limitExcept reads limit_except METHOD... { allow/deny/auth_basic ... }.
func (t *ngxTranslator) limitExcept(d *ngxDirective, l *ngxLocation) {
	if len(d.args) == 0 {
		t.note(d, importer.NotTranslated, "limit_except needs methods")
		return
	}
	le := &ngxLimitExcept{d: d}
	for _, m := range d.args {
		m = strings.ToUpper(m)
		le.methods = append(le.methods, m)
		if m == "GET" && !slices.Contains(d.args, "HEAD") {
			le.methods = append(le.methods, "HEAD") // "Allowing the GET method makes the HEAD method also allowed"
		}
	}
	for _, c := range d.block {
		switch c.name {
		case "allow", "deny", "auth_basic", "auth_basic_user_file", "satisfy":
			t.directive(c, &le.own, "limit_except")
		default:
			t.note(c, importer.NotTranslated, "only access directives inside limit_except are translated")
		}
	}
	l.own.limitExcept = le
}

func quoteAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = celString(s)
	}
	return out
}

// celString quotes s as a CEL string literal (Go's quoting is a subset).
func celString(s string) string { return strconv.Quote(s) }

// utf8OK reports (and notes) a directive with bytes that are not UTF-8:
// warden's paths and headers are UTF-8 text, so such a value never matches.
func (t *ngxTranslator) utf8OK(d *ngxDirective) bool {
	for _, a := range append([]string{d.name}, d.args...) {
		if !utf8.ValidString(a) {
			t.note(d, importer.NotTranslated, "not valid UTF-8")
			return false
		}
	}
	return true
}

func (t *ngxTranslator) location(d *ngxDirective, parent *ngxLocation) {
	if !t.utf8OK(d) {
		return
	}
	l := &ngxLocation{d: d, parent: parent}
	switch len(d.args) {
	case 1:
		a := d.args[0]
		switch {
		case strings.HasPrefix(a, "@"):
			t.note(d, importer.NotTranslated, "named locations are reached only by internal redirects")
			return
		case strings.HasPrefix(a, "^~"):
			l.mod, l.uri = "^~", a[2:]
		case strings.HasPrefix(a, "="):
			l.mod, l.uri = "=", a[1:]
		case strings.HasPrefix(a, "~*"):
			l.mod, l.uri = "~*", a[2:]
		case strings.HasPrefix(a, "~"):
			l.mod, l.uri = "~", a[1:]
		default:
			l.uri = a
		}
	case 2:
		l.mod, l.uri = d.args[0], d.args[1]
		if !slices.Contains([]string{"=", "^~", "~", "~*"}, l.mod) {
			t.note(d, importer.NotTranslated, "unknown location modifier "+l.mod)
			return
		}
	default:
		t.note(d, importer.NotTranslated, "malformed location")
		return
	}
	switch l.mod {
	case "~", "~*":
		if _, err := regexp.Compile(l.uri); err != nil {
			t.note(d, importer.NotTranslated, "the regex is not valid in Go's RE2 syntax (no lookaround or backreferences); its rules are NOT applied: "+err.Error())
			return
		}
	default:
		if !strings.HasPrefix(l.uri, "/") {
			t.note(d, importer.NotTranslated, "a location path must start with /")
			return
		}
	}
	if parent != nil {
		switch {
		case !parent.isPrefix():
			t.note(d, importer.NotTranslated, "locations nested in exact or regex locations are not translated; their rules are NOT applied")
			return
		case l.mod == "~" || l.mod == "~*":
			t.note(d, importer.NotTranslated, "regex locations nested in a prefix location are not translated; their rules are NOT applied")
			return
		case !strings.HasPrefix(l.uri, parent.uri):
			t.note(d, importer.NotTranslated, "the nested location lies outside "+parent.label()+" (nginx refuses it)")
			return
		}
	}
	for _, prev := range t.locations {
		if prev.mod == l.mod && prev.uri == l.uri || prev.isPrefix() && l.isPrefix() && prev.uri == l.uri {
			t.note(d, importer.NotTranslated, "duplicate location (nginx refuses it)")
			return
		}
	}
	var nested []*ngxDirective
	for _, c := range d.block {
		switch c.name {
		case "internal":
			l.own.internal = c
		case "proxy_pass":
			l.own.proxyPass = c
		case "limit_except":
			t.limitExcept(c, l)
		case "location":
			nested = append(nested, c)
		default:
			t.directive(c, &l.own, "location")
		}
	}
	t.locations = append(t.locations, l)
	// Nested prefix and exact locations are selected as if they stood at
	// the top level (nginx requires them to lie inside their parent), and
	// inherit from their parent.
	for _, c := range nested {
		t.location(c, l)
	}
}

// orderedLocations returns the locations in the order their regions are
// written: exact matches, then prefixes that win over regexes (^~) longest
// first, then regexes in file order, then the other prefixes longest first.
// For a path, the first region in this order whose matcher matches is the
// location nginx selects, except for a plain prefix inside a ^~ prefix,
// which is placed with the ^~ ones (and reported) so that the shorter ^~
// region does not swallow it.
func (t *ngxTranslator) orderedLocations() []*ngxLocation {
	var exact, final, regex, prefix []*ngxLocation
	for _, l := range t.locations {
		switch l.mod {
		case "=":
			exact = append(exact, l)
		case "~", "~*":
			regex = append(regex, l)
		default:
			// nginx skips the regex locations when the prefix location it
			// found at the top level is ^~, whatever is nested in it.
			if l.top().mod == "^~" {
				final = append(final, l)
			} else {
				prefix = append(prefix, l)
			}
		}
	}
	var plain []*ngxLocation
	for _, l := range prefix {
		var inside *ngxLocation
		for _, f := range final {
			if f.parent == nil && strings.HasPrefix(l.uri, f.uri) {
				inside = f
				break
			}
		}
		if inside != nil && len(regex) > 0 {
			t.note(l.d, importer.Approximate, fmt.Sprintf("it lies inside %s: regex locations are not tried for its paths, while nginx tries them", inside.label()))
		}
		if inside != nil {
			final = append(final, l)
		} else {
			plain = append(plain, l)
		}
	}
	byLength := func(a, b *ngxLocation) int { return len(b.uri) - len(a.uri) }
	slices.SortStableFunc(final, byLength)
	slices.SortStableFunc(plain, byLength)
	out := append(exact, final...)
	out = append(out, regex...)
	return append(out, plain...)
}

func (t *ngxTranslator) rules() []importer.Rule {
	var rules []importer.Rule
	// Server-level return and if run in nginx's server rewrite phase, before
	// a location is chosen: they apply to every request.
	rules = append(rules, t.stepRules("server", nil, &t.server, t.server.steps)...)
	hasRoot := false
	indexNames := map[string]bool{}
	for _, s := range append([]*ngxSettings{&t.server}, t.effs()...) {
		for _, n := range s.indexFiles() {
			indexNames[n] = true
		}
	}
	ordered := t.orderedLocations()
	indexRules, indexHandled, walked := t.indexRedirectRules()
	rules = append(rules, indexRules...)
	for i, l := range ordered {
		if l.mod != "=" && (i == 0 || ordered[i-1].mod == "=") {
			rules = append(rules, t.barePathRules()...)
		}
		if !indexHandled[l] && !walked {
			t.noteIndexRedirect(l, indexNames)
		}
		if l.isPrefix() && l.uri == "/" {
			hasRoot = true
		}
		rules = append(rules, t.regionRules(l, l.pathMatcher())...)
	}
	if !hasRoot {
		// A path no location matches is served with the server's settings.
		rules = append(rules, t.accessRules("server", nil, &t.server, "server")...)
	}
	return rules
}

func (t *ngxTranslator) effs() []*ngxSettings {
	var out []*ngxSettings
	for _, l := range t.locations {
		out = append(out, &l.eff)
	}
	return out
}

// maxIndexFolders bounds the folders indexRedirectRules looks at.
const maxIndexFolders = 20000

// indexRedirectRules emulates nginx's index module: a request for a folder
// (/dir/) passes the access phase of the location chosen for /dir/, and is
// then redirected internally to its first existing index document
// (/dir/index.html), which is matched against the locations anew, so that
// the rewrite and access phases of that location run too (ngx_http_index
// module; ngx_http_internal_redirect). warden decides a folder by its own
// path, so for each folder of the document roots whose index document falls
// to another location, an exact region gives the folder both locations'
// refusals, in nginx's order. The folders are those present at import time;
// handled reports the locations so reached, found whether the roots could
// be read at all.
func (t *ngxTranslator) indexRedirectRules() (rules []importer.Rule, handled map[*ngxLocation]bool, found bool) {
	handled = map[*ngxLocation]bool{}
	roots := map[string]bool{}
	if r := t.server.rootDir(); r != "" {
		roots[r] = true
	}
	for _, l := range t.locations {
		if r := l.eff.rootDir(); r != "" {
			roots[r] = true
		}
	}
	folders := map[string]bool{}
	var order []string
	for root := range roots {
		if !filepath.IsAbs(root) {
			continue
		}
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			continue
		}
		found = true
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if len(folders) >= maxIndexFolders {
				return filepath.SkipAll
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return nil
			}
			u := "/"
			if rel != "." {
				u = "/" + filepath.ToSlash(rel) + "/"
			}
			if !folders[u] {
				folders[u] = true
				order = append(order, u)
			}
			return nil
		})
	}
	slices.Sort(order)
	for _, dir := range order {
		sel, _ := t.selectLocation(dir)
		settings := &t.server
		if sel != nil {
			settings = &sel.eff
		}
		if sel != nil && sel.own.internal != nil {
			continue // refused before any index lookup
		}
		if sel != nil && sel.own.proxyPass != nil {
			continue
		}
		root := settings.rootDir()
		if root == "" {
			continue
		}
		var index string
		for _, name := range settings.indexFiles() {
			if fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(dir), name)); err == nil && !fi.IsDir() {
				index = dir + name
				break
			}
		}
		if index == "" {
			continue
		}
		target, _ := t.selectLocation(index)
		if target == sel {
			continue
		}
		if target != nil && target.own.internal != nil {
			continue // an internal redirect may enter an internal location
		}
		pm := &importer.PathMatch{Exact: []string{dir}, CaseSensitive: true}
		base := "index-" + importer.OrRoot(importer.Slug(dir))
		var rs []importer.Rule
		if sel != nil {
			rs = append(rs, t.stepRules(base+"-dir", pm, &sel.eff, sel.own.steps)...)
			rs = append(rs, asGates(t.accessRules(base+"-dir", pm, &sel.eff, sel.label()))...)
		} else {
			rs = append(rs, asGates(t.accessRules(base+"-dir", pm, &t.server, "server"))...)
		}
		label := "server"
		if target != nil {
			label = target.label()
			rs = append(rs, t.stepRules(base+"-index", pm, &target.eff, target.own.steps)...)
			rs = append(rs, asGates(t.accessRules(base+"-index", pm, &target.eff, target.label()+" (reached from "+dir+" by nginx's index redirect to "+index+")"))...)
			handled[target] = true
		} else {
			rs = append(rs, asGates(t.accessRules(base+"-index", pm, &t.server, "server"))...)
		}
		d := t.serverD
		if target != nil {
			d = target.d
		}
		rs = append(rs, importer.Rule{
			Name: base + "-end", Path: pm, Action: "allow", Synthetic: true,
			Comment: t.comment(d, "nginx serves "+dir+" by an internal redirect to "+index+", which "+label+" decides as well"),
		})
		rules = append(rules, rs...)
	}
	if len(rules) > 0 {
		t.note(t.serverD, importer.Approximate, fmt.Sprintf("nginx serves a folder by an internal redirect to its index document, which other locations may refuse: rules for the %d folders of the document root present now were written; import again when folders are added", len(folders)))
	}
	return rules, handled, found
}

// asGates turns a region's access rules into rules that only refuse or
// pass on: satisfy any's "allow these addresses" followed by the sign-in
// gate becomes one gate for the other addresses, so that later rules (the
// index document's location) still apply to everyone.
func asGates(rs []importer.Rule) []importer.Rule {
	var out []importer.Rule
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r.Action == "allow" && !r.RequireAuth {
			if i+1 < len(rs) && rs[i+1].RequireAuth && rs[i+1].Action == "" && r.Addrs != nil {
				g := rs[i+1]
				if !g.SetIP(r.Addrs.Complement()) {
					i++ // every address passes without signing in
					continue
				}
				out = append(out, g)
				i++
				continue
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// noteIndexRedirect reports exact and regex locations that can match an
// index document: nginx serves a folder's index by an internal redirect, so
// their rules also apply to requests for the folder itself, which warden
// decides by the folder's path.
func (t *ngxTranslator) noteIndexRedirect(l *ngxLocation, names map[string]bool) {
	if l.isPrefix() {
		return
	}
	for name := range names {
		hit := false
		switch l.mod {
		case "=":
			hit = strings.HasSuffix(l.uri, "/"+name)
		default:
			re, err := regexp.Compile(l.uri)
			if l.mod == "~*" {
				re, err = regexp.Compile("(?i)" + l.uri)
			}
			hit = err == nil && (re.MatchString("/"+name) || re.MatchString("/dir/"+name))
		}
		if hit {
			t.note(l.d, importer.Approximate, "nginx also applies it to a request for a folder whose index document "+name+" it matches (internal redirect); warden applies it to the document's own path only")
			return
		}
	}
}

// barePathRules handles the folder paths without their slash. warden's
// prefix /admin/ also matches /admin (so that a server answering /admin with
// the folder cannot be reached around the rules), while nginx hands /admin
// to whichever location matches it, usually location /, which often
// answers with a redirect to /admin/. For each such path where that
// location decides differently, an exact region gives it nginx's rules.
func (t *ngxTranslator) barePathRules() []importer.Rule {
	var rules []importer.Rule
	for _, l := range t.locations {
		if !l.isPrefix() || len(l.uri) < 2 || !strings.HasSuffix(l.uri, "/") {
			continue
		}
		bare := strings.TrimSuffix(l.uri, "/")
		sel, found := t.selectLocation(bare)
		if found && sel.mod == "=" {
			continue // an exact location already has its own region
		}
		if l.own.proxyPass != nil {
			// nginx answers the bare path of a proxied prefix with a 301 to
			// the prefix when it looks the location up, before any access
			// check. warden's upstream handler answers that path with the
			// same redirect, so the bare path only needs to get past the
			// rules: nothing reaches the upstream through it.
			rules = append(rules, importer.Rule{
				Name: l.slug() + "-bare-redirect", Path: &importer.PathMatch{Exact: []string{bare}, CaseSensitive: true}, Action: "allow",
				Comment: t.comment(l.d, "nginx redirects "+bare+" to "+l.uri+" (301) before any access check; so does warden's upstream handler"),
				Src:     t.src(l.d),
			})
			continue
		}
		pm := &importer.PathMatch{Exact: []string{bare}, CaseSensitive: true}
		var rs []importer.Rule
		label := "server"
		if sel != nil {
			rs = t.regionRules(sel, pm)
			label = sel.label()
		} else {
			rs = t.accessRules("server", pm, &t.server, "server")
			rs = append(rs, importer.Rule{Name: "server-end", Path: pm, Action: "allow", Synthetic: true})
		}
		if ruleSignature(rs) == ruleSignature(t.regionRules(l, pm)) {
			continue
		}
		for i := range rs {
			rs[i].Name = "bare-" + importer.OrRoot(importer.Slug(bare)) + "-" + rs[i].Name
		}
		rs[len(rs)-1].Comment = fmt.Sprintf("%s:%d: nginx hands %s (no slash) to %s, not to %s; warden's prefix %s would also cover it", l.d.file, l.d.line, bare, label, l.label(), l.uri)
		rules = append(rules, rs...)
	}
	return rules
}

// ruleSignature is what a region decides, without paths and names.
func ruleSignature(rs []importer.Rule) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s|%d|%v|%v|%v|%v;", r.Action, r.Status, r.IP, r.NotIP, r.RefererNotIn, r.RequireAuth)
	}
	return b.String()
}

// selectLocation is nginx's choice of location for a path: an exact match,
// else the longest prefix if it is ^~ (at the top level), else the first
// regex that matches, else the longest prefix. nil means no location (the
// server's settings apply); found is false then.
func (t *ngxTranslator) selectLocation(path string) (*ngxLocation, bool) {
	var longest *ngxLocation
	for _, l := range t.locations {
		if l.mod == "=" && l.uri == path {
			return l, true
		}
		if l.isPrefix() && strings.HasPrefix(path, l.uri) && (longest == nil || len(l.uri) > len(longest.uri)) {
			longest = l
		}
	}
	if longest != nil && longest.top().mod == "^~" {
		return longest, true
	}
	for _, l := range t.locations {
		if l.mod != "~" && l.mod != "~*" {
			continue
		}
		src := l.uri
		if l.mod == "~*" {
			src = "(?i)" + src
		}
		if re, err := regexp.Compile(src); err == nil && re.MatchString(path) {
			return l, true
		}
	}
	return longest, longest != nil
}

func (t *ngxTranslator) regionRules(l *ngxLocation, pm *importer.PathMatch) []importer.Rule {
	base := l.slug()
	var rules []importer.Rule
	if l.own.internal != nil {
		rules = append(rules, importer.Rule{
			Name: base + "-internal", Path: pm, Action: "conceal",
			Comment: t.comment(l.own.internal, l.label()+": internal (404 for requests from outside, as nginx answers)"),
			Src:     t.src(l.own.internal),
		})
		return rules
	}
	rules = append(rules, t.stepRules(base, pm, &l.eff, l.own.steps)...)
	if le := l.own.limitExcept; le != nil {
		eff := le.own.inherit(&l.eff)
		expr := "!(request.method in [" + strings.Join(quoteAll(le.methods), ", ") + "])"
		label := l.label() + ", " + le.d.text()
		rs := t.accessRules(base+"-except", pm, &eff, label)
		rs = append(rs, importer.Rule{Name: base + "-except-end", Path: pm, Action: "allow", Synthetic: true,
			Comment: t.comment(le.d, "end of "+label+": the location's own access rules do not apply to these methods")})
		for i := range rs {
			rs[i].Expr = expr
		}
		rules = append(rules, rs...)
	}
	rules = append(rules, t.accessRules(base, pm, &l.eff, l.label())...)
	rules = append(rules, importer.Rule{
		Name: base + "-end", Path: pm, Action: "allow", Synthetic: true,
		Comment: t.comment(l.d, "end of "+l.label()+": rules below never apply to it"),
	})
	return rules
}

func (t *ngxTranslator) comment(d *ngxDirective, what string) string {
	return fmt.Sprintf("%s:%d: %s", d.file, d.line, what)
}

// stepRules translates rewrite-phase refusals, in the order nginx runs
// them.
func (t *ngxTranslator) stepRules(base string, pm *importer.PathMatch, eff *ngxSettings, steps []ngxStep) []importer.Rule {
	var rules []importer.Rule
	for _, st := range steps {
		r := importer.Rule{Path: pm, Src: t.src(st.d)}
		switch st.status {
		case 404:
			r.Action = "conceal"
		default:
			r.Action = "deny"
			if st.status != 403 {
				r.Status = st.status
			}
		}
		if st.expr != "" {
			r.Name = base + "-if"
			r.Expr = st.expr
			r.Comment = t.comment(st.d, st.d.text()+" { "+st.d.block[len(st.d.block)-1].text()+"; }")
		} else if st.referer {
			if len(eff.referers) == 0 {
				t.note(st.d, importer.NotTranslated, "never applies: no valid_referers is in effect here, so $invalid_referer is empty")
				continue
			}
			var entries, lines []string
			for _, v := range eff.referers {
				entries = append(entries, v.args...)
				lines = append(lines, fmt.Sprintf("%s (line %d)", v.text(), v.line))
			}
			names := t.server.serverNames
			if len(names) == 0 {
				names = []string{""}
			}
			if _, err := referer.Compile(entries, names); err != nil {
				t.note(eff.referers[0], importer.NotTranslated, "nginx refuses this list too: "+err.Error())
				continue
			}
			r.Name = base + "-referer"
			r.RefererNotIn = entries
			r.Comment = t.comment(st.d, fmt.Sprintf("if ($invalid_referer) { return %d; } with %s", st.status, strings.Join(lines, "; ")))
		} else {
			r.Name = base + "-return"
			r.Comment = t.comment(st.d, st.d.text())
		}
		rules = append(rules, r)
	}
	return rules
}

// accessRules translates the access phase: allow/deny as address sets,
// auth_basic, and satisfy.
func (t *ngxTranslator) accessRules(base string, pm *importer.PathMatch, eff *ngxSettings, label string) []importer.Rule {
	var rules []importer.Rule
	// First match wins among allow/deny: each directive takes the addresses
	// that no earlier one took.
	remaining := importer.AllAddrs()
	var denied, allowed importer.IPSet
	var lines []string
	var first *ngxDirective
	for _, a := range eff.access {
		if first == nil {
			first = a.d
		}
		lines = append(lines, fmt.Sprintf("%s (line %d)", a.d.text(), a.d.line))
		took := a.set.Intersect(remaining)
		if took.IsEmpty() {
			t.note(a.d, importer.NotTranslated, "never applies: earlier allow/deny directives already decide every address it names")
			continue
		}
		remaining = remaining.Minus(took)
		if a.allow {
			allowed = allowed.Union(took)
		} else {
			denied = denied.Union(took)
		}
	}
	auth := eff.authOn()
	if auth {
		t.useHtpasswd(eff)
	}
	anyOf := eff.satisfyAny != nil && *eff.satisfyAny
	accessText := strings.Join(lines, "; ")
	if anyOf && auth {
		// satisfy any: an address an allow takes passes; everyone else must
		// sign in (a denied address too: nginx answers 401, not 403).
		if len(eff.access) > 0 {
			r := importer.Rule{Name: base + "-allowed-addresses", Path: pm, Action: "allow", Src: t.src(first),
				Comment: t.comment(first, label+": satisfy any: "+accessText)}
			if r.SetIP(allowed) {
				rules = append(rules, r)
			}
		}
	} else if first != nil {
		r := importer.Rule{Name: base + "-ip", Path: pm, Action: "deny", Src: t.src(first),
			Comment: t.comment(first, label+": "+accessText)}
		if r.SetIP(denied) {
			rules = append(rules, r)
		}
	}
	if auth {
		rules = append(rules, importer.Rule{Name: base + "-auth", Path: pm, RequireAuth: true, Src: t.src(eff.authBasic),
			Comment: t.comment(eff.authBasic, fmt.Sprintf("%s: %s; %s (line %d)", label, eff.authBasic.text(), eff.authFile.text(), eff.authFile.line))})
	}
	return rules
}

func (t *ngxTranslator) useHtpasswd(eff *ngxSettings) {
	if t.htpasswd == nil {
		t.htpasswd = eff.authFile
		t.realm = eff.authBasic.args[0]
		return
	}
	if eff.authFile.args[0] != t.htpasswd.args[0] {
		t.note(eff.authFile, importer.Approximate, fmt.Sprintf("warden checks one htpasswd file; %s (line %d) is used everywhere", t.htpasswd.args[0], t.htpasswd.line))
	}
	if eff.authBasic.args[0] != t.realm {
		t.note(eff.authBasic, importer.Approximate, fmt.Sprintf("warden sends one realm; %q is used everywhere", t.realm))
	}
}

// handlers translates root, index, autoindex and proxy_pass into warden
// handlers: one per prefix location whose content settings differ from the
// handler above it, with autoindex differences as listing prefixes.
func (t *ngxTranslator) handlers() []importer.Handler {
	base := &t.server
	var rootLoc *ngxLocation
	for _, l := range t.locations {
		if l.isPrefix() && l.uri == "/" {
			rootLoc = l
			base = &l.eff
		}
	}
	var hs []importer.Handler
	if rootLoc != nil && rootLoc.own.proxyPass != nil {
		if up, ok := t.upstream(rootLoc); ok {
			hs = append(hs, importer.Handler{Path: "/", Upstream: up, Comment: t.comment(rootLoc.own.proxyPass, rootLoc.label()+": "+rootLoc.own.proxyPass.text())})
		}
	} else if base.root != nil {
		hs = append(hs, t.filesHandler("/", base, base.root))
	} else {
		t.note(t.serverD, importer.NotTranslated, "no root: nginx would serve its built-in html folder; add a handler to the warden config")
	}
	var prefixes []*ngxLocation
	for _, l := range t.locations {
		if l.isPrefix() && l.uri != "/" {
			prefixes = append(prefixes, l)
		}
	}
	slices.SortStableFunc(prefixes, func(a, b *ngxLocation) int { return len(a.uri) - len(b.uri) })
	for _, l := range prefixes {
		owner := -1
		for i := range hs {
			if strings.HasPrefix(l.uri, hs[i].Path) && (owner < 0 || len(hs[i].Path) > len(hs[owner].Path)) {
				owner = i
			}
		}
		noSlash := !strings.HasSuffix(l.uri, "/")
		if l.own.proxyPass != nil {
			if up, ok := t.upstream(l); ok {
				hs = append(hs, importer.Handler{Path: l.uri, Upstream: up, Comment: t.comment(l.own.proxyPass, l.label()+": "+l.own.proxyPass.text())})
				if noSlash {
					t.note(l.d, importer.Approximate, "warden hands "+l.uri+" and "+l.uri+"/... to this upstream; nginx also paths such as "+l.uri+"x")
				}
			}
			continue
		}
		if l.eff.root == nil {
			continue
		}
		if owner < 0 || hs[owner].Upstream != "" || hs[owner].Root != l.eff.rootDir() || !slices.Equal(hs[owner].Index, l.eff.indexFiles()) {
			hs = append(hs, t.filesHandler(l.uri, &l.eff, l.d))
			if noSlash {
				t.note(l.d, importer.Approximate, "warden serves "+l.uri+" and "+l.uri+"/... with these settings; nginx also paths such as "+l.uri+"x")
			}
			continue
		}
		h := &hs[owner]
		if on := l.eff.listing(); on != h.ListingAt(l.uri) {
			p := l.uri
			if noSlash {
				p += "/"
				t.note(l.d, importer.Approximate, "listing is set for the folder "+p+"; nginx also applies it to paths such as "+l.uri+"x")
			}
			if on {
				h.ListingOn = append(h.ListingOn, p)
			} else {
				h.ListingOff = append(h.ListingOff, p)
			}
		}
	}
	for _, l := range t.locations {
		if l.isPrefix() {
			continue
		}
		if l.own.proxyPass != nil {
			t.note(l.own.proxyPass, importer.NotTranslated, "warden routes to upstreams by path prefix; proxy_pass in an exact or regex location is not translated")
		}
		if l.own.root != nil || l.own.index != nil || l.own.autoindex != nil {
			t.note(l.d, importer.Approximate, "root, index and autoindex of exact and regex locations are not translated; the handler of the enclosing prefix serves these paths")
		}
	}
	return hs
}

func (t *ngxTranslator) filesHandler(path string, s *ngxSettings, d *ngxDirective) importer.Handler {
	root := s.rootDir()
	if !filepath.IsAbs(root) {
		t.note(s.root, importer.Approximate, "a relative root is relative to nginx's prefix; warden reads it relative to the config file")
	}
	h := importer.Handler{Path: path, Root: root, Listing: s.listing(),
		Comment: t.comment(d, fmt.Sprintf("%s (line %d); nginx serves dotfiles, warden does not unless serve_dotfiles: true", s.root.text(), s.root.line))}
	t.notes = append(t.notes, importer.DefaultsNotes(t.src(s.root), importer.Nginx)...)
	idx := s.indexFiles()
	if !slices.Equal(idx, []string{"index.html"}) {
		h.Index = idx
	}
	return h
}

// upstream reads proxy_pass for a prefix location. warden forwards the full
// path, as nginx does for proxy_pass without a URI part (or with one equal
// to the location prefix).
func (t *ngxTranslator) upstream(l *ngxLocation) (string, bool) {
	d := l.own.proxyPass
	if len(d.args) != 1 || strings.Contains(d.args[0], "$") {
		t.note(d, importer.NotTranslated, "proxy_pass with variables is not translated")
		return "", false
	}
	u, err := url.Parse(d.args[0])
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		t.note(d, importer.NotTranslated, "proxy_pass to an http:// or https:// URL is translated; this is not one")
		return "", false
	}
	if u.Path != "" && u.Path != l.uri {
		t.note(d, importer.NotTranslated, "warden forwards the full request path; a URI part that replaces the location prefix is not translated")
		return "", false
	}
	host := u.Host
	if up, ok := t.upstreams[u.Hostname()]; ok && u.Port() == "" {
		var servers []*ngxDirective
		for _, c := range up.block {
			if c.name == "server" {
				servers = append(servers, c)
			}
		}
		if len(servers) != 1 || len(servers[0].args) < 1 || strings.HasPrefix(servers[0].args[0], "unix:") {
			t.note(d, importer.NotTranslated, "warden proxies to one upstream address; upstream "+u.Hostname()+" has several (or a unix socket)")
			return "", false
		}
		host = servers[0].args[0]
		for _, c := range up.block {
			if c.name != "server" {
				t.note(c, importer.NotTranslated, "upstream tuning is not translated")
			}
		}
		if len(servers[0].args) > 1 {
			t.note(servers[0], importer.NotTranslated, "server parameters are not translated")
		}
	}
	return u.Scheme + "://" + host, true
}
