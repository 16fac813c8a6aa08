package workflows

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/dnscheck"

	"github.com/stretchr/testify/mock"

	"github.com/mailshift/mailshift/activities"
)

// leaseBook plays the budgets for a harness: it grants every request a
// second later and records what was asked, given back and held when.
type leaseBook struct {
	mu       sync.Mutex
	asked    []string // budget workflow IDs, in order
	urgent   []string
	most     map[string]int    // the most connections asked of each budget
	held     map[string]string // lease -> budget
	released map[string]int    // lease -> times given back
	handedOn int               // requests that carried the next one (Then)
	// noHandOff: the budgets grant without handing Then on.
	noHandOff bool
}

func newLeaseBook(h *harness) *leaseBook {
	b := &leaseBook{most: map[string]int{}, held: map[string]string{}, released: map[string]int{}}
	h.env.OnActivity(a.RequestLease, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LeaseInput) error {
		// The budget grants a little later; a request with Then is handed
		// on when it is granted, and the next budget grants that a little
		// later still.
		ask := func(in activities.LeaseInput) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.asked = append(b.asked, in.WorkflowID)
			b.most[in.WorkflowID] = max(b.most[in.WorkflowID], in.Request.Connections)
			if in.Request.Urgent {
				b.urgent = append(b.urgent, in.WorkflowID)
			}
			if in.Request.Then != nil {
				b.handedOn++
			}
			b.held[in.Request.Lease] = in.WorkflowID
		}
		ask(in)
		h.env.RegisterDelayedCallback(func() {
			then := in.Request.Then
			if b.noHandOff {
				then = nil // a budget from before hand-offs
			}
			if then != nil {
				ask(*then)
				h.env.RegisterDelayedCallback(func() {
					h.env.SignalWorkflow(SignalGranted, LeaseGrant{Lease: then.Request.Lease, Service: then.WorkflowID[len(budgetIDPrefix):]})
				}, time.Second)
			}
			h.env.SignalWorkflow(SignalGranted, LeaseGrant{Lease: in.Request.Lease, Service: in.WorkflowID[len(budgetIDPrefix):], Forwarded: then != nil})
		}, time.Second)
		return nil
	})
	h.env.OnActivity(a.ReleaseLeases, mock.Anything, mock.Anything).Return(func(_ context.Context, in []activities.LeaseRelease) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, r := range in {
			b.released[r.Lease]++
			delete(b.held, r.Lease)
		}
		return nil
	})
	return b
}

