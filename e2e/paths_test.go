package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/mailgen"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// path is one way a migration can go, driven on a real dev server; its
// histories are recorded under workflows/testdata (-update-history) and
// replayed by workflows.TestReplayHistories, so a workflow change that
// would break a running migration on any path fails there.
type path struct {
	name    string
	address string
	outcome workflows.Stage
	drive   func(t *testing.T, p *pathEnv)
	check   func(t *testing.T, p *pathEnv, r workflows.Result)
}

type pathEnv struct {
	c       client.Client
	st      *devstack.Stack
	address string
}

func (p *pathEnv) act(t *testing.T, action, reason string) {
	t.Helper()
	ctx := context.Background()
	if _, err := cli.Update(ctx, p.c, workflows.WorkflowID(p.address), action, workflows.ActionInput{By: "paths-test", Reason: reason}); err != nil {
		t.Fatalf("%s %s: %v", action, p.address, err)
	}
}

func (p *pathEnv) start(t *testing.T, in workflows.Input) {
	t.Helper()
	in.Address = p.address
	if in.To == "" {
		in.To = devstack.EmailProService
	}
	if _, _, err := cli.StartOne(context.Background(), p.c, in); err != nil {
		t.Fatalf("start %s: %v", p.address, err)
	}
}

func (p *pathEnv) temporalCancel(t *testing.T) {
	t.Helper()
	if err := p.c.CancelWorkflow(context.Background(), workflows.WorkflowID(p.address), ""); err != nil {
		t.Fatalf("cancel %s: %v", p.address, err)
	}
}

func hasAction(r workflows.Result, action string) bool {
	for _, a := range r.Actions {
		if a.Action == action {
			return true
		}
	}
	return false
}

