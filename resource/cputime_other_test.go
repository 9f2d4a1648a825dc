//go:build !unix

package resource_test

import "time"

// processCPU is not measured here; BenchmarkVerifyOverECDSA then reports
// the wall-clock ratio only.
func processCPU() time.Duration { return 0 }
