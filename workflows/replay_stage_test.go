package workflows

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// The delta passes before the routing switch (pre-copy passes after the
// first, the final delta) replay the owner's changes;
// the full first pass and every pass after the switch (delta-sync, the
// DNS wait's, verify's) do not; the replayed counts reach the result.
func TestReplayOnlyBeforeTheSwitch(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var calls []activities.CopyInput
	h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.CopySummary, error) {
		mu.Lock()
		calls = append(calls, in)
		n := len(calls)
		mu.Unlock()
		s := &activities.CopySummary{Copied: 1}
		if n == 1 {
			s.Copied = 1000 // a second pre-copy pass follows
		}
		if in.Replay {
			s.Replayed = &mailcopy.ReplayCounts{Expunged: 2, Flags: 3, Moved: 4, Folders: 1}
		}
		return s, nil
	})
	h.defaults()
	r := h.run(Input{AutoConfirm: true})
	if r.Outcome != StageDone {
		t.Fatalf("outcome %s", r.Outcome)
	}
	mu.Lock()
	defer mu.Unlock()
	// Pass 1 copies 1,000 messages, pass 2 one (small: the pre-copy
	// ends), the final delta, then the passes after the switch.
	if len(calls) < 4 {
		t.Fatalf("%d copy calls, want passes 1 and 2, the final delta and at least the delta-sync", len(calls))
	}
	if calls[0].Delta || calls[0].Replay {
		t.Fatalf("pass 1: Delta %v Replay %v, want a full copy without replay", calls[0].Delta, calls[0].Replay)
	}
	for i, what := range []string{"pass 2", "final delta"} {
		if c := calls[i+1]; !c.Delta || !c.Replay {
			t.Fatalf("%s: Delta %v Replay %v, want both", what, c.Delta, c.Replay)
		}
	}
	for i, c := range calls[3:] {
		if c.Replay {
			t.Fatalf("copy call %d (after the switch) replays", i+4)
		}
	}
	want := mailcopy.ReplayCounts{Expunged: 4, Flags: 6, Moved: 8, Folders: 2}
	if r.Replayed == nil || *r.Replayed != want {
		t.Fatalf("result replayed = %+v, want %+v", r.Replayed, want)
	}
}
