package importtest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the importers' golden files (testdata/<case>/policy.yaml, notes.txt)")

// The files of a case folder (testdata/<case>/): the input, and what the
// import must write for it.
const (
	// NginxInput is the body of the server block (see WriteNginxConf).
	NginxInput = "server.conf"
	// HtaccessDir holds the docroot's .htaccess files, at their paths.
	HtaccessDir = "htaccess"
	// DirsInput holds <Directory> blocks.
	DirsInput = "dirs.conf"
	// GoldenPolicy is the policy on stdout, GoldenNotes the notes on
	// stderr; the case's temporary folder is written {{DIR}}.
	GoldenPolicy = "policy.yaml"
	GoldenNotes  = "notes.txt"
)

// Load fills c's inputs from the case folder dir (empty fields only).
func Load(t *testing.T, c *Case, dir string) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(dir, NginxInput)); err == nil && c.Nginx == "" {
		c.Nginx = string(b)
	}
	if b, err := os.ReadFile(filepath.Join(dir, DirsInput)); err == nil && c.DirsConf == "" {
		c.DirsConf = string(b)
	}
	hdir := filepath.Join(dir, HtaccessDir)
	if _, err := os.Stat(hdir); err == nil && c.Htaccess == nil {
		c.Htaccess = map[string]string{}
		err := filepath.WalkDir(hdir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(hdir, p)
			c.Htaccess[filepath.ToSlash(rel)] = string(b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if c.Nginx == "" && c.Htaccess == nil && c.DirsConf == "" {
		t.Fatalf("case %s: no input in %s", c.Name, dir)
	}
}

// Golden imports each case from its folder under testdata, as Run does but
// without servers, and compares the policy and the notes with the case's
// golden files (go test -update rewrites them). Every golden policy must
// also compile.
func Golden(t *testing.T, cases []Case, imp Importers) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			caseDir := filepath.Join("testdata", c.Name)
			if c.Direct != nil {
				res, err := c.Direct()
				if err != nil {
					t.Fatalf("import: %v", err)
				}
				CompileImported(t, caseDir, res)
				compareGolden(t, caseDir, res.YAML, []byte(NotesText(res)))
				return
			}
			Load(t, &c, caseDir)
			dir := t.TempDir()
			www := filepath.Join(dir, "www")
			MakeSite(t, www)
			setupFiles(t, c, dir, "http://127.0.0.1:9000")
			// A fixed user file keeps the output stable (bcrypt for alice,
			// made once by htpasswd -B).
			users := "alice:$2y$05$3Lw1ZJtTkqjZy6Yk0V5pSOx1Q3dG5lXq5p8oMvJ4xg7m9N5rJkQ3G\n"
			if c.AllHashKinds {
				users += goldenHashUsers
			}
			if err := os.WriteFile(filepath.Join(dir, "users.htpasswd"), []byte(users), 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := importCase(t, c, imp, dir, "http://127.0.0.1:9000", 8080)
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			CompileImported(t, dir, res)
			norm := func(s string) []byte { return []byte(strings.ReplaceAll(s, dir, "{{DIR}}")) }
			compareGolden(t, caseDir, norm(string(res.YAML)), norm(NotesText(res)))
		})
	}
}

func compareGolden(t *testing.T, caseDir string, gotPolicy, gotNotes []byte) {
	t.Helper()
	// An import names files by their absolute path; in a golden file that
	// would tie the test to the folder the repository was cloned into.
	if wd, err := os.Getwd(); err == nil {
		gotPolicy = bytes.ReplaceAll(gotPolicy, []byte(wd+string(filepath.Separator)), []byte("./"))
		gotNotes = bytes.ReplaceAll(gotNotes, []byte(wd+string(filepath.Separator)), []byte("./"))
	}
	for _, g := range []struct {
		name string
		got  []byte
	}{{GoldenPolicy, gotPolicy}, {GoldenNotes, gotNotes}} {
		path := filepath.Join(caseDir, g.name)
		if *update {
			if err := os.WriteFile(path, g.got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test -update writes it)", err)
		}
		if !bytes.Equal(want, g.got) {
			t.Errorf("%s differs from the import (go test -update rewrites it):\n--- want\n%s\n--- got\n%s", path, want, g.got)
		}
	}
}

// goldenHashUsers is one user per hash kind, made by the tools HashUsers
// runs, fixed for the golden files.
const goldenHashUsers = `apr1:$apr1$kQ8wRZ.4$wHbZ0BgnXnLqK0B0l7bUe/
sha:{SHA}dz2qOZ4+5gEONdDcG1W4mOqmrjs=
des:abJnggxhB/yWI
sha256crypt:$5$saltsalt$uZLyn.MNhwrC6MiW/FpEYtuYbTCGHq3KaOnPMWi6TyB
sha512crypt:$6$saltsalt$ad0U8yZzXbD3s3vfnEYsT8wOXR5m8R5RjVQ3gR3S9yEjIYy9Zs8wQz4XZKpY8dWnT4QkE5E7WmOHNn6b2m0xq.
md5crypt:$1$saltsalt$c3S8o2y0Ob9Ud0VvMmm0U0
plain:{PLAIN}pw-plain
garbage:$9$nonsense
`
