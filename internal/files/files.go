// Package files is warden's static file server. It serves a directory on disk
// (or an fs.FS such as the embedded demo site) and, when it cannot serve a
// path, writes nothing and says why in a Refusal that the gateway renders like
// any other refusal: a missing file, a dotfile, a folder without index where
// listing is off, or a file whose permissions forbid serving it.
//
// Files on disk are opened through an os.Root, so neither ".." nor a symbolic
// link can lead outside the root directory. A symbolic link whose target lies
// outside the root (including any absolute link, even one that points back
// inside) is answered as not_found (404) rather than path_forbidden: from the
// visitor's side there is no such file in the site, and a 403 would confirm
// that the link exists. The operator-only Detail says what happened, and
// Unreadable lists such links for `warden doctor`.
package files

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/warden-gateway/warden/internal/decision"
)

// Config says what to serve and how.
type Config struct {
	// Root is the directory on disk; ignored when FS is set.
	Root string
	// FS, when set, is served instead of Root (the embedded demo site).
	// Permission checks do not apply to it.
	FS fs.FS
	// Index lists the index documents tried in order for a directory;
	// default ["index.html"].
	Index []string
	// Listing is the directory listing default: off unless true.
	Listing bool
	// ListingPaths are canonical path prefixes ("/pub/") where listing is on
	// regardless of Listing.
	ListingPaths []string
	// NoListingPaths are canonical path prefixes where listing is off
	// regardless of Listing. Between the two lists the longest matching
	// prefix wins; the same prefix in both is a configuration error.
	NoListingPaths []string
	// ServeDotfiles, when false (the default), refuses any path with a
	// segment starting with ".", except a first segment ".well-known"
	// (RFC 8615 defines it at the top of the site only).
	ServeDotfiles bool
}

// Refusal says why Serve wrote nothing. Reason may be shown to the client;
// Detail is for the operator (decision log, doctor) and never for the public.
type Refusal struct {
	Code   decision.ReasonCode
	Reason string
	Detail string
}

// Decision turns the refusal into the gateway's Decision, with the code's
// default status.
func (r *Refusal) Decision() decision.Decision {
	d := decision.Refuse(r.Code, r.Reason)
	d.Detail = r.Detail
	return d
}

// Public reason sentences; tests and clients may rely on them.
const (
	reasonNotFound         = "not found"
	reasonDotfiles         = "dotfiles are not served"
	reasonFileNotReadable  = "the file is not readable by the server"
	reasonDirNotReadable   = "the directory is not readable by the server"
	reasonListingDisabled  = "directory listing is disabled for "
	reasonBadPath          = "the path cannot be served"
	reasonInternalError    = "the file could not be served"
	wellKnownSegment       = ".well-known"
	defaultIndexDocument   = "index.html"
	defaultContentType     = "application/octet-stream"
	listingContentSecurity = "default-src 'none'; style-src 'unsafe-inline'"
)

// Server serves one tree of files. It is safe for concurrent use.
type Server struct {
	// fsys is what files are read from: root.FS() on disk, or Config.FS.
	fsys fs.FS
	// root is the opened disk root; nil when serving Config.FS.
	root *os.Root
	// rootDir is the absolute directory of root, for operator messages.
	rootDir string
	// checkPerms is true on disk: readability is judged from mode bits.
	checkPerms bool
	proc       processIdentity

	index         []string
	listing       listingRules
	serveDotfiles bool
	listingPage   *template.Template
}

