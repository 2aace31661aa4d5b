package bypass

// The families of issue 10: headers read as the path, method, prefix or
// host; every spelling of a refused file; the client address the upstream
// is told when a trusted proxy names it.

const (
	srcNginxAuthRequest = "nginx auth_request convention X-Original-URI / X-Original-Method (nginx docs, ngx_http_auth_request_module)"
	srcTraefikFwdAuth   = "Traefik forwardAuth X-Forwarded-Uri / X-Forwarded-Method (Traefik docs; Authelia, oauth2-proxy read them)"
	srcKong             = "Kong X-Forwarded-Path / X-Forwarded-Prefix (Kong proxy reference)"
	srcNextInternal     = "Next.js internal headers x-matched-path, x-invoke-path, x-now-route-matches (filterInternalHeaders; CVE-2024-46982)"
	srcEnvoyOrigPath    = "Envoy x-envoy-original-path / x-envoy-original-url (set on rewrites and internal redirects; Istio, Envoy Gateway)"
	srcServerless       = "serverless WSGI/ASGI/Express shims routing on X-Original-Path, X-Forwarded-Url, X-Vercel-Original-Path(name), X-Rewrite-Path/-URI, X-Path-Info"
	srcRequestURI       = "X-Request-URI read as the path by PHP and Django middlewares and the .NET NewLife toolkit"
	srcPrefix           = "X-Forwarded-Prefix / X-Script-Name cut off PATH_INFO (Werkzeug ProxyFix x_prefix, ReverseProxied recipe, Spring ForwardedHeaderFilter, ASP.NET PathBase)"
	srcWordlist         = "403-bypass header wordlists (X-Override-URL, X-HTTP-DestinationURL, X-Proxy-Url, X-Custom-IP-Authorization)"
	srcHostOverride     = "host, port and scheme overrides (Rack X-Forwarded-Scheme/-Ssl, Apache X-Forwarded-Server, ASP.NET X-Original-Host; Kettle, Practical Web Cache Poisoning 2018)"
	srcPHPPathInfo      = "PHP-FPM cgi.fix_pathinfo / nginx fastcgi_split_path_info: /file.php/anything runs file.php (nginx+PHP-FPM PATH_INFO, CVE-2019-11043 context)"
	srcTrailingSlash    = "trailing slash served as the same file (issue 10: /wp-login.php/ reached the upstream; Spring useTrailingSlashMatch, Express strict routing off)"
	srcIndexFile        = "a folder is its index document (nginx index, Apache DirectoryIndex, IIS default documents)"
	srcTrustedClient    = "issue 10: a trusted proxy's X-Real-IP / Forwarded, or a chain with a forged left part, told the upstream another client than the rules judged (CWE-348)"
)

