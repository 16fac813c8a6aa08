package e2e

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// TestWatchBarsMoveDuringTheCopy: watch draws an account's bar from the
// copy activity's heartbeat, so frames taken during one copy show it
// between 0 and 100 % and growing (it once stayed at 0 % until the stage
// ended). The worker runs with mailshift's default options
// (app.WorkerOptions: heartbeats at most every second); with the SDK's
// default throttle (80 % of the 30 s heartbeat timeout) the server would
// see a new one every 24 s.
func TestWatchBarsMoveDuringTheCopy(t *testing.T) {
	_, c := testenv.StartTemporal(t, "")
	st, acts, err := app.StartDev(context.Background(), filepath.Join(t.TempDir(), "directory.db"), 1, 12000, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	// The in-memory destination stores 12,000 messages in well under a
	// second, between two of the watch's looks; at 0.4 ms an APPEND the
	// copy lasts seconds, as a real one does.
	st.EmailPro.SlowAppends(400 * time.Microsecond)
	w := app.NewWorker(c, workflows.TaskQueue, acts, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	ctx := context.Background()
	if _, _, err := cli.StartOne(ctx, c, workflows.Input{Address: "alice@example.com", To: devstack.EmailProService, AutoConfirm: true, DNSInterval: "1s", Plan: "watch"}); err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	env := &cli.Env{Out: out, Client: c}
	if err := env.Watch(ctx, "watch", nil, 300*time.Millisecond, 5*time.Minute); err != nil {
		t.Fatalf("watch: %v\n%s", err, tail(out.String(), 30))
	}
	// The account's bar lines while it copies: "(copy)" at the end.
	bar := regexp.MustCompile(`alice@example.com\s+\[[#.]+\]\s+(\d+)%.*\(copy\)`)
	var seen []int
	for _, line := range strings.Split(out.String(), "\n") {
		if m := bar.FindStringSubmatch(line); m != nil {
			pct, _ := strconv.Atoi(m[1])
			if len(seen) == 0 || seen[len(seen)-1] != pct {
				seen = append(seen, pct)
			}
		}
	}
	between := 0
	for i, p := range seen {
		if p > 0 && p < 100 {
			between++
		}
		if i > 0 && p < seen[i-1] {
			t.Fatalf("the bar went back: %v", seen)
		}
	}
	// At the stage's end alone the bar would jump from 0 to 100 %.
	if between < 1 {
		t.Fatalf("the bar did not move during the copy: %v\n%s", seen, tail(out.String(), 40))
	}
	t.Logf("bar during the copy: %v %%", seen)
	// One frame per percentage the bar showed.
	var frames []string
	last := -1
	for _, f := range strings.Split(out.String(), "\n\n") {
		if m := bar.FindStringSubmatch(f); m != nil {
			if pct, _ := strconv.Atoi(m[1]); pct != last {
				frames, last = append(frames, f), pct
			}
		}
	}
	t.Logf("frames during the copy:\n%s", strings.Join(frames, "\n\n"))
}
