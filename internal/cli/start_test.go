package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// TestPlanQueryMatchesOnlyItsPlan: on a real dev server, the visibility
// query of a plan ID lists that plan and no other, whatever the ID holds (a
// quote was once stripped, so "wave'x" listed plan "wavex").
func TestPlanQueryMatchesOnlyItsPlan(t *testing.T) {
	_, c := testenv.StartTemporal(t, "")
	ctx := context.Background()
	plans := []string{"wavex", "wave'x", "wave''x", "x' OR MigrationPlan != 'y", "wave x", "a%b", "a_b", "a`b", "wäve"}
	for i, p := range plans {
		// No worker: the workflows only need to exist for visibility.
		if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("q-%d", i), TaskQueue: "nobody",
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SAPlan.ValueSet(p))}, "Nothing"); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range plans {
		q, err := planQuery(p)
		if err != nil {
			t.Fatalf("planQuery(%q) error %v", p, err)
		}
		want := fmt.Sprintf("[q-%d]", i)
		var got string
		// Visibility is eventually consistent: wait for the start to show.
		for deadline := time.Now().Add(30 * time.Second); ; {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q})
			if err != nil {
				t.Fatalf("ListWorkflow(%s) error %v", q, err)
			}
			var ids []string
			for _, ex := range resp.Executions {
				ids = append(ids, ex.Execution.WorkflowId)
			}
			if got = fmt.Sprint(ids); got == want || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got != want {
			t.Fatalf("ListWorkflow(%s) = %s, want %s", q, got, want)
		}
	}
	// What the server's parser cannot take literally is refused, never
	// sent: a trailing backslash once broke the query.
	for _, p := range []string{`wave\`, `wave\'x`, `"wavex"`, "wave\nx", "w\xffve"} {
		if q, err := planQuery(p); err == nil {
			t.Fatalf("planQuery(%q) = %s, want a refusal", p, q)
		}
	}
}

// TestStartOnTheDevServer: the start command normalizes the address (package
// address) and validates the plan ID before anything is started, starts
// nothing twice while a migration runs, and starts again after a run was
// terminated. No worker runs: the workflows only need to exist.
func TestStartOnTheDevServer(t *testing.T) {
	_, c := testenv.StartTemporal(t, "")
	ctx := context.Background()
	out := &bytes.Buffer{}
	env := &Env{Out: out, Client: c}
	for _, tc := range []struct {
		name    string
		args    StartArgs
		before  func(t *testing.T)
		err     string // error of the start; "" for none
		out     string // what it prints
		started string // workflow ID that must exist afterwards ("" when none)
		domain  string // its MigrationDomain
	}{
		{name: "IDN domain in Unicode", args: StartArgs{Address: " Alice@BÜCHER.example ", To: "emailpro-1", Plan: "wave-1"},
			out: "started migrate:alice@xn--bcher-kva.example", started: "migrate:alice@xn--bcher-kva.example", domain: "xn--bcher-kva.example"},
		{name: "running: nothing started twice", args: StartArgs{Address: "alice@bücher.example", To: "emailpro-1"},
			out: "already running: migrate:alice@xn--bcher-kva.example", started: "migrate:alice@xn--bcher-kva.example", domain: "xn--bcher-kva.example"},
		{name: "terminated: started again", args: StartArgs{Address: "alice@bücher.example", To: "exchange-1"},
			before: func(t *testing.T) {
				if err := c.TerminateWorkflow(ctx, "migrate:alice@xn--bcher-kva.example", "", "wrong service"); err != nil {
					t.Fatal(err)
				}
			},
			out: "the previous run ended terminated", started: "migrate:alice@xn--bcher-kva.example", domain: "xn--bcher-kva.example"},
		{name: "non-ASCII local part", args: StartArgs{Address: "jösé@example.com", To: "emailpro-1"}, err: "non-ASCII character"},
		{name: "CR LF", args: StartArgs{Address: "a\r\nb@example.com", To: "emailpro-1"}, err: "control character"},
		{name: "star", args: StartArgs{Address: "a*b@example.com", To: "emailpro-1"}, err: `"*" is not allowed`},
		{name: "plan ID with a quote", args: StartArgs{Address: "bob@example.com", To: "emailpro-1", Plan: "wave'x"}, err: "--plan: plan ID"},
		{name: "plan ID of 3000 bytes", args: StartArgs{Address: "bob@example.com", To: "emailpro-1", Plan: strings.Repeat("w", 3000)}, err: "at most 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			out.Reset()
			err := env.Start(ctx, tc.args)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Start(%q) error = %v, want %q", tc.args.Address, err, tc.err)
			}
			if !strings.Contains(out.String(), tc.out) {
				t.Fatalf("Start(%q) printed %q, want %q", tc.args.Address, out.String(), tc.out)
			}
			if tc.started == "" {
				// (A refused address has no workflow ID to look up: it is
				// not even a valid Temporal header.)
				var nf *serviceerror.NotFound
				if _, err := c.DescribeWorkflowExecution(ctx, "migrate:bob@example.com", ""); !errors.As(err, &nf) {
					t.Fatalf("Start(%q) refused, but bob's migration exists (%v)", tc.args.Address, err)
				}
				return
			}
			d, err := c.DescribeWorkflowExecution(ctx, tc.started, "")
			if err != nil {
				t.Fatal(err)
			}
			if st := d.WorkflowExecutionInfo.Status; st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				t.Fatalf("%s is %s, want running", tc.started, st)
			}
			var domain string
			if err := converter.GetDefaultDataConverter().FromPayload(d.WorkflowExecutionInfo.SearchAttributes.GetIndexedFields()["MigrationDomain"], &domain); err != nil || domain != tc.domain {
				t.Fatalf("%s: MigrationDomain = %q (%v), want %q", tc.started, domain, err, tc.domain)
			}
			// The workflow's input carries the normal form.
			ev, err := c.GetWorkflowHistory(ctx, tc.started, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT).Next()
			if err != nil {
				t.Fatal(err)
			}
			var in workflows.Input
			if err := converter.GetDefaultDataConverter().FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
				t.Fatal(err)
			}
			if want, _ := workflows.AddressOf(tc.started); in.Address != want {
				t.Fatalf("%s: input address %q, want %q", tc.started, in.Address, want)
			}
		})
	}
}

// TestStatusTitle: statuses read as words, and a timed-out migration is
// terminal (its status once read "Timedout", which terminal did not know).
func TestStatusTitle(t *testing.T) {
	for _, tc := range []struct {
		st   enumspb.WorkflowExecutionStatus
		want string
	}{
		{enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "Running"},
		{enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "Completed"},
		{enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, "TimedOut"},
		{enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW, "ContinuedAsNew"},
	} {
		if got := statusTitle(tc.st); got != tc.want {
			t.Fatalf("statusTitle(%s) = %q, want %q", tc.st, got, tc.want)
		}
	}
	if !(Line{Status: statusTitle(enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT)}).terminal() {
		t.Fatalf("a timed-out migration is not terminal")
	}
}
