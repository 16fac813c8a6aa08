package cli

import (
	"fmt"
	"strings"

	"github.com/mailshift/mailshift/workflows"
)

// staticSummary is the one line the Temporal UI shows for a migration the
// starter started: the account, where it goes, and its plan.
func staticSummary(in workflows.Input) string {
	s := fmt.Sprintf("%s → %s", in.Address, in.To)
	if in.Plan != "" {
		s += " (plan " + in.Plan + ")"
	}
	return s
}

// staticDetails is the migration's plan as the Temporal UI shows it under
// the summary (Markdown): how it confirms, its cutover window, the skipped
// messages it may leave, the folders it takes. The input holds no secret.
func staticDetails(in workflows.Input) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Move %s to %s**\n\n", in.Address, in.To)
	if in.Plan != "" {
		fmt.Fprintf(&b, "- Plan: %s\n", in.Plan)
	}
	if in.AutoConfirm {
		b.WriteString("- Confirmation: automatic (the plan was confirmed as a whole)\n")
	} else {
		b.WriteString("- Confirmation: send the update confirm\n")
	}
	switch {
	case in.CutoverWindow != "" && in.CutoverAfter != "":
		fmt.Fprintf(&b, "- Cutover: in the window %s, from %s\n", in.CutoverWindow, in.CutoverAfter)
	case in.CutoverWindow != "":
		fmt.Fprintf(&b, "- Cutover: in the window %s\n", in.CutoverWindow)
	case in.CutoverAfter != "":
		fmt.Fprintf(&b, "- Cutover: from %s\n", in.CutoverAfter)
	default:
		b.WriteString("- Cutover: as soon as the copy is done\n")
	}
	fmt.Fprintf(&b, "- Skipped messages allowed before the switch: %d\n", in.MaxSkipped)
	if len(in.IncludeFolders) > 0 {
		fmt.Fprintf(&b, "- Folders: only %s\n", strings.Join(in.IncludeFolders, ", "))
	}
	if len(in.ExcludeFolders) > 0 {
		fmt.Fprintf(&b, "- Folders left out: %s\n", strings.Join(in.ExcludeFolders, ", "))
	}
	return b.String()
}
