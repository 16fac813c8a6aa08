package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// deltaEvery is how many DNS checks pass between two delta-syncs during the
// propagation wait.
const deltaEvery = 3

// lockSource blocks the owner's logins; a rollback request stops it. The
// owner's lockout is measured from here to the routing switch.
func (m *migration) lockSource(ctx workflow.Context) error {
	// Cut over without a window: the owner is told just before the lock.
	if err := m.advanceNotice(ctx, windowState{Open: true, Opens: workflow.Now(ctx)}); err != nil {
		return err
	}
	err := m.cancellable(ctx, func(ctx workflow.Context) error {
		return m.call(ctx, "lock-source: block the owner's logins", a.LockSource, activities.LockInput{Address: m.in.Address, WorkflowID: m.wid}).Get(ctx, nil)
	})
	if err == nil && m.st.LockedAt.IsZero() {
		m.st.LockedAt = workflow.Now(ctx)
	}
	return err
}

// lockout is how long the owner could not log in: lock to routing switch
// (0 before the lock; up to the last state change while it lasts).
func (m *migration) lockout() float64 {
	if m.st.LockedAt.IsZero() {
		return 0
	}
	end := m.st.RoutedAt
	if end.IsZero() {
		end = m.st.Updated
	}
	if end.Before(m.st.LockedAt) {
		return 0
	}
	return end.Sub(m.st.LockedAt).Seconds()
}

// assignSlot claims a free slot of the destination service.
func (m *migration) assignSlot(ctx workflow.Context) error {
	return m.cancellable(ctx, func(ctx workflow.Context) error {
		for {
			var sl activities.SlotResult
			err := m.call(ctx, "assign-slot: claim a free account on "+m.in.To, a.AssignSlot, activities.AssignInput{Address: m.in.Address, To: m.in.To,
				WorkflowID: m.wid, MinQuota: m.st.Preflight.QuotaNeeded}).Get(ctx, &sl)
			var ae *temporal.ApplicationError
			if errors.As(err, &ae) && ae.Type() == activities.ErrTypeNoSlot {
				// Another migration took the last slot since preflight:
				// wait for one like before, then claim again.
				m.st.Preflight.FreeSlots = 0
				if err := m.waitForSlot(ctx); err != nil {
					return err
				}
				m.enter(ctx, StageAssignSlot)
				continue
			}
			if err == nil {
				m.st.Slot = &sl
			}
			return err
		}
	})
}

