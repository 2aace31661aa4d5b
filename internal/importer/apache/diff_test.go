package apache

import (
	"strings"
	"testing"

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

var debianOptions = "Options Indexes FollowSymLinks"

func TestDifferentialApache(t *testing.T) {
	importtest.Program(t, "apache2")
	importtest.Program(t, "htpasswd")
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