// New opens the root (or takes the fs.FS) and validates the configuration.
// The root directory stays open for the life of the Server: if the path is
// later swapped for another directory (a symlinked "current" release), the
// Server keeps serving the old one until it is rebuilt.
func New(cfg Config) (*Server, error) {
	s := &Server{serveDotfiles: cfg.ServeDotfiles}

	s.index = cfg.Index
	if len(s.index) == 0 {
		s.index = []string{defaultIndexDocument}
	}
	for _, name := range s.index {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
			return nil, fmt.Errorf("files: index document %q must be a plain file name", name)
		}
	}

	rules, err := newListingRules(cfg.Listing, cfg.ListingPaths, cfg.NoListingPaths)
	if err != nil {
		return nil, err
	}
	s.listing = rules

	s.listingPage, err = template.New("listing").Parse(listingTemplate)
	if err != nil {
		return nil, fmt.Errorf("files: parse listing template: %w", err)
	}

	if cfg.FS != nil {
		s.fsys = cfg.FS
		return s, nil
	}
	if cfg.Root == "" {
		return nil, errors.New("files: no root directory and no FS given")
	}
	abs, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("files: root %s: %w", cfg.Root, err)
	}
	info, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("files: root %s: %w", abs, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("files: root %s is not a directory", abs)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("files: open root %s: %w", abs, err)
	}
	s.root = root
	s.rootDir = abs
	s.fsys = root.FS()
	s.checkPerms = true
	s.proc = currentProcessIdentity()
	return s, nil
}

// Close releases the root directory. Serving after Close fails with
// internal_error refusals.
func (s *Server) Close() error {
	if s.root == nil {
		return nil
	}
	return s.root.Close()
}

// Serve serves canonical path p (already decoded and normalized by the
// caller; it starts with "/"). It either writes a full response and returns
// nil, or writes nothing and returns a refusal for the caller to render.
//
// Only GET and HEAD are served. Another method on a path that exists and may
// be served gets a 405 with "Allow: GET, HEAD", written here, and Serve
// returns nil: there is no stable reason code for it because it is not a
// refusal of the caller but a wrong verb. Refusals about the path itself
// (missing, dotfile, unreadable) come first, as they hold for every method.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, p string) *Refusal {
	name, wantDir, ref := s.nameFor(p)
	if ref != nil {
		return ref
	}
	if ref := s.checkAncestors(name); ref != nil {
		return ref
	}
	if ref := s.refuseHidden(name); ref != nil {
		return ref
	}

	f, err := s.open(name)
	if err != nil {
		return s.openFailed(name, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return s.internalError(name, fmt.Errorf("stat after open: %w", err))
	}

	switch {
	case info.IsDir():
		return s.serveDir(w, r, p, name, info, wantDir)
	case info.Mode().IsRegular():
		if wantDir {
			return &Refusal{Code: decision.NotFound, Reason: reasonNotFound,
				Detail: s.diskPath(name) + " is a file, but the path ends in a slash"}
		}
		if ref := s.checkAccess(name, info, permRead, reasonFileNotReadable); ref != nil {
			return ref
		}
		if !methodAllowed(w, r) {
			return nil
		}
		s.serveContent(w, r, name, info, f)
		return nil
	default:
		return &Refusal{Code: decision.NotFound, Reason: reasonNotFound,
			Detail: fmt.Sprintf("%s is not a regular file (mode %v)", s.diskPath(name), info.Mode())}
	}
}

// nameFor checks p and maps it to a name inside the tree ("." for the top).
// wantDir reports a trailing slash.
func (s *Server) nameFor(p string) (name string, wantDir bool, ref *Refusal) {
	badPath := func(why string) (string, bool, *Refusal) {
		return "", false, &Refusal{Code: decision.BadRequest, Reason: reasonBadPath,
			Detail: fmt.Sprintf("path %q %s; the caller must pass a canonical path", p, why)}
	}
	if !strings.HasPrefix(p, "/") {
		return badPath("does not start with a slash")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return badPath("holds a NUL byte")
	}
	wantDir = strings.HasSuffix(p, "/")
	name = strings.Trim(p, "/")
	if name == "" {
		return ".", true, nil
	}
	for i, seg := range strings.Split(name, "/") {
		switch {
		case seg == "":
			return badPath("has an empty segment")
		case seg == "." || seg == "..":
			return badPath("has a dot segment")
		case strings.HasPrefix(seg, ".") && !s.serveDotfiles && !(i == 0 && seg == wellKnownSegment):
			return "", false, &Refusal{Code: decision.PathForbidden, Reason: reasonDotfiles,
				Detail: fmt.Sprintf("segment %q of %s starts with a dot; set serve_dotfiles to serve it", seg, p)}
		}
	}
	if !fs.ValidPath(name) {
		return badPath("is not a valid file path")
	}
	return name, wantDir, nil
}

