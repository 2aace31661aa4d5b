package apache

import (
	"path/filepath"
	"testing"

	"github.com/warden-gateway/warden/internal/importer"
	"github.com/warden-gateway/warden/internal/importer/importtest"
)

// TestImportGolden imports every case of testdata/ (the differential cases
// and the sample site) and compares the policy and the notes with the
// golden files; go test ./internal/importer/... -update rewrites them.
func TestImportGolden(t *testing.T) {
	root := filepath.Join("testdata", "site")
	cases := append([]importtest.Case{{
		Name: "site",
		Direct: func() (*importer.Result, error) {
			return Import(root, filepath.Join(root, ".htaccess"), filepath.Join(root, "private", ".htaccess"))
		},
	}}, apacheCases...)
	importtest.Golden(t, cases, importtest.Importers{Htaccess: Import})
}