// overrideShapes: a client's copy of any member reaches no upstream.
func overrideShapes() []shape {
	var out []shape
	for _, h := range []struct{ name, source string }{
		{"X-Original-URI", srcNginxAuthRequest},
		{"X-Forwarded-Uri", srcTraefikFwdAuth},
		{"x-forwarded-uri", srcTraefikFwdAuth},
		{"X-Forwarded-Path", srcKong},
		{"X-Original-Path", srcServerless},
		{"X-Original-Pathname", srcServerless},
		{"X-Vercel-Original-Pathname", srcServerless},
		{"X-Forwarded-Url", srcServerless},
		{"X-Request-URI", srcRequestURI},
		{"X-Matched-Path", srcNextInternal},
		{"X-Invoke-Path", srcNextInternal},
		{"X-Envoy-Original-Path", srcEnvoyOrigPath},
		{"X-Envoy-Original-URL", srcEnvoyOrigPath},
		{"X-Vercel-Original-Path", srcServerless},
		{"X-Rewrite-Path", srcServerless},
		{"X-Rewrite-URI", srcServerless},
		{"X-Path-Info", srcServerless},
		{"X-Override-URL", srcWordlist},
		{"X-HTTP-DestinationURL", srcWordlist},
		{"X-Proxy-Url", srcWordlist},
	} {
		out = append(out,
			shape{name: h.name + " admin", source: h.source, target: "/public/x", header: []string{h.name + ": /admin/secret"}},
			shape{name: h.name + " wp-login", source: h.source, target: "/", header: []string{h.name + ": /wp-login.php"}},
		)
	}
	out = append(out,
		shape{name: "X-Forwarded-Uri internal", source: srcTraefikFwdAuth, target: "/public/x", header: []string{"X-Forwarded-Uri: /internal/secret"}},
		shape{name: "X_Forwarded_Uri (CGI reads _ as -)", source: srcCGIUnderscore, target: "/public/x", header: []string{"X_Forwarded_Uri: /admin/secret"}},
		shape{name: "X-Original-URI twice", source: srcNginxAuthRequest, target: "/public/x", header: []string{"X-Original-URI: /public/x", "X-Original-URI: /admin/secret"}},
		shape{name: "X-Forwarded-Prefix cuts /public", source: srcPrefix, target: "/public/admin/secret", header: []string{"X-Forwarded-Prefix: /public"}},
		shape{name: "X-Script-Name cuts /public", source: srcPrefix, target: "/public/internal/secret", header: []string{"X-Script-Name: /public"}},
		shape{name: "X-Forwarded-Prefix cuts /public to wp-login", source: srcPrefix, target: "/public/wp-login.php", header: []string{"X-Forwarded-Prefix: /public/"}},
		shape{name: "X-Forwarded-Method: DELETE", source: srcTraefikFwdAuth, method: "POST", target: "/public/x", header: []string{"X-Forwarded-Method: DELETE"}},
		shape{name: "X-Original-Method: PUT", source: srcNginxAuthRequest, method: "POST", target: "/public/x", header: []string{"X-Original-Method: PUT"}},
		shape{name: "X-Now-Route-Matches", source: srcNextInternal, target: "/admin/secret", header: []string{"X-Now-Route-Matches: 1=admin"}},
		shape{name: "X-Middleware-Rewrite", source: srcNextInternal, target: "/admin/secret", header: []string{"X-Middleware-Rewrite: /public/x"}},
		// Host, port and scheme: stripped, never forwarded.
		shape{name: "X-Forwarded-Host forged", source: srcHostOverride, target: "/public/x", header: []string{"X-Forwarded-Host: forged.example"}},
		shape{name: "X-Forwarded-Proto forged", source: srcHostOverride, target: "/public/x", header: []string{"X-Forwarded-Proto: forged"}},
		shape{name: "X-Forwarded-Port forged", source: srcHostOverride, target: "/public/x", header: []string{"X-Forwarded-Port: forged"}},
		shape{name: "X-Forwarded-Server forged", source: srcHostOverride, target: "/public/x", header: []string{"X-Forwarded-Server: forged.example"}},
		shape{name: "X-Forwarded-Scheme forged", source: srcHostOverride, target: "/public/x", header: []string{"X-Forwarded-Scheme: forged"}},
		shape{name: "X-Forwarded-Ssl forged", source: srcHostOverride, target: "/public/x", header: []string{"X-Forwarded-Ssl: forged"}},
		shape{name: "Front-End-Https forged", source: srcHostOverride, target: "/public/x", header: []string{"Front-End-Https: forged"}},
		shape{name: "X-Url-Scheme forged", source: srcHostOverride, target: "/public/x", header: []string{"X-Url-Scheme: forged"}},
		shape{name: "X-Host forged", source: srcHostOverride, target: "/public/x", header: []string{"X-Host: forged.example"}},
		shape{name: "X-Original-Host forged", source: srcHostOverride, target: "/public/x", header: []string{"X-Original-Host: forged.example"}},
		shape{name: "X-HTTP-Host-Override forged", source: srcHostOverride, target: "/public/x", header: []string{"X-HTTP-Host-Override: forged.example"}},
		shape{name: "Forwarded host= forged", source: srcHostOverride, target: "/public/x", header: []string{"Forwarded: for=127.0.0.1;host=forged.example;proto=https"}},
		shape{name: "all host overrides at once", source: srcHostOverride, target: "/public/x", header: []string{
			"X-Forwarded-Host: forged.example", "X-Forwarded-Proto: forged", "X-Forwarded-Port: forged", "X-Original-Proto: forged"}},
	)
	return out
}

