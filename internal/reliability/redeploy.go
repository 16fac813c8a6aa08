package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/procstat"
	"github.com/mailshift/mailshift/workflows"
)

// RedeployOptions shape the redeploy scenario: the plan is started so that
// accounts wait in every long stage (a quarter without a free slot, a
// quarter with a cutover two hours away, the others, each alone in a
// domain whose nameservers cannot be found, held in the DNS wait; some
// still copying), then every worker process is replaced, one after the other,
// by a build with changed workflow code. After the redeploy, the slots
// are added, the cutover is brought forward and skip-dns ends the DNS
// waits.
type RedeployOptions struct {
	// NextWorker is the new build's worker binary (built with the tag
	// mailshift_nextbuild).
	NextWorker string
	// Wait is the longest wait for accounts to park in every stage before
	// the redeploy goes ahead anyway (default 5m: on a loaded machine the
	// first copies take minutes under the tight budget).
	Wait time.Duration
	// ChangePrefix is the GetVersion change ID prefix of the new build's
	// step; each account's history must hold one after the redeploy.
	ChangePrefix string
	// SaveHistories, when set, receives the history (JSON, as the CLI
	// writes it) of the first account of each group: histories begun by
	// the old build and finished by the new one, for replay tests.
	SaveHistories string
}

// redeployGroup says what holds an account of the redeploy plan: "slot"
// (no free slot at first), "window" (cutover far away) or "" (its DNS
// wait: a domain of its own, since a domain that still has accounts on
// the old platform expects nothing of its DNS and does not wait).
func redeployGroup(i int) string {
	switch i % 4 {
	case 0:
		return "slot"
	case 1:
		return "window"
	}
	return ""
}

// startRedeployPlan starts the migrations one by one as the starter would,
// with the inputs that park them.
func (p *platform) startRedeployPlan(ctx context.Context, addrs []string) error {
	after := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	for i, a := range addrs {
		in := workflows.Input{Address: a, To: "emailpro-1", Plan: "reliability", AutoConfirm: true, NoNotice: true,
			DNSInterval: "1s", DNSMaxInterval: "3s", SlotRecheck: "2s"}
		if g := redeployGroup(i); g == "window" || g == "slot" {
			// The slots are a pool: an account of the slot group that
			// finds one parks at the window instead of finishing before
			// the redeploy.
			in.CutoverAfter = after
		}
		if _, err := cli.StartMigration(ctx, p.c, in); err != nil {
			return err
		}
	}
	return nil
}

// terminate stops the worker process gracefully (SIGTERM: the SDK stops
// polling and lets running activities finish for a while), as a rolling
// update does.
func (w *worker) terminate() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd != nil && w.cmd.Process != nil {
		w.hwm = max(w.hwm, procstat.PeakRSSMB(w.cmd.Process.Pid))
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = w.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = w.cmd.Process.Signal(syscall.SIGKILL)
			<-done
		}
		w.cmd = nil
	}
}

func (w *worker) setBinary(bin string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.args[0] = bin
}

// stages counts the plan's migrations by their MigrationStage search
// attribute, as the Temporal UI lists them.
func (p *platform) stages(ctx context.Context) map[string]int {
	n := map[string]int{}
	var token []byte
	for {
		resp, err := p.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: `MigrationPlan = "reliability"`, NextPageToken: token})
		if err != nil {
			return n
		}
		for _, e := range resp.Executions {
			var stage string
			if f := e.GetSearchAttributes().GetIndexedFields()["MigrationStage"]; f != nil {
				_ = converter.GetDefaultDataConverter().FromPayload(f, &stage)
			}
			n[stage]++
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return n
		}
	}
}

