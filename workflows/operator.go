package workflows

import (
	"fmt"
	"strings"

	"github.com/mailshift/mailshift/internal/mailcopy"
	"go.temporal.io/sdk/workflow"
)

// registerUpdates installs the operator commands. Each has a validator, so a
// command at the wrong moment is refused with the reason, before anything is
// written to history.
func (m *migration) registerUpdates(ctx workflow.Context) error {
	type cmd struct {
		name     string
		validate func() error
		apply    func(in ActionInput) string
	}
	cmds := []cmd{
		{UpdateConfirm, m.canConfirm, func(in ActionInput) string {
			m.confirmed = true
			m.st.ConfirmedBy = operator(in)
			return "confirmed by " + m.st.ConfirmedBy + ": the migration goes on; it cannot be undone once routing is switched"
		}},
		{UpdateCancel, m.canCancel, func(ActionInput) string {
			m.cancelled = true
			if m.cancelStage != nil {
				m.cancelStage()
			}
			if m.st.Slot != nil || !m.before(StageAssignSlot) {
				return "cancelled: the copy is cleared from the destination and the slot released; the source was never locked"
			}
			return "cancelled: nothing was changed"
		}},
		{UpdateCutoverNow, m.canCutoverNow, func(ActionInput) string {
			m.st.CutoverNow = true
			return "cutting over now: the source is locked after the current copy pass, the final delta runs and the routing switches"
		}},
		{UpdateSetWindow, m.canSetWindow, func(in ActionInput) string {
			m.st.Window = in.Window
			m.windowMoved = true
			if in.Window == "" {
				return "window cleared: the cutover follows the copy"
			}
			return "cutover window set to " + in.Window
		}},
		{UpdateRetry, m.canRetry, func(ActionInput) string {
			m.action = UpdateRetry
			return fmt.Sprintf("retrying stage %s", m.st.FailedStage)
		}},
		{UpdateRollback, m.canRollback, func(ActionInput) string {
			if m.st.Stage == StageNeedsAttention {
				m.action = UpdateRollback
			} else {
				m.rollback = true
				if m.cancelStage != nil {
					m.cancelStage()
				}
			}
			return "rolling back: destination cleared, slot released, source unlocked"
		}},
		{UpdateApproveSkipped, m.canApproveSkipped, func(ActionInput) string {
			m.st.SkipsApproved = m.skippedTotal()
			m.action = UpdateApproveSkipped
			return fmt.Sprintf("approved: the migration goes on without the %d skipped message(s); they stay listed in the report", m.st.SkipsApproved)
		}},
		{UpdateRecheck, m.canRecheck, func(ActionInput) string {
			m.recheck = true
			return "looking for a free account on " + m.in.To + " now"
		}},
		{UpdateSkipDNS, m.canSkipDNS, func(ActionInput) string {
			if m.st.Stage == StageNeedsAttention {
				m.action = UpdateSkipDNS
			} else {
				m.skipDNS = true
			}
			return "DNS wait skipped: the migration finishes with dnsPending"
		}},
	}
	for _, c := range cmds {
		c := c
		err := workflow.SetUpdateHandlerWithOptions(ctx, c.name,
			func(ctx workflow.Context, in ActionInput) (ActionResult, error) {
				msg := c.apply(in)
				m.st.Actions = append(m.st.Actions, OperatorAction{Action: c.name, By: operator(in), At: workflow.Now(ctx), Reason: in.Reason})
				m.log.Info("operator action", "action", c.name, "by", operator(in), "reason", in.Reason)
				return ActionResult{Accepted: msg, Stage: m.st.Stage}, nil
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, in ActionInput) error {
				if err := in.check(); err != nil {
					return err
				}
				if in.Window != "" && c.name != UpdateSetWindow {
					return fmt.Errorf("refused: \"window\" belongs to %s only", UpdateSetWindow)
				}
				return c.validate()
			}},
		)
		if err != nil {
			return err
		}
	}
	return nil
}

func operator(in ActionInput) string {
	if in.By == "" {
		return "unnamed operator"
	}
	return in.By
}

// before reports whether the migration has not yet reached stage s: the
// run loop's position, so a wait inside a later stage (a slot taken since
// preflight, waited for inside assign-slot with the source locked) counts as
// that later stage.
func (m *migration) before(s Stage) bool {
	return m.st.Next < m.index(s)
}

