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

// redeployHistories are histories the redeploy scenario recorded
// (mailchaos -scenario redeploy -save-histories): begun by this build,
// finished by the next one (tag mailshift_nextbuild) after a redeploy in
// the middle of a wait.
func redeployHistories(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/redeploy/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no histories under testdata/redeploy/")
	}
	return files
}

// replayFile replays one recorded history on the workflow code of this
// build.
func replayFile(t *testing.T, f string) error {
	t.Helper()
	fh, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	hist, err := client.HistoryFromJSON(fh, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var in Input
	start := hist.Events[0].GetWorkflowExecutionStartedEventAttributes()
	if err := converter.GetDefaultDataConverter().FromPayloads(start.GetInput(), &in); err != nil {
		t.Fatal(err)
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(MigrateAccount, workflow.RegisterOptions{Name: WorkflowName})
	return r.ReplayWorkflowHistoryWithOptions(nil, hist, worker.ReplayWorkflowHistoryOptions{
		OriginalExecution: workflow.Execution{ID: WorkflowID(in.Address), RunID: "replay"}})
}
