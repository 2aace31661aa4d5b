package apache

import (
	"testing"

	"github.com/warden-gateway/warden/internal/importer/importtest"
)

// The differential tests run real Apache over a docroot made by importtest,
// import its configuration, run warden on the result over the same docroot,
// send both the same requests from several 127.0.0.x addresses with several
// Referers, credentials, methods and headers, and require the same status
// for each, except announced divergences where warden refuses.

var apacheCases = []importtest.Case{
	{
		Name:         "require-user",
		Family:       "Require user",
		Source:       "Apache documentation, Authentication and Authorization howto (Require user)",
		AllHashKinds: true,
		Diverge: []importtest.Divergence{
			{Variant: "{PLAIN} credentials", Note: "Apache cannot sign in users with {PLAIN} or {SSHA}", Why: "warden refuses the user Apache cannot read with 403 role_required, Apache with 401"},
			{Variant: "{SSHA} credentials", Note: "Apache cannot sign in users with {PLAIN} or {SSHA}", Why: "as {PLAIN}"},
			{PathPrefix: "/admin", Variant: "credentials", Note: "Require user does not name is refused with 403", Why: "a user not named: warden 403, Apache 401"},
			{PathPrefix: "/team", Variant: "credentials", Note: "Require user does not name is refused with 403", Why: "as /admin"},
			{PathPrefix: "/sub", Variant: "credentials", Note: "Require user does not name is refused with 403", Why: "as /admin"},
			{PathPrefix: "//admin", Variant: "credentials", Note: "Require user does not name is refused with 403", Why: "as /admin"},
			{PathPrefix: "/%61dmin", Variant: "credentials", Note: "Require user does not name is refused with 403", Why: "as /admin"},
			{PathPrefix: "/pub/../admin", Variant: "credentials", Note: "Require user does not name is refused with 403", Why: "as /admin"},
		},
	},
	{
		Name:         "hash-kinds",
		Family:       "password files",
		Source:       "Apache documentation, Password Formats (bcrypt, $apr1$, {SHA}, crypt)",
		AllHashKinds: true,
		Diverge: []importtest.Divergence{
			{Variant: "{PLAIN} credentials", Note: "Apache cannot sign in users with {PLAIN} or {SSHA}", Why: "warden refuses the user Apache cannot read with 403 role_required, Apache with 401"},
			{Variant: "{SSHA} credentials", Note: "Apache cannot sign in users with {PLAIN} or {SSHA}", Why: "as {PLAIN}"},
		},
	},
	{
		Name: "require-ip-and-containers",
	},
	{
		Name: "valid-user",
	},
	{
		Name: "order-allow-deny",
	},
	{
		Name: "options-index-files",
	},
	{
		Name: "referer-rewrite",
	},
	{
		Name: "directory-blocks",
	},
}

var apacheSummary importtest.Summary

func TestDifferentialApache(t *testing.T) {
	importtest.Program(t, "apache2")
	importtest.Program(t, "htpasswd")
	t.Cleanup(func() { apacheSummary.Print(t, "apache") })
	for _, c := range apacheCases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			apacheSummary.Add(c.Family, importtest.Run(t, c, importtest.Importers{Htaccess: Import}, ""))
		})
	}
}
