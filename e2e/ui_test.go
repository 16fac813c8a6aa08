package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"go.temporal.io/sdk/client"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// browser drives headless Chromium through the Temporal UI the way an
// operator clicks through it, saving a screenshot at every step.
type browser struct {
	t         *testing.T
	ctx       context.Context
	base      string
	artifacts string
	shots     int
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: run deploy/lab/install.sh (make test does)")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("MAILSHIFT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(root, "artifacts")
	}
	dir = filepath.Join(dir, "ui-test")
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.WindowSize(1400, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// The driver reports DOM events it has no type for (newer Chromium
	// sends some); they are noise, everything else goes to the test log.
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(func(format string, args ...any) {
		if !strings.Contains(format, "unhandled") {
			t.Logf("chromium: "+format, args...)
		}
	}))
	ctx, cancelTime := context.WithTimeout(ctx, 6*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	return &browser{t: t, ctx: ctx, base: base, artifacts: dir}
}

func (b *browser) run(what string, actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("UI: %s: %v", what, err)
	}
}

// shot saves a full-page screenshot as the next numbered artifact.
func (b *browser) shot(name string) {
	b.t.Helper()
	var buf []byte
	if err := chromedp.Run(b.ctx, chromedp.FullScreenshot(&buf, 100)); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.shots++
	p := filepath.Join(b.artifacts, fmt.Sprintf("%02d-%s.png", b.shots, name))
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
}