// spellingShapes: every spelling of a refused file that a lenient upstream
// serves as that file.
func spellingShapes() []shape {
	var out []shape
	for _, t := range []struct{ name, source, target string }{
		{"trailing slash", srcTrailingSlash, "/wp-login.php/"},
		{"two trailing slashes", srcTrailingSlash, "/wp-login.php//"},
		{"trailing /.", srcTrailingSlash, "/wp-login.php/."},
		{"PATH_INFO", srcPHPPathInfo, "/wp-login.php/x"},
		{"PATH_INFO .css", srcPHPPathInfo, "/wp-login.php/style.css"},
		{"PATH_INFO deep", srcPHPPathInfo, "/wp-login.php/a/b/c.js"},
		{"PATH_INFO upper", srcPHPPathInfo, "/WP-LOGIN.PHP/x"},
		{"upper case", srcCase, "/WP-LOGIN.PHP"},
		{"mixed case with slash", srcCase, "/Wp-Login.Php/"},
		{"%2e", srcApache41773, "/wp-login%2ephp/"},
		{"encoded letters", srcCase, "/wp-%6Cogin.php/"},
		{"dot segment before", srcEnvoy9901, "/public/../wp-login.php/"},
		{"double slash before", srcEnvoy9901, "//wp-login.php/"},
		{";param", srcTomcat, "/wp-login.php;x=1"},
		{";param then slash", srcTomcat, "/wp-login.php;/"},
		{"trailing dot", srcWindowsTrail, "/wp-login.php."},
		{"trailing %20", srcWindowsTrail, "/wp-login.php%20"},
		{"::$DATA", srcNTFSADS, "/wp-login.php::$DATA"},
		{"%00", srcEnvoy9900, "/wp-login.php%00"},
		{"%2f", srcEnvoy29492, "/wp-login.php%2f"},
		{"%3f", srcApache38474, "/wp-login.php%3f/"},
		{"backslash", srcBackslash, "/wp-login.php\\"},
		{"absolute-form slash", srcAbsolute, "http://x/wp-login.php/"},
		{"folder", srcIndexFile, "/backup/"},
		{"folder without slash", srcIndexFile, "/backup"},
		{"folder upper", srcIndexFile, "/BACKUP/"},
		{"folder //", srcIndexFile, "/backup//"},
		{"folder /.", srcIndexFile, "/backup/."},
		{"index file slash", srcTrailingSlash, "/backup/index.html/"},
		{"index file upper", srcCase, "/Backup/INDEX.HTML"},
		{"folder ;param", srcTomcat, "/backup;x/"},
		{"index ;param", srcTomcat, "/backup/index.html;x"},
		{"folder trailing dot", srcWindowsTrail, "/backup./"},
		{"extension, trailing slash", srcTrailingSlash, "/db.bak/"},
		{"extension, two trailing slashes", srcTrailingSlash, "/public/dump.sql//"},
		{"extension upper, trailing slash", srcCase, "/db.BAK/"},
		{"extension ;param", srcTomcat, "/db.bak;x"},
		{"extension trailing dot", srcWindowsTrail, "/db.bak."},
		{"extension %20", srcWindowsTrail, "/db.bak%20"},
		{"extension ::$DATA", srcNTFSADS, "/db.bak::$DATA"},
		{"CGI PATH_INFO", srcPHPPathInfo, "/cgi-bin/run.cgi/x"},
		{"CGI PATH_INFO deep, upper", srcPHPPathInfo, "/cgi-bin/RUN.CGI/a/b.html"},
		{"CGI PATH_INFO slash", srcPHPPathInfo, "/run.cgi/"},
	} {
		out = append(out, shape{name: "refused file: " + t.name, source: t.source, target: t.target})
	}
	return out
}

