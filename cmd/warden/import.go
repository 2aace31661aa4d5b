package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/warden-gateway/warden/internal/importer"
	"github.com/warden-gateway/warden/internal/importer/apache"
	"github.com/warden-gateway/warden/internal/importer/nginx"
)

const importUsage = `usage:
  warden import nginx FILE                        translate an nginx configuration
  warden import htaccess --root DOCROOT [FILE...] translate .htaccess files or <Directory> blocks
        (no FILE: every .htaccess under DOCROOT, merged as Apache merges them)
        --options "Indexes FollowSymLinks"   Options of the server's <Directory> for DOCROOT
        --directory-index "index.html ..."   the server's DirectoryIndex
        (both default to Debian's stock apache2.conf and dir.conf)

The warden config goes to stdout. Every directive that is not translated, or
translated only approximately, is listed on stderr as
  FILE:LINE: not translated: <directive> (<why>)
  FILE:LINE: approximate: <directive> (<why>)
`

// cmdImport translates nginx or Apache access control into a warden config.
// It exits 0 when a config was written (notes or not), 1 when the input
// cannot be read or parsed, 2 on a usage error.
func cmdImport(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, importUsage)
		return 2
	}
	var res *importer.Result
	var err error
	switch args[0] {
	case "nginx":
		fl := flag.NewFlagSet("import nginx", flag.ContinueOnError)
		fl.Usage = func() { fmt.Fprint(os.Stderr, importUsage) }
		if err := fl.Parse(args[1:]); err != nil {
			return 2
		}
		if fl.NArg() != 1 {
			fmt.Fprint(os.Stderr, importUsage)
			return 2
		}
		res, err = nginx.Import(fl.Arg(0))
	case "htaccess":
		fl := flag.NewFlagSet("import htaccess", flag.ContinueOnError)
		fl.Usage = func() { fmt.Fprint(os.Stderr, importUsage) }
		root := fl.String("root", "", "the site's DocumentRoot")
		options := fl.String("options", strings.Join(apache.DebianDefaults.Options, " "), "Options of the server's <Directory> for DOCROOT")
		index := fl.String("directory-index", strings.Join(apache.DebianDefaults.DirectoryIndex, " "), "the server's DirectoryIndex")
		if err := fl.Parse(args[1:]); err != nil {
			return 2
		}
		if *root == "" {
			fmt.Fprint(os.Stderr, importUsage)
			return 2
		}
		def := apache.ServerDefaults{Options: strings.Fields(*options), DirectoryIndex: strings.Fields(*index), Source: "--options/--directory-index"}
		if !flagSet(fl, "options") && !flagSet(fl, "directory-index") {
			def.Source = apache.DebianDefaults.Source + " (--options, --directory-index)"
		}
		res, err = apache.ImportWith(def, *root, fl.Args()...)
	case "help", "-h", "--help":
		fmt.Print(importUsage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "warden import: unknown source %q\n\n%s", args[0], importUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden import: %v\n", err)
		return 1
	}
	for _, n := range res.Notes {
		fmt.Fprintln(os.Stderr, n)
	}
	if _, err := os.Stdout.Write(res.YAML); err != nil {
		fmt.Fprintf(os.Stderr, "warden import: write: %v\n", err)
		return 1
	}
	return 0
}

// flagSet reports whether the flag was given on the command line.
func flagSet(fl *flag.FlagSet, name string) bool {
	set := false
	fl.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