// copyMailbox copies every folder and message; a rollback request stops it.
// Messages the destination refused are items, not failures; more of them
// than the input allows (and an operator approved) stop the migration here,
// before the routing switch, listing them.
func (m *migration) copyMailbox(ctx workflow.Context) error {
	err := m.cancellable(ctx, func(ctx workflow.Context) error {
		if m.st.Order == orderLegacy {
			return m.copy(ctx, false, "copy: every folder and message")
		}
		return m.preCopy(ctx)
	})
	if err != nil {
		return err
	}
	if err := m.carryFilters(ctx); err != nil {
		return err
	}
	// Versioned: a migration started before the limit existed goes on as
	// it did, with its skipped messages in the report.
	// (Migrations with State.Quick came later: they have the limit.)
	if m.st.Quick == 0 && workflow.GetVersion(ctx, "skip-limit", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	return m.checkSkipped()
}

// The copy runs in passes while the owner keeps working: the first copies
// everything, each next one what arrived or changed meanwhile, until a pass
// finds little left (at most smallPass messages: at the engine's measured
// 1,500 messages/s that is well under a second under the lock, where the
// fixed costs — an activity round trip, two logins — dominate) or
// maxPasses have run (a mailbox receiving faster than it copies would
// otherwise never settle).
const (
	smallPass = 50
	maxPasses = 5
	// smallFirstPass: a first pass of at most this many messages (about a
	// second of copy) ends the pre-copy (migrations with State.Lean).
	smallFirstPass = 1000
	// staleAfter: a copy older than this when the window opens gets one
	// more pass before the lock, so the final delta stays small.
	staleAfter = 10 * time.Minute
)

func (m *migration) preCopy(ctx workflow.Context) error {
	for {
		n := m.st.CopyPasses + 1
		summary := "copy: pass 1, every folder and message (the owner keeps working)"
		if n > 1 {
			summary = fmt.Sprintf("copy: pass %d, what arrived since pass %d (the owner keeps working)", n, n-1)
		}
		if err := m.copy(ctx, n > 1, summary); err != nil {
			return err
		}
		m.st.CopyPasses = n
		m.st.LastPass = workflow.Now(ctx)
		m.details(ctx)
		if (n > 1 && m.lastCopied <= smallPass) || n >= maxPasses || m.st.CutoverNow {
			return nil
		}
		if n == 1 && m.lastCopied <= smallPass {
			return nil
		}
		// A small first pass took seconds: what arrived meanwhile is for
		// the final delta, not worth another lease round and logins.
		if n == 1 && m.st.Lean == 1 && m.lastCopied <= smallFirstPass {
			return nil
		}
	}
}

// windowState is where a migration stands against its cutover window; it
// is computed in a side effect, so the zone database read is recorded.
type windowState struct {
	Open   bool      `json:"open"`
	Opens  time.Time `json:"opens"`
	Closes time.Time `json:"closes,omitempty"`
}

type windowResult struct {
	W   windowState `json:"w"`
	Err string      `json:"err,omitempty"`
}

func (m *migration) windowAt(now time.Time) (windowState, error) {
	w, err := ParseWindow(m.st.Window)
	if err != nil {
		return windowState{}, err
	}
	from := now
	if m.set.after.After(now) {
		from = m.set.after
	}
	if w == nil {
		return windowState{Open: !from.After(now), Opens: from}, nil
	}
	open, opens, closes := w.Next(from)
	if open && !from.After(now) {
		return windowState{Open: true, Opens: opens, Closes: closes}, nil
	}
	if open {
		opens = from
	}
	return windowState{Opens: opens, Closes: closes}, nil
}

// waitWindow holds the migration, source unlocked, until the cutover
// window opens (or an operator sends cutover-now). A window missed while
// no worker ran is not cut over late: the wait goes on to the next
// opening, because the window is what the owner was promised.
func (m *migration) waitWindow(ctx workflow.Context) error {
	for !m.st.CutoverNow {
		now := workflow.Now(ctx)
		var res windowResult
		if err := workflow.SideEffect(ctx, func(workflow.Context) any {
			ws, err := m.windowAt(now)
			if err != nil {
				return windowResult{Err: err.Error()}
			}
			return windowResult{W: ws}
		}).Get(&res); err != nil {
			return err
		}
		if res.Err != "" {
			return temporal.NewNonRetryableApplicationError("cutover window: "+res.Err, activities.ErrTypeBadInput, nil)
		}
		ws := res.W
		if !ws.Open {
			// Said before the advance notice goes, so status reads the
			// same from the first moment of the wait.
			m.st.NextCheck = ws.Opens
			m.st.WaitingFor = "the cutover window (opens " + ws.Opens.Format("2006-01-02 15:04 MST") + "; cutover-now to go now, set-window to move it)"
			m.details(ctx)
		}
		if err := m.advanceNotice(ctx, ws); err != nil {
			m.st.WaitingFor, m.st.NextCheck = "", time.Time{}
			return err
		}
		if ws.Open {
			break
		}
		m.windowMoved = false
		if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: ws.Opens.Sub(now),
			TimerOptions: workflow.TimerOptions{Summary: "waiting-for-window: opens " + ws.Opens.Format("2006-01-02 15:04 MST")}},
			func() bool { return m.st.CutoverNow || m.windowMoved || m.cancelled || m.rollback }); err != nil {
			return err
		}
		m.st.WaitingFor, m.st.NextCheck = "", time.Time{}
		if m.cancelled || m.rollback {
			return errCancelledByOperator
		}
		if !m.st.CutoverNow && workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return m.continueAsNew(ctx)
		}
	}
	m.st.WaitingFor, m.st.NextCheck = "", time.Time{}
	if !m.st.LastPass.IsZero() && workflow.Now(ctx).Sub(m.st.LastPass) > staleAfter {
		return m.cancellable(ctx, func(ctx workflow.Context) error {
			return m.copy(ctx, true, "waiting-for-window: one more pass before the lock (the copy is older than "+staleAfter.String()+")")
		})
	}
	return nil
}

