package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"

	"github.com/warden-gateway/warden/internal/config"
	"github.com/warden-gateway/warden/internal/engine"
)

// loadRuntime reads and compiles a config the way serve does.
func loadRuntime(path string) (*engine.Runtime, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return engine.Build(cfg, engine.Options{})
}

func cmdCheck(args []string) int {
	fl := flag.NewFlagSet("check", flag.ContinueOnError)
	cfgPath := fl.String("config", "", "policy file to check")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" && fl.NArg() == 1 {
		*cfgPath = fl.Arg(0)
	}
	if *cfgPath == "" {
		fmt.Fprintln(os.Stderr, "usage: warden check --config FILE")
		return 2
	}
	data, err := os.ReadFile(*cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden check: %v\n", err)
		return 1
	}
	// Shape errors and compile errors are reported together, in file
	// order, so one run shows every mistake.
	cfg, perr := config.ParsePartial(*cfgPath, data)
	var errs config.Errors
	errs = append(errs, asConfigErrors(perr)...)
	var rt *engine.Runtime
	if cfg != nil {
		var berr error
		rt, berr = engine.Build(cfg, engine.Options{})
		for _, e := range asConfigErrors(berr) {
			if !slices.Contains(cfg.Incomplete, e.Pos) {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		seen := map[string]bool{}
		for _, e := range errs {
			if line := e.Error(); !seen[line] {
				seen[line] = true
				fmt.Fprintln(os.Stderr, line)
			}
		}
		return 1
	}
	for _, w := range policyWarnings(cfg) {
		fmt.Fprintln(os.Stderr, "warning: "+w.Error())
	}
	fmt.Printf("%s: ok (%d rules)\n", *cfgPath, rt.Policy.RuleCount())
	rt.Close()
	return 0
}

func asConfigErrors(err error) config.Errors {
	if err == nil {
		return nil
	}
	var out config.Errors
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var ce *config.Error
		if errors.As(e, &ce) {
			out = append(out, ce)
		} else {
			out = append(out, &config.Error{Msg: e.Error()})
		}
	}
	return out
}

// printErrors writes one "file:line: message" line per mistake.
func printErrors(err error) {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		for _, e := range j.Unwrap() {
			fmt.Fprintln(os.Stderr, e)
		}
		return
	}
	fmt.Fprintln(os.Stderr, err)
}