// checkAncestors makes sure the server may pass through every directory
// above name, the root included. os.Root opens each directory on the way
// (openat with O_RDONLY|O_DIRECTORY), which needs read as well as search
// permission, so unlike nginx, which needs only x, a directory must be rx for
// the server or everything below it is unreadable.
func (s *Server) checkAncestors(name string) *Refusal {
	if !s.checkPerms {
		return nil
	}
	dir := "."
	rest := name
	for {
		info, err := fs.Stat(s.fsys, dir)
		if err != nil {
			return s.openFailed(dir, err)
		}
		if !info.IsDir() {
			return &Refusal{Code: decision.NotFound, Reason: reasonNotFound,
				Detail: s.diskPath(dir) + " is not a directory"}
		}
		if ref := s.checkAccess(dir, info, permDir, reasonDirNotReadable); ref != nil {
			return ref
		}
		if name == "." {
			return nil
		}
		seg, more, found := strings.Cut(rest, "/")
		if !found {
			return nil
		}
		if dir == "." {
			dir = seg
		} else {
			dir += "/" + seg
		}
		rest = more
	}
}

// checkAccess refuses when the server lacks want on info, judged from the
// mode bits (see processIdentity for why not from open()).
func (s *Server) checkAccess(name string, info fs.FileInfo, want permBits, publicReason string) *Refusal {
	if !s.checkPerms {
		return nil
	}
	v := s.proc.verdict(info, want)
	if v.ok {
		return nil
	}
	return &Refusal{Code: decision.FileNotReadable, Reason: publicReason,
		Detail: v.explain(s.diskPath(name), info)}
}

func (s *Server) open(name string) (fs.File, error) {
	if s.root != nil {
		// openFlags adds O_NONBLOCK on Unix so that a FIFO in the tree cannot
		// hang the request; the type check after Stat then refuses it.
		f, err := s.root.OpenFile(name, openFlags, 0)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	return s.fsys.Open(name)
}

// openFailed turns an error from opening or stating name into a refusal.
func (s *Server) openFailed(name string, err error) *Refusal {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, fs.ErrInvalid):
		return &Refusal{Code: decision.NotFound, Reason: reasonNotFound, Detail: err.Error()}
	case isRootEscape(err):
		return &Refusal{Code: decision.NotFound, Reason: reasonNotFound,
			Detail: fmt.Sprintf("%s: a symbolic link on the way leads outside the root %s (answered as 404): %v",
				s.diskPath(name), s.rootDir, err)}
	case errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.ENAMETOOLONG):
		return &Refusal{Code: decision.NotFound, Reason: reasonNotFound, Detail: err.Error()}
	case errors.Is(err, fs.ErrPermission):
		// stat needs no read permission on the file itself, so the mode bits
		// usually tell which class lacks what; explain with them if they do.
		if info, statErr := fs.Stat(s.fsys, name); statErr == nil && s.checkPerms {
			want, reason := permRead, reasonFileNotReadable
			if info.IsDir() {
				want, reason = permDir, reasonDirNotReadable
			}
			if v := s.proc.verdict(info, want); !v.ok {
				return &Refusal{Code: decision.FileNotReadable, Reason: reason,
					Detail: v.explain(s.diskPath(name), info)}
			}
		}
		return &Refusal{Code: decision.FileNotReadable, Reason: reasonFileNotReadable,
			Detail: fmt.Sprintf("%v; fix: make it readable by uid %d, e.g. chmod o+r %s (and o+rx on its directories)",
				err, s.proc.uid, shellQuote(s.diskPath(name)))}
	}
	return s.internalError(name, err)
}

func (s *Server) internalError(name string, err error) *Refusal {
	return &Refusal{Code: decision.InternalError, Reason: reasonInternalError,
		Detail: fmt.Sprintf("%s: %v", s.diskPath(name), err)}
}

// isRootEscape reports whether err is os.Root refusing a path that leaves
// the root. The os package does not export that error, so it is recognized
// by its text; TestSymlinkEscape fails if the text ever changes.
func isRootEscape(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == "path escapes from parent" {
			return true
		}
	}
	return false
}

