package nginx

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-gateway/warden/internal/importer/importtest"
)

func FuzzNginx(f *testing.F) {
	for _, seed := range []string{"testdata/site/site.conf"} {
		b, err := os.ReadFile(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	inputs, _ := filepath.Glob(filepath.Join("testdata", "*", "server.conf"))
	for _, p := range inputs {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("server {\n" + string(b) + "\n}\n")
	}
	f.Fuzz(func(t *testing.T, text string) {
		dir := t.TempDir()
		p := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Import(p)
		if err != nil {
			return
		}
		importtest.CheckOutput(t, dir, res)
	})
}
