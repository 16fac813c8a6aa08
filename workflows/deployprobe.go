//go:build !mailshift_nextbuild

package workflows

import "go.temporal.io/sdk/workflow"

// deployProbe runs at every stage change. In this build it does nothing.
// Built with the tag mailshift_nextbuild (deployprobe_next.go), it is the
// workflow-code change of the redeploy scenario (mailchaos -scenario
// redeploy): a second worker build whose workflows take a step the first
// build never took, behind workflow.GetVersion, so that migrations parked
// in any stage can move from one build to the other.
func deployProbe(workflow.Context, Stage) {}