// brokenService is a destination whose copy fails for good (an unknown IMAP
// security setting), so a migration parks at copy with the source locked.
func brokenService(t *testing.T, st *devstack.Stack, id string) {
	t.Helper()
	ctx := context.Background()
	if err := st.Dir.AddService(ctx, directory.Service{ID: id, Kind: directory.KindEmailPro, IMAPAddr: st.EmailPro.Addr, IMAPSecurity: "ssl-please"}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddSlots(ctx, id, 2, 5<<30); err != nil {
		t.Fatal(err)
	}
}

func TestMigrationPaths(t *testing.T) {
	_, c := testenv.StartTemporal(t, "")
	st, _, _ := devPlatform(t, c, 8, 10)
	ctx := context.Background()
	if err := st.Dir.AddService(ctx, directory.Service{ID: "emailpro-small", Kind: directory.KindEmailPro, IMAPAddr: st.EmailPro.Addr,
		IMAPSecurity: "plain", MX: "10 mx1.pro.mailshift.test, 20 mx2.pro.mailshift.test", SPFInclude: "_spf.pro.mailshift.test",
		Autodiscover: "autodiscover.pro.mailshift.test", MaxMessageBytes: 12 << 10}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddSlots(ctx, "emailpro-small", 1, 5<<30); err != nil {
		t.Fatal(err)
	}
	for i, a := range []string{"ivan@example.com", "judy@example.org", "kim@example.com", "lena@example.com"} {
		mean := 4 << 10
		if strings.HasPrefix(a, "lena@") {
			mean = 16 << 10 // some over emailpro-small's 12 KiB
		}
		if _, err := st.AddAccount(ctx, a, "en", mailgen.Spec{Seed: uint64(91 + i), Messages: 10, MeanSize: mean}); err != nil {
			t.Fatal(err)
		}
	}
	brokenService(t, st, "emailpro-broken")
	if err := st.Dir.AddService(ctx, directory.Service{ID: "exchange-2", Kind: directory.KindExchange, IMAPAddr: st.Exchange.Addr,
		IMAPSecurity: "plain", MX: "0 mx.exchange.mailshift.test", SPFInclude: "_spf.exchange.mailshift.test"}); err != nil {
		t.Fatal(err)
	}
	paths := []path{
		{name: "confirm", address: "alice@example.com", outcome: workflows.StageDone, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{DNSInterval: "1s"})
			waitStage(t, p.c, p.address, workflows.StageAwaitConfirm)
			p.act(t, workflows.UpdateConfirm, "")
		}},
		{name: "cancel", address: "bob@example.com", outcome: workflows.StageCancelled, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{})
			waitStage(t, p.c, p.address, workflows.StageAwaitConfirm)
			p.act(t, workflows.UpdateCancel, "wrong service")
		}},
		{name: "retry", address: "frank@example.com", outcome: workflows.StageDone, drive: func(t *testing.T, p *pathEnv) {
			if err := p.st.Dir.AddRedirection(ctx, directory.Redirection{Address: p.address, Kind: "redirection", Target: "frank@elsewhere.test"}); err != nil {
				t.Fatal(err)
			}
			p.start(t, workflows.Input{AutoConfirm: true, DNSInterval: "1s"})
			waitStage(t, p.c, p.address, workflows.StageNeedsAttention)
			if err := p.st.Dir.RemoveRedirections(ctx, p.address); err != nil {
				t.Fatal(err)
			}
			p.act(t, workflows.UpdateRetry, "redirection removed")
		}},
		{name: "rollback", address: "henry@example.com", outcome: workflows.StageRolledBack, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{To: "emailpro-broken", AutoConfirm: true})
			waitStage(t, p.c, p.address, workflows.StageNeedsAttention)
			p.act(t, workflows.UpdateRollback, "bad service")
		}},
		{name: "skip-dns", address: "carol@example.com", outcome: workflows.StageDone, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{AutoConfirm: true, DNSInterval: "10m"})
			waitStage(t, p.c, p.address, workflows.StageDNS)
			p.act(t, workflows.UpdateSkipDNS, "checked by hand")
		}, check: func(t *testing.T, p *pathEnv, r workflows.Result) {
			if !hasAction(r, workflows.UpdateSkipDNS) {
				t.Fatalf("skip-dns not recorded: %+v", r.Actions)
			}
		}},
		{name: "waiting-for-slot", address: "grace@example.org", outcome: workflows.StageDone, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{To: "exchange-2", AutoConfirm: true, SlotRecheck: "1s", DNSInterval: "1s"})
			waitStage(t, p.c, p.address, workflows.StageWaitingForSlot)
			if err := p.st.AddSlots(ctx, "exchange-2", 1, 50<<30); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "temporal-cancel-before-lock", address: "dave@example.org", outcome: workflows.StageCancelled, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{})
			waitStage(t, p.c, p.address, workflows.StageAwaitConfirm)
			p.temporalCancel(t)
		}, check: func(t *testing.T, p *pathEnv, r workflows.Result) {
			if !hasAction(r, workflows.ActionTemporalCancel) {
				t.Fatalf("cancellation not recorded: %+v", r.Actions)
			}
		}},
		// A broken destination parks the copy (before the lock): a
		// Temporal cancellation then cancels, clearing what was copied.
		{name: "temporal-cancel-during-copy", address: "erin@example.org", outcome: workflows.StageCancelled, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{To: "emailpro-broken", AutoConfirm: true})
			waitStage(t, p.c, p.address, workflows.StageNeedsAttention)
			p.temporalCancel(t)
		}, check: func(t *testing.T, p *pathEnv, r workflows.Result) {
			if _, err := testenv.Read(p.st.Source.Addr, p.address, devstack.DemoPassword); err != nil {
				t.Fatalf("owner locked out after a cancellation before the switch: %v", err)
			}
			if free, err := p.st.Dir.FreeSlots(ctx, "emailpro-broken", 0); err != nil || len(free) != 2 {
				t.Fatalf("free slots of emailpro-broken = %d (%v), want both back", len(free), err)
			}
		}},
		// Waiting for a cutover window hours away, the source unlocked: a
		// Temporal cancellation there cancels and releases the slot.
		{name: "temporal-cancel-waiting-for-window", address: "judy@example.org", outcome: workflows.StageCancelled, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{AutoConfirm: true, CutoverWindow: windowIn(4 * time.Hour)})
			waitStage(t, p.c, p.address, workflows.StageWaitWindow)
			if _, err := testenv.Read(p.st.Source.Addr, p.address, devstack.DemoPassword); err != nil {
				t.Fatalf("owner locked out while waiting for the window: %v", err)
			}
			p.temporalCancel(t)
		}},
		// A destination that refuses messages over 12 KiB: the copy skips
		// them as items, the migration parks before the switch listing
		// them, approve-skipped lets it finish; each is listed once.
		{name: "approve-skipped", address: "lena@example.com", outcome: workflows.StageDone, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{To: "emailpro-small", AutoConfirm: true, DNSInterval: "1s"})
			pr := waitStage(t, p.c, p.address, workflows.StageNeedsAttention)
			if pr.ErrorType != workflows.ErrTypeSkippedOverLimit || pr.FailedStage != workflows.StageCopy || !strings.Contains(pr.LastError, "UID") {
				t.Fatalf("progress = %+v, want parked at copy listing the skipped messages", pr)
			}
			p.act(t, workflows.UpdateApproveSkipped, "too big for this offer; the owner keeps them on the old account")
		}, check: func(t *testing.T, p *pathEnv, r workflows.Result) {
			if len(r.Skipped) == 0 || !hasAction(r, workflows.UpdateApproveSkipped) {
				t.Fatalf("skipped %d, actions %+v: want the big messages listed and the approval recorded", len(r.Skipped), r.Actions)
			}
			seen := map[string]bool{}
			for _, s := range r.Skipped {
				k := fmt.Sprintf("%s/%d", s.Folder, s.UID)
				if seen[k] || s.Size <= 12<<10 {
					t.Fatalf("skipped item %+v listed twice or with a wrong size", s)
				}
				seen[k] = true
			}
			if r.ByReason["too-big"] != len(r.Skipped) {
				t.Fatalf("byReason = %v for %d skipped", r.ByReason, len(r.Skipped))
			}
		}},
		// Waiting for the window, an operator cuts over now.
		{name: "cutover-now", address: "kim@example.com", outcome: workflows.StageDone, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{AutoConfirm: true, DNSInterval: "1s", CutoverWindow: windowIn(4 * time.Hour)})
			waitStage(t, p.c, p.address, workflows.StageWaitWindow)
			p.act(t, workflows.UpdateCutoverNow, "owner asked for it")
		}, check: func(t *testing.T, p *pathEnv, r workflows.Result) {
			if r.LockoutSeconds <= 0 || r.LockoutSeconds > 30 {
				t.Fatalf("lockout %v s, want a few seconds at most", r.LockoutSeconds)
			}
		}},
		{name: "temporal-cancel-after-switch", address: "ivan@example.com", outcome: workflows.StageDone, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{AutoConfirm: true, DNSInterval: "3s"})
			waitStage(t, p.c, p.address, workflows.StageDNS)
			p.temporalCancel(t)
		}, check: func(t *testing.T, p *pathEnv, r workflows.Result) {
			if r.Verified == 0 || !hasAction(r, workflows.ActionTemporalCancel) {
				t.Fatalf("result %+v: want verified messages and the cancellation recorded", r)
			}
			acct, err := p.st.Dir.SourceAccount(ctx, p.address)
			if err != nil || acct.State != directory.StateMigrated {
				t.Fatalf("source account %+v (%v), want migrated", acct, err)
			}
		}},
	}
	runPaths(t, c, st, paths)
}