// holding lists the budgets whose leases are held now, sorted.
func (b *leaseBook) holding() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, id := range b.held {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Every pass that touches a server holds a lease on it, asked for in
// order (source, then destination), as large as the pass opens: a pair
// per 1,000 messages of the first pass, up to the worker's 2, one for the
// deltas and verify. A lease is kept from one stage to the next while none
// waits: preflight takes a one-pair copy's leases, which serve the copy of
// a small mailbox (a large one gives them back and asks for two pairs),
// the final delta and the delta-sync; verify runs its last delta itself
// on one pair (a small mailbox's: with its source's reading, then the
// destination's under the destination's lease alone); the finish holds only the destination's lease (the
// source's goes back first); the DNS wait holds nothing; every lease is
// given back once.
func TestCopiesHoldLeases(t *testing.T) {
	for _, tc := range []struct {
		name     string
		messages int
		asked    []string
		most     map[string]int
		pairs    []int // CopyInput.Pairs of each copy pass
	}{
		{"small mailbox", 200, []string{"budget:mxplan-1", "budget:emailpro-1", "budget:mxplan-1", "budget:emailpro-1"},
			map[string]int{"budget:mxplan-1": 1, "budget:emailpro-1": 2}, []int{1, 1, 1}},
		{"large mailbox", 2500, []string{"budget:mxplan-1", "budget:emailpro-1", "budget:mxplan-1", "budget:emailpro-1", "budget:mxplan-1", "budget:emailpro-1"},
			map[string]int{"budget:mxplan-1": 2, "budget:emailpro-1": 4}, []int{2, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			b := newLeaseBook(h)
			h.env.OnActivity(a.ServerBudgets, mock.Anything, mock.Anything).Return(&activities.BudgetsResult{SourceService: "mxplan-1",
				SourceBudget: 4, DestBudget: 6, Connections: 2, DestConnections: 4}, nil)
			h.env.OnActivity(a.Preflight, mock.Anything, mock.Anything).Return(&activities.PreflightResult{SourceService: "mxplan-1",
				FreeSlots: 1, Messages: tc.messages}, nil)
			both := []string{"budget:emailpro-1", "budget:mxplan-1"}
			var during []string // what each pass and wait held
			var pairs []int
			h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.CopySummary, error) {
				during = append(during, fmt.Sprintf("copy %v", b.holding()))
				pairs = append(pairs, in.Pairs)
				return &activities.CopySummary{Copied: 5}, nil
			})
			h.env.OnActivity(a.Verify, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.VerifySummary, error) {
				during = append(during, fmt.Sprintf("verify %v", b.holding()))
				if !in.Sync || in.Pairs != 1 {
					t.Errorf("verify: sync %v on %d pairs, want its last delta on 1 pair", in.Sync, in.Pairs)
				}
				return &activities.VerifySummary{Checked: 5, Pass: &activities.CopySummary{Copied: 1}}, nil
			})
			// A small mailbox's verify in halves: the source's reading
			// under both leases, the destination's under its own.
			h.env.OnActivity(a.VerifySource, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.VerifySourceSummary, error) {
				during = append(during, fmt.Sprintf("verify-source %v", b.holding()))
				if !in.Sync || in.Pairs != 1 {
					t.Errorf("verify: sync %v on %d pairs, want its last delta on 1 pair", in.Sync, in.Pairs)
				}
				return &activities.VerifySourceSummary{Snapshot: "reading", Messages: 5, Pass: &activities.CopySummary{Copied: 1}}, nil
			})
			h.env.OnActivity(a.VerifyDestination, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.VerifyDestinationInput) (*activities.VerifySummary, error) {
				during = append(during, fmt.Sprintf("verify-destination %v", b.holding()))
				if in.Snapshot != "reading" {
					t.Errorf("verify's destination half checks reading %q, want the source half's", in.Snapshot)
				}
				return &activities.VerifySummary{Checked: 5}, nil
			})
			var atFinish []string
			h.env.OnActivity(a.Finish, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.FinishInput) (*activities.FinishResult, error) {
				atFinish = b.holding()
				return &activities.FinishResult{}, nil
			})
			h.env.OnActivity(a.CheckDNS, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.DNSInput) (*dnscheck.Diagnostic, error) {
				during = append(during, fmt.Sprintf("dns %v", b.holding()))
				return okDiag(), nil
			})
			h.defaults()
			r := h.run(Input{AutoConfirm: true})
			if r.Outcome != StageDone {
				t.Fatalf("outcome %s", r.Outcome)
			}
			if !slices.Equal(b.asked, tc.asked) {
				t.Fatalf("leases asked = %v, want %v", b.asked, tc.asked)
			}
			if !maps.Equal(b.most, tc.most) {
				t.Fatalf("most connections asked: %v, want %v", b.most, tc.most)
			}
			// Every destination lease came by hand-off from the source's
			// budget: one request from the migration per lease round.
			if want := len(tc.asked) / 2; b.handedOn != want {
				t.Fatalf("%d requests carried the destination's, want %d (each round)", b.handedOn, want)
			}
			if !slices.Equal(atFinish, []string{"budget:emailpro-1"}) {
				t.Fatalf("held while the owner's notice is written: %v, want only the destination's lease", atFinish)
			}
			if r.DeltaCopied != 11 {
				t.Fatalf("%d messages copied by deltas, want 11 (5 by the final delta and the delta-sync each, 1 by verify's)", r.DeltaCopied)
			}
			if !slices.Equal(pairs, tc.pairs) {
				t.Fatalf("pairs each copy pass may open: %v, want %v", pairs, tc.pairs)
			}
			halves := 0
			for _, d := range during {
				want := fmt.Sprint(both)
				switch {
				case strings.HasPrefix(d, "dns"):
					want = "[]"
				case strings.HasPrefix(d, "verify-destination"):
					want = "[budget:emailpro-1]"
					halves++
				}
				if !strings.HasSuffix(d, want) {
					t.Fatalf("held during the stages: %v; want both leases in every pass and none in the DNS wait", during)
				}
			}
			if wantHalves := map[bool]int{true: 1, false: 0}[tc.messages <= 2000]; halves != wantHalves {
				t.Fatalf("verify's destination half ran %d times, want %d (stages: %v)", halves, wantHalves, during)
			}
			// The final delta runs under the copy's leases: nothing asked
			// while the owner is locked out waits in the plan's queue.
			if len(b.urgent) != 0 {
				t.Fatalf("urgent requests = %v, want none (the cutover keeps the copy's leases)", b.urgent)
			}
			if len(b.held) != 0 || len(b.released) != len(b.asked) {
				t.Fatalf("still held %v; released %v of %d asked", b.held, b.released, len(b.asked))
			}
			for l, n := range b.released {
				if n != 1 {
					t.Fatalf("lease %s given back %d times", l, n)
				}
			}
		})
	}
}

