// Package cli implements the starter's commands on a Temporal client, so
// they can be tested against a real dev server.
package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/plan"
	"github.com/mailshift/mailshift/workflows"
)

// Env is what every command needs.
type Env struct {
	Out             io.Writer
	TemporalAddress string
	Namespace       string
	DirectoryDSN    string
	DevDir          string
	Args            []string
	Dial            func(addr, ns string) (client.Client, error)
	// Client, when set, is used instead of dialing (tests).
	Client client.Client
	// Checker, when set, is the DNS checker of the dns command.
	Checker *dnscheck.Checker
	dir     *directory.Store
	dev     *app.DevInfo
}

// Close releases what the commands opened.
func (e *Env) Close() {
	if e.dir != nil {
		e.dir.Close()
	}
	if e.Client != nil && e.Dial != nil {
		e.Client.Close()
	}
}

func (e *Env) client() (client.Client, error) {
	if e.Client != nil {
		return e.Client, nil
	}
	c, err := e.Dial(e.TemporalAddress, e.Namespace)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", e.TemporalAddress, err)
	}
	e.Client = c
	return c, nil
}

func (e *Env) devInfo() (*app.DevInfo, error) {
	if e.dev != nil || e.DevDir == "" {
		return e.dev, nil
	}
	info, err := app.ReadDevInfo(e.DevDir)
	if err != nil {
		return nil, err
	}
	e.dev = info
	return info, nil
}

// needDirectory is directory for commands that cannot work without it.
func (e *Env) needDirectory(ctx context.Context, command string) (*directory.Store, error) {
	dir, err := e.directory(ctx)
	if err == nil && dir == nil {
		err = fmt.Errorf("%s needs the directory (--directory or --dev-dir)", command)
	}
	return dir, err
}

// directory opens the directory if one is configured (nil otherwise).
func (e *Env) directory(ctx context.Context) (*directory.Store, error) {
	if e.dir != nil {
		return e.dir, nil
	}
	dsn := e.DirectoryDSN
	if dsn == "" {
		info, err := e.devInfo()
		if err != nil {
			return nil, err
		}
		if info != nil {
			dsn = info.Directory
		}
	}
	if dsn == "" {
		return nil, nil
	}
	d, err := directory.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	e.dir = d
	return d, nil
}

// StartArgs start one migration.
type StartArgs struct {
	Address, To, Plan        string
	AutoConfirm              bool
	DNSInterval, DNSDeadline string
	SlotRecheck              string
}

// Start starts one migration, or reports the one already running.
func (e *Env) Start(ctx context.Context, a StartArgs) error {
	in := workflows.Input{Address: strings.ToLower(strings.TrimSpace(a.Address)), To: a.To, Plan: a.Plan, AutoConfirm: a.AutoConfirm,
		DNSInterval: a.DNSInterval, DNSDeadline: a.DNSDeadline, SlotRecheck: a.SlotRecheck}
	if err := workflows.ValidateInput(in); err != nil {
		return err
	}
	dir, err := e.directory(ctx)
	if err != nil {
		return err
	}
	if dir != nil {
		if _, probs, err := plan.Check(ctx, dir, []plan.Row{{Line: 1, Input: in}}); err != nil {
			return err
		} else if len(probs) > 0 {
			return fmt.Errorf("%s: %s", in.Address, probs[0].Reason)
		}
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	started, runID, err := StartOne(ctx, c, in)
	if err != nil {
		return err
	}
	if started {
		fmt.Fprintf(e.Out, "started %s (run %s)\n", workflows.WorkflowID(in.Address), runID)
	} else {
		fmt.Fprintf(e.Out, "already running: %s (run %s); nothing started\n", workflows.WorkflowID(in.Address), runID)
	}
	return nil
}

// StartOne starts the migration of in.Address unless one is running (or
// finished successfully): a starter that runs twice starts nothing twice.
func StartOne(ctx context.Context, c client.Client, in workflows.Input) (started bool, runID string, err error) {
	id := workflows.WorkflowID(in.Address)
	before := ""
	if d, err := c.DescribeWorkflowExecution(ctx, id, ""); err == nil {
		before = d.WorkflowExecutionInfo.Execution.RunId
		if d.WorkflowExecutionInfo.Status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			return false, before, nil
		}
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SAPlan.ValueSet(in.Plan),
			workflows.SADomain.ValueSet(workflows.DomainOf(in.Address)),
			workflows.SAStage.ValueSet(string(workflows.StagePreflight))),
	}, workflows.WorkflowName, in)
	if err != nil {
		var already *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &already) {
			return false, already.RunId, nil
		}
		return false, "", fmt.Errorf("start %s: %w", id, err)
	}
	return run.GetRunID() != before, run.GetRunID(), nil
}

