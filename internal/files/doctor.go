package files

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Finding is one thing under the root that the server would refuse to serve
// because of its permissions or where it leads, with the command that fixes it.
type Finding struct {
	// Path is the path on disk.
	Path string
	// URLPath is the canonical request path that reaches it ("/docs/a.pdf").
	URLPath string
	Mode    fs.FileMode
	Problem string
	Fix     string
}

// Unreadable walks the root and lists the files and directories the server
// would refuse as unreadable (file_not_readable), and the symbolic links it
// would refuse because they lead outside the root, each with a fix, for
// `warden doctor`. Dotfiles are skipped unless served; a directory the
// server cannot open (it needs rx, see checkAncestors) is reported once and
// not descended into; symbolic links
// to directories are not followed (the target is checked where it lives).
// With an fs.FS instead of a root there is nothing to check and the result is
// empty.
func (s *Server) Unreadable() ([]Finding, error) {
	if s.root == nil {
		return nil, nil
	}
	var findings []Finding
	info, err := fs.Stat(s.fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("files: stat root %s: %w", s.rootDir, err)
	}
	if f, bad := s.accessFinding(".", "/", info, permDir); bad {
		return append(findings, f), nil
	}
	if err := s.inspectDir(".", "/", info, &findings); err != nil {
		return findings, err
	}
	return findings, nil
}

// inspectDir checks the entries of directory name (canonical path urlDir,
// ending in "/"), which the server may enter.
func (s *Server) inspectDir(name, urlDir string, info fs.FileInfo, findings *[]Finding) error {
	entries, err := fs.ReadDir(s.fsys, name)
	if errors.Is(err, fs.ErrPermission) {
		*findings = append(*findings, Finding{
			Path: s.diskPath(name), URLPath: urlDir, Mode: info.Mode(),
			Problem: "directory cannot be read by the server; its contents were not checked",
			Fix:     fmt.Sprintf("chmod o+rx %s", shellQuote(s.diskPath(name))),
		})
		return nil
	}
	if err != nil {
		return fmt.Errorf("files: read directory %s: %w", s.diskPath(name), err)
	}

	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && !s.serveDotfiles && !(name == "." && e.Name() == wellKnownSegment) {
			continue
		}
		child := path.Join(name, e.Name())
		urlChild := urlDir + e.Name()

		if e.Type()&fs.ModeSymlink != 0 {
			if resolved, hidden := s.hiddenTarget(child); hidden {
				*findings = append(*findings, Finding{
					Path: s.diskPath(child), URLPath: urlChild, Mode: fs.ModeSymlink,
					Problem: fmt.Sprintf("symbolic link to the dotfile %s; dotfiles are not served, so the server answers 404", s.diskPath(resolved)),
					Fix:     "remove the link, or set serve_dotfiles if the dotfile is meant to be public",
				})
				continue
			}
			target, err := fs.Stat(s.fsys, child)
			switch {
			case isRootEscape(err):
				link, _ := fs.ReadLink(s.fsys, child)
				*findings = append(*findings, Finding{
					Path: s.diskPath(child), URLPath: urlChild, Mode: fs.ModeSymlink,
					Problem: fmt.Sprintf("symbolic link to %q leads outside the root; the server answers 404", link),
					Fix: fmt.Sprintf("replace the link with a copy of its target, or move the target inside %s",
						s.rootDir),
				})
			case err != nil:
				// Dangling links are missing files, not permission problems.
			case target.Mode().IsRegular():
				if f, bad := s.accessFinding(child, urlChild, target, permRead); bad {
					*findings = append(*findings, f)
				}
			case target.IsDir():
				if f, bad := s.accessFinding(child, urlChild+"/", target, permDir); bad {
					*findings = append(*findings, f)
				}
			}
			continue
		}

		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while walking
			}
			return fmt.Errorf("files: stat %s: %w", s.diskPath(child), err)
		}
		switch {
		case info.IsDir():
			if f, bad := s.accessFinding(child, urlChild+"/", info, permDir); bad {
				*findings = append(*findings, f)
				continue
			}
			if err := s.inspectDir(child, urlChild+"/", info, findings); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if f, bad := s.accessFinding(child, urlChild, info, permRead); bad {
				*findings = append(*findings, f)
			}
		}
	}
	return nil
}

func (s *Server) accessFinding(name, urlPath string, info fs.FileInfo, want permBits) (Finding, bool) {
	v := s.proc.verdict(info, want)
	if v.ok {
		return Finding{}, false
	}
	return Finding{
		Path:    s.diskPath(name),
		URLPath: urlPath,
		Mode:    info.Mode(),
		Problem: v.problem(info),
		Fix:     v.fix(s.diskPath(name)),
	}, true
}