// serveDir answers a directory: redirect to the slashed path, its index
// document, or its listing.
func (s *Server) serveDir(w http.ResponseWriter, r *http.Request, p, name string, info fs.FileInfo, hasSlash bool) *Refusal {
	// Looking inside for an index document opens the directory, as does the
	// listing: both need rx (see checkAncestors).
	if ref := s.checkAccess(name, info, permDir, reasonDirNotReadable); ref != nil {
		return ref
	}

	if !methodAllowed(w, r) {
		return nil
	}
	if !hasSlash {
		// Like nginx: the directory's own URL ends in a slash, so that
		// relative links inside its pages resolve below it.
		target := url.URL{Path: p + "/", RawQuery: r.URL.RawQuery}
		h := w.Header()
		h.Set("Location", target.String())
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusMovedPermanently)
		if r.Method != http.MethodHead {
			io.WriteString(w, "moved to "+target.String()+"\n")
		}
		return nil
	}
	for _, index := range s.index {
		indexName := path.Join(name, index)
		if ref := s.refuseHidden(indexName); ref != nil {
			return ref
		}
		f, err := s.open(indexName)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				continue
			}
			return s.openFailed(indexName, err)
		}
		indexInfo, err := f.Stat()
		if err != nil {
			f.Close()
			return s.internalError(indexName, fmt.Errorf("stat after open: %w", err))
		}
		if !indexInfo.Mode().IsRegular() {
			f.Close()
			continue
		}
		if ref := s.checkAccess(indexName, indexInfo, permRead, reasonFileNotReadable); ref != nil {
			f.Close()
			return ref
		}
		s.serveContent(w, r, indexName, indexInfo, f)
		f.Close()
		return nil
	}

	if !s.listing.enabled(p) {
		return &Refusal{Code: decision.DirectoryListingDisabled, Reason: reasonListingDisabled + p,
			Detail: fmt.Sprintf("%s has none of the index documents %v and listing is off for %s",
				s.diskPath(name), s.index, p)}
	}
	return s.serveListing(w, r, p, name)
}

// serveContent writes a regular file with http.ServeContent, which handles
// Range, If-None-Match, If-Modified-Since and HEAD.
func (s *Server) serveContent(w http.ResponseWriter, r *http.Request, name string, info fs.FileInfo, f fs.File) {
	h := w.Header()
	contentType := mime.TypeByExtension(path.Ext(name))
	if contentType == "" {
		// Never sniff: a file without a known extension is served as bytes,
		// so an uploaded HTML file cannot become a page of this site.
		contentType = defaultContentType
	}
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", etag(info))

	content, ok := f.(io.ReadSeeker)
	if !ok {
		// Some fs.FS files cannot seek; read them whole (embedded files can).
		data, err := io.ReadAll(f)
		if err != nil {
			http.Error(w, "read error", http.StatusInternalServerError)
			return
		}
		content = strings.NewReader(string(data))
	}
	http.ServeContent(w, r, path.Base(name), info.ModTime(), content)
}

// etag is nginx's strong validator: "<mtime seconds hex>-<size hex>".
func etag(info fs.FileInfo) string {
	return fmt.Sprintf(`"%x-%x"`, info.ModTime().Unix(), info.Size())
}

// methodAllowed writes a 405 and reports false for anything but GET and HEAD.
func methodAllowed(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	h := w.Header()
	h.Set("Allow", "GET, HEAD")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusMethodNotAllowed)
	io.WriteString(w, "method not allowed: static files answer GET and HEAD only\n")
	return false
}

// diskPath is name as the operator knows it.
func (s *Server) diskPath(name string) string {
	if s.root == nil {
		return "fs:" + name
	}
	return filepath.Join(s.rootDir, filepath.FromSlash(name))
}

// shellQuote quotes p for a POSIX shell when it needs quoting.
func shellQuote(p string) string {
	safe := true
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-+,:@%=", c)) {
			safe = false
			break
		}
	}
	if safe && p != "" {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
