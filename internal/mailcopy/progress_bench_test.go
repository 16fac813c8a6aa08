package mailcopy

import (
	"fmt"
	"testing"
)

// BenchmarkTrackerUpdate is the cost per copied message of recording a
// folder's checkpoint and handing out a snapshot (the tracker copies the
// folder's UID map each time, so snapshots stay the caller's): with the
// usual one-range map, and with a fragmented one.
func BenchmarkTrackerUpdate(b *testing.B) {
	for _, ranges := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("ranges=%d", ranges), func(b *testing.B) {
			tr := &tracker{cps: map[string]Checkpoint{}, total: 8, opts: Options{OnProgress: func(Progress) {}}}
			for i := range 8 {
				tr.cps[fmt.Sprintf("folder %d", i)] = Checkpoint{UIDValidity: 1, Map: []UIDMapRange{{Src: 1, Dst: 1, N: 100}}}
			}
			cp := Checkpoint{UIDValidity: 1}
			for i := range ranges {
				cp.Map = addToMap(cp.Map, uint32(2*i+1), uint32(2*i+1))
			}
			src := uint32(2*ranges + 1)
			b.ReportAllocs()
			for b.Loop() {
				cp.Map = addToMap(cp.Map, src, src)
				src++
				tr.update("INBOX", cp, func(p *Progress) { p.Copied++ })
			}
		})
	}
}
