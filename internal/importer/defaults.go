package importer

import "fmt"

// What nginx and Apache do by default that warden does more strictly. The
// import keeps warden's stricter default (it refuses more, never less) and
// says so, with the knob that would match the server where there is one.
const (
	// DotfilesWhy is matched by the differential tests' divergences.
	DotfilesWhy     = "serves dotfiles (.env, .git/config) unless a rule refuses them; warden refuses them (403) unless serve_dotfiles: true on the handler (which would expose them as %s does)"
	EncodedSlashWhy = "decodes %%2F in paths; warden refuses such paths with 400 unless paths: {allow_encoded_slash: true}"
	SymlinkWhy      = "follows symlinks that lead out of the root (%s); warden answers 404 for them (no knob: copy the files into the root)"
	MethodsWhy      = "answers methods other than GET and HEAD on a folder listing with %d; warden answers 405 (both refuse)"
)

// DefaultsNotes are the notes about server defaults for one served root,
// attached to src (the root directive, or the server defaults' flag).
func DefaultsNotes(src Note, server Server) []Note {
	name, symlinks, listingMethod := "nginx", "disable_symlinks off", 403
	if server == Apache {
		name, symlinks, listingMethod = "Apache", "Options FollowSymLinks", 200
	}
	mk := func(why string) Note {
		n := src
		n.Kind = Approximate
		n.Why = name + " " + why
		return n
	}
	notes := []Note{
		mk(fmt.Sprintf(DotfilesWhy, name)),
		mk(fmt.Sprintf(EncodedSlashWhy)),
		mk(fmt.Sprintf(SymlinkWhy, symlinks)),
	}
	if server == Nginx {
		notes = append(notes, mk(fmt.Sprintf(MethodsWhy, listingMethod)))
	}
	return notes
}
