//go:build mailshift_nextbuild

package workflows

import "go.temporal.io/sdk/workflow"

// deployProbe is the next build's change: at each stage it enters, a
// migration records in its memo which build moved it there. Histories
// written before the change replay without it (GetVersion returns
// DefaultVersion where they hold no marker).
func deployProbe(ctx workflow.Context, s Stage) {
	if workflow.GetVersion(ctx, DeployProbeChange+string(s), workflow.DefaultVersion, 1) == 1 {
		if err := workflow.UpsertMemo(ctx, map[string]any{"lastStageBuild": "next", "lastStageOnNext": string(s)}); err != nil {
			workflow.GetLogger(ctx).Warn("upsert memo", "error", err)
		}
	}
}
