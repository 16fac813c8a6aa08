package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/notify"
)

// calls records, under the test clock, what the workflow asked for.
type calls struct {
	mu       sync.Mutex
	order    []string
	advance  []activities.AdvanceInput
	advAt    []time.Time
	copies   []activities.CopyInput
	verifies []activities.CopyInput
	events   []notify.Event
	reports  []activities.PlanReport
}

func (c *calls) add(s string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order = append(c.order, s)
}

// watch records the calls that matter to the notices; advanceErr, when set,
// fails the first advance notice with it.
func watch(h *harness, advanceErr error) *calls {
	c := &calls{}
	h.env.OnActivity(a.AdvanceNotice, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AdvanceInput) (*activities.AdvanceResult, error) {
		c.add("advance")
		c.mu.Lock()
		c.advance = append(c.advance, in)
		c.advAt = append(c.advAt, h.env.Now())
		n := len(c.advance)
		c.mu.Unlock()
		if n == 1 && advanceErr != nil {
			return nil, advanceErr
		}
		return &activities.AdvanceResult{Marker: activities.AdvanceMarker(WorkflowID(addr)), Minutes: 1,
			Placed: mailcopy.Placed{Folder: "INBOX", UIDValidity: 7, UID: 42, Added: true}}, nil
	})
	h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.CopySummary, error) {
		c.add("copy")
		c.mu.Lock()
		c.copies = append(c.copies, in)
		c.mu.Unlock()
		if in.Delta {
			return &activities.CopySummary{Copied: 1, Checkpoints: in.Checkpoints, Seconds: 3.5}, nil
		}
		return &activities.CopySummary{Copied: 10, Bytes: 1000, Seconds: 80, Folders: []activities.FolderSummary{{Source: "INBOX"}}}, nil
	})
	h.env.OnActivity(a.Verify, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.VerifySummary, error) {
		c.add("verify")
		c.mu.Lock()
		c.verifies = append(c.verifies, in)
		c.mu.Unlock()
		return &activities.VerifySummary{Checked: 11}, nil
	})
	// A small mailbox's verify in halves: the source's half reads what
	// the check covers.
	h.env.OnActivity(a.VerifySource, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.VerifySourceSummary, error) {
		c.add("verify")
		c.mu.Lock()
		c.verifies = append(c.verifies, in)
		c.mu.Unlock()
		return &activities.VerifySourceSummary{Snapshot: "reading", Messages: 11}, nil
	})
	h.env.OnActivity(a.VerifyDestination, mock.Anything, mock.Anything).Return(&activities.VerifySummary{Checked: 11}, nil)
	h.env.OnActivity(a.LockSource, mock.Anything, mock.Anything).Return(func(context.Context, activities.LockInput) error {
		c.add("lock")
		return nil
	})
	h.env.OnActivity(a.NotifyOperator, mock.Anything, mock.Anything).Return(func(_ context.Context, e notify.Event) (*activities.NotifyResult, error) {
		c.add("notify:" + e.Kind)
		c.mu.Lock()
		c.events = append(c.events, e)
		c.mu.Unlock()
		return &activities.NotifyResult{Configured: true, Sent: []string{"webhook"}}, nil
	})
	h.env.OnActivity(a.ReportToPlan, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PlanReportInput) error {
		c.add("report:" + in.Report.Stage)
		c.mu.Lock()
		c.reports = append(c.reports, in.Report)
		c.mu.Unlock()
		return nil
	})
	return c
}

func (c *calls) count(s string) int {
	n := 0
	for _, o := range c.order {
		if o == s {
			n++
		}
	}
	return n
}

func (c *calls) index(s string) int {
	for i, o := range c.order {
		if o == s {
			return i
		}
	}
	return -1
}

