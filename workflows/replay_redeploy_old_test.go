//go:build !mailshift_nextbuild

package workflows

import (
	"path/filepath"
	"strings"
	"testing"
)

// The rollback hazard the runbook describes: once the next build has taken
// its new branch in a history, this build cannot replay it (its workflow
// tasks would fail with a non-determinism error until the next build polls
// again). So a deploy rolls forward, never back past a change.
func TestRedeployHistoriesDoNotReplayOnTheOldBuild(t *testing.T) {
	for _, f := range redeployHistories(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			err := replayFile(t, f)
			// TMPRL1100 is the code of the SDK's non-determinism errors.
			if err == nil || !strings.Contains(err.Error(), "TMPRL1100") {
				t.Fatalf("replay %s on the build without the change = %v, want a non-determinism error (TMPRL1100)", f, err)
			}
		})
	}
}
