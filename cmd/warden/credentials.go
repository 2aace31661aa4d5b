package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/warden-gateway/warden/internal/demo"
	"github.com/warden-gateway/warden/internal/identity"
)

// The credentials helpers: `warden token` mints a JWT for trying a policy,
// `warden hash-key` turns an API key into the form a policy stores.

// cmdToken mints a JWT with a local signing key (a private JWK file, such as
// the one the demo writes). It is for trying policies, not an identity
// provider: there is no way to point it at a remote key.
func cmdToken(args []string) int {
	fl := flag.NewFlagSet("token", flag.ContinueOnError)
	keyFile := fl.String("key", "", "private JWK file to sign with (the demo prints its path)")
	sub := fl.String("sub", "alice", "subject (the caller's id)")
	iss := fl.String("iss", demo.Issuer, "issuer")
	aud := fl.String("aud", demo.Audience, "audience")
	ttl := fl.Duration("ttl", time.Hour, "lifetime")
	var roles headerFlags
	fl.Var(&roles, "role", "a role (repeatable)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if *keyFile == "" {
		fmt.Fprintln(os.Stderr, "usage: warden token --key FILE [--sub NAME] [--role ROLE]... [--ttl 1h] [--iss ISS] [--aud AUD]")
		return 2
	}
	data, err := os.ReadFile(*keyFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden token: %v\n", err)
		return 1
	}
	signer, kid, alg, err := identity.LoadSigningKey(data)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden token: %s: %v\n", *keyFile, err)
		return 1
	}
	tok, err := identity.MintToken(signer, kid, alg, *iss, *aud, *sub, roles, *ttl, time.Now())
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden token: %v\n", err)
		return 1
	}
	fmt.Println(tok)
	return 0
}

func cmdHashKey(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: warden hash-key KEY")
		return 2
	}
	fmt.Println(identity.HashKey(args[0]))
	return 0
}