// finalDelta copies, with the source locked, what the owner and the
// senders changed since the last pass; a rollback request stops it.
func (m *migration) finalDelta(ctx workflow.Context) error {
	err := m.cancellable(ctx, func(ctx workflow.Context) error {
		return m.copy(ctx, true, "final-delta: what changed since the copy (source locked)")
	})
	if err != nil {
		return err
	}
	return m.checkSkipped()
}

// ErrTypeSkippedOverLimit parks a migration whose copy skipped more
// messages than allowed; approve-skipped or retry moves it on.
const ErrTypeSkippedOverLimit = "SkippedOverLimit"

// skippedTotal is how many distinct messages the copy has skipped: exact
// while the de-duplicated list holds them all; past its bound, the passes'
// counts (an upper bound: a delta pass counts again what an earlier pass
// skipped).
func (m *migration) skippedTotal() int {
	n := len(m.st.Skips)
	if n >= maxSkipsListed && m.st.Copy != nil && m.st.Copy.SkipCount > n {
		n = m.st.Copy.SkipCount
	}
	return n
}

func (m *migration) checkSkipped() error {
	n := m.skippedTotal()
	if n <= m.in.MaxSkipped || n <= m.st.SkipsApproved {
		return nil
	}
	var b strings.Builder
	b.WriteString(fmt.Sprintf("%d message(s) could not be copied (allowed: %d", n, m.in.MaxSkipped))
	if m.st.SkipsApproved > 0 {
		b.WriteString(fmt.Sprintf(", approved: %d", m.st.SkipsApproved))
	}
	b.WriteString("): ")
	for i, s := range m.st.Skips {
		if i == 5 {
			b.WriteString(fmt.Sprintf("; and %d more (starter report lists them)", n-5))
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fmt.Sprintf("%s UID %d (%s", s.Folder, s.UID, human(s.Size)))
		if s.MessageID != "" {
			b.WriteString(fmt.Sprintf(", %s", s.MessageID))
		}
		b.WriteString(fmt.Sprintf("): %s", s.Reason))
	}
	b.WriteString(". Send approve-skipped to go on without them, or fix the cause and retry")
	return temporal.NewNonRetryableApplicationError(b.String(), ErrTypeSkippedOverLimit, nil)
}

// switchRouting is the point of no return: mail for the address goes to
// the destination.
func (m *migration) switchRouting(ctx workflow.Context) error {
	var rr activities.RouteResult
	err := m.call(ctx, "switch-routing: deliver to "+m.in.To+" (point of no return)", a.SwitchRouting, activities.RouteInput{Address: m.in.Address, To: m.in.To, WorkflowID: m.wid}).Get(ctx, &rr)
	if err != nil {
		return err
	}
	if m.st.RoutedAt.IsZero() {
		m.st.RoutedAt = workflow.Now(ctx)
	}
	if m.st.Carry == 0 {
		return nil
	}
	// Aliases deliver to the address: they follow its route.
	var ar activities.AliasesResult
	if err := m.call(ctx, "switch-routing: aliases move with the mailbox to "+m.in.To, a.MoveAliases,
		activities.AliasesInput{Address: m.in.Address, To: m.in.To}).Get(ctx, &ar); err != nil {
		return err
	}
	m.st.Aliases = ar.Aliases
	return nil
}

// carryFilters installs the owner's Sieve filters on the destination, with
// folder names as the copy mapped them; a script the destination refuses
// is reported, never dropped silently.
func (m *migration) carryFilters(ctx workflow.Context) error {
	if m.st.Carry == 0 || m.st.Copy == nil {
		return nil
	}
	var fr activities.FiltersResult
	if err := m.call(ctx, "copy: the owner's Sieve filters to "+m.in.To, a.CopyFilters,
		activities.FiltersInput{Address: m.in.Address, From: m.st.Preflight.SourceService, To: m.in.To, Folders: m.st.Copy.Folders}).Get(ctx, &fr); err != nil {
		return err
	}
	m.st.Filters = &fr
	return nil
}

// deltaSync copies what reached the source before the switch took effect.
func (m *migration) deltaSync(ctx workflow.Context) error {
	return m.copy(ctx, true, "delta-sync: what arrived before the switch took effect")
}

