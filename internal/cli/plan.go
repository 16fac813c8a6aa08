package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/address"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/eligibility"
	"github.com/mailshift/mailshift/internal/limits"
	"github.com/mailshift/mailshift/internal/plan"
	"github.com/mailshift/mailshift/workflows"
)

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
	if p.PlanID != "" {
		if err := limits.CheckPlanID(p.PlanID); err != nil {
			return fmt.Errorf("--plan-id: %w", err)
		}
	}
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
		domain, err := address.Domain(p.Domain)
		if err != nil {
			return fmt.Errorf("--domain: %w", err)
		}
		accts, err := dir.AccountsOfDomain(ctx, domain)
		if err != nil {
			return err
		}
		if len(accts) == 0 {
			return fmt.Errorf("no MX Plan account of domain %q in the directory", domain)
		}
		var b strings.Builder
		b.WriteString("address\n")
		for _, a := range accts {
			b.WriteString(a.Address + "\n")
		}
		if def.Plan == "" {
			def.Plan = "domain-" + domain
			if err := limits.CheckPlanID(def.Plan); err != nil {
				return fmt.Errorf("%w: name the plan with --plan-id", err)
			}
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
	fmt.Fprintf(e.Out, "plan: %s, %s\n", count(len(rows), "valid row"), count(len(problems), "problem"))
	if p.DryRun {
		if dir == nil {
			return errors.New("--dry-run needs the directory (--directory or --dev-dir)")
		}
		sizes, note := e.measure(ctx, rows)
		if note != "" {
			fmt.Fprintln(e.Out, "note: "+note)
		}
		blocked, err := e.preCheck(ctx, dir, rows, sizes)
		if err != nil {
			return err
		}
		if _, err := e.splitDomains(ctx, dir, rows); err != nil {
			return err
		}
		if blocked+len(problems) > 0 {
			return fmt.Errorf("dry run: %s would block, %s problems; nothing started", count(blocked, "row"), count(len(problems), "row has", "rows have"))
		}
		fmt.Fprintln(e.Out, "dry run: no row would block; nothing started")
		return nil
	}
	if p.ValidateOnly {
		if len(problems) > 0 {
			return fmt.Errorf("plan has %s", count(len(problems), "problem"))
		}
		return nil
	}
	if len(problems) > 0 && !p.ValidOnly {
		return fmt.Errorf("plan has %s; nothing started (fix them, or pass --valid-only to start the %s)", count(len(problems), "problem"), count(len(rows), "valid row"))
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var gap time.Duration
	if p.Rate > 0 {
		gap = time.Duration(float64(time.Second) / p.Rate)
	}
	// watch is what --wait follows: the rows started now or still
	// running; a row done before (under this plan or another) has nothing
	// left to watch.
	var watch []string
	started, running, done := 0, 0, 0
	for i, r := range rows {
		if i > 0 && gap > 0 {
			select {
			case <-time.After(gap):
			case <-ctx.Done():
				return fmt.Errorf("interrupted after %d of %d rows; run the same command again to start the rest", i, len(rows))
			}
		}
		res, err := StartMigration(ctx, c, r.Input)
		if err != nil {
			return fmt.Errorf("line %d (%s): %w; rows before it were started, run the same command again to resume", r.Line, r.Input.Address, err)
		}
		switch {
		case res.Started:
			started++
			watch = append(watch, r.Input.Address)
		case res.Done != nil:
			done++
			fmt.Fprintf(e.Out, "line %d (%s): already done%s (run %s); nothing started\n", r.Line, r.Input.Address, underPlan(res.Done.Plan), res.RunID)
		default:
			running++
			watch = append(watch, r.Input.Address)
		}
	}
	fmt.Fprintf(e.Out, "started %d, already running or done %d (running %d, done %d)\n", started, running+done, running, done)
	if !p.Wait {
		return nil
	}
	if len(watch) == 0 {
		fmt.Fprintf(e.Out, "nothing to watch: no row was started or is running (%d already done, listed above)\n", done)
		return nil
	}
	// Watched by address, not by the plan's search attribute: a row may be
	// running under another plan, and a plan query would not list it.
	title := "plan"
	planID := rows[0].Input.Plan
	for _, r := range rows {
		if r.Input.Plan != planID {
			planID = ""
		}
	}
	if planID != "" {
		title += " " + planID
	}
	if done > 0 {
		title += fmt.Sprintf(" (%d rows done before, not watched)", done)
	}
	return e.watch(ctx, title, "", watch, 2*time.Second, p.Timeout)
}

// preCheck is the control panel's pre-check for a plan: for each row, every
// reason of the eligibility rule that would stop its migration before
// anything is locked. Slots are counted against the rows that would start
// only, so a plan that needs more accounts than a service has free is
// reported before it starts; an account already migrated is "already
// done" (a rerun of the plan starts nothing for it) and one its own
// migration holds is "already running", neither blocked nor using a slot.
//
// With sizes (the worker's measure), each row also shows its mailbox
// size, its largest message against the destination's limit (flagged when
// over) and an estimated duration; the rows that would start are summed.
func (e *Env) preCheck(ctx context.Context, dir *directory.Store, rows []plan.Row, sizes map[string]activities.MeasureResult) (int, error) {
	free := map[string]int{}
	tw := tabwriter.NewWriter(e.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tACCOUNT\tTO\tWOULD\tSIZE\tLARGEST\tEST")
	var startMsgs, overLimit int
	var startBytes int64
	var startEst time.Duration
	starting, done, running, blocked := 0, 0, 0, 0
	for _, r := range rows {
		wid := workflows.WorkflowID(r.Input.Address)
		v, err := eligibility.Check(ctx, dir, r.Input.Address, r.Input.To, wid)
		if err != nil {
			return 0, err
		}
		var why []string
		migrated := false
		for _, reason := range v.Reasons {
			migrated = migrated || reason.Kind == eligibility.AlreadyMigrated
			why = append(why, reason.Message)
		}
		verdict := ""
		switch {
		case migrated:
			verdict = "already done: the account is migrated; nothing to start"
			done++
		case len(why) == 0 && v.Account != nil && v.Account.LockHolder == wid:
			verdict = "already running: its migration holds the account"
			running++
		case len(why) > 0:
			verdict = "block: " + strings.Join(why, "; ")
			blocked++
		default:
			if _, seen := free[r.Input.To]; !seen {
				sl, err := dir.FreeSlots(ctx, r.Input.To, 0)
				if err != nil {
					return 0, err
				}
				free[r.Input.To] = len(sl)
			}
			if free[r.Input.To] == 0 {
				verdict = "block: wait for a free slot on " + r.Input.To + " (order accounts)"
				blocked++
			} else {
				free[r.Input.To]--
				verdict = "start"
				starting++
			}
		}
		m, measured := sizes[r.Input.Address]
		size, largest, est := sizeColumns(m, measured)
		if verdict == "start" && measured && m.Error == "" {
			startMsgs += m.Messages
			startBytes += m.Bytes
			startEst += estimate(m.Messages, m.Bytes)
			if m.OverLimit > 0 {
				overLimit++
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Line, r.Input.Address, r.Input.To, verdict, size, largest, est)
	}
	if err := tw.Flush(); err != nil {
		return 0, err
	}
	fmt.Fprintf(e.Out, "would start %d, already done %d, already running %d, blocked %d\n", starting, done, running, blocked)
	if sizes != nil && starting > 0 {
		fmt.Fprintf(e.Out, "the rows that would start hold %s, %s; about %s one after another (estimate: %d messages/s or %d MB/s, whichever is slower, plus %v per account)\n",
			count(startMsgs, "message"), human(startBytes), startEst, estMessagesPerSecond, estBytesPerSecond>>20, estPerAccount)
		if overLimit > 0 {
			fmt.Fprintf(e.Out, "%s messages over the destination's size limit: they would be skipped and reported\n", count(overLimit, "account holds", "accounts hold"))
		}
	}
	return blocked, nil
}
