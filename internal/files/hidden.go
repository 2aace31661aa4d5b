package files

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/warden-gateway/warden/internal/decision"
)

// maxLinkHops bounds the symbolic links followed for one path, as the
// kernel's MAXSYMLINKS (40) does; past it the open fails with ELOOP anyway.
const maxLinkHops = 40

// hiddenTarget resolves the symbolic links on the way to name (every
// directory component and the file itself) and reports the first component
// of the resolved path that is a dotfile. A link is only another name for
// its target: "/innocent" linking to ".env", or "/assets" linking to ".git",
// must be refused like the dotfile itself, or the dotfile rule would hold
// only for the names nobody uses. Links that escape the root, dangle or
// loop are left to the open, which refuses them (os.Root). Resolution
// happens in the root's own namespace: Lstat and Readlink through os.Root.
func (s *Server) hiddenTarget(name string) (resolved string, hidden bool) {
	if s.root == nil || s.serveDotfiles || name == "." {
		return "", false
	}
	var done []string
	pending := strings.Split(name, "/")
	linked := false
	for hops := 0; len(pending) > 0; {
		seg := pending[0]
		pending = pending[1:]
		switch seg {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", false // leaves the root: os.Root refuses it
			}
			done = done[:len(done)-1]
			continue
		}
		if strings.HasPrefix(seg, ".") && !(len(done) == 0 && seg == wellKnownSegment) {
			if !linked {
				return "", false // the name itself: nameFor's business
			}
			return strings.Join(append(done, seg), "/"), true
		}
		cur := strings.Join(append(done, seg), "/")
		info, err := s.root.Lstat(cur)
		if err != nil {
			return "", false
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			done = append(done, seg)
			continue
		}
		if hops++; hops > maxLinkHops {
			return "", false
		}
		target, err := s.root.Readlink(cur)
		if err != nil || strings.HasPrefix(target, "/") {
			return "", false // absolute links are refused as escapes
		}
		linked = true
		pending = append(strings.Split(target, "/"), pending...)
	}
	return "", false
}

// refuseHidden is the refusal for a link to a dotfile: 404, like a link
// out of the root, since from the visitor's side there is no such file and
// a 403 would confirm that the link exists.
func (s *Server) refuseHidden(name string) *Refusal {
	target, hidden := s.hiddenTarget(name)
	if !hidden {
		return nil
	}
	return &Refusal{Code: decision.NotFound, Reason: reasonNotFound,
		Detail: fmt.Sprintf("%s resolves through a symbolic link to %s, a dotfile; dotfiles are not served (answered as 404)",
			s.diskPath(name), s.diskPath(target))}
}
