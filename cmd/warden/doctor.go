package main

import (
	"flag"
	"fmt"
	"os"
)

// cmdDoctor lists what the file handlers would refuse as unreadable, with
// the command that fixes each: the "check file permissions" advice of a 403,
// done before a visitor meets it.
func cmdDoctor(args []string) int {
	fl := flag.NewFlagSet("doctor", flag.ContinueOnError)
	cfgPath := fl.String("config", "", "policy file")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(os.Stderr, "usage: warden doctor --config FILE")
		return 2
	}
	rt, err := loadRuntime(*cfgPath)
	if err != nil {
		printErrors(err)
		return 1
	}
	problems := 0
	for _, fsrv := range rt.FileServers() {
		findings, err := fsrv.Unreadable()
		if err != nil {
			fmt.Fprintf(os.Stderr, "warden doctor: %v\n", err)
			return 1
		}
		for _, f := range findings {
			problems++
			fmt.Printf("%s (%s, mode %s): %s\n    fix: %s\n", f.URLPath, f.Path, f.Mode, f.Problem, f.Fix)
		}
	}
	if problems == 0 {
		fmt.Println("no unreadable files under the served folders")
		return 0
	}
	fmt.Printf("%d file(s) would be refused with 403 file_not_readable\n", problems)
	return 1
}