// PlanArgs apply a plan.
type PlanArgs struct {
	File, Domain, PlanID, To, DNSInterval string
	AutoConfirm, ValidateOnly, ValidOnly  bool
	// DryRun reports what would block each row (redirections, account
	// state, another migration's lock, free slots) and starts nothing.
	DryRun  bool
	Wait    bool
	Rate    float64
	Timeout time.Duration
}

// Plan validates a plan and starts one migration per valid row.
func (e *Env) Plan(ctx context.Context, p PlanArgs) error {
	def := plan.Defaults{Plan: p.PlanID, To: p.To, AutoConfirm: p.AutoConfirm, DNSInterval: p.DNSInterval}
	var rows []plan.Row
	var problems []plan.Problem
	dir, err := e.directory(ctx)
	if err != nil {
		return err
	}
	if p.Domain != "" {
		if dir == nil {
			return errors.New("plan --domain needs the directory (--directory or --dev-dir)")
		}
		if p.To == "" {
			return errors.New("plan --domain needs --to SERVICE")
		}
		accts, err := dir.AccountsOfDomain(ctx, p.Domain)
		if err != nil {
			return err
		}
		if len(accts) == 0 {
			return fmt.Errorf("no MX Plan account of domain %q in the directory", p.Domain)
		}
		var b strings.Builder
		b.WriteString("address\n")
		for _, a := range accts {
			b.WriteString(a.Address + "\n")
		}
		if def.Plan == "" {
			def.Plan = "domain-" + p.Domain
		}
		rows, problems, err = plan.ParseCSV(strings.NewReader(b.String()), def)
		if err != nil {
			return err
		}
	} else {
		f, err := os.Open(p.File)
		if err != nil {
			return err
		}
		rows, problems, err = plan.Parse(p.File, f, def)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p.File, err)
		}
	}
	if dir != nil {
		ok, more, err := plan.Check(ctx, dir, rows)
		if err != nil {
			return err
		}
		rows = ok
		problems = append(problems, more...)
	} else {
		fmt.Fprintln(e.Out, "note: no directory given (--directory or --dev-dir): services and accounts not checked before starting")
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Line < problems[j].Line })
	for _, pr := range problems {
		fmt.Fprintf(e.Out, "problem: %s\n", pr)
	}
	fmt.Fprintf(e.Out, "plan: %d valid rows, %d problems\n", len(rows), len(problems))
	if p.DryRun {
		if dir == nil {
			return errors.New("--dry-run needs the directory (--directory or --dev-dir)")
		}
		blocked, err := e.preCheck(ctx, dir, rows)
		if err != nil {
			return err
		}
		if blocked+len(problems) > 0 {
			return fmt.Errorf("dry run: %d rows would block, %d rows have problems; nothing started", blocked, len(problems))
		}
		fmt.Fprintln(e.Out, "dry run: every row would start; nothing started")
		return nil
	}
	if p.ValidateOnly {
		if len(problems) > 0 {
			return fmt.Errorf("plan has %d problems", len(problems))
		}
		return nil
	}
	if len(problems) > 0 && !p.ValidOnly {
		return fmt.Errorf("plan has %d problems; nothing started (fix them, or pass --valid-only to start the %d valid rows)", len(problems), len(rows))
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var gap time.Duration
	if p.Rate > 0 {
		gap = time.Duration(float64(time.Second) / p.Rate)
	}
	var addrs []string
	started, running := 0, 0
	for i, r := range rows {
		if i > 0 && gap > 0 {
			select {
			case <-time.After(gap):
			case <-ctx.Done():
				return fmt.Errorf("interrupted after %d of %d rows; run the same command again to start the rest", i, len(rows))
			}
		}
		s, _, err := StartOne(ctx, c, r.Input)
		if err != nil {
			return fmt.Errorf("line %d (%s): %w; rows before it were started, run the same command again to resume", r.Line, r.Input.Address, err)
		}
		if s {
			started++
		} else {
			running++
		}
		addrs = append(addrs, r.Input.Address)
	}
	fmt.Fprintf(e.Out, "started %d, already running or done %d\n", started, running)
	if !p.Wait {
		return nil
	}
	planID := ""
	if len(rows) > 0 {
		planID = rows[0].Input.Plan
	}
	for _, r := range rows {
		if r.Input.Plan != planID {
			planID = ""
		}
	}
	if planID != "" {
		addrs = nil
	}
	if err := e.Watch(ctx, planID, addrs, 2*time.Second, p.Timeout); err != nil {
		return err
	}
	return nil
}

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

