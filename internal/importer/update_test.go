package importer_test

// importtest defines the -update flag of the translators' golden tests;
// importing it here lets `go test ./internal/importer/... -update` pass the
// flag to every package of the tree.
import _ "github.com/warden-gateway/warden/internal/importer/importtest"