func (m *migration) canConfirm() error {
	if m.st.Stage != StageAwaitConfirm {
		return fmt.Errorf("refused: confirm is only possible while awaiting confirmation; the migration is at %s", m.describe())
	}
	if m.confirmed {
		return fmt.Errorf("refused: already confirmed by %s", m.st.ConfirmedBy)
	}
	return nil
}

func (m *migration) canCancel() error {
	if m.terminal() {
		return fmt.Errorf("refused: the migration is already %s", m.st.Stage)
	}
	if !m.before(StageLockSource) {
		return fmt.Errorf("refused: the source is already locked (%s); use rollback before the routing switch, or retry", m.describe())
	}
	return nil
}

func (m *migration) canRetry() error {
	if m.st.Stage != StageNeedsAttention {
		return fmt.Errorf("refused: retry is only possible when the migration needs attention; it is at %s", m.describe())
	}
	if m.action != "" {
		return fmt.Errorf("refused: %s already requested", m.action)
	}
	return nil
}

func (m *migration) canRollback() error {
	if m.terminal() {
		return fmt.Errorf("refused: the migration is already %s", m.st.Stage)
	}
	if m.st.Stage == StageNeedsAttention && m.st.FailedStage == StageRolledBack {
		return nil // a failed rollback may be tried again
	}
	if !m.before(StageSwitchRouting) {
		return fmt.Errorf("refused: mail for %s is already routed to %s (%s); a rollback would lose mail, so it is no longer possible: fix the cause and retry", m.in.Address, m.in.To, m.describe())
	}
	if m.rollback || m.action == UpdateRollback {
		return fmt.Errorf("refused: rollback already requested")
	}
	return nil
}

func (m *migration) canSkipDNS() error {
	if m.st.Stage == StageDNS || (m.st.Stage == StageNeedsAttention && m.st.FailedStage == StageDNS) {
		if m.skipDNS {
			return fmt.Errorf("refused: skip-dns already requested")
		}
		return nil
	}
	return fmt.Errorf("refused: skip-dns is only possible during %s; the migration is at %s", StageDNS, m.describe())
}

func (m *migration) canApproveSkipped() error {
	if m.st.Stage != StageNeedsAttention || m.st.ErrorType != ErrTypeSkippedOverLimit {
		return fmt.Errorf("refused: approve-skipped is only possible when the copy skipped more messages than allowed; the migration is at %s", m.describe())
	}
	if m.action != "" {
		return fmt.Errorf("refused: %s already requested", m.action)
	}
	return nil
}

func (m *migration) canCutoverNow() error {
	if m.st.Order == orderLegacy {
		return fmt.Errorf("refused: this migration was started before cutover windows existed; it cuts over right after its copy")
	}
	if m.st.Stage != StageCopy && m.st.Stage != StageWaitWindow {
		return fmt.Errorf("refused: cutover-now is only possible during the copy or while waiting for the window; the migration is at %s", m.describe())
	}
	if m.st.CutoverNow {
		return fmt.Errorf("refused: cutover-now already requested")
	}
	return nil
}

func (m *migration) canSetWindow() error {
	if m.st.Order == orderLegacy {
		return fmt.Errorf("refused: this migration was started before cutover windows existed")
	}
	if m.terminal() || !m.before(StageLockSource) {
		return fmt.Errorf("refused: the window can only move before the source is locked; the migration is at %s", m.describe())
	}
	return nil
}

func (m *migration) canRecheck() error {
	if m.st.Stage != StageWaitingForSlot {
		return fmt.Errorf("refused: recheck is only possible while waiting for a free slot; the migration is at %s", m.describe())
	}
	if m.recheck {
		return fmt.Errorf("refused: recheck already requested")
	}
	return nil
}

func (m *migration) terminal() bool {
	switch m.st.Stage {
	case StageDone, StageCancelled, StageRolledBack:
		return true
	}
	return false
}

func (m *migration) describe() string {
	if m.st.Stage == StageNeedsAttention {
		return fmt.Sprintf("%s (failed at %s)", StageNeedsAttention, m.st.FailedStage)
	}
	return string(m.st.Stage)
}