// clientIPShapes: through the trusted proxy, the upstream is told only
// the client the rules judged, whatever the proxy's headers held.
func clientIPShapes() []shape {
	const proxy = "127.0.0.9"
	return []shape{
		{name: "forged left part of a trusted chain, internal", source: srcTrustedClient, target: "/internal/secret", from: proxy,
			header: []string{"X-Forwarded-For: 10.0.0.1, 198.51.100.1"}, client: "198.51.100.1"},
		{name: "forged left part of a trusted chain, upstream", source: srcTrustedClient, target: "/public/ip", from: proxy,
			header: []string{"X-Forwarded-For: 10.0.0.1, 198.51.100.1"}, client: "198.51.100.1"},
		{name: "trusted X-Real-IP only", source: srcTrustedClient, target: "/public/ip", from: proxy,
			header: []string{"X-Real-IP: 198.51.100.2"}, client: "198.51.100.2"},
		{name: "trusted Forwarded only", source: srcTrustedClient, target: "/public/ip", from: proxy,
			header: []string{"Forwarded: for=198.51.100.3;proto=https"}, client: "198.51.100.3"},
		{name: "trusted Forwarded, forged X-Real-IP", source: srcTrustedClient, target: "/internal/secret", from: proxy,
			header: []string{"Forwarded: for=198.51.100.4", "X-Real-IP: 10.0.0.1"}, client: "198.51.100.4"},
		{name: "trusted chain ending in the proxy", source: srcTrustedClient, target: "/public/ip", from: proxy,
			header: []string{"X-Forwarded-For: 10.0.0.1, 198.51.100.5, 127.0.0.9"}, client: "198.51.100.5"},
		{name: "X-Custom-IP-Authorization", source: srcWordlist, target: "/internal/secret", header: []string{"X-Custom-IP-Authorization: 10.0.0.1"}},
		{name: "X-Custom-IP-Authorization upstream", source: srcWordlist, target: "/public/ip", header: []string{"X-Custom-IP-Authorization: 10.0.0.1"}},
		{name: "X-Original-Remote-Addr upstream", source: srcWordlist, target: "/public/ip", header: []string{"X-Original-Remote-Addr: 10.0.0.1"}},
		{name: "X-True-IP upstream", source: srcWordlist, target: "/public/ip", header: []string{"X-True-IP: 10.0.0.1"}},
	}
}

// familyControls must pass: what the families above must not refuse.
func familyControls() []control {
	c := func(name, target, want string, mods ...func(*shape)) control {
		s := shape{name: name, source: "benign control", target: target}
		for _, m := range mods {
			m(&s)
		}
		return control{shape: s, want: want}
	}
	hdr := func(h ...string) func(*shape) { return func(s *shape) { s.header = append(s.header, h...) } }
	viaProxy := func(s *shape) { s.from = "127.0.0.9" }
	out := []control{
		c("file named like the refused one", "/wp-login.php.orig", "public"),
		c("longer name", "/wp-login.phpx", "public"),
		c("same name elsewhere", "/public/wp-login.php", "public"),
		c("other file in the refused folder", "/backup/other.html", "public"),
		c("sibling folder", "/backups/", "public"),
		c("subfolder of the refused folder", "/backup/2024/", "public"),
		c("index of another folder", "/public/index.html", "public"),
		c("dotted folder", "/public/v1.2/users", "public"),
		c("extension inside a name", "/public/db.bak.txt", "public"),
		c("longer extension", "/public/db.sqlite", "public"),
		c("folder named like a dump", "/public/sql/", "public"),
		c("Next.js data request", "/public/page", "public", hdr("X-Nextjs-Data: 1", "X-Middleware-Prefetch: 1", "Rsc: 1", "Next-Url: /public/page")),
		c("WebDAV-style Destination on GET", "/public/page", "public", hdr("Destination: /public/other")),
		c("XMLHttpRequest", "/public/page", "public", hdr("X-Requested-With: XMLHttpRequest")),
		// A client's host override is dropped, not refused.
		c("client's X-Forwarded-Host is replaced", "/public/page", "public", hdr("X-Forwarded-Host: cdn.example")),
		c("client's X-Forwarded-Proto is replaced", "/public/page", "public", hdr("X-Forwarded-Proto: https")),
		// The forward-auth headers pass from the trusted proxy.
		c("trusted forwardAuth headers", "/public/page", "public", viaProxy, hdr(
			"X-Forwarded-Uri: /public/page", "X-Forwarded-Method: GET", "X-Forwarded-Host: app.example", "X-Forwarded-Proto: https")),
		c("trusted auth_request headers", "/public/page", "public", viaProxy, hdr("X-Original-URI: /public/page", "X-Original-Method: GET")),
		c("trusted prefix", "/public/page", "public", viaProxy, hdr("X-Forwarded-Prefix: /app")),
	}
	for i := range out {
		if out[i].from != "" {
			out[i].ip = out[i].from // no address header: the proxy is the client
		}
	}
	for _, x := range []struct{ name, header, ip string }{
		{"trusted X-Real-IP reaches internal", "X-Real-IP: 10.1.2.4", "10.1.2.4"},
		{"trusted Forwarded reaches internal", "Forwarded: for=10.1.2.5", "10.1.2.5"},
		{"trusted chain with a left part reaches internal", "X-Forwarded-For: 203.0.113.1, 10.1.2.6", "10.1.2.6"},
	} {
		in := c(x.name, "/internal/secret", "internal", viaProxy, hdr(x.header))
		in.ip = x.ip
		out = append(out, in)
	}
	return out
}