// verify runs a last delta, then checks every source message is on the
// destination.
func (m *migration) verify(ctx workflow.Context) error {
	if m.st.Lean == 1 {
		return m.verifyOneLease(ctx)
	}
	if err := m.copy(ctx, true, "verify: final sync before the check"); err != nil {
		return err
	}
	var v activities.VerifySummary
	if err := m.withBudget(ctx, m.copyShares(m.passPairs(false)), func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(long(ctx, "verify: every source message on the destination"), a.Verify, m.copyInput(true)).Get(ctx, &v)
	}); err != nil {
		return err
	}
	m.verified(&v)
	return nil
}

// verifyOneLease is verify with its last delta and the check under one
// pair of leases: the same two activities, one lease round instead of two.
func (m *migration) verifyOneLease(ctx workflow.Context) error {
	if m.st.Halves == 1 && m.smallMailbox() {
		return m.verifyHalves(ctx)
	}
	var v activities.VerifySummary
	if err := m.withBudget(ctx, m.copyShares(m.passPairs(false)), func(ctx workflow.Context) error {
		if m.st.Fused == 1 {
			// One activity: the last delta, then the check, through one
			// login on each server.
			in := m.copyInput(true)
			in.Sync = true
			if err := m.mailStep(ctx, m.smallMailbox(), "verify: final sync, then every source message on the destination", a.Verify, in, &v); err != nil {
				return err
			}
			if v.Pass != nil {
				m.recordPass(ctx, *v.Pass, true)
				v.Pass = nil
			}
			return nil
		}
		if err := m.copyPass(ctx, true, "verify: final sync before the check"); err != nil {
			return err
		}
		return workflow.ExecuteActivity(long(ctx, "verify: every source message on the destination"), a.Verify, m.copyInput(true)).Get(ctx, &v)
	}); err != nil {
		return err
	}
	m.verified(&v)
	return nil
}

// verified keeps a verify's answer and the messages it found over the
// destination's limit.
func (m *migration) verified(v *activities.VerifySummary) {
	m.st.Verify = v
	m.st.Skips = appendSkips(m.st.Skips, v.OverLimit)
}

// verifyHalves is verify with the source held for its own half only: the
// last delta and the source's reading under both leases (VerifySource),
// then the source's lease back, then the destination's reading under its
// own (VerifyDestination). The source's reading stays in the worker that
// made it; a destination half that runs elsewhere finds none, and verify
// runs again whole, under both leases.
func (m *migration) verifyHalves(ctx workflow.Context) error {
	const summary = "verify: every source message on the destination"
	var vs activities.VerifySourceSummary
	shares := m.copyShares(m.passPairs(false))
	if err := m.withBudget(ctx, shares, func(ctx workflow.Context) error {
		in := m.copyInput(true)
		in.Sync = true
		if err := m.mailStep(ctx, true, "verify: final sync, then the source's messages read", a.VerifySource, in, &vs); err != nil {
			return err
		}
		if vs.Pass != nil {
			m.recordPass(ctx, *vs.Pass, true)
			vs.Pass = nil
		}
		return nil
	}); err != nil {
		return err
	}
	var v activities.VerifySummary
	dest := shares
	if len(dest) > 1 {
		dest = dest[1:] // the destination's share: the source's goes back first
	}
	if err := m.withBudget(ctx, dest, func(ctx workflow.Context) error {
		return m.mailStep(ctx, true, summary, a.VerifyDestination, activities.VerifyDestinationInput{Copy: m.copyInput(true), Snapshot: vs.Snapshot}, &v)
	}); err != nil {
		return err
	}
	if v.Unread {
		m.log.Info("the source's reading is in another worker: verify runs again whole")
		if err := m.withBudget(ctx, shares, func(ctx workflow.Context) error {
			return m.mailStep(ctx, true, summary, a.Verify, m.copyInput(true), &v)
		}); err != nil {
			return err
		}
	}
	m.verified(&v)
	return nil
}

