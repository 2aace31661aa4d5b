package files

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// listingRules decides per directory whether it may be listed.
type listingRules struct {
	def bool
	// prefixes are sorted longest first, so the first match wins.
	prefixes []listingPrefix
}

type listingPrefix struct {
	prefix string
	on     bool
}

func newListingRules(def bool, on, off []string) (listingRules, error) {
	rules := listingRules{def: def}
	seen := map[string]bool{}
	add := func(list []string, enabled bool, field string) error {
		for _, p := range list {
			if !strings.HasPrefix(p, "/") {
				return fmt.Errorf("files: %s entry %q must start with /", field, p)
			}
			// Listing applies to directories, whose paths end in a slash;
			// "/pub" means the folder /pub/, not /public/.
			if !strings.HasSuffix(p, "/") {
				p += "/"
			}
			if prev, dup := seen[p]; dup {
				if prev != enabled {
					return fmt.Errorf("files: %s is both in listing paths and in no-listing paths", p)
				}
				continue
			}
			seen[p] = enabled
			rules.prefixes = append(rules.prefixes, listingPrefix{prefix: p, on: enabled})
		}
		return nil
	}
	if err := add(on, true, "listing path"); err != nil {
		return listingRules{}, err
	}
	if err := add(off, false, "no-listing path"); err != nil {
		return listingRules{}, err
	}
	slices.SortStableFunc(rules.prefixes, func(a, b listingPrefix) int {
		return len(b.prefix) - len(a.prefix)
	})
	return rules, nil
}

// enabled reports whether the directory at canonical path dir (ending in
// "/") may be listed: the longest matching prefix decides, else the default.
func (l listingRules) enabled(dir string) bool {
	for _, p := range l.prefixes {
		if strings.HasPrefix(dir, p.prefix) {
			return p.on
		}
	}
	return l.def
}

type listingEntry struct {
	Name     string
	Href     string
	Size     string
	Modified string
	isDir    bool
}

type listingData struct {
	Path    string
	Parent  bool
	Entries []listingEntry
}

// serveListing writes the HTML listing of directory name (canonical path p).
// Dotfiles (.well-known too) are left out unless ServeDotfiles, as are links that lead
// nowhere or outside the root; directories come first, then files, each
// sorted by name.
func (s *Server) serveListing(w http.ResponseWriter, r *http.Request, p, name string) *Refusal {
	entries, err := fs.ReadDir(s.fsys, name)
	if err != nil {
		return s.openFailed(name, err)
	}
	data := listingData{Path: p, Parent: p != "/"}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && !s.serveDotfiles {
			continue
		}
		var info fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			if _, hidden := s.hiddenTarget(path.Join(name, e.Name())); hidden {
				continue // a link to a dotfile is as hidden as the dotfile
			}
			info, err = fs.Stat(s.fsys, path.Join(name, e.Name()))
		} else {
			info, err = e.Info()
		}
		if err != nil {
			continue
		}
		entry := listingEntry{
			Name:     e.Name(),
			Href:     "./" + url.PathEscape(e.Name()),
			Modified: info.ModTime().UTC().Format("2006-01-02 15:04"),
			isDir:    info.IsDir(),
		}
		if entry.isDir {
			entry.Name += "/"
			entry.Href += "/"
			entry.Size = "-"
		} else {
			entry.Size = humanSize(info.Size())
		}
		data.Entries = append(data.Entries, entry)
	}
	slices.SortStableFunc(data.Entries, func(a, b listingEntry) int {
		if a.isDir != b.isDir {
			if a.isDir {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})

	var body bytes.Buffer
	if err := s.listingPage.Execute(&body, data); err != nil {
		return s.internalError(name, fmt.Errorf("render listing: %w", err))
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", listingContentSecurity)
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body.Bytes())
	}
	return nil
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// listingTemplate is rendered by html/template, which escapes names for HTML
// and hrefs for URL attributes; hrefs are also percent-encoded and start with
// "./" so that a name like "javascript:x" stays a relative link.
const listingTemplate = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Index of {{.Path}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem;font-weight:600;word-break:break-all}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3rem .8rem .3rem 0;border-bottom:1px solid #eee}
th{font-weight:600;color:#555}
.size{text-align:right;white-space:nowrap}
a{color:#0550ae;text-decoration:none;word-break:break-all}
a:hover{text-decoration:underline}
</style>
</head>
<body>
<h1>Index of {{.Path}}</h1>
<table>
<thead><tr><th>Name</th><th class="size">Size</th><th>Modified (UTC)</th></tr></thead>
<tbody>
{{- if .Parent}}
<tr><td><a href="../">../</a></td><td class="size"></td><td></td></tr>
{{- end}}
{{- range .Entries}}
<tr><td><a href="{{.Href}}">{{.Name}}</a></td><td class="size">{{.Size}}</td><td>{{.Modified}}</td></tr>
{{- end}}
</tbody>
</table>
</body>
</html>
`