func TestAdvanceNotice(t *testing.T) {
	t.Run("a window that opens later: sent when the copy is done, with the window and the lockout", func(t *testing.T) {
		h := newHarness(t)
		c := watch(h, nil)
		h.defaults()
		win := windowFrom(h, 3*time.Hour, 2*time.Hour)
		r := h.run(Input{AutoConfirm: true, CutoverWindow: win})
		if c.count("advance") != 1 {
			t.Fatalf("advance notice sent %d times, want once (calls %v)", c.count("advance"), c.order)
		}
		in, at := c.advance[0], c.advAt[0]
		opens := h.start.Add(3 * time.Hour).Truncate(time.Minute)
		if at.Sub(h.start) > time.Minute || !in.Opens.Equal(opens) || !in.Closes.Equal(opens.Add(2*time.Hour)) || in.Zone != "UTC" {
			t.Fatalf("notice sent %v after start for opens %v closes %v zone %q; want at once, for %v to %v UTC", at.Sub(h.start), in.Opens, in.Closes, in.Zone, opens, opens.Add(2*time.Hour))
		}
		// One copy pass of 80 s, plus the cutover's fixed costs.
		if in.LockoutSeconds != 80+cutoverFixedSeconds || in.Locale != "en" || in.From != "mxplan-1" || in.WorkflowID != WorkflowID(addr) {
			t.Fatalf("notice input = %+v", in)
		}
		if c.index("advance") > c.index("lock") || c.index("advance") < c.index("copy") {
			t.Fatalf("calls %v: want copy, advance notice, ..., lock", c.order)
		}
		locked := stageAt(r, StageLockSource)
		if d := locked.Sub(at); d < 3*time.Hour-2*time.Minute {
			t.Fatalf("the lock came %v after the notice, want about 3 h", d)
		}
		// Every pass after the notice, and verify, leave it on the source.
		want := mailcopy.Exclude{Folder: "INBOX", UIDValidity: 7, UID: 42, MessageID: activities.AdvanceMarker(WorkflowID(addr))}
		if len(c.copies[0].Exclude) != 0 {
			t.Fatalf("the first pass excludes %v, want nothing (no notice yet)", c.copies[0].Exclude)
		}
		for i, cp := range c.copies[1:] {
			if len(cp.Exclude) != 1 || cp.Exclude[0] != want {
				t.Fatalf("pass %d after the notice excludes %v, want %v", i+2, cp.Exclude, want)
			}
		}
		if len(c.verifies) != 1 || len(c.verifies[0].Exclude) != 1 || c.verifies[0].Exclude[0] != want {
			t.Fatalf("verify excludes %v, want the notice", c.verifies)
		}
	})
	t.Run("no window: just before the lock, estimated from the last delta pass", func(t *testing.T) {
		h := newHarness(t)
		passes := 0
		var c *calls
		h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.CopySummary, error) {
			passes++
			c.add("copy")
			// A big first pass, then a small one: the passes stop, and the
			// lockout follows the small one.
			if passes == 1 {
				return &activities.CopySummary{Copied: 5000, Seconds: 600, Folders: []activities.FolderSummary{{Source: "INBOX"}}}, nil
			}
			return &activities.CopySummary{Copied: 3, Seconds: 2, Checkpoints: in.Checkpoints}, nil
		})
		c = watch(h, nil)
		h.defaults()
		h.run(Input{AutoConfirm: true})
		if c.count("advance") != 1 || c.index("advance")+1 != c.index("lock") {
			t.Fatalf("calls %v: want the advance notice right before the lock", c.order)
		}
		if in := c.advance[0]; in.LockoutSeconds != 2+cutoverFixedSeconds || !in.Closes.IsZero() || in.Zone != "" || !in.Opens.Equal(c.advAt[0]) {
			t.Fatalf("notice input = %+v at %v; want now, no window, 12 s", in, c.advAt[0])
		}
	})
	t.Run("a failed notice parks the migration and operators hear of it; retry sends it once", func(t *testing.T) {
		h := newHarness(t)
		c := watch(h, temporal.NewNonRetryableApplicationError("source INBOX refused the notice", activities.ErrTypeConfig, nil))
		h.defaults()
		var ans *answer
		h.env.RegisterDelayedCallback(func() { ans = h.update(UpdateRetry, "ana") }, time.Hour)
		r := h.run(Input{AutoConfirm: true, Plan: "p1"})
		if ans == nil || ans.err != nil || r.Outcome != StageDone {
			t.Fatalf("retry: %v, outcome %s", ans, r.Outcome)
		}
		if c.count("advance") != 2 || c.count("lock") != 1 || c.index("lock") < c.index("notify:needs-attention") {
			t.Fatalf("calls %v: want the notice failing, operators notified, retried, then the lock", c.order)
		}
		e := c.events[0]
		if e.Kind != notify.KindNeedsAttention || e.Account != addr || e.Plan != "p1" || e.Stage != string(StageLockSource) ||
			e.ErrorType != activities.ErrTypeConfig || !strings.Contains(e.Error, "refused the notice") || e.ID != WorkflowID(addr)+"/needs-attention/1" {
			t.Fatalf("event = %+v", e)
		}
		// The plan's watcher hears of the parking and of the end.
		if len(c.reports) != 2 || c.reports[0].Stage != string(StageNeedsAttention) || c.reports[1].Stage != string(StageDone) || c.reports[1].Plan != "p1" {
			t.Fatalf("plan reports = %+v", c.reports)
		}
	})
	t.Run("noNotice sends none; a plan-less migration reports to no plan", func(t *testing.T) {
		h := newHarness(t)
		c := watch(h, nil)
		h.defaults()
		h.run(Input{AutoConfirm: true, NoNotice: true})
		if c.count("advance") != 0 || len(c.reports) != 0 {
			t.Fatalf("calls %v: want no advance notice and no plan report", c.order)
		}
	})
	t.Run("carried across continue-as-new", func(t *testing.T) {
		h := newHarness(t)
		c := watch(h, nil)
		h.env.OnActivity(a.CheckDNS, mock.Anything, mock.Anything).Return(func(context.Context, activities.DNSInput) (*dnscheck.Diagnostic, error) {
			h.env.SetContinueAsNewSuggested(true)
			return badDiag(), nil
		})
		h.defaults()
		h.env.ExecuteWorkflow(WorkflowName, Input{Address: addr, To: "emailpro-1", AutoConfirm: true})
		var can *workflow.ContinueAsNewError
		if err := h.env.GetWorkflowError(); !errors.As(err, &can) {
			t.Fatalf("err = %v, want continue-as-new", err)
		}
		var in Input
		if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &in); err != nil {
			t.Fatal(err)
		}
		if c.count("advance") != 1 || in.Resume == nil || in.Resume.Notify != 1 || in.Resume.Advance == nil || in.Resume.Advance.Placed.UID != 42 {
			t.Fatalf("continued state carries %+v after %d notices; want the notice recorded", in.Resume, c.count("advance"))
		}
	})
	t.Run("skipped over the limit is its own event", func(t *testing.T) {
		h := newHarness(t)
		h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(&activities.CopySummary{Copied: 9, SkipCount: 1,
			Skips:   []mailcopy.Skip{{Folder: "INBOX", UID: 3, Size: 99 << 20, Category: mailcopy.CatTooBig, Reason: "too big"}},
			Folders: []activities.FolderSummary{{Source: "INBOX"}}}, nil)
		c := watch(h, nil)
		h.defaults()
		h.env.RegisterDelayedCallback(func() { h.update(UpdateApproveSkipped, "ana") }, time.Hour)
		h.run(Input{AutoConfirm: true})
		if len(c.events) != 1 || c.events[0].Kind != notify.KindSkippedOverLimit || c.events[0].Counts["skipped"] != 1 || c.events[0].ErrorType != ErrTypeSkippedOverLimit {
			t.Fatalf("events = %+v, want one skipped-over-limit", c.events)
		}
	})
}