// copied is what a running migration has copied: the copy activity's live
// heartbeat while it copies, else the workflow's progress.
func (l Line) copied() (messages int, bytes int64) {
	p := l.Progress
	if l.Live != nil && p.Stage == workflows.StageCopy {
		return l.Live.Copied, l.Live.Bytes
	}
	return p.MessagesDone, p.BytesDone
}

func (l Line) terminal() bool {
	return l.Result != nil || l.Status == "Failed" || l.Status == "Terminated" || l.Status == "TimedOut" || l.Status == "Canceled"
}

// collect finds the migrations of a plan (or the given addresses) and reads
// each one's progress or result.
func (e *Env) collect(ctx context.Context, planID string, addrs []string) ([]Line, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	var ids []string
	if planID != "" {
		q := fmt.Sprintf("%s = '%s'", workflows.SAPlan.GetName(), strings.ReplaceAll(planID, "'", ""))
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
		l.Status = strings.Title(strings.ToLower(strings.TrimPrefix(st.String(), "WORKFLOW_EXECUTION_STATUS_")))
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
					if err := client.NewValue(pa.HeartbeatDetails).Get(&hb); err == nil {
						l.Live = &hb
					}
				}
				if pa.LastFailure != nil && l.Error == "" {
					l.Error = fmt.Sprintf("attempt %d: %s", pa.Attempt, pa.LastFailure.GetMessage())
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
	fmt.Fprintf(e.Out, "%d accounts: %s\n", len(lines), strings.Join(parts, ", "))
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
			dnsS = "ok"
			if r.DNSPending {
				dnsS = "pending"
			}
			if len(r.Skipped) > 0 {
				note = fmt.Sprintf("%d skipped (see report)", len(r.Skipped))
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
			if p.Stage == workflows.StageNeedsAttention {
				note = fmt.Sprintf("failed at %s: [%s] %s; next: %s", p.FailedStage, p.ErrorType, p.LastError, strings.Join(p.NextActions, ", "))
			}
		case stage == "":
			stage = strings.ToLower(l.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Address, stage, folders, msgs, bytes, delta, dnsS, note)
	}
	tw.Flush()
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
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	title := "plan " + planID
	if planID == "" {
		title = strings.Join(addrs, ", ")
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
		if len(lines) > 0 && settled+blocked == len(lines) {
			fmt.Fprintln(e.Out)
			e.printLines(lines)
			if bad+blocked > 0 {
				return fmt.Errorf("%d of %d migrations did not finish as done (%d waiting for an operator)", bad+blocked, len(lines), blocked)
			}
			return nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			fmt.Fprintln(e.Out)
			e.printLines(lines)
			return fmt.Errorf("timed out after %s with %d of %d migrations still running", timeout, len(lines)-settled-blocked, len(lines))
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

// Act sends an operator update to each migration and prints its answer.
func (e *Env) Act(ctx context.Context, action, planID string, addrs []string, by, reason string) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	ids := map[string]bool{}
	if planID != "" {
		lines, err := e.collect(ctx, planID, nil)
		if err != nil {
			return err
		}
		for _, l := range lines {
			if !l.terminal() {
				ids[workflows.WorkflowID(l.Address)] = true
			}
		}
	}
	for _, a := range addrs {
		ids[workflows.WorkflowID(a)] = true
	}
	var keys []string
	for k := range ids {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	refused := 0
	for _, id := range keys {
		res, err := Update(ctx, c, id, action, workflows.ActionInput{By: by, Reason: reason})
		addr, _ := workflows.AddressOf(id)
		if err != nil {
			refused++
			fmt.Fprintf(e.Out, "%s: %s refused: %s\n", addr, action, rootMessage(err))
			continue
		}
		fmt.Fprintf(e.Out, "%s: %s accepted: %s\n", addr, action, res.Accepted)
	}
	if refused > 0 {
		return fmt.Errorf("%s refused for %d of %d migrations", action, refused, len(keys))
	}
	return nil
}

// Update sends one operator update and waits for its answer.
func Update(ctx context.Context, c client.Client, workflowID, action string, in workflows.ActionInput) (*workflows.ActionResult, error) {
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflowID, UpdateName: action,
		Args: []interface{}{in}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("no running migration %s", workflowID)
		}
		return nil, err
	}
	var r workflows.ActionResult
	if err := h.Get(ctx, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Report writes one line per migration as CSV or JSON.
// StageSeconds sums the time spent in each stage ("preflight=0.2;
// copy=41.0;…" in the order first entered); operator actions are points in
// time, not stages. The last stage runs until end.
func StageSeconds(stages []workflows.StageEvent, end time.Time) string {
	var order []string
	sum := map[string]float64{}
	for i, e := range stages {
		if strings.HasPrefix(string(e.Stage), "operator:") {
			continue
		}
		next := end
		for _, f := range stages[i+1:] {
			if !strings.HasPrefix(string(f.Stage), "operator:") {
				next = f.At
				break
			}
		}
		if _, seen := sum[string(e.Stage)]; !seen {
			order = append(order, string(e.Stage))
		}
		sum[string(e.Stage)] += next.Sub(e.At).Seconds()
	}
	var parts []string
	for _, s := range order {
		parts = append(parts, fmt.Sprintf("%s=%.1f", s, sum[s]))
	}
	return strings.Join(parts, ";")
}

func (e *Env) Report(ctx context.Context, planID string, addrs []string, format string) error {
	lines, err := e.collect(ctx, planID, addrs)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		enc := json.NewEncoder(e.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(lines)
	case "csv":
		w := csv.NewWriter(e.Out)
		_ = w.Write([]string{"address", "status", "stage", "folders", "copied", "present", "delta_copied", "bytes", "skipped",
			"skipped_reasons", "verified", "dns_pending", "dns", "started", "finished", "seconds", "stage_seconds", "confirmed_by", "error"})
		for _, l := range lines {
			row := []string{l.Address, l.Status, string(l.Stage), "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", l.Error}
			if r := l.Result; r != nil {
				var reasons []string
				for _, s := range r.Skipped {
					reasons = append(reasons, fmt.Sprintf("%s uid %d: %s", s.Folder, s.UID, s.Reason))
				}
				row[3], row[4], row[5], row[6], row[7] = fmt.Sprint(r.Folders), fmt.Sprint(r.Copied), fmt.Sprint(r.Present), fmt.Sprint(r.DeltaCopied), fmt.Sprint(r.Bytes)
				row[8], row[9], row[10], row[11] = fmt.Sprint(len(r.Skipped)), strings.Join(reasons, "; "), fmt.Sprint(r.Verified), fmt.Sprint(r.DNSPending)
				if r.DNS != nil {
					row[12] = r.DNS.Summary()
				}
				row[13], row[14] = r.Started.Format(time.RFC3339), r.Finished.Format(time.RFC3339)
				row[15] = fmt.Sprintf("%.0f", r.Finished.Sub(r.Started).Seconds())
				row[16] = StageSeconds(r.Stages, r.Finished)
				row[17] = r.ConfirmedBy
			} else if p := l.Progress; p != nil {
				row[3], row[4], row[7] = fmt.Sprintf("%d/%d", p.FoldersDone, p.FoldersTotal), fmt.Sprint(p.MessagesDone), fmt.Sprint(p.BytesDone)
				row[11], row[12] = fmt.Sprint(p.DNSPending), p.DNS
				row[13] = p.Started.Format(time.RFC3339)
				row[17] = p.ConfirmedBy
				if p.LastError != "" {
					row[18] = p.LastError
				}
			}
			_ = w.Write(row)
		}
		w.Flush()
		return w.Error()
	}
	return fmt.Errorf("report format %q: want csv or json", format)
}

// DNS prints the propagation diagnostic of a domain for a destination
// service, without starting anything.
func (e *Env) DNS(ctx context.Context, domain, to string) error {
	dir, err := e.needDirectory(ctx, "dns")
	if err != nil {
		return err
	}
	sv, err := dir.Service(ctx, to)
	if err != nil {
		return err
	}
	want, err := dnscheck.Expected(domain, dnscheck.Requirements{MX: sv.MX, SPFInclude: sv.SPFInclude, Autodiscover: sv.Autodiscover})
	if err != nil {
		return err
	}
	chk := &dnscheck.Checker{}
	if e.Checker != nil {
		chk = e.Checker
	} else if info, _ := e.devInfo(); info != nil {
		_, port, _ := net.SplitHostPort(info.DNS)
		chk.Resolver, chk.Port = info.DNS, port
	}
	d, err := chk.Check(ctx, domain, want)
	if err != nil {
		return err
	}
	PrintDiagnostic(e.Out, d)
	if !d.OK {
		return fmt.Errorf("%s", d.Summary())
	}
	return nil
}

// PrintDiagnostic prints a diagnostic as a table.
func PrintDiagnostic(w io.Writer, d *dnscheck.Diagnostic) {
	fmt.Fprintf(w, "zone %s, serials:", d.Zone)
	var names []string
	for n := range d.Serials {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, " %s=%d", n, d.Serials[n])
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECORD\tEXPECTED\tSERVER\tSEEN\tOK")
	for _, r := range d.Records {
		for i, s := range r.Servers {
			rec, exp := "", ""
			if i == 0 {
				rec, exp = r.Record.Type+" "+r.Record.Name, r.Record.Value
			}
			seen := strings.Join(s.Values, " | ")
			if s.Error != "" {
				seen = "error: " + s.Error
			}
			if seen == "" {
				seen = "(nothing)"
			}
			ok := "ok"
			if !s.OK {
				ok = "NOT OK"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", rec, exp, s.Server, seen, ok)
		}
	}
	tw.Flush()
	for _, p := range d.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	for _, p := range d.Warnings {
		fmt.Fprintf(w, "warning: %s\n", p)
	}
	for _, r := range d.Records {
		if r.Fix != "" {
			fmt.Fprintf(w, "set: %s\n", r.Fix)
		}
	}
	fmt.Fprintf(w, "%s\n", d.Summary())
}

// QuietLogger silences the SDK client's logging in the CLI.
type QuietLogger struct{}

// Debug discards.
func (QuietLogger) Debug(string, ...interface{}) {}

// Info discards.
func (QuietLogger) Info(string, ...interface{}) {}

// Warn discards.
func (QuietLogger) Warn(string, ...interface{}) {}

// Error discards.
func (QuietLogger) Error(string, ...interface{}) {}

// Import loads a directory import file (services, slots, accounts,
// redirections) and prints what it did.
func (e *Env) Import(ctx context.Context, path string) error {
	dir, err := e.needDirectory(ctx, "import")
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := dir.Import(ctx, f)
	if rep != nil {
		fmt.Fprintf(e.Out, "imported %d services, %d slots, %d accounts, %d redirections; %d already there\n",
			rep.Services, rep.Slots, rep.Accounts, rep.Redirections, len(rep.Skipped))
	}
	if err != nil {
		return fmt.Errorf("%s: %w (rows before it were imported; fix it and run the import again)", path, err)
	}
	return nil
}

// Slots prints the free slots of each destination service.
func (e *Env) Slots(ctx context.Context, service string) error {
	dir, err := e.needDirectory(ctx, "slots")
	if err != nil {
		return err
	}
	svs, err := dir.Services(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tKIND\tFREE SLOTS\tLARGEST QUOTA")
	for _, sv := range svs {
		if (service != "" && sv.ID != service) || sv.Kind == directory.KindMXPlan {
			continue
		}
		free, err := dir.FreeSlots(ctx, sv.ID, 0)
		if err != nil {
			return err
		}
		var largest int64
		for _, s := range free {
			largest = max(largest, s.QuotaBytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", sv.ID, sv.Kind, len(free), human(largest))
	}
	return tw.Flush()
}

// preCheck is the control panel's pre-check for a plan: for each row, what
// would stop its migration before anything is locked. Slots are counted
// against the whole plan, so a plan that needs more accounts than a service
// has free is reported before it starts.
func (e *Env) preCheck(ctx context.Context, dir *directory.Store, rows []plan.Row) (int, error) {
	free := map[string]int{}
	tw := tabwriter.NewWriter(e.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tACCOUNT\tTO\tWOULD")
	blocked := 0
	for _, r := range rows {
		var why []string
		acct, err := dir.SourceAccount(ctx, r.Input.Address)
		if err != nil {
			return 0, err
		}
		if acct.State != directory.StateActive {
			why = append(why, "account is "+acct.State)
		}
		if acct.LockHolder != "" && acct.LockHolder != workflows.WorkflowID(r.Input.Address) {
			why = append(why, "held by "+acct.LockHolder)
		}
		reds, err := dir.Redirections(ctx, r.Input.Address)
		if err != nil {
			return 0, err
		}
		for _, rd := range reds {
			why = append(why, fmt.Sprintf("has %s to %s (remove it first)", rd.Kind, rd.Target))
		}
		if _, seen := free[r.Input.To]; !seen {
			sl, err := dir.FreeSlots(ctx, r.Input.To, 0)
			if err != nil {
				return 0, err
			}
			free[r.Input.To] = len(sl)
		}
		if free[r.Input.To] == 0 {
			why = append(why, "wait for a free slot on "+r.Input.To+" (order accounts)")
		} else {
			free[r.Input.To]--
		}
		verdict := "start"
		if len(why) > 0 {
			verdict = "block: " + strings.Join(why, "; ")
			blocked++
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Line, r.Input.Address, r.Input.To, verdict)
	}
	return blocked, tw.Flush()
}