// A small mailbox's verify whose destination half runs where the source's
// reading is not (another worker, a restart) runs again whole, under both
// leases, and its answer is the stage's.
func TestVerifyAgainWholeWithoutTheReading(t *testing.T) {
	h := newHarness(t)
	b := newLeaseBook(h)
	h.env.OnActivity(a.ServerBudgets, mock.Anything, mock.Anything).Return(&activities.BudgetsResult{SourceService: "mxplan-1",
		SourceBudget: 4, DestBudget: 6, Connections: 2, DestConnections: 4}, nil)
	var order []string
	h.env.OnActivity(a.VerifySource, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.CopyInput) (*activities.VerifySourceSummary, error) {
		order = append(order, fmt.Sprintf("source half %v", b.holding()))
		return &activities.VerifySourceSummary{Snapshot: "elsewhere", Messages: 10}, nil
	})
	h.env.OnActivity(a.VerifyDestination, mock.Anything, mock.Anything).Return(func(_ context.Context, _ activities.VerifyDestinationInput) (*activities.VerifySummary, error) {
		order = append(order, fmt.Sprintf("destination half %v", b.holding()))
		return &activities.VerifySummary{Unread: true}, nil
	})
	h.env.OnActivity(a.Verify, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.VerifySummary, error) {
		order = append(order, fmt.Sprintf("whole sync=%v %v", in.Sync, b.holding()))
		return &activities.VerifySummary{Checked: 10}, nil
	})
	h.defaults()
	r := h.run(Input{AutoConfirm: true})
	if r.Outcome != StageDone {
		t.Fatalf("outcome %s", r.Outcome)
	}
	want := []string{"source half [budget:emailpro-1 budget:mxplan-1]", "destination half [budget:emailpro-1]",
		"whole sync=false [budget:emailpro-1 budget:mxplan-1]"}
	if !slices.Equal(order, want) {
		t.Fatalf("verify ran %q, want %q", order, want)
	}
	if r.Verified != 10 {
		t.Fatalf("Result.Verified = %d, want the whole verify's 10", r.Verified)
	}
	if len(b.held) != 0 {
		t.Fatalf("still held %v", b.held)
	}
}

// A final delta that fails parks the migration holding nothing; the
// retry asks again while the owner is locked out, so its requests pass
// the plan's queue.
func TestRetriedFinalDeltaAsksUrgently(t *testing.T) {
	h := newHarness(t)
	b := newLeaseBook(h)
	h.env.OnActivity(a.ServerBudgets, mock.Anything, mock.Anything).Return(&activities.BudgetsResult{SourceService: "mxplan-1",
		SourceBudget: 4, DestBudget: 6, Connections: 2, DestConnections: 4}, nil)
	passes := 0
	var parked []string
	h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.CopySummary, error) {
		passes++
		if passes == 2 { // the final delta's first try
			h.env.RegisterDelayedCallback(func() {
				parked = b.holding()
				h.update(UpdateRetry, "oncall")
			}, time.Minute)
			return nil, permanentErr("Unavailable", "destination gone")
		}
		return &activities.CopySummary{Copied: 5}, nil
	})
	h.defaults()
	r := h.run(Input{AutoConfirm: true})
	if r.Outcome != StageDone {
		t.Fatalf("outcome %s", r.Outcome)
	}
	if len(parked) != 0 {
		t.Fatalf("parked holding %v, want nothing", parked)
	}
	if !slices.Equal(b.urgent, []string{"budget:mxplan-1", "budget:emailpro-1"}) {
		t.Fatalf("urgent requests = %v, want the retried final delta's source and destination", b.urgent)
	}
	if len(b.held) != 0 {
		t.Fatalf("still held at the end: %v", b.held)
	}
}

// A budget that does not hand the destination's request on (one from
// before hand-offs, or one whose hand-off failed) says so in its grant:
// the migration asks the destination itself, and every lease is still
// asked once, held in every pass and given back once.
func TestLeaseAskedWhenNotHandedOn(t *testing.T) {
	h := newHarness(t)
	b := newLeaseBook(h)
	b.noHandOff = true
	h.env.OnActivity(a.ServerBudgets, mock.Anything, mock.Anything).Return(&activities.BudgetsResult{SourceService: "mxplan-1",
		SourceBudget: 4, DestBudget: 6, Connections: 2, DestConnections: 4}, nil)
	var during []string
	h.env.OnActivity(a.CopyMailbox, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CopyInput) (*activities.CopySummary, error) {
		during = append(during, fmt.Sprint(b.holding()))
		return &activities.CopySummary{Copied: 5}, nil
	})
	h.defaults()
	r := h.run(Input{AutoConfirm: true})
	if r.Outcome != StageDone {
		t.Fatalf("outcome %s", r.Outcome)
	}
	want := []string{"budget:mxplan-1", "budget:emailpro-1", "budget:mxplan-1", "budget:emailpro-1"}
	if !slices.Equal(b.asked, want) {
		t.Fatalf("leases asked = %v, want %v", b.asked, want)
	}
	for _, d := range during {
		if d != "[budget:emailpro-1 budget:mxplan-1]" {
			t.Fatalf("held during the passes: %v; want both leases in each", during)
		}
	}
	if len(b.held) != 0 || len(b.released) != len(b.asked) {
		t.Fatalf("still held %v; released %v of %d asked", b.held, b.released, len(b.asked))
	}
}
