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
		Htaccess: map[string]string{
			".htaccess":         "Require ip 127.0.0.1 127.0.0.2 127.0.0.4\n",
			"admin/.htaccess":   "<RequireAll>\n  Require ip 127.0.0.0/29\n  Require not ip 127.0.0.2\n</RequireAll>\n",
			"sub/.htaccess":     "Require all denied\n",
			"static/.htaccess":  "Require all granted\n",
			"team/.htaccess":    "<RequireAny>\n  Require ip 127.0.0.3\n  <RequireAll>\n    Require ip 127.0.0.0/30\n    Require not ip 127.0.0.1\n  </RequireAll>\n</RequireAny>\n",
			"deep/.htaccess":    "<RequireAll>\n  Require ip 127.0.0.0/29\n  <RequireNone>\n    Require ip 127.0.0.4 127.0.0.5\n  </RequireNone>\n</RequireAll>\n",
			"deep/er/.htaccess": "Require ip 127.0.0.1\nRequire not ip 127.0.0.2\n",
		},
	},
	{
		Name: "valid-user",
		Htaccess: map[string]string{
			"admin/.htaccess":   "AuthType Basic\nAuthName \"Admin\"\nAuthUserFile {{HTPASSWD}}\nRequire valid-user\n",
			"team/.htaccess":    "AuthType Basic\nAuthName \"Admin\"\nAuthUserFile {{HTPASSWD}}\n<RequireAny>\n  Require ip 127.0.0.2\n  Require valid-user\n</RequireAny>\n",
			"sub/.htaccess":     "AuthType Basic\nAuthName \"Admin\"\nAuthUserFile {{HTPASSWD}}\n<RequireAll>\n  Require valid-user\n  Require not ip 127.0.0.3\n</RequireAll>\n",
			"deep/.htaccess":    "AuthType Basic\nAuthName \"Admin\"\nAuthUserFile {{HTPASSWD}}\nRequire valid-user\n",
			"deep/er/.htaccess": "Require all granted\n",
		},
	},
	{
		Name: "order-allow-deny",
		Htaccess: map[string]string{
			".htaccess":        "Order deny,allow\nDeny from 127.0.0.3 127.0.0.4\nAllow from 127.0.0.4\n",
			"admin/.htaccess":  "Order allow,deny\nAllow from 127.0.0\nDeny from 127.0.0.2\n",
			"sub/.htaccess":    "Order allow,deny\n",
			"static/.htaccess": "Order deny,allow\nDeny from all\nAllow from 127.0.0.1 127.0.0.5/32\n",
			"team/.htaccess":   "Order Allow,Deny\nAllow from all\nDeny from 127.0.0.0/255.255.255.252\n",
		},
	},
	{
		Name: "options-index-files",
		Htaccess: map[string]string{
			".htaccess":      "Options -Indexes\nDirectoryIndex index.html home.html\n<FilesMatch \"\\.(bak|log|ini)$\">\n  Require all denied\n</FilesMatch>\n<Files secret.txt>\n  Order allow,deny\n  Deny from all\n</Files>\n",
			"pub/.htaccess":  "Options +Indexes\n",
			"home/.htaccess": "DirectoryIndex home.html\n",
			"img/.htaccess":  "Options Indexes\n<FilesMatch \"^pic\">\n  Require ip 127.0.0.1\n</FilesMatch>\n",
		},
	},
	{
		Name: "referer-rewrite",
		Htaccess: map[string]string{
			".htaccess":      "RewriteEngine On\nRewriteCond %{HTTP_REFERER} !^$\nRewriteCond %{HTTP_REFERER} !^https?://(www\\.)?example\\.com/ [NC]\nRewriteCond %{HTTP_REFERER} !^https?://[^/]+\\.example\\.org/ [NC]\nRewriteRule \\.(png|gif)$ - [F,NC]\nRewriteRule ^private/ - [F]\n",
			"sub/.htaccess":  "AuthType Basic\nAuthName \"Admin\"\nAuthUserFile {{HTPASSWD}}\nRequire valid-user\nRewriteEngine On\nRewriteCond %{HTTP_REFERER} !^https?://example\\.com/\nRewriteRule ^a\\.txt$ - [F]\n",
			"deep/.htaccess": "Options -FollowSymLinks\n",
			"img/.htaccess":  "RewriteEngine On\nRewriteCond %{HTTP_REFERER} !^$\nRewriteCond %{HTTP_REFERER} !^https?://[^/]*trusted\\.test/\nRewriteRule ^pic - [F]\n",
		},
	},
	{
		Name: "directory-blocks",
		DirsConf: `<Directory {{DIR}}/www/admin>
  Require ip 127.0.0.1
</Directory>
<Directory "{{DIR}}/www/team">
  AuthType Basic
  AuthName "Team"
  AuthUserFile {{HTPASSWD}}
  <RequireAny>
    Require valid-user
    Require ip 127.0.0.5
  </RequireAny>
</Directory>
<Directory {{DIR}}/www/pub>
  Options +Indexes
</Directory>
<Directory {{DIR}}/www/sub>
  Order deny,allow
  Deny from 127.0.0.2
</Directory>
`,
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