func formatStages(n map[string]int) string {
	var parts []string
	for s, k := range n {
		parts = append(parts, fmt.Sprintf("%s %d", s, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// redeploy waits for accounts to park, replaces the workers' build, then
// releases what held the accounts.
func (p *platform) redeploy(ctx context.Context, o Options, workers []*worker, addrs []string, stop <-chan struct{}, bg *sync.WaitGroup, rep *Report) {
	ro := o.Redeploy
	limit := ro.Wait
	if limit == 0 {
		limit = 5 * time.Minute
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		deadline := time.Now().Add(limit)
		var n map[string]int
		for time.Now().Before(deadline) {
			if !wait(stop, 500*time.Millisecond) {
				return
			}
			n = p.stages(ctx)
			if n[string(workflows.StageDNS)] > 0 && n[string(workflows.StageWaitingForSlot)] > 0 &&
				n[string(workflows.StageWaitWindow)] > 0 && n[string(workflows.StageCopy)] > 0 {
				break
			}
		}
		rep.RedeployStages = formatStages(n)
		p.logf(o, "redeploying the workers; migrations by stage: %s", rep.RedeployStages)
		for _, w := range workers {
			w.terminate()
			w.setBinary(ro.NextWorker)
			if err := w.start(); err != nil {
				p.logf(o, "start the new build: %v", err)
			}
		}
		rep.Redeploys++
		p.logf(o, "every worker runs the new build; releasing the slots, the window and the zone")
		for i := range addrs {
			if redeployGroup(i) == "slot" {
				if err := p.dir.AddSlot(ctx, "emailpro-1", fmt.Sprintf("s%04d@configureme.me", i), 1<<30); err != nil {
					p.logf(o, "add slot: %v", err)
				}
			}
		}
		// The window's migrations cut over now; the DNS waits end with
		// skip-dns (their domains have no nameserver to ask). A migration
		// that has not reached the stage yet refuses: ask again until
		// each one has accepted.
		pending := map[string]string{}
		for i, a := range addrs {
			switch redeployGroup(i) {
			case "window", "slot":
				pending[a] = workflows.UpdateCutoverNow
			case "":
				pending[a] = workflows.UpdateSkipDNS
			}
		}
		for len(pending) > 0 {
			for a, action := range pending {
				_, err := cli.Update(ctx, p.c, workflows.WorkflowID(a), action, workflows.ActionInput{By: "mailchaos", Reason: "redeploy scenario"})
				if err == nil || strings.Contains(err.Error(), "already requested") {
					delete(pending, a)
				}
			}
			if !wait(stop, time.Second) {
				return
			}
		}
	}()
}

// checkRedeploy: every migration ran on the new build after the redeploy
// (its history holds the new build's version marker), and no workflow task
// failed (a non-determinism error would).
func (p *platform) checkRedeploy(ctx context.Context, addrs []string, ro *RedeployOptions) []string {
	var v []string
	prefix := ro.ChangePrefix
	dc := converter.GetDefaultDataConverter()
	for i, a := range addrs {
		markers, failed := 0, 0
		var events []*historypb.HistoryEvent
		iter := p.c.GetWorkflowHistory(ctx, workflows.WorkflowID(a), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			e, err := iter.Next()
			if err != nil {
				v = append(v, fmt.Sprintf("%s: history: %v", a, err))
				break
			}
			events = append(events, e)
			switch e.EventType {
			case enums.EVENT_TYPE_MARKER_RECORDED:
				var id string
				if d := e.GetMarkerRecordedEventAttributes().GetDetails()["change-id"]; d != nil {
					_ = dc.FromPayloads(d, &id)
				}
				if strings.HasPrefix(id, prefix) {
					markers++
				}
			case enums.EVENT_TYPE_WORKFLOW_TASK_FAILED:
				failed++
				v = append(v, fmt.Sprintf("%s: workflow task failed: %s %s", a, e.GetWorkflowTaskFailedEventAttributes().GetCause(),
					e.GetWorkflowTaskFailedEventAttributes().GetFailure().GetMessage()))
			}
		}
		if markers == 0 {
			v = append(v, fmt.Sprintf("%s: no %s* marker: the new build never moved it to a stage", a, prefix))
		}
		if ro.SaveHistories != "" && i < 4 && failed == 0 {
			b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
			if err == nil {
				name := "redeploy-" + map[string]string{"slot": "slot", "window": "window", "": "dns"}[redeployGroup(i)] + "-" + strconv.Itoa(i) + ".json"
				err = os.WriteFile(filepath.Join(ro.SaveHistories, name), b, 0o644)
			}
			if err != nil {
				v = append(v, fmt.Sprintf("%s: save history: %v", a, err))
			}
		}
	}
	return v
}
