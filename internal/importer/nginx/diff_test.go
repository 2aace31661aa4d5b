package nginx

import (
	"testing"

	"github.com/warden-gateway/warden/internal/importer/importtest"
)

// The differential tests run real nginx over a docroot made by importtest,
// import its configuration, run warden on the result over the same docroot,
// send both the same requests from several 127.0.0.x addresses with several
// Referers, credentials, methods and headers, and require the same status
// for each, except announced divergences where warden refuses.

var nginxCases = []importtest.Case{
	{
		Name:   "index-redirect",
		Family: "index redirect",
		Source: "nginx documentation, ngx_http_index_module (index is an internal redirect)",
	},
	{
		Name:  "allow-deny-order-and-inheritance",
		Notes: []string{"events {...} (not an access-control setting)"},
	},
	{
		Name: "auth-basic-and-satisfy",
	},
	{
		Name: "server-level-auth-with-off",
	},
	{
		Name: "valid-referers",
	},
	{
		Name: "server-level-referer-check",
	},
	{
		Name: "location-selection",
		// nginx serves / by an internal redirect to /index.html, whose exact
		// location denies 127.0.0.2: the import applies that deny to / too.
	},
	{
		Name: "server-return-and-content",
	},
	{
		Name:  "proxy-pass",
		Paths: []string{"/api", "/api/", "/api/users", "/api/teapot", "/API/users"},
		// nginx redirects /api to /api/ (301) before checking access, and
		// warden's upstream handler answers /api with the same redirect.
	},
}

var nginxSummary importtest.Summary

func TestDifferentialNginx(t *testing.T) {
	importtest.Program(t, "nginx")
	importtest.Program(t, "htpasswd")
	up := importtest.UpstreamServer(t)
	t.Cleanup(func() { nginxSummary.Print(t, "nginx") })
	for _, c := range nginxCases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			nginxSummary.Add(c.Family, importtest.Run(t, c, importtest.Importers{Nginx: Import}, up))
		})
	}
}