// finishMigration marks the source migrated and leaves the owner a notice.
func (m *migration) finishMigration(ctx workflow.Context) error {
	var fr activities.FinishResult
	pending := ""
	if m.st.DNSPend && m.st.DNS != nil {
		pending = m.st.DNS.Summary()
	}
	err := m.withBudget(ctx, m.destShare(1), func(ctx workflow.Context) error {
		return m.call(ctx, "done: mark the source migrated, notice to the owner", a.Finish, activities.FinishInput{Address: m.in.Address, To: m.in.To, WorkflowID: m.wid,
			Notice: !m.in.NoNotice, Locale: m.st.Preflight.Locale, DNSPending: pending}).Get(ctx, &fr)
	})
	if err == nil {
		m.st.Notice = &fr
	}
	return err
}

// cancellable runs f under a context that a rollback request cancels.
func (m *migration) cancellable(ctx workflow.Context, f func(workflow.Context) error) error {
	cctx, cancel := workflow.WithCancel(ctx)
	m.cancelStage = cancel
	defer func() { m.cancelStage = nil }()
	return f(cctx)
}

func (m *migration) preflight(ctx workflow.Context) error {
	if err := m.budgets(ctx); err != nil {
		return err
	}
	var pf activities.PreflightResult
	err := m.withBudget(ctx, m.sourceShare(), func(ctx workflow.Context) error {
		return m.mailStep(ctx, m.st.Local == 1, "preflight: check the account, measure the mailbox", a.Preflight, activities.PreflightInput{Address: m.in.Address, To: m.in.To, WorkflowID: m.wid,
			IncludeFolders: m.in.IncludeFolders, ExcludeFolders: m.in.ExcludeFolders}, &pf)
	})
	if err != nil {
		return err
	}
	m.st.Preflight = &pf
	if m.st.Carry == 0 {
		return nil
	}
	// An active Sieve vacation rule is an auto-responder: refused like the
	// directory's, naming the script and line.
	return m.call(ctx, "preflight: the owner's filters (no auto-responder)", a.CheckFilters,
		activities.FiltersCheckInput{Address: m.in.Address, From: pf.SourceService}).Get(ctx, nil)
}

func (m *migration) waitForSlot(ctx workflow.Context) error {
	for m.st.Preflight.FreeSlots == 0 {
		m.enter(ctx, StageWaitingForSlot)
		m.st.NextCheck = workflow.Now(ctx).Add(m.set.slotRecheck)
		m.st.WaitingFor = fmt.Sprintf("a free account on %s with %s of quota; next check %s, or now with recheck",
			m.in.To, human(m.st.Preflight.QuotaNeeded), m.st.NextCheck.UTC().Format("15:04:05 MST"))
		m.details(ctx)
		m.recheck = false
		_, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: m.set.slotRecheck,
			TimerOptions: workflow.TimerOptions{Summary: "waiting-for-slot: next look for a free account on " + m.in.To}},
			func() bool { return m.cancelled || m.rollback || m.recheck })
		if err != nil {
			return err
		}
		if m.cancelled || m.rollback {
			return errCancelledByOperator
		}
		var n int
		if err := m.call(ctx, "waiting-for-slot: count free accounts on "+m.in.To, a.FreeSlots, activities.SlotQuery{Service: m.in.To, MinQuota: m.st.Preflight.QuotaNeeded}).Get(ctx, &n); err != nil {
			return err
		}
		m.st.Preflight.FreeSlots = n
		if n > 0 {
			m.st.WaitingFor, m.st.NextCheck = "", time.Time{}
		}
		if n == 0 && workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return m.continueAsNew(ctx)
		}
	}
	return nil
}

func (m *migration) awaitConfirm(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return m.confirmed || m.cancelled || m.rollback }); err != nil {
		return err
	}
	if !m.confirmed {
		return errCancelledByOperator
	}
	return nil
}

func (m *migration) copyInput(delta bool) activities.CopyInput {
	in := activities.CopyInput{Address: m.in.Address, From: m.st.Preflight.SourceService, To: m.in.To,
		Checkpoints: m.st.Checkpts, IncludeFolders: m.in.IncludeFolders, ExcludeFolders: m.in.ExcludeFolders, Delta: delta,
		Locale: m.st.Preflight.Locale, Reported: m.st.Skips, Exclude: m.exclude(),
		Replay: delta && replays(m.st.Stage)}
	if m.st.Quick == 1 {
		in.Pairs = m.passPairs(!delta)
	}
	return in
}

