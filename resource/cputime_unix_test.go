//go:build unix

package resource_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the process has used (user and
// system, all threads: the garbage collector's included). Unlike the
// wall clock it does not count time spent waiting for a CPU, so a ratio
// of two such times holds on a machine shared with other work.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