// windowIn is a one-hour daily cutover window opening d from now (UTC).
func windowIn(d time.Duration) string {
	st := time.Now().UTC().Add(d)
	return st.Format("15:04") + "-" + st.Add(time.Hour).Format("15:04") + " UTC"
}

// TestContinueAsNewPaths runs the waits on a server that suggests
// continue-as-new after a few events: every wait continues as new, several
// times, and each migration still ends done with nothing parked.
func TestContinueAsNewPaths(t *testing.T) {
	opts := testenv.DevServerOptions(testenv.TemporalPath(t), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), "")
	opts.ExtraArgs = append(opts.ExtraArgs, "--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=10")
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(sctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	c := srv.Client()
	st, _, _ := devPlatform(t, c, 3, 10)
	ctx := context.Background()
	if err := st.Dir.AddService(ctx, directory.Service{ID: "exchange-2", Kind: directory.KindExchange, IMAPAddr: st.Exchange.Addr,
		IMAPSecurity: "plain", MX: "0 mx.exchange.mailshift.test", SPFInclude: "_spf.exchange.mailshift.test"}); err != nil {
		t.Fatal(err)
	}
	paths := []path{
		{name: "continue-as-new-slot", address: "alice@example.com", outcome: workflows.StageDone, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{To: "exchange-2", AutoConfirm: true, SlotRecheck: "1s", DNSInterval: "1s"})
			waitRuns(t, p.c, p.address, workflows.StageWaitingForSlot, 3)
			if err := p.st.AddSlots(ctx, "exchange-2", 1, 50<<30); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "continue-as-new-window", address: "carol@example.com", outcome: workflows.StageDone, drive: func(t *testing.T, p *pathEnv) {
			// Moving the window wakes the wait, which continues as new on
			// this server; the new run waits again, then cuts over now.
			p.start(t, workflows.Input{AutoConfirm: true, DNSInterval: "1s", CutoverWindow: windowIn(5 * time.Hour)})
			waitStage(t, p.c, p.address, workflows.StageWaitWindow)
			before := len(chain(t, p.c, p.address))
			// Each move adds a few events; the server suggests continuing as
			// new past its (low) threshold.
			for i := 0; len(chain(t, p.c, p.address)) == before; i++ {
				if i == 8 {
					t.Fatalf("no continue-as-new after %d window moves", i)
				}
				if _, err := cli.Update(ctx, p.c, workflows.WorkflowID(p.address), workflows.UpdateSetWindow,
					workflows.ActionInput{By: "paths-test", Window: windowIn(time.Duration(6+i) * time.Hour)}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(300 * time.Millisecond)
			}
			waitStage(t, p.c, p.address, workflows.StageWaitWindow)
			p.act(t, workflows.UpdateCutoverNow, "")
		}},
		{name: "continue-as-new-dns", address: "bob@example.com", outcome: workflows.StageDone, drive: func(t *testing.T, p *pathEnv) {
			p.start(t, workflows.Input{AutoConfirm: true, DNSInterval: "1s", DNSMaxInterval: "1s"})
			waitRuns(t, p.c, p.address, workflows.StageDNS, 2)
		}},
	}
	runPaths(t, c, st, paths)
}

