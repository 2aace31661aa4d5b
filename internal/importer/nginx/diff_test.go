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
		Name:     "defaults",
		Family:   "server defaults",
		Source:   "nginx 1.22 defaults (disable_symlinks off, merge_slashes on, dotfiles served)",
		Files:    importtest.DefaultsFiles,
		Symlinks: importtest.DefaultsSymlinks,
		Paths:    importtest.DefaultsPaths,
		Diverge:  importtest.DefaultsDiverge,
		Requests: methodAndAgentRequests([]string{"/a.txt", "/pub/"}),
	},
	{
		Name:     "h5bp-dotfiles",
		Family:   "server defaults",
		Source:   "h5bp/server-configs-nginx h5bp/location/security_file_access.conf",
		Files:    importtest.DefaultsFiles,
		Symlinks: importtest.DefaultsSymlinks,
		Paths:    importtest.DefaultsPaths,
		Diverge:  importtest.DefaultsDiverge,
	},
	{
		Name:     "if-and-limit-except",
		Family:   "if and limit_except",
		Source:   "nginx documentation: ngx_http_rewrite_module (if), ngx_http_core_module (limit_except); h5bp server-configs-nginx",
		Requests: methodAndAgentRequests([]string{"/", "/a.txt", "/admin/", "/admin/a.txt", "/team/a.txt", "/team/", "/missing.txt"}),
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

// methodAndAgentRequests asks for each path with other methods and with
// the User-Agents and headers the cases test.
func methodAndAgentRequests(paths []string) []importtest.Request {
	var out []importtest.Request
	for _, p := range paths {
		for _, m := range []string{"HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PROPFIND"} {
			out = append(out, importtest.Request{Method: m, Path: p})
		}
		for _, ua := range []string{"", "Mozilla/5.0 (X11; Linux x86_64)", "badbot/1.0", "EvilScraper", "curl/8.0"} {
			out = append(out, importtest.Request{Path: p, Header: map[string]string{"User-Agent": ua}})
		}
		out = append(out, importtest.Request{Path: p, Header: map[string]string{"X-Debug": "1", "User-Agent": "x"}})
	}
	return out
}
