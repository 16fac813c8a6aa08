package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/mailshift/mailshift/activities"
)

// The harness's clock starts at the test suite's start time; windows are
// put relative to it so the tests do not depend on the day they run.
func windowFrom(h *harness, openIn, length time.Duration) string {
	st := h.env.Now().UTC().Add(openIn)
	en := st.Add(length)
	return st.Format("15:04") + "-" + en.Format("15:04") + " UTC"
}

// lockedAt finds when the source was locked, from the recorded stages.
func stageAt(r *Result, s Stage) time.Time {
	for _, e := range r.Stages {
		if e.Stage == s {
			return e.At
		}
	}
	return time.Time{}
}

func TestCutoverWindow(t *testing.T) {
	t.Run("waits for the window, source unlocked meanwhile", func(t *testing.T) {
		h := newHarness(t)
		h.defaults()
		var seen Progress
		h.env.RegisterDelayedCallback(func() { seen = h.progress() }, time.Hour)
		r := h.run(Input{AutoConfirm: true, CutoverWindow: windowFrom(h, 3*time.Hour, 2*time.Hour)})
		if seen.Stage != StageWaitWindow || !strings.Contains(seen.WaitingFor, "cutover window") || !strings.Contains(strings.Join(seen.NextActions, ","), UpdateCutoverNow) {
			t.Fatalf("progress while waiting = %+v", seen)
		}
		locked := stageAt(r, StageLockSource)
		if d := locked.Sub(h.start); d < 3*time.Hour-time.Minute || d > 3*time.Hour+10*time.Minute {
			t.Fatalf("locked %v after start, want at the window's opening (3 h)", d)
		}
		// Activities take no time under the test clock: the lockout is the
		// final delta's, not the 3 h wait's nor the copy's.
		if r.LockoutSeconds < 0 || r.LockoutSeconds > 60 || !stageAt(r, StageSwitchRouting).After(locked.Add(-time.Second)) {
			t.Fatalf("lockout = %v s, want the short final delta only", r.LockoutSeconds)
		}
	})
	t.Run("cutover-now", func(t *testing.T) {
		h := newHarness(t)
		h.defaults()
		var ans *answer
		h.env.RegisterDelayedCallback(func() { ans = h.update(UpdateCutoverNow, "ana") }, time.Hour)
		r := h.run(Input{AutoConfirm: true, CutoverWindow: windowFrom(h, 10*time.Hour, time.Hour)})
		if ans.err != nil || r.Outcome != StageDone {
			t.Fatalf("cutover-now: %v, outcome %s", ans.err, r.Outcome)
		}
		if d := stageAt(r, StageLockSource).Sub(h.start); d > 2*time.Hour {
			t.Fatalf("locked %v after start; cutover-now at 1 h should not wait for the window", d)
		}
	})
	t.Run("set-window moves it", func(t *testing.T) {
		h := newHarness(t)
		h.defaults()
		var ans *answer
		h.env.RegisterDelayedCallback(func() {
			h.raws++
			ans = h.rawUpdate(UpdateSetWindow, `{"by": "ana", "window": "`+windowFrom(h, 2*time.Hour, time.Hour)+`"}`)
		}, time.Hour)
		r := h.run(Input{AutoConfirm: true, CutoverWindow: windowFrom(h, 10*time.Hour, time.Hour)})
		if ans.err != nil {
			t.Fatal(ans.err)
		}
		if d := stageAt(r, StageLockSource).Sub(h.start); d < 3*time.Hour-time.Minute || d > 4*time.Hour {
			t.Fatalf("locked %v after start, want in the moved window (3 h)", d)
		}
	})
	t.Run("an old copy gets one more pass before the lock", func(t *testing.T) {
		h := newHarness(t)
		passes := 0
		h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.CopySummary, error) {
			passes++
			return &activities.CopySummary{Copied: 1, Checkpoints: in.Checkpoints}, nil
		})
		h.defaults()
		h.run(Input{AutoConfirm: true, CutoverWindow: windowFrom(h, 5*time.Hour, time.Hour)})
		// copy, refresh before the lock, final delta, delta-sync (verify
		// runs its own last delta)
		if passes != 4 {
			t.Fatalf("%d copy passes, want 4 (with a refresh before the lock)", passes)
		}
	})
	t.Run("refused inputs", func(t *testing.T) {
		for _, w := range []string{"22:00 UTC", "22:00-06:00 Nowhere/City", "22:00-22:00 UTC"} {
			if err := ValidateInput(Input{Address: addr, To: "emailpro-1", CutoverWindow: w}); err == nil || !strings.Contains(err.Error(), "cutoverWindow") {
				t.Errorf("window %q: err = %v", w, err)
			}
		}
		if err := ValidateInput(Input{Address: addr, To: "emailpro-1", CutoverAfter: "tomorrow"}); err == nil || !strings.Contains(err.Error(), "cutoverAfter") {
			t.Errorf("cutoverAfter: err = %v", err)
		}
	})
}

// The copy repeats while the owner's mailbox keeps changing, until a pass
// finds little left, and stops after maxPasses whatever happens.
func TestPreCopyPasses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		copied []int // per pass
		want   int   // passes before the lock
	}{
		{"small mailbox: one pass", []int{10}, 1},
		{"small first pass: no second pass", []int{smallFirstPass}, 1},
		{"large first pass: a second one", []int{smallFirstPass + 1, 10}, 2},
		{"settles on the third pass", []int{5000, 400, 20}, 3},
		{"never settles: bounded", []int{5000, 900, 800, 700, 600, 500, 400}, maxPasses},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			calls := 0
			h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.CopySummary, error) {
				n := 0
				if calls < len(tc.copied) {
					n = tc.copied[calls]
				}
				calls++
				return &activities.CopySummary{Copied: n, Checkpoints: in.Checkpoints}, nil
			})
			var locked int
			h.env.OnActivity(a.LockSource, mock.Anything, mock.Anything).Return(func(context.Context, activities.LockInput) error {
				locked = calls
				return nil
			})
			h.defaults()
			r := h.run(Input{AutoConfirm: true})
			if locked != tc.want || r.Outcome != StageDone {
				t.Fatalf("locked after %d passes, want %d (outcome %s)", locked, tc.want, r.Outcome)
			}
		})
	}
}