// replays says whether a delta pass in stage s first replays the owner's
// changes to what is already copied (expunges, flags, moves, folders):
// every pass up to the final delta, so a message the owner moves between
// two pre-copy passes is moved on the destination, never copied again.
// Never after the switch: the destination is then the owner's own, and its
// flags and folders his.
func replays(s Stage) bool {
	return s == StageCopy || s == StageWaitWindow || s == StageFinalDelta
}

// copy runs a full copy or a delta pass and records its checkpoints, so the
// next pass starts where this one ended.
func (m *migration) copy(ctx workflow.Context, delta bool, summary string) error {
	return m.withBudget(ctx, m.copyShares(m.passPairs(!delta)), func(ctx workflow.Context) error {
		return m.copyPass(ctx, delta, summary)
	})
}

// copyPass runs one copy or delta pass under leases the caller holds.
func (m *migration) copyPass(ctx workflow.Context, delta bool, summary string) error {
	var sum activities.CopySummary
	if err := m.mailStep(ctx, m.smallMailbox(), summary, a.CopyMailbox, m.copyInput(delta), &sum); err != nil {
		return err
	}
	m.recordPass(ctx, sum, delta)
	return nil
}

// recordPass keeps what a copy or delta pass did: its checkpoints (the
// next pass starts there), its items and counts.
func (m *migration) recordPass(ctx workflow.Context, sum activities.CopySummary, delta bool) {
	m.st.Checkpts = sum.Checkpoints
	m.st.Updated = workflow.Now(ctx)
	m.st.PassSeconds = sum.Seconds
	m.lastCopied = sum.Copied
	m.st.Skips = appendSkips(m.st.Skips, sum.Skips)
	m.st.Reported = appendSkips(m.st.Reported, sum.Reported)
	m.st.tally(sum, delta)
	if sum.Replayed != nil {
		if m.st.Replayed == nil {
			m.st.Replayed = &mailcopy.ReplayCounts{}
		}
		m.st.Replayed.Add(*sum.Replayed)
	}
	if delta {
		m.st.Deltas++
		m.st.DeltaMsgs += sum.Copied
		if m.st.Copy != nil {
			m.st.Copy.SkipCount += sum.SkipCount
		}
		return
	}
	m.st.Copy = &sum
}

// appendSkips keeps the list of skipped messages bounded in history and
// lists each message once: a message refused by the copy is refused again
// by every delta pass, and must not be reported once per pass. The count
// stays exact in the copy summaries.
const maxSkipsListed = 200

func appendSkips(have, more []mailcopy.Skip) []mailcopy.Skip {
	seen := make(map[string]bool, len(have))
	key := func(s mailcopy.Skip) string { return fmt.Sprintf("%s\x00%d", s.Folder, s.UID) }
	for _, s := range have {
		seen[key(s)] = true
	}
	for _, s := range more {
		if len(have) >= maxSkipsListed {
			break
		}
		if k := key(s); !seen[k] {
			seen[k] = true
			have = append(have, s)
		}
	}
	return have
}

