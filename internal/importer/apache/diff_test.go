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
