package workflows

import (
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayHistories replays histories recorded on a real server (go test
// ./e2e -update-history) against today's workflow code: a change that would
// break running migrations fails here instead of in production. Such a
// change must go through workflow.GetVersion.
func TestReplayHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no histories under testdata/")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			hist, err := client.HistoryFromJSON(fh, client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			start := hist.Events[0].GetWorkflowExecutionStartedEventAttributes()
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(MigrateAccount, workflow.RegisterOptions{Name: WorkflowName})
			r.RegisterWorkflowWithOptions(ServerBudget, workflow.RegisterOptions{Name: BudgetWorkflowName})
			var id string
			if start.GetWorkflowType().GetName() == BudgetWorkflowName {
				var st BudgetState
				if err := converter.GetDefaultDataConverter().FromPayloads(start.GetInput(), &st); err != nil {
					t.Fatal(err)
				}
				id = BudgetWorkflowID(st.Service)
			} else {
				var in Input
				if err := converter.GetDefaultDataConverter().FromPayloads(start.GetInput(), &in); err != nil {
					t.Fatal(err)
				}
				id = WorkflowID(in.Address)
			}
			err = r.ReplayWorkflowHistoryWithOptions(nil, hist, worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: workflow.Execution{ID: id, RunID: "replay"}})
			if err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}
