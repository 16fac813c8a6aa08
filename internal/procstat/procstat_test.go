package procstat

import (
	"os"
	"testing"
)

// The peak grows with what the process touched, and a process that is
// gone reads as 0.
func TestPeakRSSMB(t *testing.T) {
	before := PeakRSSMB(0)
	if before <= 0 {
		t.Fatalf("own peak RSS %.1f MB", before)
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	if after := PeakRSSMB(os.Getpid()); after < before+32 {
		t.Fatalf("peak RSS %.1f MB after touching 64 MB, was %.1f MB", after, before)
	}
	if got := PeakRSSMB(1 << 30); got != 0 {
		t.Fatalf("a missing process reads %.1f MB", got)
	}
	_ = buf[len(buf)-1]
}
