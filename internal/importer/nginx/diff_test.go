package nginx

import (
	"testing"

	"github.com/warden-gateway/warden/internal/proctest"

	"github.com/warden-gateway/warden/internal/importer/importtest"
)

// The differential tests run real nginx over a docroot made by importtest,
// import its configuration, run warden on the result over the same docroot,
// send both the same requests from several 127.0.0.x addresses with several
// Referers, credentials, methods and headers, and require the same status
// for each, except announced divergences where warden refuses.

var nginxCases = []importtest.Case{
	{
		Name:     "nginx-docs-examples",
		Family:   "addresses and sign-in",
		Source:   "nginx documentation: ngx_http_access_module, ngx_http_core_module (satisfy, limit_except), ngx_http_referer_module",
		Requests: importtest.MethodAndAgentRequests([]string{"/", "/a.txt", "/admin/", "/admin/a.txt", "/img/logo.png"}),
	},
	{
		Name:     "defaults",
		Family:   "server defaults",
		Source:   "nginx 1.22 defaults (disable_symlinks off, merge_slashes on, dotfiles served)",
		Files:    importtest.DefaultsFiles,
		Symlinks: importtest.DefaultsSymlinks,
		Paths:    importtest.DefaultsPaths,
		Diverge:  importtest.DefaultsDiverge,
		Requests: importtest.MethodAndAgentRequests([]string{"/a.txt", "/pub/"}),
	},
	{
		Name:     "h5bp-dotfiles",
		Family:   "server defaults",
		Source:   "h5bp/server-configs-nginx h5bp/location/security_file_access.conf",
		Files:    importtest.DefaultsFiles,
		Symlinks: importtest.DefaultsSymlinks,
		Paths:    importtest.DefaultsPaths,
		Diverge: append([]importtest.Divergence{
			{Path: "/.well-known/acme-challenge/token", Note: "uses lookaround, which RE2 lacks", Why: "(?!well-known/) dropped: warden refuses .well-known too"},
		}, importtest.DefaultsDiverge...),
	},
	{
		Name:     "if-and-limit-except",
		Family:   "if and limit_except",
		Source:   "nginx documentation: ngx_http_rewrite_module (if), ngx_http_core_module (limit_except); h5bp server-configs-nginx",
		Requests: importtest.MethodAndAgentRequests([]string{"/", "/a.txt", "/admin/", "/admin/a.txt", "/team/a.txt", "/team/", "/missing.txt"}),
	},
	{
		Name:         "hash-kinds",
		Family:       "password files",
		Source:       "nginx documentation, ngx_http_auth_basic_module (auth_basic_user_file formats)",
		AllHashKinds: true,
		Notes:        []string{"allow_weak_hashes is set", "garbage (not a hash nginx or Apache reads)"},
	},
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
		Name:   "auth-basic-and-satisfy",
		Family: "addresses and sign-in",
	},
	{
		Name:   "server-level-auth-with-off",
		Family: "addresses and sign-in",
	},
	{
		Name:   "valid-referers",
		Family: "referers",
	},
	{
		Name:   "server-level-referer-check",
		Family: "referers",
	},
	{
		Name:   "location-selection",
		Family: "location selection",
		// nginx serves / by an internal redirect to /index.html, whose exact
		// location denies 127.0.0.2: the import applies that deny to / too.
	},
	{
		Name:   "server-return-and-content",
		Family: "location selection",
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
	proctest.Program(t, "nginx")
	proctest.Program(t, "htpasswd")
	up := importtest.UpstreamServer(t)
	t.Cleanup(func() { nginxSummary.Print(t, "nginx") })
	for _, c := range nginxCases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			nginxSummary.Add(c.Family, importtest.Run(t, c, importtest.Importers{Nginx: Import}, up))
		})
	}
}
