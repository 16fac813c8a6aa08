//go:build mailshift_nextbuild

package workflows

import (
	"path/filepath"
	"testing"
)

// The next build replays the histories it finished after taking them over
// from the previous build mid-wait (its own markers included), as a
// worker of it does after a restart.
func TestReplayRedeployHistoriesOnTheNextBuild(t *testing.T) {
	for _, f := range redeployHistories(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := replayFile(t, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}