// waitRuns waits until the migration has continued as new at least n times
// in a row while at stage (and never parked).
func waitRuns(t *testing.T, c client.Client, address string, stage workflows.Stage, n int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		runs := chain(t, c, address)
		if len(runs) > n {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not continue as new %d times at %s", address, n, stage)
}

// chain is the run IDs of a migration, first to latest, following
// continue-as-new.
func chain(t *testing.T, c client.Client, address string) []string {
	t.Helper()
	ctx := context.Background()
	id := workflows.WorkflowID(address)
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	runs := []string{d.WorkflowExecutionInfo.Execution.RunId}
	for {
		h := history(t, c, id, runs[0])
		prev := h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		if prev == "" {
			return runs
		}
		runs = append([]string{prev}, runs...)
	}
}

func history(t *testing.T, c client.Client, id, runID string) *historypb.History {
	t.Helper()
	iter := c.GetWorkflowHistory(context.Background(), id, runID, false, 0)
	h := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	return h
}

func runPaths(t *testing.T, c client.Client, st *devstack.Stack, paths []path) {
	t.Helper()
	var wg sync.WaitGroup
	results := make([]workflows.Result, len(paths))
	for i, p := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pe := &pathEnv{c: c, st: st, address: p.address}
			t.Run(p.name+"/drive", func(t *testing.T) {
				p.drive(t, pe)
				results[i] = result(t, c, p.address)
			})
		}()
	}
	wg.Wait()
	for i, p := range paths {
		r := results[i]
		t.Run(p.name, func(t *testing.T) {
			if r.Outcome != p.outcome {
				t.Fatalf("%s: outcome %s, want %s (stages %v, actions %+v)", p.address, r.Outcome, p.outcome, r.Stages, r.Actions)
			}
			d, err := c.DescribeWorkflowExecution(context.Background(), workflows.WorkflowID(p.address), "")
			if err != nil {
				t.Fatal(err)
			}
			stage := ""
			if f := d.WorkflowExecutionInfo.GetSearchAttributes().GetIndexedFields()["MigrationStage"]; f != nil {
				stage = strings.Trim(string(f.GetData()), `"`)
			}
			if stage != string(p.outcome) {
				t.Fatalf("%s closed with MigrationStage %q, want %q", p.address, stage, p.outcome)
			}
			if p.check != nil {
				p.check(t, &pathEnv{c: c, st: st, address: p.address}, r)
			}
			if *updateHistory {
				runs := chain(t, c, p.address)
				for j, run := range runs {
					name := p.name
					if len(runs) > 1 {
						name = fmt.Sprintf("%s-run%d", p.name, j+1)
					}
					writeHistory(t, history(t, c, workflows.WorkflowID(p.address), run), name)
				}
			}
		})
	}
}

// historyPrefix names histories recorded beside the existing ones (a new
// workflow version's), so the older recordings still replay.
var historyPrefix = flag.String("history-prefix", "", "prefix of the history files -update-history writes")

func writeHistory(t *testing.T, h *historypb.History, name string) {
	t.Helper()
	name = *historyPrefix + name
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := testenv.RepoRoot()
	p := filepath.Join(root, "workflows/testdata", name+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d events)", p, len(h.Events))
}
