package proctest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// NginxConf writes dir/nginx.conf: main-context lines, one worker, every
// temporary path inside dir (the packaged defaults under /var/lib/nginx
// may not exist or be writable), no access log, and httpBody inside
// http {}.
func NginxConf(t testing.TB, dir, mainLines, httpBody string) string {
	t.Helper()
	for _, sub := range []string{"tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`%[2]sworker_processes 1;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
%[3]s
}
`, dir, mainLines, httpBody)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// StartNginx runs nginx on conf in the foreground with a master process
// (so a stop reaches the workers through it), errors on its stderr, until
// it listens on addr.
func StartNginx(t testing.TB, dir, conf, addr string) *Process {
	t.Helper()
	nginx := Program(t, "nginx")
	return Start(t, addr, Options{Dir: dir}, nginx, "-p", dir, "-c", conf,
		"-g", "daemon off; master_process on; pid "+filepath.Join(dir, "nginx.pid")+"; error_log stderr;")
}
