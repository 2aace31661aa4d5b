package apache

import (
	"strings"
	"testing"

	"github.com/warden-gateway/warden/internal/proctest"

	"github.com/warden-gateway/warden/internal/importer"
	"github.com/warden-gateway/warden/internal/importer/importtest"
)

// The differential tests run real Apache over a docroot made by importtest,
// import its configuration, run warden on the result over the same docroot,
// send both the same requests from several 127.0.0.x addresses with several
// Referers, credentials, methods and headers, and require the same status
// for each, except announced divergences where warden refuses.

var apacheCases = []importtest.Case{
	{
		Name:     "rewrite-cond-chains",
		Family:   "RewriteRule chains",
		Source:   "Apache mod_rewrite documentation (Blocking of Robots, Forbidding Image Hotlinking); h5bp server-configs-apache h5bp/security/file_access.conf",
		Files:    importtest.DefaultsFiles,
		Paths:    []string{"/.env", "/.well-known/acme-challenge/token", "/sub/.hidden", "/.git/config"},
		Requests: importtest.MethodAndAgentRequests([]string{"/", "/a.txt", "/img/logo.png", "/sub/a.txt", "/sub/", "/.env"}),
		Diverge: []importtest.Divergence{
			{Path: "/.env", Note: "serves dotfiles", Why: "dotfile"},
			{Path: "/sub/.hidden", Note: "serves dotfiles", Why: "dotfile"},
			{Path: "/.git/config", Note: "serves dotfiles", Why: "dotfile"},
			importtest.ApacheMethodsDiverge[0], importtest.ApacheMethodsDiverge[1],
		},
	},
	{
		Name:   "wordpress",
		Family: "projects' .htaccess",
		Source: "WordPress documentation (htaccess, Hardening WordPress)",
		Files:  []string{"wp-config.php", "xmlrpc.php", "error_log", "wp-admin/includes/a.php", "wp-includes/b.php", "wp-includes/js/c.js", "img/evil.php", "img/ok.png"},
		Paths:  []string{"/wp-config.php", "/xmlrpc.php", "/error_log", "/wp-admin/includes/a.php", "/wp-includes/b.php", "/wp-includes/js/c.js", "/img/evil.php", "/img/ok.png", "/WP-CONFIG.PHP"},
	},
	{
		Name:     "drupal",
		Family:   "projects' .htaccess",
		Source:   "drupal/drupal core/assets/scaffold/files/htaccess; sites/default/files/.htaccess",
		Files:    append([]string{"x.module", "composer.json", "dump.sql", "index.php", "Entries.txt", "a.php.bak"}, importtest.DefaultsFiles...),
		Paths:    append([]string{"/x.module", "/composer.json", "/dump.sql", "/index.php", "/Entries.txt", "/a.php.bak"}, importtest.DefaultsPaths...),
		Symlinks: importtest.DefaultsSymlinks,
		Diverge:  importtest.DefaultsDiverge,
	},
	{
		Name:    "nextcloud",
		Family:  "projects' .htaccess",
		Source:  "nextcloud/server .htaccess; data/.htaccess as Nextcloud writes it",
		Files:   []string{"config/config.php", "lib/x.php", "3rdparty/y.js", "occ", "console.php", "status.php"},
		Paths:   []string{"/config/config.php", "/lib/x.php", "/3rdparty/y.js", "/occ", "/console.php", "/status.php", "/.env"},
		Diverge: []importtest.Divergence{{Path: "/.env", Note: "serves dotfiles", Why: "dotfile"}},
	},
	{
		Name:   "mediawiki",
		Family: "projects' .htaccess",
		Source: "wikimedia/mediawiki images/.htaccess, cache/.htaccess",
		Paths:  []string{"/img/logo.png?x=a.php", "/img/logo.png?x=a.php%23", "/img/logo.png?a=1", "/internal/a.txt"},
	},
	{
		Name:       "debian-defaults",
		Family:     "server defaults",
		Source:     "Debian's stock apache2.conf (Options Indexes FollowSymLinks for /var/www)",
		ServerConf: &debianOptions,
		Files:      importtest.DefaultsFiles,
		Symlinks:   importtest.DefaultsSymlinks,
		Paths:      importtest.DefaultsPaths,
		Diverge:    importtest.DefaultsDiverge,
	},
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
		Name:   "require-ip-and-containers",
		Family: "addresses and sign-in",
	},
	{
		Name:   "valid-user",
		Family: "addresses and sign-in",
	},
	{
		Name:   "order-allow-deny",
		Family: "addresses and sign-in",
	},
	{
		Name:   "options-index-files",
		Family: "files and listings",
	},
	{
		Name:   "referer-rewrite",
		Family: "RewriteRule chains",
	},
	{
		Name:   "directory-blocks",
		Family: "addresses and sign-in",
	},
}

var apacheSummary importtest.Summary

var debianOptions = "Options Indexes FollowSymLinks"

func TestDifferentialApache(t *testing.T) {
	proctest.Program(t, "apache2")
	proctest.Program(t, "htpasswd")
	t.Cleanup(func() { apacheSummary.Print(t, "apache") })
	for _, c := range apacheCases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			imp := Import
			if c.ServerConf != nil {
				// The import gets the same server defaults Apache runs with.
				def := ServerDefaults{Options: strings.Fields(strings.TrimPrefix(*c.ServerConf, "Options ")), DirectoryIndex: []string{"index.html"}}
				imp = func(docroot string, files ...string) (*importer.Result, error) {
					return ImportWith(def, docroot, files...)
				}
			}
			apacheSummary.Add(c.Family, importtest.Run(t, c, importtest.Importers{Htaccess: imp}, ""))
		})
	}
}
