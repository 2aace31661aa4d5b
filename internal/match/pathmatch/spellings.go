package pathmatch

import "strings"

// DefaultIndexNames are the file names servers answer a folder with: nginx
// and Apache (index.html, DirectoryIndex), PHP applications (index.php),
// IIS default documents (default.aspx, default.htm, default.asp,
// index.htm). The policy adds the names its file handlers are configured
// with (handle.index).
var DefaultIndexNames = []string{"index.html", "index.htm", "index.php", "default.aspx", "default.htm", "default.asp"}

func (p *Pattern) indexNames() []string {
	if p.IndexNames != nil {
		return p.IndexNames
	}
	return DefaultIndexNames
}

// scriptExtensions are the files servers run with a trailing PATH_INFO:
// PHP-FPM with cgi.fix_pathinfo=1 (the default) and nginx's
// fastcgi_split_path_info ^(.+\.php)(/.+)$ serve /wp-login.php/x as
// /wp-login.php, as does Apache (AcceptPathInfo for script handlers); IIS
// serves /page.aspx/x and /service.asmx/js as the page; CGI scripts take
// PATH_INFO by definition (RFC 3875 4.1.5). Static files are not listed:
// their servers answer 404 to /file.html/x, and a folder may well be named
// like a file (/v1.2/), so covering them would refuse too much.
var scriptExtensions = []string{
	".php", ".php3", ".php4", ".php5", ".php7", ".php8", ".phtml", ".pht", ".phar",
	".aspx", ".asmx", ".ashx", ".asp", ".axd", ".svc", ".cgi", ".pl", ".fcgi",
}

// matchSpellings tries the other spellings of s that some server serves as
// the same resource:
//
//   - ";params" removed from each segment (Tomcat, Jetty, Spring; only
//     reachable with paths.allow_semicolon, since canonical refuses ';'
//     otherwise);
//   - a trailing slash removed (/wp-login.php/: Apache, PHP-FPM and many
//     routers serve the file; Spring before 6 and Express non-strict
//     routing match /x/ to /x), or added (/admin for a rule on /admin/);
//   - PATH_INFO cut off after a script (/wp-login.php/anything);
//   - a folder and its index file (/admin/ and /admin/index.html).
//
// Case is already folded by the caller for case-insensitive patterns;
// trailing dots and spaces, "::$DATA", NUL and the like never get here
// (canonical refuses them with 400).
func (p *Pattern) matchSpellings(s string) bool {
	if strings.IndexByte(s, ';') >= 0 {
		t := stripParams(s)
		if p.matchOne(t) || p.matchVariants(t) {
			return true
		}
	}
	return p.matchVariants(s)
}

func (p *Pattern) matchVariants(s string) bool {
	n := len(s)
	if n > 1 && s[n-1] == '/' {
		if p.matchOne(s[:n-1]) {
			return true
		}
	} else if p.matchConcat(s, "/", "") {
		return true
	}
	// PATH_INFO: every "<script>/" boundary, since cgi.fix_pathinfo walks
	// back to the longest existing file and split_path_info takes the
	// last .php.
	// A cut needs a script extension before it, so it lies past the first
	// dot: most paths have none, and skip the walk.
	first := strings.IndexByte(s, '.')
	for i := first + 1; first >= 0 && i < n; i++ {
		if s[i] == '/' && hasScriptExtension(s[:i]) && (p.matchOne(s[:i]) || p.matchIndexFolder(s[:i])) {
			return true
		}
	}
	// The folder's index file: /admin/ (and /admin) is /admin/index.html.
	last := s[strings.LastIndexByte(s, '/')+1:]
	switch {
	case last == "":
		for _, name := range p.indexNames() {
			if p.matchConcat(s, name, "") {
				return true
			}
		}
	case !strings.Contains(last, "."):
		for _, name := range p.indexNames() {
			if p.matchConcat(s, "/", name) {
				return true
			}
		}
	default:
		return p.matchIndexFolder(s)
	}
	return false
}

// matchIndexFolder: the index file is its folder, /admin/index.html is
// /admin/ (and /admin).
func (p *Pattern) matchIndexFolder(s string) bool {
	last := s[strings.LastIndexByte(s, '/')+1:]
	for _, name := range p.indexNames() {
		if last == name {
			dir := s[:len(s)-len(name)]
			return p.matchOne(dir) || len(dir) > 1 && p.matchOne(dir[:len(dir)-1])
		}
	}
	return false
}

func hasScriptExtension(s string) bool {
	dot := strings.LastIndexByte(s, '.')
	if dot < 0 || strings.IndexByte(s[dot:], '/') >= 0 {
		return false
	}
	ext := s[dot:]
	for _, e := range scriptExtensions {
		if strings.EqualFold(ext, e) {
			return true
		}
	}
	return false
}

// stripParams removes ";..." from every segment, as Tomcat does before it
// maps a path: "/admin;x=1/secret;y" is "/admin/secret".
func stripParams(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		semi := strings.IndexByte(s, ';')
		if semi < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:semi])
		s = s[semi:]
		slash := strings.IndexByte(s, '/')
		if slash < 0 {
			break
		}
		s = s[slash:]
	}
	return b.String()
}

// spellingsLiteral shortens a literal prefix so that every spelling that
// can match still starts with it: a ";params" or an index name may change
// the path after its first segment, so the literal stops there; a first
// segment that is an index name can be reached from "/" itself.
func spellingsLiteral(lit string, indexNames []string) string {
	if len(lit) < 2 {
		return lit
	}
	end := len(lit)
	if i := strings.IndexAny(lit[1:], "/;"); i >= 0 {
		end = i + 1
	}
	first := lit[:end]
	for _, name := range indexNames {
		if strings.HasPrefix(name, strings.ToLower(first[1:])) {
			return ""
		}
	}
	return first
}

// HasExtension reports whether the file lowerPath names has one of exts
// (lower-case, without the dot). With spellings, as for a rule that
// refuses, the file is also the one a server serves for the path: the
// last segment before a trailing slash (/db.bak/), the script before a
// PATH_INFO (/shell.php/x), a segment without its ";params" (/db.bak;x).
func HasExtension(lowerPath string, exts []string, spellings bool) bool {
	if !spellings {
		return hasExt(lastSegment(lowerPath), exts)
	}
	p := strings.TrimRight(lowerPath, "/")
	if hasExt(withoutParams(lastSegment(p)), exts) {
		return true
	}
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			seg := withoutParams(lastSegment(p[:i]))
			if hasScriptExtension("/"+seg) && hasExt(seg, exts) {
				return true
			}
		}
	}
	return false
}

func lastSegment(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

func withoutParams(seg string) string {
	if i := strings.IndexByte(seg, ';'); i >= 0 {
		return seg[:i]
	}
	return seg
}

func hasExt(seg string, exts []string) bool {
	dot := strings.LastIndexByte(seg, '.')
	if dot < 0 {
		return false
	}
	ext := seg[dot+1:]
	for _, e := range exts {
		if e == ext {
			return true
		}
	}
	return false
}
