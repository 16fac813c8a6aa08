package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// TestReportItemsOnceAndHTMLSummary: a plan where a destination refuses
// big messages (approved in advance with maxSkipped) reports each skipped
// message once, with folder, UID, size, date and Message-ID (when the copy
// read one; a message skipped for its size is not fetched), in the
// accounts CSV, the items CSV and JSON; the printable HTML summary, opened
// in headless Chromium, shows the accounts by stage, the time per stage,
// the lockout and the items.
func TestReportItemsOnceAndHTMLSummary(t *testing.T) {
	s := start(t, 3, 20)
	ctx := context.Background()
	small, err := s.st.Dir.Service(ctx, devstack.EmailProService)
	if err != nil {
		t.Fatal(err)
	}
	small.ID, small.MaxMessageBytes = "emailpro-small", 1500
	if err := s.st.Dir.AddService(ctx, small); err != nil {
		t.Fatal(err)
	}
	if err := s.st.AddSlots(ctx, small.ID, 1, 5<<30); err != nil {
		t.Fatal(err)
	}
	for _, in := range []workflows.Input{
		{Address: "alice@example.com", To: small.ID, Plan: "rep", AutoConfirm: true, DNSInterval: "1s", MaxSkipped: 1000},
		{Address: "bob@example.com", To: devstack.EmailProService, Plan: "rep", AutoConfirm: true, DNSInterval: "1s"},
	} {
		if _, _, err := cli.StartOne(ctx, s.c, in); err != nil {
			t.Fatal(err)
		}
	}
	alice := result(t, s.c, "alice@example.com")
	if r := result(t, s.c, "bob@example.com"); r.Outcome != workflows.StageDone || alice.Outcome != workflows.StageDone {
		t.Fatalf("alice %s, bob %s", alice.Outcome, r.Outcome)
	}
	if len(alice.Skipped) == 0 {
		t.Fatalf("no message of alice over 1500 bytes was skipped: %+v", alice)
	}
	report := func(format string) string {
		t.Helper()
		s.out.Reset()
		if err := s.env.Report(ctx, "rep", nil, format); err != nil {
			t.Fatalf("report --format %s: %v", format, err)
		}
		return s.out.String()
	}

	rows, err := csv.NewReader(strings.NewReader(report("items"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		key := strings.Join(r[:5], "|")
		if seen[key] {
			t.Fatalf("item listed twice: %v", r)
		}
		seen[key] = true
		if r[0] != "alice@example.com" || r[1] != "skipped" || r[2] != "too-big" || r[4] == "0" || r[5] == "0" || r[6] == "" {
			t.Fatalf("item row %v (header %v)", r, rows[0])
		}
	}
	if len(rows)-1 != len(alice.Skipped) {
		t.Fatalf("%d item rows, want %d (the result's skipped)", len(rows)-1, len(alice.Skipped))
	}

	rows, err = csv.NewReader(strings.NewReader(report("csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, r := range rows[1:] {
		if r[col["lockout_seconds"]] == "" || r[col["dns"]] == "untouched" {
			t.Fatalf("account row %v lacks its lockout or DNS (header %v)", r, rows[0])
		}
		if r[col["address"]] == "alice@example.com" && (r[col["skipped"]] != fmt.Sprint(len(alice.Skipped)) || !strings.Contains(r[col["by_reason"]], "too-big=")) {
			t.Fatalf("alice's row %v (header %v)", r, rows[0])
		}
	}

	var lines []cli.Line
	if err := json.Unmarshal([]byte(report("json")), &lines); err != nil || len(lines) != 2 {
		t.Fatalf("JSON report: %v, %d lines", err, len(lines))
	}

	page := report("html")
	for _, want := range []string{"mailshift report — plan rep", "Accounts by stage", "2 accounts", "Time per stage", "copy", "Lockout",
		"too-big", alice.Skipped[0].Folder} {
		if !strings.Contains(page, want) {
			t.Fatalf("HTML report lacks %q", want)
		}
	}
	viewReport(t, page, len(alice.Skipped))
}

// viewReport opens the HTML report in headless Chromium, checks what it
// renders and saves a screenshot under artifacts/report-test.
func viewReport(t *testing.T, page string, items int) {
	t.Helper()
	chrome, err := exec.LookPath("chromium")
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
	dir = filepath.Join(dir, "report-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(1200, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	bctx, cancel := context.WithTimeout(bctx, time.Minute)
	defer cancel()
	var stages, rows int
	var shot []byte
	if err := chromedp.Run(bctx, chromedp.Navigate("file://"+file),
		chromedp.Evaluate(`document.querySelectorAll("#by-stage .bar").length`, &stages),
		chromedp.Evaluate(`document.querySelectorAll("#items tr").length - 1`, &rows),
		chromedp.FullScreenshot(&shot, 90)); err != nil {
		t.Fatal(err)
	}
	if stages != 1 || rows != items {
		t.Fatalf("rendered report: %d stage bars (want 1: done), %d item rows (want %d)", stages, rows, items)
	}
	png := filepath.Join(dir, "report.png")
	if err := os.WriteFile(png, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("report: %s, screenshot: %s", file, png)
}
