// Command warden is an HTTP access gateway that says why it refuses.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

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
	case "import":
		return cmdImport(rest)
	case "replay":
		return cmdReplay(rest)
	case "schema":
		return cmdSchema(rest)
	case "demo-policy":
		return cmdDemoPolicy(rest)
	case "version", "--version", "-v":
		fmt.Println("warden", version)
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "warden: unknown command %q\n\n%s", cmd, usage)
	return 2
}
