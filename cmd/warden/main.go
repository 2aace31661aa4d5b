// Command warden is an HTTP access gateway that says why it refuses.
package main

import (
	"fmt"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
)

// version and commit override what the binary's build information says,
// for builds made outside the module system (a distribution's package, a
// tarball without .git): go build -ldflags "-X main.version=v1.2.3 -X
// main.commit=abc123". Empty: the build information decides.
var (
	version = ""
	commit  = ""
)

const usage = `warden — an HTTP access gateway that says why it refuses

usage:
  warden serve   [--config FILE] [--listen ADDR]   run the gateway (no config: the built-in demo)
  warden check   --config FILE                     check a policy; file:line for every mistake
  warden explain --config FILE [--json] METHOD URL [--ip IP] [--header 'K: V']...
                                                   show the decision for one request and its trace
  warden hash-key KEY                              print the sha256: form of an API key for the policy
  warden token   --key FILE [--sub S] [--role R]... mint a JWT with a local key (for trying policies)
  warden import nginx FILE | import htaccess --root DOCROOT FILE
                                                   translate nginx / Apache access rules into a warden policy
  warden replay  --config NEW [--baseline OLD] [--json] LOG
                                                   judge logged requests (warden's decision or access log, an
                                                   nginx/Apache combined log, or METHOD URL [IP] lines) under a
                                                   policy: what it newly refuses or allows, by rule and code
  warden schema                                    print the policy's JSON Schema (for editors)
  warden demo-policy                               print the demo policy, a starting template
  warden doctor  --config FILE                     list files the server would refuse as unreadable, with the fix
  warden bans    list|add TARGET --for 1h|remove TARGET [--admin ADDR] [--token-file F]
                                                   list, add or lift bans in a running warden (its admin listener)
  warden version
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(rest)
	case "check":
		return cmdCheck(rest)
	case "explain":
		return cmdExplain(rest)
	case "hash-key":
		return cmdHashKey(rest)
	case "token":
		return cmdToken(rest)
	case "doctor":
		return cmdDoctor(rest)
	case "bans":
		return cmdBans(rest)
	case "import":
		return cmdImport(rest)
	case "replay":
		return cmdReplay(rest)
	case "schema":
		return cmdSchema(rest)
	case "demo-policy":
		return cmdDemoPolicy(rest)
	case "version", "--version", "-v":
		bi, _ := debug.ReadBuildInfo()
		fmt.Println(versionLine(bi, version, commit))
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "warden: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// versionLine is `warden version`'s output: the module version and the VCS
// commit the binary was built from, from runtime/debug.ReadBuildInfo.
//
// `go install github.com/warden-gateway/warden/cmd/warden@v1.2.3` records
// the module version (a tag, or a pseudo-version that ends in the commit's
// first 12 hex digits) but no vcs.* settings; a `go build` inside a checkout
// records "(devel)" or a pseudo-version and, unless -buildvcs=false, the
// full commit, its time and whether the tree had changes. Whatever is not
// known is said to be unknown, never guessed.
func versionLine(bi *debug.BuildInfo, versionOverride, commitOverride string) string {
	ver, rev, when, modified := "", "", "", false
	if bi != nil {
		ver = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev == "" {
			if m := pseudoVersionRev.FindStringSubmatch(ver); m != nil {
				rev = m[1]
			}
		}
	}
	if versionOverride != "" {
		ver = versionOverride
	}
	if commitOverride != "" {
		rev, when, modified = commitOverride, "", false
	}
	if ver == "" || ver == "(devel)" {
		ver = "(devel)" // built from a checkout without a version recorded
	}
	var b strings.Builder
	b.WriteString("warden " + ver)
	if rev == "" {
		b.WriteString(" commit unknown")
	} else {
		b.WriteString(" commit " + rev)
		if modified {
			b.WriteString(" (modified)")
		}
		if when != "" {
			b.WriteString(" " + when)
		}
	}
	if bi != nil && bi.GoVersion != "" {
		b.WriteString(" " + bi.GoVersion)
	}
	return b.String()
}

// pseudoVersionRev finds the commit in a pseudo-version
// (v0.0.0-20260102150405-abcdef123456, v1.2.4-0.20260102150405-abcdef123456,
// optionally +dirty or +incompatible): the last 12 hex digits after the
// 14-digit UTC timestamp (https://go.dev/ref/mod#pseudo-versions).
var pseudoVersionRev = regexp.MustCompile(`[-.]\d{14}-([0-9a-f]{12})(?:\+[0-9A-Za-z.+-]*)?$`)
