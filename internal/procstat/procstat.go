// Package procstat reads what the benchmarks and the reliability suite
// report of a process from Linux's /proc.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PeakRSSMB is a live process's peak resident memory (VmHWM) in MB; pid
// 0 is this process. 0 when it cannot be read (the process is gone).
func PeakRSSMB(pid int) float64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
