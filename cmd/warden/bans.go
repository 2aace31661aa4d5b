package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-gateway/warden/internal/admin"
	"github.com/warden-gateway/warden/internal/state"
	"github.com/warden-gateway/warden/internal/state/stateadmin"
)

const bansUsage = `usage:
  warden bans list   [--admin ADDR] [--token-file F] [--json]
  warden bans add    TARGET --for 1h [--reason TEXT] [--admin ADDR] [--token-file F]
  warden bans remove TARGET [--admin ADDR] [--token-file F]

TARGET is an address (203.0.113.9), a CIDR (198.51.100.0/24) or a key as
warden writes it (ip:..., net:..., user:..., key:..., hdr:...).
ADDR is the admin listener: host:port (default ` + admin.DefaultListen + `) or unix:/path.
The token is admin.token_file's content: --token-file F, or WARDEN_ADMIN_TOKEN.
`

// cmdBans lists, adds and lifts bans in a running warden through its admin
// listener, so that every replica sharing the store sees the change.
func cmdBans(args []string) int {
	return runBans(args, os.Stdout, os.Stderr)
}

func runBans(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, bansUsage)
		return 2
	}
	sub := args[0]
	fl := flag.NewFlagSet("bans "+sub, flag.ContinueOnError)
	fl.SetOutput(stderr)
	addr := fl.String("admin", admin.DefaultListen, "the admin listener: host:port or unix:/path")
	tokenFile := fl.String("token-file", "", "file holding the admin token (default: $WARDEN_ADMIN_TOKEN)")
	asJSON := fl.Bool("json", false, "print JSON (list)")
	forDur := fl.String("for", "", "how long the ban lasts: 30m, 1h, 7d (add)")
	reason := fl.String("reason", "", "why, shown in the list (add)")
	pos, err := parseInterspersed(fl, args[1:])
	if err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "warden bans %s: %s\n", sub, explainBansError(err, *addr))
		return 1
	}
	want := map[string]int{"list": 0, "add": 1, "remove": 1}
	n, known := want[sub]
	if !known {
		fmt.Fprintf(stderr, "warden bans: unknown subcommand %q\n%s", sub, bansUsage)
		return 2
	}
	if len(pos) != n {
		fmt.Fprintf(stderr, "warden bans %s: want %d argument(s), got %d\n%s", sub, n, len(pos), bansUsage)
		return 2
	}
	// A target or duration that cannot be right is said here, before any
	// connection, in the words the server would use.
	var target string
	if n == 1 {
		if _, err := stateadmin.ParseTarget(pos[0]); err != nil {
			fmt.Fprintf(stderr, "warden bans %s: %v\n", sub, err)
			return 2
		}
		target = pos[0]
	}
	if sub == "add" {
		d, err := state.ParseDuration(*forDur)
		if *forDur == "" || err != nil || d <= 0 {
			fmt.Fprintf(stderr, "warden bans add: --for %q: want a positive duration such as 30m, 1h or 7d\n", *forDur)
			return 2
		}
	}
	token, err := adminToken(*tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "warden bans %s: %v\n", sub, err)
		return 2
	}
	c, err := stateadmin.NewClient(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "warden bans %s: %v\n", sub, err)
		return 2
	}
	c.Token = token
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	switch sub {
	case "list":
		bans, err := c.List(ctx)
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if bans == nil {
				bans = []stateadmin.Ban{}
			}
			_ = enc.Encode(bans)
			return 0
		}
		printBans(stdout, bans, time.Now())
	case "add":
		b, err := c.Add(ctx, stateadmin.AddRequest{Target: target, For: *forDur, Reason: *reason})
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "banned %s until %s (%s)\n", b.Key, b.Until.UTC().Format(time.RFC3339), b.Reason)
		if p, err := netip.ParsePrefix(strings.TrimPrefix(b.Key, "net:")); err == nil && strings.HasPrefix(b.Key, "net:") {
			if want := map[bool]int{true: 24, false: 64}[p.Addr().Is4()]; p.Bits() != want {
				fmt.Fprintf(stderr, "note: warden checks every client's address and its /%d network, and the prefixes its ban policies key by; a /%d ban refuses clients only if a ban policy keys by /%d\n", want, p.Bits(), p.Bits())
			}
		}
	case "remove":
		lifted, err := c.Remove(ctx, target)
		if err != nil {
			return fail(err)
		}
		key, _ := stateadmin.ParseTarget(target)
		if !lifted {
			fmt.Fprintf(stdout, "%s was not banned\n", key)
			return 0
		}
		fmt.Fprintf(stdout, "lifted the ban on %s\n", key)
	}
	return 0
}

// adminToken reads the token from file, else from WARDEN_ADMIN_TOKEN.
func adminToken(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("--token-file %s is empty", file)
		}
		return t, nil
	}
	return strings.TrimSpace(os.Getenv("WARDEN_ADMIN_TOKEN")), nil
}

// explainBansError adds what the operator can do to the client's error.
func explainBansError(err error, addr string) string {
	var ue *stateadmin.UnreachableError
	switch {
	case errors.As(err, &ue):
		return err.Error() + "\n  is warden running, with an admin: section in its config? admin.listen sets the address (default " +
			admin.DefaultListen + ", or unix:/path); pass the same one with --admin"
	case errors.Is(err, stateadmin.ErrUnauthorized):
		return err.Error() + "\n  pass the content of the config's admin.token_file with --token-file FILE, or set WARDEN_ADMIN_TOKEN"
	}
	return err.Error()
}

func printBans(w io.Writer, bans []stateadmin.Ban, now time.Time) {
	if len(bans) == 0 {
		fmt.Fprintln(w, "no bans in force")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tUNTIL\tLEFT\tLEVEL\tREASON")
	for _, b := range bans {
		left := b.Until.Sub(now).Round(time.Second)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", b.Key, b.Until.UTC().Format(time.RFC3339), left, b.Level, b.Reason)
	}
	tw.Flush()
}
