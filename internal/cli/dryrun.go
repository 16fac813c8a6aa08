package cli

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/plan"
	"github.com/mailshift/mailshift/workflows"
)

// The rates a dry run estimates a migration's duration with, from the
// measurements in FACTS.md (two cores, lab Dovecot pair): the engine
// copies about 1,500 messages/s for an account of small messages, and a
// 10,000-message, 300 MB mailbox in about 5 s (≈ 60 MB/s; 45 is taken to
// leave room); an account's stages besides the copy (preflight, slot,
// lock, switch, DNS, verify) take about 10 s end to end on a local
// Temporal. The estimate is whichever of the two rates is slower, plus the
// fixed part; accounts copy in parallel as the servers' budgets allow.
const (
	estMessagesPerSecond = 1500
	estBytesPerSecond    = 45 << 20
	estPerAccount        = 10 * time.Second
)

// estimate is the time a migration of a mailbox should take.
func estimate(messages int, bytes int64) time.Duration {
	copyTime := max(float64(messages)/estMessagesPerSecond, float64(bytes)/estBytesPerSecond)
	return estPerAccount + time.Duration(copyTime*float64(time.Second)).Round(time.Second)
}

// measureTimeout bounds how long a dry run waits for the worker's measure.
const measureTimeout = 5 * time.Minute

// measure asks the worker to measure the rows' source mailboxes (the
// worker holds the servers' credentials). When it cannot (no Temporal, no
// worker polling), it says why and the dry run goes on without sizes.
func (e *Env) measure(ctx context.Context, rows []plan.Row) (map[string]activities.MeasureResult, string) {
	if e.Client == nil && e.Dial == nil {
		return nil, "mailboxes not measured: no Temporal connection"
	}
	c, err := e.client()
	if err != nil {
		return nil, fmt.Sprintf("mailboxes not measured: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, measureTimeout)
	defer cancel()
	// A worker that has just started shows among the pollers after its
	// first poll: look a few times before saying there is none.
	for i := 0; ; i++ {
		tq, err := c.DescribeTaskQueue(ctx, workflows.TaskQueue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		if err != nil {
			return nil, fmt.Sprintf("mailboxes not measured: task queue %q: %v", workflows.TaskQueue, err)
		}
		if len(tq.GetPollers()) > 0 {
			break
		}
		if i == 10 {
			return nil, fmt.Sprintf("mailboxes not measured: no worker polls task queue %q", workflows.TaskQueue)
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return nil, "mailboxes not measured: " + ctx.Err().Error()
		}
	}
	out := map[string]activities.MeasureResult{}
	for start := 0; start < len(rows); start += workflows.MaxMeasureRows {
		var in workflows.MeasureInput
		for _, r := range rows[start:min(start+workflows.MaxMeasureRows, len(rows))] {
			in.Rows = append(in.Rows, activities.MeasureInput{Address: r.Input.Address, To: r.Input.To,
				IncludeFolders: r.Input.IncludeFolders, ExcludeFolders: r.Input.ExcludeFolders})
		}
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                       fmt.Sprintf("dry-run:%d-%d", time.Now().UnixNano(), start),
			TaskQueue:                workflows.TaskQueue,
			WorkflowExecutionTimeout: measureTimeout,
			StaticSummary:            fmt.Sprintf("dry run: measure %d mailboxes", len(in.Rows)),
		}, workflows.MeasureWorkflowName, in)
		if err != nil {
			return out, fmt.Sprintf("mailboxes not measured: %v", err)
		}
		var res workflows.MeasureResult
		if err := run.Get(ctx, &res); err != nil {
			return out, fmt.Sprintf("mailboxes not measured: %v", err)
		}
		for _, r := range res.Rows {
			out[r.Address] = r
		}
	}
	return out, ""
}

// sizeColumns are a row's SIZE, LARGEST and EST columns of the dry run.
func sizeColumns(m activities.MeasureResult, ok bool) (size, largest, est string) {
	switch {
	case !ok:
		return "?", "?", "?"
	case m.Error != "":
		return "not measured: " + m.Error, "", ""
	}
	size = fmt.Sprintf("%s, %s", count(m.Messages, "message"), human(m.Bytes))
	largest = human(m.Largest)
	if m.MaxMessageBytes > 0 {
		largest += " / limit " + human(m.MaxMessageBytes)
		if m.OverLimit > 0 {
			largest += fmt.Sprintf(" OVER LIMIT (%s would be skipped)", count(m.OverLimit, "message"))
		}
	}
	return size, largest, estimate(m.Messages, m.Bytes).String()
}
