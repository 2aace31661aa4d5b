package files

import (
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// permBits are the rwx bits of one class (owner, group or other), as in
// chmod's octal digits.
type permBits fs.FileMode

const (
	permExec permBits = 1
	permRead permBits = 4
	// permDir is what the server needs on a directory to look inside it
	// through os.Root (see checkAncestors).
	permDir = permRead | permExec
)

func (b permBits) letters() string {
	var out string
	if b&permRead != 0 {
		out += "r"
	}
	if b&permExec != 0 {
		out += "x"
	}
	return out
}

func (b permBits) words() string {
	switch b {
	case permRead:
		return "read (r)"
	case permExec:
		return "search (x)"
	}
	return "read and search (rx)"
}

// processIdentity is who the server is, as far as file permissions go.
//
// Readability is decided from the mode bits as this identity would see them
// without any privilege, not by trying open(): warden often runs as root (in
// containers, in CI, in tests), where open() never fails with EACCES, and a
// file that root can read but the site's owner cannot is exactly the broken
// deployment that turns into a 403 once warden runs unprivileged or behind
// another server. So, as POSIX does: the owner bits apply when the file's uid
// is our effective uid, else the group bits when its gid is one of our groups,
// else the other bits; root gets no exemption. A real EACCES from open() is
// still reported as file_not_readable.
type processIdentity struct {
	uid  int
	gids []int
}

func currentProcessIdentity() processIdentity {
	id := processIdentity{uid: os.Geteuid(), gids: []int{os.Getegid()}}
	if groups, err := os.Getgroups(); err == nil {
		for _, g := range groups {
			if !slices.Contains(id.gids, g) {
				id.gids = append(id.gids, g)
			}
		}
	}
	return id
}

// accessVerdict is the outcome of checking one file against the identity.
type accessVerdict struct {
	ok bool
	// class is the chmod class letter that applied: 'u', 'g' or 'o'.
	class    byte
	missing  permBits
	uid, gid int
	proc     processIdentity
}

// verdict reports whether id has all of want on info. Where the owner of a
// file is unknown (no Unix stat data), the bits cannot be judged and the
// verdict is ok: open() errors still catch what the OS refuses.
func (id processIdentity) verdict(info fs.FileInfo, want permBits) accessVerdict {
	uid, gid, known := fileOwner(info)
	if !known {
		return accessVerdict{ok: true}
	}
	v := accessVerdict{uid: uid, gid: gid, proc: id}
	perm := info.Mode().Perm()
	var have permBits
	switch {
	case uid == id.uid:
		v.class, have = 'u', permBits(perm>>6)&7
	case slices.Contains(id.gids, gid):
		v.class, have = 'g', permBits(perm>>3)&7
	default:
		v.class, have = 'o', permBits(perm)&7
	}
	v.missing = want &^ have
	v.ok = v.missing == 0
	return v
}

func (v accessVerdict) className() string {
	switch v.class {
	case 'u':
		return "owner"
	case 'g':
		return "group"
	}
	return "other"
}

// fix is the chmod command that grants the missing bits to the class that
// applies to the server.
func (v accessVerdict) fix(diskPath string) string {
	return fmt.Sprintf("chmod %c+%s %s", v.class, v.missing.letters(), shellQuote(diskPath))
}

// problem is a short sentence for doctor findings.
func (v accessVerdict) problem(info fs.FileInfo) string {
	what := "file"
	if info.IsDir() {
		what = "directory"
	}
	return fmt.Sprintf("%s lacks %s permission for the server (%s class)", what, v.missing.words(), v.className())
}

// explain is the operator-only detail of a file_not_readable refusal.
func (v accessVerdict) explain(diskPath string, info fs.FileInfo) string {
	gids := make([]string, len(v.proc.gids))
	for i, g := range v.proc.gids {
		gids[i] = fmt.Sprint(g)
	}
	return fmt.Sprintf("%s: mode %v, owner uid %d, group gid %d; the server runs as uid %d with groups [%s], "+
		"so the %s bits apply and they lack %s permission (judged without root privilege); fix: %s",
		diskPath, info.Mode(), v.uid, v.gid, v.proc.uid, strings.Join(gids, " "),
		v.className(), v.missing.words(), v.fix(diskPath))
}
