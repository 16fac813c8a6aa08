package cli

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailshift/mailshift/workflows"
)

// waits reports whether a running migration is waiting (for a slot, a
// confirmation, the window, DNS, a budget share or an operator) rather
// than working: the plan's ETA leaves such accounts out and says how many.
func (l Line) waits() bool {
	if l.terminal() || l.Progress == nil {
		return false
	}
	switch l.Stage {
	case workflows.StageWaitingForSlot, workflows.StageAwaitConfirm, workflows.StageWaitWindow, workflows.StageNeedsAttention, workflows.StageDNS:
		return true
	}
	return l.Progress.WaitingFor != ""
}

// moveOn is the update that moves a waiting migration on, the one an
// operator most likely wants ("" when none applies now): recheck after
// slots were added, confirm, cutover-now, skip-dns, approve-skipped or
// retry once the cause is fixed.
func moveOn(p *workflows.Progress) string {
	var prefer []string
	switch p.Stage {
	case workflows.StageWaitingForSlot:
		prefer = []string{workflows.UpdateRecheck}
	case workflows.StageAwaitConfirm:
		prefer = []string{workflows.UpdateConfirm}
	case workflows.StageWaitWindow:
		prefer = []string{workflows.UpdateCutoverNow, workflows.UpdateSetWindow}
	case workflows.StageDNS:
		prefer = []string{workflows.UpdateSkipDNS}
	case workflows.StageNeedsAttention:
		prefer = []string{workflows.UpdateApproveSkipped, workflows.UpdateRetry, workflows.UpdateSkipDNS, workflows.UpdateRollback}
	}
	for _, a := range prefer {
		if slices.Contains(p.NextActions, a) {
			return a
		}
	}
	return ""
}

// waitNote says what a waiting migration waits for, when it looks again
// and the command that moves it on; "" for one that does not wait.
func waitNote(l Line, now time.Time) string {
	p := l.Progress
	if p == nil || !l.waits() {
		return ""
	}
	var note string
	switch {
	case p.Stage == workflows.StageNeedsAttention:
		note = fmt.Sprintf("failed at %s: [%s] %s", p.FailedStage, p.ErrorType, p.LastError)
	case strings.HasPrefix(p.WaitingFor, "queued for "):
		note = p.WaitingFor
	case p.WaitingFor != "":
		note = "waits for " + p.WaitingFor
	case p.Stage == workflows.StageAwaitConfirm:
		note = "waits for an operator's confirmation"
	default:
		note = "waits: " + string(p.Stage)
	}
	// The slot and DNS waits name their next check themselves.
	if !p.NextCheck.IsZero() && !strings.Contains(p.WaitingFor, "next ") {
		if d := p.NextCheck.Sub(now); d > 0 {
			note += fmt.Sprintf("; next check in %s", d.Round(time.Second))
		} else {
			note += "; checking now"
		}
	}
	if a := moveOn(p); a != "" {
		cmd := "starter " + a + " " + l.Address
		if a == workflows.UpdateSetWindow {
			cmd += ` --window "HH:MM-HH:MM Zone"`
		}
		note += "; to move on: " + cmd
	}
	return note
}
