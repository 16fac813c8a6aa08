// Package profiling writes a CPU profile of a whole process run, for the
// benchmarks (MAILSHIFT_CPUPROFILE names the file; main reads it).
package profiling

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// StartCPU starts a CPU profile into path and returns the function that
// ends it; an empty path profiles nothing.
func StartCPU(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
