//go:build unix

package waf

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) this process has used so far:
// the benchmark alone, whatever else the machine runs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
