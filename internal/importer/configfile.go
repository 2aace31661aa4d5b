package importer

import (
	"fmt"
	"io"
	"os"
)

// maxConfigBytes bounds one configuration file; real ones are kilobytes.
const maxConfigBytes = 16 << 20

// ReadConfigFile reads a regular file of bounded size, so that a stray
// include of a device or a huge file cannot hang the import.
func ReadConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if info.Size() > maxConfigBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxConfigBytes)
	}
	return io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
}
