// Package e2e drives mailshift end to end on a real Temporal dev server:
// the worker in-process with the embedded platform, the starter's commands,
// and the mailboxes compared by content afterwards.
package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

var updateHistory = flag.Bool("update-history", false, "rewrite the replay histories under workflows/testdata")

type stack struct {
	c   client.Client
	st  *devstack.Stack
	env *cli.Env
	out *bytes.Buffer
}

func start(t *testing.T, accounts, messages int) *stack {
	t.Helper()
	_, c := testenv.StartTemporal(t, "")
	st, _, _ := devPlatform(t, c, accounts, messages)
	out := &bytes.Buffer{}
	return &stack{c: c, st: st, out: out, env: &cli.Env{Out: out, Client: c}}
}

// devPlatform starts the embedded platform with generated mailboxes and a
// worker for it on c; both stop with the test.
func devPlatform(t *testing.T, c client.Client, accounts, messages int) (*devstack.Stack, *activities.Activities, worker.Worker) {
	t.Helper()
	st, acts, err := app.StartDev(context.Background(), filepath.Join(t.TempDir(), "directory.db"), accounts, messages, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	w := app.NewWorker(c, workflows.TaskQueue, acts, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return st, acts, w
}

func writePlan(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plan.csv")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPlanEndToEnd migrates a 3-account plan on the real dev server while
// mail keeps arriving, and checks every message by content.
func TestPlanEndToEnd(t *testing.T) {
	s := start(t, 4, 120)
	ctx := context.Background()
	accounts := []string{"alice@example.com", "bob@example.com", "dave@example.org"}

	before := map[string]testenv.Mailbox{}
	for _, a := range accounts {
		mb, err := testenv.Read(s.st.Source.Addr, a, devstack.DemoPassword)
		if err != nil {
			t.Fatal(err)
		}
		if mb.Count() < 100 {
			t.Fatalf("%s seeded with %d messages, want >= 100", a, mb.Count())
		}
		before[a] = mb
	}

	// Mail arrives during the whole move: before the switch it lands on the
	// source, after it on the destination.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	delivered := map[string][]string{}
	var dmu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			a := accounts[i%len(accounts)]
			id := fmt.Sprintf("<live.%d@e2e.test>", i)
			msg := fmt.Sprintf("From: x@partner.test\r\nTo: %s\r\nSubject: arrives during the move %d\r\nMessage-ID: %s\r\n\r\nbody %d\r\n", a, i, id, i)
			if err := s.st.Deliver(ctx, a, []byte(msg)); err != nil {
				t.Errorf("deliver: %v", err)
				return
			}
			dmu.Lock()
			delivered[a] = append(delivered[a], msg)
			dmu.Unlock()
		}
	}()

	plan := writePlan(t, "address,to,dns_interval", accounts[0]+",emailpro-1,1s", accounts[1]+",emailpro-1,1s", accounts[2]+",exchange-1,1s")
	s.env.DirectoryDSN = dsnOf(t, s.st)
	err := s.env.Plan(ctx, cli.PlanArgs{File: plan, PlanID: "e2e", AutoConfirm: true, Wait: true, Rate: 50, Timeout: 3 * time.Minute})
	close(stop)
	wg.Wait()
	t.Logf("starter output (tail):\n%s", tail(s.out.String(), 12))
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if !strings.Contains(s.out.String(), "3 accounts: done 3") {
		t.Fatalf("starter did not report 3 done:\n%s", tail(s.out.String(), 12))
	}

	dests := map[string]string{accounts[0]: s.st.EmailPro.Addr, accounts[1]: s.st.EmailPro.Addr, accounts[2]: s.st.Exchange.Addr}
	for _, a := range accounts {
		// The owner logs in to the new account with the old password.
		after, err := testenv.Read(dests[a], a, devstack.DemoPassword)
		if err != nil {
			t.Fatalf("%s: owner login on the destination: %v", a, err)
		}
		if miss := testenv.Missing(before[a], after); len(miss) > 0 {
			t.Fatalf("%s: %d problems, first: %s", a, len(miss), miss[0])
		}
		if dup := testenv.Duplicates(before[a], after); len(dup) > 0 {
			t.Fatalf("%s: duplicated: %s", a, dup[0])
		}
		// Every live message is in the new INBOX, wherever it was delivered.
		inbox := map[string]bool{}
		for _, m := range after["INBOX"] {
			inbox[m.Hash] = true
		}
		dmu.Lock()
		for _, msg := range delivered[a] {
			if !inbox[testenv.HashOf([]byte(msg))] {
				t.Fatalf("%s: message delivered during the move is not in the new INBOX: %q", a, strings.SplitN(msg, "\r\n", 4)[2])
			}
		}
		t.Logf("%s: %d messages before, %d after (%d delivered during the move, +1 notice)", a, before[a].Count(), after.Count(), len(delivered[a]))
		dmu.Unlock()
		// The source is locked: its owner can no longer log in there.
		if _, err := testenv.Read(s.st.Source.Addr, a, devstack.DemoPassword); err == nil {
			t.Fatalf("%s: owner can still log in to the old mailbox", a)
		}
		acct, err := s.st.Dir.SourceAccount(ctx, a)
		if err != nil || acct.State != "migrated" {
			t.Fatalf("%s: source account state = %q (%v), want migrated", a, acct.State, err)
		}
		route, err := s.st.Dir.Route(ctx, a)
		if err != nil || route.ServiceID == devstack.SourceService {
			t.Fatalf("%s: route = %+v (%v), want the destination", a, route, err)
		}
	}

	// Starting the same plan again starts nothing.
	s.out.Reset()
	if err := s.env.Plan(ctx, cli.PlanArgs{File: plan, PlanID: "e2e", AutoConfirm: true, Rate: 50}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.out.String(), "started 0, already running or done 3") {
		t.Fatalf("second apply: %s", s.out.String())
	}

	// The plan's report, as CSV and JSON.
	s.out.Reset()
	if err := s.env.Report(ctx, "e2e", nil, "csv"); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(s.out.String())).ReadAll()
	if err != nil || len(rows) != 4 {
		t.Fatalf("CSV report: %d rows (%v):\n%s", len(rows), err, s.out.String())
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, r := range rows[1:] {
		copied, _ := strconv.Atoi(r[col["copied"]])
		if r[col["status"]] != "Completed" || r[col["stage"]] != "done" || copied < 100 || r[col["confirmed_by"]] == "" ||
			!strings.Contains(r[col["stage_seconds"]], "copy=") || !strings.Contains(r[col["dns"]], "every server") {
			t.Fatalf("CSV report row %v (header %v)", r, rows[0])
		}
	}
	s.out.Reset()
	if err := s.env.Report(ctx, "e2e", nil, "json"); err != nil {
		t.Fatal(err)
	}
	var lines []cli.Line
	if err := json.Unmarshal(s.out.Bytes(), &lines); err != nil || len(lines) != 3 || lines[0].Result == nil || lines[0].Result.Outcome != workflows.StageDone {
		t.Fatalf("JSON report (%v):\n%s", err, s.out.String())
	}
	if err := s.env.Report(ctx, "e2e", nil, "xml"); err == nil || !strings.Contains(err.Error(), "want csv or json") {
		t.Fatalf("report --format xml: %v", err)
	}

	if *updateHistory {
		saveHistory(t, s.c, workflows.WorkflowID(accounts[0]))
	}
}

func dsnOf(t *testing.T, st *devstack.Stack) string {
	t.Helper()
	var file string
	if err := st.Dir.DB().QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		t.Fatal(err)
	}
	return file
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func saveHistory(t *testing.T, c client.Client, id string) {
	t.Helper()
	iter := c.GetWorkflowHistory(context.Background(), id, "", false, 0)
	h := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := testenv.RepoRoot()
	p := filepath.Join(root, "workflows/testdata/happy-path.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d events)", p, len(h.Events))
}
