package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/workflows"
)

// Line is one account in status, watch and report.
type Line struct {
	Address  string                    `json:"address"`
	Status   string                    `json:"status"`
	Stage    workflows.Stage           `json:"stage"`
	Progress *workflows.Progress       `json:"progress,omitempty"`
	Result   *workflows.Result         `json:"result,omitempty"`
	Live     *activities.CopyHeartbeat `json:"live,omitempty"`
	Error    string                    `json:"error,omitempty"`
}

// copied is what a running migration has copied: during the copy, what the
// earlier passes copied plus the running pass's live heartbeat (the copy
// activity's), so the bars move while it runs; else the workflow's
// progress.
func (l Line) copied() (messages int, bytes int64) {
	p := l.Progress
	if l.Live != nil && p.Stage == workflows.StageCopy {
		return p.MessagesDone + l.Live.Copied, p.BytesDone + l.Live.Bytes
	}
	return p.MessagesDone, p.BytesDone
}

func (l Line) terminal() bool {
	return l.Result != nil || l.Status == "Failed" || l.Status == "Terminated" || l.Status == "TimedOut" || l.Status == statusCancelled
}

// collect finds the migrations of a plan (or the given addresses) and reads
// each one's progress or result.
func (e *Env) collect(ctx context.Context, planID string, addrs []string) ([]Line, error) {
	if err := checkPlanFlag(planID); err != nil {
		return nil, err
	}
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	var ids []string
	if planID != "" {
		q, err := planQuery(planID)
		if err != nil {
			return nil, err
		}
		var token []byte
		seen := map[string]bool{}
		for {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, NextPageToken: token, PageSize: 1000})
			if err != nil {
				return nil, fmt.Errorf("list plan %q: %w", planID, err)
			}
			for _, ex := range resp.Executions {
				id := ex.Execution.WorkflowId
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
			if token = resp.NextPageToken; len(token) == 0 {
				break
			}
		}
	}
	for _, a := range addrs {
		ids = append(ids, workflows.WorkflowID(a))
	}
	sort.Strings(ids)
	var out []Line
	for _, id := range ids {
		addr, _ := workflows.AddressOf(id)
		l := Line{Address: addr}
		d, err := c.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			l.Status, l.Error = "unknown", err.Error()
			out = append(out, l)
			continue
		}
		st := d.WorkflowExecutionInfo.Status
		l.Status = statusTitle(st)
		switch st {
		case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryProgress)
			if err != nil {
				l.Error = err.Error()
				break
			}
			var p workflows.Progress
			if err := v.Get(&p); err != nil {
				l.Error = err.Error()
				break
			}
			l.Progress, l.Stage = &p, p.Stage
			for _, pa := range d.PendingActivities {
				if pa.ActivityType.GetName() == "CopyMailbox" && pa.HeartbeatDetails != nil {
					var hb activities.CopyHeartbeat
					if err := e.converter().FromPayloads(pa.HeartbeatDetails, &hb); err == nil {
						l.Live = &hb
					}
				}
				if pa.LastFailure != nil && l.Error == "" {
					l.Error = fmt.Sprintf("attempt %d: %s", pa.Attempt, e.failureMessage(pa.LastFailure))
				}
			}
		case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			var r workflows.Result
			if err := c.GetWorkflow(ctx, id, "").Get(ctx, &r); err != nil {
				l.Error = err.Error()
				break
			}
			l.Result, l.Stage = &r, r.Outcome
		default:
			err := c.GetWorkflow(ctx, id, "").Get(ctx, nil)
			if err != nil {
				l.Error = rootMessage(err)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// statusCancelled is how a workflow cancelled through Temporal reads: the
// spelling of the workflow's own "cancelled" outcome, so one word names one
// thing (the API says "Canceled").
const statusCancelled = "Cancelled"

// statusTitle is a workflow status as status and reports show it:
// "Running", "Completed", "TimedOut" (the API's own names; lower-casing them
// once turned "TimedOut" into "Timedout", which terminal did not know),
// except "Cancelled", spelt as mailshift spells it everywhere.
func statusTitle(st enumspb.WorkflowExecutionStatus) string {
	if st == enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED {
		return statusCancelled
	}
	return st.String()
}

func rootMessage(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// Status prints per-stage counts and a table of accounts.
func (e *Env) Status(ctx context.Context, planID string, addrs []string) ([]Line, error) {
	lines, err := e.collect(ctx, planID, addrs)
	if err != nil {
		return nil, err
	}
	e.printLines(lines)
	e.printBudgets(ctx, planID)
	return lines, nil
}

func (e *Env) printLines(lines []Line) {
	counts := map[string]int{}
	for _, l := range lines {
		s := string(l.Stage)
		if s == "" {
			s = strings.ToLower(l.Status)
		}
		counts[s]++
	}
	var parts []string
	for _, s := range append(workflows.Stages, workflows.StageNeedsAttention, workflows.StageCancelled, workflows.StageRolledBack) {
		if n := counts[string(s)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
			delete(counts, string(s))
		}
	}
	for s, n := range counts {
		parts = append(parts, fmt.Sprintf("%s %d", s, n))
	}
	fmt.Fprintf(e.Out, "%s: %s\n", count(len(lines), "account"), strings.Join(parts, ", "))
	tw := tabwriter.NewWriter(e.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tSTAGE\tFOLDERS\tMESSAGES\tBYTES\tDELTA\tDNS\tNOTE")
	for _, l := range lines {
		stage, folders, msgs, bytes, delta, dnsS, note := string(l.Stage), "", "", "", "", "", l.Error
		switch {
		case l.Result != nil:
			r := l.Result
			folders = fmt.Sprint(r.Folders)
			msgs = fmt.Sprintf("%d copied, %d present", r.Copied, r.Present)
			bytes = human(r.Bytes)
			delta = fmt.Sprint(r.DeltaCopied)
			dnsS = resultDNS(r)
			if len(r.Skipped) > 0 {
				note = fmt.Sprintf("%s skipped (see report)", count(len(r.Skipped), "message"))
			}
			if r.Outcome == workflows.StageDone {
				note = strings.TrimSpace(note + " took " + r.Finished.Sub(r.Started).Round(time.Second).String())
			}
		case l.Progress != nil:
			p := l.Progress
			folders = fmt.Sprintf("%d/%d", p.FoldersDone, p.FoldersTotal)
			done, b := l.copied()
			if l.Live != nil && p.Stage == workflows.StageCopy {
				folders = fmt.Sprintf("%d/%d", l.Live.FoldersDone, p.FoldersTotal)
			}
			msgs = fmt.Sprintf("%d/%d", done, p.MessagesTotal)
			bytes = fmt.Sprintf("%s/%s", human(b), human(p.BytesTotal))
			delta = fmt.Sprint(p.DeltaSyncs)
			dnsS = p.DNS
			if w := waitNote(l, time.Now()); w != "" {
				note = w
			}
		case stage == "":
			stage = strings.ToLower(l.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Address, stage, folders, msgs, bytes, delta, dnsS, note)
	}
	tw.Flush()
}

// resultDNS is the DNS column of an ended migration: "ok" or "pending"
// only when the migration switched the routing and checked DNS; a
// cancelled or rolled-back one never touched DNS.
func resultDNS(r *workflows.Result) string {
	switch {
	case r.Outcome != workflows.StageDone:
		return "untouched"
	case r.DNSPending:
		return "pending"
	}
	return "ok"
}

func human(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// Watch prints the status every interval until every migration is done,
// cancelled, rolled back or needs attention. It fails when any ended in
// another state or needs attention.
func (e *Env) Watch(ctx context.Context, planID string, addrs []string, interval, timeout time.Duration) error {
	title := "plan " + planID
	if planID == "" {
		title = strings.Join(addrs, ", ")
	}
	return e.watch(ctx, title, planID, addrs, interval, timeout)
}

// watch is Watch under a given title.
func (e *Env) watch(ctx context.Context, title, planID string, addrs []string, interval, timeout time.Duration) error {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	view := newWatchView()
	// On a terminal the frame is redrawn in place; in a log each frame
	// follows the last.
	tty := isTerminal(e.Out)
	for {
		lines, err := e.collect(ctx, planID, addrs)
		if err != nil {
			return err
		}
		settled, blocked, bad := 0, 0, 0
		for _, l := range lines {
			switch {
			case l.Result != nil:
				settled++
				if l.Result.Outcome != workflows.StageDone {
					bad++
				}
			case l.terminal():
				settled++
				bad++
			case l.Stage == workflows.StageNeedsAttention || l.Stage == workflows.StageAwaitConfirm:
				blocked++
			}
		}
		frame := view.render(title, lines, time.Now())
		if tty {
			fmt.Fprint(e.Out, "\033[H\033[2J")
		} else {
			fmt.Fprintln(e.Out)
		}
		fmt.Fprint(e.Out, frame)
		e.printBudgets(ctx, planID)
		if len(lines) > 0 && settled+blocked == len(lines) {
			fmt.Fprintln(e.Out)
			e.printLines(lines)
			if bad+blocked > 0 {
				return fmt.Errorf("%d of %s did not finish as done (%d waiting for an operator)", bad+blocked, count(len(lines), "migration"), blocked)
			}
			return nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			fmt.Fprintln(e.Out)
			e.printLines(lines)
			return fmt.Errorf("timed out after %s with %d of %s still running", timeout, len(lines)-settled-blocked, count(len(lines), "migration"))
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// isTerminal tells whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
