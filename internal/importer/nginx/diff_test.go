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
		Name: "allow-deny-order-and-inheritance",
		Nginx: `
    allow 127.0.0.1;
    allow 127.0.0.2;
    deny 127.0.0.3;
    allow 127.0.0.0/29;
    deny all;
    location /admin/ { deny 127.0.0.2; allow 127.0.0.0/30; deny all; }
    location /pub/ { autoindex on; }
    location /static/ { allow all; }
    location /sub/ { deny 127.0.0.4; }
`,
		Notes: []string{"events {...} (not an access-control setting)"},
	},
	{
		Name: "auth-basic-and-satisfy",
		Nginx: `
    location /admin/ { auth_basic "Admin"; auth_basic_user_file {{HTPASSWD}}; }
    location /team/ {
      satisfy any;
      allow 127.0.0.2;
      deny 127.0.0.3;
      auth_basic "Admin";
      auth_basic_user_file {{HTPASSWD}};
    }
    location /sub/ {
      deny 127.0.0.4;
      auth_basic "Admin";
      auth_basic_user_file {{HTPASSWD}};
    }
    location /deep/ {
      satisfy any;
      allow 127.0.0.1;
      deny all;
      auth_basic "Admin";
      auth_basic_user_file {{HTPASSWD}};
      location /deep/er/ { auth_basic off; }
    }
`,
	},
	{
		Name: "server-level-auth-with-off",
		Nginx: `
    auth_basic "Site";
    auth_basic_user_file {{HTPASSWD}};
    location /static/ { auth_basic off; }
    location /pub/ { autoindex on; }
`,
	},
	{
		Name: "valid-referers",
		Nginx: `
    valid_referers none blocked server_names *.example.org;
    location /img/ {
      valid_referers server_names ~\.trusted\.test;
      if ($invalid_referer) { return 403; }
    }
    location ~* \.(bak|log)$ {
      if ($invalid_referer) { return 404; }
    }
    location /sub/ {
      if ($invalid_referer) { return 403; }
    }
`,
	},
	{
		Name: "server-level-referer-check",
		Nginx: `
    valid_referers none server_names *.example.org;
    if ($invalid_referer) { return 403; }
    location /img/ { valid_referers server_names; }
    location /pub/ { autoindex on; deny 127.0.0.5; }
`,
	},
	{
		Name: "location-selection",
		Nginx: `
    location = /a.txt { return 403; }
    location = /index.html { deny 127.0.0.2; }
    location ^~ /static/ { }
    location ~ \.bak$ { deny all; }
    location ~* \.LOG$ { return 404; }
    location ~ ^/admin/ { deny 127.0.0.3; }
    location /admin/ { deny all; }
    location /internal/ { internal; }
    location /deep/ { deny 127.0.0.2; }
    location /deep/er/ { }
    location / { deny 127.0.0.5; }
`,
		// nginx serves / by an internal redirect to /index.html, whose exact
		// location denies 127.0.0.2: the import applies that deny to / too.
	},
	{
		Name: "server-return-and-content",
		Nginx: `
    index index.html home.html;
    location /pub/ { autoindex on; }
    location /home/ { index home.html; }
    location /noindex/ { autoindex off; deny 127.0.0.4; }
    location /private/ { return 410; }
    location /img/ { root {{DIR}}/www; autoindex on; }
`,
	},
	{
		Name: "proxy-pass",
		Nginx: `
    location /api/ {
      allow 127.0.0.1;
      allow 127.0.0.2;
      deny all;
      proxy_pass {{UPSTREAM}};
    }
    location / { deny 127.0.0.5; }
`,
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