// waitDNS polls the domain's authoritative servers with backoff until every
// record is seen everywhere twice in a row, running a delta-sync every few
// checks. Past the deadline the migration goes on with dnsPending: the move
// itself is complete, only the domain's DNS lags.
func (m *migration) waitDNS(ctx workflow.Context) error {
	if m.st.DNSSince.IsZero() {
		m.st.DNSSince = workflow.Now(ctx)
		m.st.DNSWait = m.set.dnsInterval
		m.st.DNSStreak = 0
	}
	deadline := m.st.DNSSince.Add(m.set.dnsDeadline)
	for {
		if m.skipDNS {
			m.st.DNSPend = m.st.DNSStreak < 2
			return nil
		}
		// A fresh value each check: decoding into the previous diagnostic
		// would keep its problems in a later, successful one.
		var diag *dnscheck.Diagnostic
		if err := workflow.ExecuteActivity(short(ctx, fmt.Sprintf("dns-propagation: check %d", m.st.DNSChecks+1)), a.CheckDNS, activities.DNSInput{Address: m.in.Address, To: m.in.To}).Get(ctx, &diag); err != nil {
			return err
		}
		m.st.DNS = diag
		m.st.DNSChecks++
		m.st.Updated = workflow.Now(ctx)
		if diag != nil && diag.OK {
			m.st.DNSStreak++
		} else {
			m.st.DNSStreak = 0
		}
		if m.st.DNSStreak >= 2 {
			m.st.DNSPend = false
			return nil
		}
		if m.st.DNSChecks%deltaEvery == 0 {
			// Mail can still reach the old platform through stale caches.
			if err := m.copy(ctx, true, "dns-propagation: delta sync (mail through stale caches)"); err != nil {
				m.log.Warn("delta-sync during DNS wait failed; the next one retries", "error", err)
			}
		}
		now := workflow.Now(ctx)
		if !now.Before(deadline) {
			m.st.DNSPend = true
			m.log.Warn("DNS not propagated by the deadline; finishing with dnsPending", "diagnostic", diag.Summary())
			return nil
		}
		wait := m.st.DNSWait
		if m.st.DNSStreak == 1 {
			// Confirm a first success soon rather than after a long backoff.
			wait = m.set.dnsInterval
		}
		if rest := deadline.Sub(now); wait > rest {
			wait = rest
		}
		m.st.NextCheck = now.Add(wait)
		m.st.WaitingFor = fmt.Sprintf("the domain's DNS records on every authoritative server (check %d, next %s; deadline %s; skip-dns ends the wait)",
			m.st.DNSChecks, m.st.NextCheck.UTC().Format("15:04:05 MST"), deadline.UTC().Format("2006-01-02 15:04 MST"))
		m.details(ctx)
		if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: wait,
			TimerOptions: workflow.TimerOptions{Summary: fmt.Sprintf("dns-propagation: wait %v before check %d", wait, m.st.DNSChecks+1)}},
			func() bool { return m.skipDNS }); err != nil {
			return err
		}
		m.st.WaitingFor, m.st.NextCheck = "", time.Time{}
		m.st.DNSWait = min(m.st.DNSWait*2, m.set.dnsMax)
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return m.continueAsNew(ctx)
		}
	}
}

// A mailbox of at most localMaxMessages and localMaxBytes (measured at
// preflight) copies and verifies in seconds: its passes run as local
// activities first (State.Local), inside the workflow task that starts
// them, so the stages between the grant of its leases and the DNS wait —
// copy, lock, final delta, switch, delta-sync — follow each other without
// a round trip through the Temporal server (each one cost 0.1-0.25 s on a
// loaded server, while the leases were held) and record a marker each
// instead of three activity events and a workflow task.
const (
	localMaxMessages = 2000
	localMaxBytes    = 256 << 20
	// localTimeout bounds a local pass; one that runs longer (a mailbox
	// that grew, a slow server) is run again as an activity, which
	// heartbeats and resumes from its checkpoints.
	localTimeout = 2 * time.Minute
)

// smallMailbox says whether this migration's passes run locally first.
func (m *migration) smallMailbox() bool {
	pf := m.st.Preflight
	return m.st.Local == 1 && pf != nil && pf.Messages <= localMaxMessages && pf.Bytes <= localMaxBytes
}

// mailStep runs a preflight, copy or verify: as a local activity first when
// local is set, then — if that attempt failed in a way a retry could fix
// (a timeout, a cut connection, a server that said "not now", a worker
// that went away) — as an activity with the long retry policy, which
// heartbeats and survives a worker's death. A permanent error or a
// cancellation ends the step either way, as it would after an
// activity's attempt. The local attempt is recorded as one marker, so a
// replay takes the same branch.
func (m *migration) mailStep(ctx workflow.Context, local bool, summary string, fn, arg, res any) error {
	if local {
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			Summary:             summary,
			StartToCloseTimeout: localTimeout,
			RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		err := workflow.ExecuteLocalActivity(lctx, fn, arg).Get(ctx, res)
		if err == nil || !retriable(err) {
			return err
		}
		m.log.Info("local attempt failed, running the step as an activity", "step", summary, "error", err)
	}
	return workflow.ExecuteActivity(long(ctx, summary), fn, arg).Get(ctx, res)
}

// retriable says whether an activity's attempt that ended with err is one
// its retry policy would try again.
func retriable(err error) bool {
	if temporal.IsCanceledError(err) {
		return false
	}
	var ae *temporal.ApplicationError
	return !errors.As(err, &ae) || !ae.NonRetryable()
}
