package activities

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// maxHeadersPerPass bounds how many reported messages one copy pass reads
// the subject and sender of (one ENVELOPE fetch per folder).
const maxHeadersPerPass = 5000

// recordItemHeaders reads the subject and sender of the messages a copy
// pass reported (from the source, where every one of them still is) and
// stores them in the directory under the workflow's ID, for starter
// report. They are message content: they go to the directory only, never
// into the activity's result, a heartbeat or a log line. It never fails
// the copy: what it cannot read, the report shows without.
func (a *Activities) recordItemHeaders(ctx context.Context, src mailcopy.Endpoint, items []mailcopy.Skip) {
	var msgs []mailcopy.Skip
	for _, it := range items {
		if it.UID != 0 && len(msgs) < maxHeadersPerPass {
			msgs = append(msgs, it)
		}
	}
	if len(msgs) == 0 || !activity.IsActivity(ctx) {
		return
	}
	wfID := activity.GetInfo(ctx).WorkflowExecution.ID
	hs, err := a.Mail.ItemHeaders(ctx, src, msgs)
	if err != nil {
		a.log(ctx).Warn("reported messages: subjects and senders not read", zap.Int("messages", len(msgs)), zap.Error(err))
		return
	}
	rows := make([]directory.ReportItem, 0, len(hs))
	for _, h := range hs {
		rows = append(rows, directory.ReportItem{Folder: h.Folder, UID: h.UID, Subject: h.Subject, From: h.From})
	}
	if err := a.Dir.RecordReportItems(ctx, wfID, rows); err != nil {
		a.log(ctx).Warn("reported messages: subjects and senders not recorded", zap.Int("messages", len(rows)), zap.Error(err))
	}
}