// visible runs fn on the first visible element matching sel whose text
// is text (any text when empty), polling until it appears. The UI renders
// some elements twice (one copy hidden), so plain selectors are not enough.
func visible(sel, text, fn string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		js := fmt.Sprintf(`(() => {
			const els = [...document.querySelectorAll(%q)].filter(e => e.offsetParent !== null && !e.disabled &&
				(%q === "" || e.textContent.trim() === %q));
			if (!els.length) return false;
			%s;
			return true;
		})()`, sel, text, text, fn)
		deadline := time.Now().Add(uiWait)
		for {
			var ok bool
			if err := chromedp.Evaluate(js, &ok).Do(ctx); err != nil {
				return err
			}
			if ok {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no visible %s %q after %s", sel, text, uiWait)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// uiWait bounds every wait for the UI.
const uiWait = 30 * time.Second

func click(sel, text string) chromedp.Action { return visible(sel, text, "els[0].click()") }

// waitText polls until the page's text contains every want.
func waitText(sel string, want ...string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var got string
		deadline := time.Now().Add(uiWait)
		for {
			if err := chromedp.Evaluate(fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel), &got).Do(ctx); err != nil {
				return err
			}
			got = strings.Join(strings.Fields(got), " ")
			missing := ""
			for _, w := range want {
				if !strings.Contains(got, w) {
					missing = w
					break
				}
			}
			if missing == "" {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s never showed %q in %s; it shows:\n%s", sel, missing, uiWait, got)
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
}

// scrollTo brings the last (innermost) element of main whose text holds
// text into view, for the screenshot.
func scrollTo(text string) chromedp.Action {
	return chromedp.Evaluate(fmt.Sprintf(`(() => {
		const els = [...document.querySelectorAll("main *")].filter(e => e.textContent.includes(%q));
		if (els.length) els[els.length - 1].scrollIntoView({block: "center"});
		return els.length;
	})()`, text), nil)
}

// waitFrameText polls until the page's text, the frames' included (the UI
// renders a workflow's summary and details as Markdown in frames of their
// own), contains every want.
func waitFrameText(want ...string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		deadline := time.Now().Add(uiWait)
		for {
			root, err := dom.GetDocument().WithDepth(-1).WithPierce(true).Do(ctx)
			if err != nil {
				return err
			}
			var b strings.Builder
			var walk func(n *cdp.Node)
			walk = func(n *cdp.Node) {
				if n.NodeType == cdp.NodeTypeText {
					b.WriteString(n.NodeValue + " ")
				}
				for _, c := range n.Children {
					walk(c)
				}
				for _, c := range n.ShadowRoots {
					walk(c)
				}
				if n.ContentDocument != nil {
					walk(n.ContentDocument)
				}
			}
			walk(root)
			got := strings.Join(strings.Fields(b.String()), " ")
			missing := ""
			for _, w := range want {
				if !strings.Contains(got, w) {
					missing = w
					break
				}
			}
			if missing == "" {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the page and its frames never showed %q in %s; they show:\n%s", missing, uiWait, got)
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
}

// typeJSON puts text in the UI's JSON editor of the open dialog as one
// insertion (typing key by key would meet the editor's auto-closing
// brackets).
func typeJSON(text string) chromedp.Action {
	return chromedp.Tasks{
		// The dialog keeps what was typed last time: select it all first.
		visible(`dialog[open] [role="textbox"][data-language="json"]`, "", "els[0].focus(); document.execCommand('selectAll')"),
		chromedp.ActionFunc(func(ctx context.Context) error { return input.InsertText(text).Do(ctx) }),
	}
}

func (b *browser) list(query string) string {
	return b.base + "/namespaces/default/workflows?query=" + url.QueryEscape(query)
}

// TestTemporalUI is the on-call engineer's path through the Temporal UI that
// the dev server serves: list a plan's migrations by MigrationPlan, filter
// the one that needs attention by MigrationStage, open it, read its
// progress query, see a wrong update refused with the workflow's reason,
// fix the cause, send retry, and watch the migration finish. Screenshots
// of every step land in artifacts/ui-test (or $MAILSHIFT_ARTIFACTS).
func TestTemporalUI(t *testing.T) {
	_, c, ui := testenv.StartTemporalUI(t)
	ctx := context.Background()
	st, _, _ := devPlatform(t, c, 4, 30)
	if err := st.Dir.AddRedirection(ctx, directory.Redirection{Address: "carol@example.com", Kind: "forward", Target: "carol@elsewhere.example"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"alice@example.com", "bob@example.com", "carol@example.com"} {
		if _, _, err := cli.StartOne(ctx, c, workflows.Input{Address: a, To: "emailpro-1", Plan: "ui-wave", AutoConfirm: true, DNSInterval: "1s"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []string{"alice@example.com", "bob@example.com"} {
		if r := result(t, c, a); r.Outcome != workflows.StageDone {
			t.Fatalf("%s: %s", a, r.Outcome)
		}
	}
	waitStage(t, c, "carol@example.com", workflows.StageNeedsAttention)
	carol := workflows.WorkflowID("carol@example.com")
	// dave waits for a cutover window that opens in two hours.
	opens := time.Now().UTC().Add(2 * time.Hour)
	window := fmt.Sprintf("%s-%s UTC", opens.Format("15:04"), opens.Add(time.Hour).Format("15:04"))
	if _, _, err := cli.StartOne(ctx, c, workflows.Input{Address: "dave@example.org", To: "emailpro-1", Plan: "ui-window", AutoConfirm: true, CutoverWindow: window}); err != nil {
		t.Fatal(err)
	}
	waitStage(t, c, "dave@example.org", workflows.StageWaitWindow)

	b := newBrowser(t, ui)
	// 1. The plan's migrations, by search attribute.
	b.run("list the plan", chromedp.Navigate(b.list(`MigrationPlan="ui-wave"`)),
		waitText("main", "3 Workflows", workflows.WorkflowID("alice@example.com"), workflows.WorkflowID("bob@example.com"), carol))
	b.shot("plan")
	// 2. The one that needs attention.
	b.run("filter needs-attention", chromedp.Navigate(b.list(`MigrationPlan="ui-wave" AND MigrationStage="needs-attention"`)),
		waitText("main", "1 Workflow", carol))
	var listed string
	b.run("read the filtered list", chromedp.Evaluate(`document.querySelector("main").innerText`, &listed))
	if strings.Contains(listed, "alice@") || strings.Contains(listed, "bob@") {
		t.Fatalf("the needs-attention filter lists finished migrations:\n%s", listed)
	}
	b.shot("needs-attention")
	// 3. Open it.
	b.run("open the migration", click("main a", carol), waitText("main", "Running", "MigrateAccount"))
	b.shot("workflow")
	// 3b. Its static summary (set by the starter) and current details (set
	// by the workflow at every change): the stage, the failure and the
	// exact next action.
	b.run("read the summary and details", click("main a, main button, main [role=tab]", "User Metadata"), waitFrameText("Summary", "carol@example.com → emailpro-1 (plan ui-wave)",
		"Details", "Move carol@example.com to emailpro-1", "Skipped messages allowed before the switch: 0",
		"Current Details", "Stage: needs-attention (failed at preflight)", "(RedirectionPresent)", "Next: send the update"))
	b.shot("summary-and-details")
	// 4. Its progress, through the query the workflow answers.
	b.run("run the progress query", click(`[data-testid="queries-tab"]`, ""), click("button", "Run Query"),
		waitText(`[data-testid="query-result"]`, `"stage": "needs-attention"`, `"failedStage": "preflight"`, "RedirectionPresent", "carol@elsewhere.example"))
	b.shot("progress")
	// 5. A command that does not fit the stage is refused with a reason.
	sendUpdate := func(name, data string) {
		b.run("send "+name, click(`button[aria-controls="workflow-actions"]`, ""), click(`[data-testid="update-button"]`, ""),
			click(`dialog[open] [data-testid="update-select-button"]`, ""), click(`dialog[open] li[role="option"]`, name),
			typeJSON(data))
		b.shot("update-" + name)
		b.run("submit "+name, click(`dialog[open] [data-testid="confirm-modal-button"]`, ""))
	}
	sendUpdate(workflows.UpdateConfirm, `{"by": "ui-oncall"}`)
	b.run("read the refusal", waitText("body", "refused: confirm is only possible while awaiting confirmation"))
	b.shot("confirm-refused")
	b.run("close the dialog", click(`dialog[open] button`, "Cancel"))
	// 6. The on-call fix, then retry from the UI.
	if err := st.Dir.RemoveRedirections(ctx, "carol@example.com"); err != nil {
		t.Fatal(err)
	}
	sendUpdate(workflows.UpdateRetry, `{"by": "ui-oncall", "reason": "forward removed in the control panel"}`)
	r := result(t, c, "carol@example.com")
	if r.Outcome != workflows.StageDone {
		t.Fatalf("carol after retry from the UI: %s", r.Outcome)
	}
	found := false
	for _, a := range r.Actions {
		found = found || (a.Action == workflows.UpdateRetry && a.By == "ui-oncall")
	}
	if !found {
		t.Fatalf("the result does not record the UI's retry: %+v", r.Actions)
	}
	b.run("see it completed", chromedp.Navigate(b.list(`MigrationPlan="ui-wave"`)), waitText("main", "3 Workflows", "3 Completed"))
	b.shot("completed")

	// 7. The retry's answer, in the history's update event.
	b.run("open carol's history", chromedp.Navigate(b.history(t, c, carol)), waitText("main", "Completed"))
	// The update came early in a long history: oldest events first.
	b.run("find the retry's answer", click("main button", "Descending"),
		waitText("main", "Ascending", "Workflow Execution Update Completed", "retrying stage preflight"), scrollTo("retrying stage preflight"))
	b.shot("retry-answer")
	// 8. Activities and timers name their stage in a finished migration's
	// history, and in a waiting one's.
	b.run("open alice's history", chromedp.Navigate(b.history(t, c, workflows.WorkflowID("alice@example.com"))),
		waitText("main", "copy: pass 1, every folder and message", "final-delta: what changed since the copy", "delta-sync: what arrived before the switch",
			"verify: final sync, then the source's messages read", "verify: every source message on the destination", "dns-propagation: check"),
		scrollTo("copy: pass 1, every folder and message"))
	b.shot("history-stages")
	b.run("open dave's history", chromedp.Navigate(b.history(t, c, workflows.WorkflowID("dave@example.org"))),
		waitText("main", "waiting-for-window: opens"))
	b.shot("history-window-wait")
	// 9. The list with the MigrationStage column (what the runbook tells
	// operators to add; the UI keeps its columns in the browser's storage).
	b.run("add the MigrationStage column", chromedp.Evaluate(`localStorage.setItem("namespace-workflow-table-columns", JSON.stringify({default: [
		{label: "Status"}, {label: "Workflow ID"}, {label: "MigrationStage"}, {label: "Type"}, {label: "Start"}, {label: "End"}]}))`, nil),
		chromedp.Navigate(b.list(`MigrationPlan="ui-wave" OR MigrationPlan="ui-window"`)),
		waitText("main", "4 Workflows", "MigrationStage", "waiting-for-window", "done"))
	var table string
	b.run("read the list", chromedp.Evaluate(`document.querySelector("main table").innerText`, &table))
	// A row's cells, tab-separated: status, workflow ID, MigrationStage, ...
	stages := map[string]string{}
	for _, row := range strings.Split(table, "\n") {
		cells := strings.Split(strings.TrimSpace(row), "\t")
		if len(cells) >= 2 && strings.HasPrefix(cells[0], "migrate:") {
			stages[cells[0]] = cells[1]
		}
	}
	for id, want := range map[string]string{workflows.WorkflowID("dave@example.org"): "waiting-for-window",
		workflows.WorkflowID("alice@example.com"): "done", carol: "done"} {
		if stages[id] != want {
			t.Fatalf("the list shows %s at stage %q, want %q:\n%s", id, stages[id], want, table)
		}
	}
	b.shot("list-migration-stage")
}

// history is the address of a workflow's history page (its latest run).
func (b *browser) history(t *testing.T, c client.Client, id string) string {
	t.Helper()
	d, err := c.DescribeWorkflowExecution(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s/namespaces/default/workflows/%s/%s/history", b.base, url.PathEscape(id), d.WorkflowExecutionInfo.Execution.RunId)
}
