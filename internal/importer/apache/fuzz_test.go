package apache

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-gateway/warden/internal/importer/importtest"
)

func FuzzHtaccess(f *testing.F) {
	for _, seed := range []string{"testdata/site/.htaccess", "testdata/site/private/.htaccess"} {
		b, err := os.ReadFile(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	inputs, _ := filepath.Glob(filepath.Join("testdata", "*", "htaccess", "*", ".htaccess"))
	top, _ := filepath.Glob(filepath.Join("testdata", "*", "htaccess", ".htaccess"))
	for _, p := range append(top, inputs...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		dir := t.TempDir()
		p := filepath.Join(dir, ".htaccess")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Import(dir, p)
		if err != nil {
			return
		}
		importtest.CheckOutput(t, dir, res)
	})
}
