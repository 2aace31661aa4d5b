//go:build !unix

package waf

import "time"

// processCPU is not measured here; the CPU metrics then read 0.
func processCPU() time.Duration { return 0 }