// progress answers the progress query from the workflow's state.
func (m *migration) progress() (Progress, error) {
	p := Progress{Address: m.in.Address, To: m.in.To, Plan: m.in.Plan, Stage: m.st.Stage, FailedStage: m.st.FailedStage,
		LastError: m.st.LastError, ErrorType: m.st.ErrorType, ConfirmedBy: m.st.ConfirmedBy,
		DeltaSyncs: m.st.Deltas, DNSChecks: m.st.DNSChecks, DNSPending: m.st.DNSPend,
		Started: m.st.Started, Updated: m.st.Updated, Skipped: len(m.st.Skips),
		WaitingFor: m.st.WaitingFor, NextCheck: m.st.NextCheck, Failures: m.st.Failures, LockoutSeconds: m.lockout(),
		Replayed: m.st.Replayed}
	if pf := m.st.Preflight; pf != nil {
		p.FoldersTotal, p.MessagesTotal, p.BytesTotal = pf.Folders, pf.Messages, pf.Bytes
	}
	if c := m.st.Copy; c != nil {
		p.FoldersDone = len(c.Folders)
		p.MessagesDone = c.Copied + c.Present + m.st.DeltaMsgs
		p.BytesDone = c.Bytes
		p.Skipped = m.skippedTotal()
		p.ByReason = m.byReason()
	}
	if m.st.DNS != nil {
		p.DNS = m.st.DNS.Summary()
	}
	for _, c := range []struct {
		name string
		ok   func() error
	}{{UpdateConfirm, m.canConfirm}, {UpdateCancel, m.canCancel}, {UpdateRetry, m.canRetry}, {UpdateRollback, m.canRollback},
		{UpdateRecheck, m.canRecheck}, {UpdateSkipDNS, m.canSkipDNS}, {UpdateApproveSkipped, m.canApproveSkipped},
		{UpdateCutoverNow, m.canCutoverNow}, {UpdateSetWindow, m.canSetWindow}} {
		if c.ok() == nil {
			p.NextActions = append(p.NextActions, c.name)
		}
	}
	return p, nil
}

// byReason counts the listed skipped and reported items by category.
func (m *migration) byReason() map[string]int {
	if len(m.st.Skips)+len(m.st.Reported) == 0 {
		return nil
	}
	out := map[string]int{}
	for _, l := range [][]mailcopy.Skip{m.st.Skips, m.st.Reported} {
		for _, s := range l {
			c := s.Category
			if c == "" {
				c = "skipped"
			}
			out[c]++
		}
	}
	return out
}

// details sets the workflow's current details, which the Temporal UI shows
// on the workflow's page: the account, the stage, the counts, what it waits
// for and the exact next action. Markdown, no secrets, no message content.
func (m *migration) details(ctx workflow.Context) {
	p, _ := m.progress()
	var b strings.Builder
	b.WriteString(fmt.Sprintf("**%s → %s**", m.in.Address, m.in.To))
	if m.in.Plan != "" {
		b.WriteString(fmt.Sprintf(" (plan %s)", m.in.Plan))
	}
	b.WriteString(fmt.Sprintf("\n\nStage: **%s**", m.describe()))
	if p.MessagesTotal > 0 || p.MessagesDone > 0 {
		b.WriteString(fmt.Sprintf("\n\nMessages: %d of %d copied, %s of %s", p.MessagesDone, p.MessagesTotal, human(p.BytesDone), human(p.BytesTotal)))
		if p.Skipped > 0 {
			b.WriteString(fmt.Sprintf("; %d skipped", p.Skipped))
		}
	}
	if p.WaitingFor != "" {
		b.WriteString(fmt.Sprintf("\n\nWaiting for %s", p.WaitingFor))
	}
	if m.st.Stage == StageNeedsAttention {
		b.WriteString(fmt.Sprintf("\n\nFailed: %s", m.st.LastError))
		if m.st.ErrorType != "" {
			b.WriteString(fmt.Sprintf(" (%s)", m.st.ErrorType))
		}
	}
	if len(p.NextActions) > 0 {
		b.WriteString(fmt.Sprintf("\n\nNext: send the update %s", strings.Join(p.NextActions, ", ")))
	}
	workflow.SetCurrentDetails(ctx, b.String())
}

// human writes a byte count the way an operator reads it.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
