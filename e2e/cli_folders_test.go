package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// TestReportFolderRows: a migration to a destination that refuses
// messages over 1,500 bytes, with Trash excluded, reports one row per
// source folder: Trash with its rule and its messages counted at the
// source but not copied; every other folder's source count equal to what
// was copied, already present and skipped; the too-big counts per folder
// equal to the items listed (each once); the same rows in the folders CSV,
// the text view and the HTML summary.
//
// The subject and sender of each skipped message (read by the copy from
// the source, RFC 2047 decoded) are in the directory and in the items
// report, and nowhere in the workflow's history.
func TestReportFolderRows(t *testing.T) {
	_, c := testenv.StartTemporal(t, "")
	dsn := filepath.Join(t.TempDir(), "directory.db")
	st, acts, err := app.StartDev(context.Background(), dsn, 1, 40, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	w := app.NewWorker(c, workflows.TaskQueue, acts, worker.Options{})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	out := &bytes.Buffer{}
	s := &stack{c: c, st: st, out: out, env: &cli.Env{Out: out, Client: c, DirectoryDSN: dsn}}
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
	in := workflows.Input{Address: "alice@example.com", To: small.ID, Plan: "folders", AutoConfirm: true, DNSInterval: "1s",
		MaxSkipped: 1000, ExcludeFolders: []string{"Trash"}}
	if _, _, err := cli.StartOne(ctx, s.c, in); err != nil {
		t.Fatal(err)
	}
	r := result(t, s.c, "alice@example.com")
	if r.Outcome != workflows.StageDone || len(r.Skipped) == 0 {
		t.Fatalf("outcome %s, %d skipped; want done with skipped messages", r.Outcome, len(r.Skipped))
	}
	if len(r.FolderRows) == 0 || r.FoldersNotListed != 0 {
		t.Fatalf("result has %d folder rows (%d not listed)", len(r.FolderRows), r.FoldersNotListed)
	}
	listed := map[string]int{}
	for _, it := range r.Skipped {
		if it.Category == mailcopy.CatTooBig {
			listed[it.Folder]++
		}
	}
	copied, trash := 0, false
	for _, f := range r.FolderRows {
		copied += f.Copied
		if f.Folder == "Trash" {
			trash = true
			if f.Excluded != `exclude "Trash"` || f.SourceMessages == 0 || f.Copied != 0 {
				t.Fatalf("Trash row = %+v, want excluded by its rule, its messages counted, none copied", f)
			}
			continue
		}
		if f.Excluded != "" {
			t.Fatalf("row %+v excluded, only Trash is", f)
		}
		if got := f.Copied + f.Present + f.Skipped[mailcopy.CatTooBig]; got != f.SourceMessages {
			t.Fatalf("folder %q: copied %d + present %d + skipped %v = %d, source held %d", f.Folder, f.Copied, f.Present, f.Skipped, got, f.SourceMessages)
		}
		if f.Skipped[mailcopy.CatTooBig] != listed[f.Folder] {
			t.Fatalf("folder %q: too-big %d, items listed %d", f.Folder, f.Skipped[mailcopy.CatTooBig], listed[f.Folder])
		}
	}
	if !trash || copied != r.Copied+r.DeltaCopied {
		t.Fatalf("Trash row present %v; rows copied %d, result copied %d + delta %d", trash, copied, r.Copied, r.DeltaCopied)
	}

	report := func(format string) string {
		t.Helper()
		s.out.Reset()
		if err := s.env.Report(ctx, "folders", nil, format); err != nil {
			t.Fatalf("report --format %s: %v", format, err)
		}
		return s.out.String()
	}
	rows, err := csv.NewReader(strings.NewReader(report("folders"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows)-1 != len(r.FolderRows) {
		t.Fatalf("%d CSV folder rows, want %d", len(rows)-1, len(r.FolderRows))
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	skipped := 0
	for _, row := range rows[1:] {
		n, _ := strconv.Atoi(row[col["skipped"]])
		skipped += n
		if row[col["folder"]] == "Trash" && row[col["excluded"]] != `exclude "Trash"` {
			t.Fatalf("Trash CSV row %v", row)
		}
	}
	if skipped != len(r.Skipped) {
		t.Fatalf("CSV skipped sum %d, want %d (each item once)", skipped, len(r.Skipped))
	}
	text := report("folders-text")
	for _, want := range []string{"alice@example.com", "FOLDER", `excluded: exclude "Trash"`, "skipped: too-big="} {
		if !strings.Contains(text, want) {
			t.Fatalf("folders-text lacks %q:\n%s", want, text)
		}
	}
	page := report("html")
	for _, want := range []string{`id="folder-rows"`, "exclude &#34;Trash&#34;", fmt.Sprintf("too-big=%d", listed[r.Skipped[0].Folder])} {
		if !strings.Contains(page, want) {
			t.Fatalf("HTML report lacks %q", want)
		}
	}
	t.Logf("folders-text:\n%s", text)

	// Subjects and senders: in the directory and the items report, never
	// in the history.
	headers, err := st.Dir.ReportItems(ctx, workflows.WorkflowID("alice@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if len(headers) != len(r.Skipped) {
		t.Fatalf("the directory holds %d subjects, want one per skipped message (%d)", len(headers), len(r.Skipped))
	}
	for _, h := range headers {
		if h.Subject == "" || strings.Contains(h.Subject, "=?") || !strings.Contains(h.From, "@partner.example") {
			t.Fatalf("header %+v: want a decoded subject and the sender", h)
		}
	}
	items, err := csv.NewReader(strings.NewReader(report("items"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	icol := map[string]int{}
	for i, h := range items[0] {
		icol[h] = i
	}
	byKey := map[string]string{}
	for _, h := range headers {
		byKey[fmt.Sprintf("%s/%d", h.Folder, h.UID)] = h.Subject
	}
	for _, row := range items[1:] {
		want := byKey[row[icol["folder"]]+"/"+row[icol["uid"]]]
		if want == "" || row[icol["subject"]] != want || row[icol["from"]] == "" {
			t.Fatalf("items row %v: subject %q, want %q and a sender", row, row[icol["subject"]], want)
		}
	}
	if page := report("html"); !strings.Contains(page, html.EscapeString(headers[0].Subject)) {
		t.Fatalf("the HTML report lacks the subject %q", headers[0].Subject)
	}
	iter := c.GetWorkflowHistory(ctx, workflows.WorkflowID("alice@example.com"), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range headers {
			if bytes.Contains(b, []byte(h.Subject)) {
				t.Fatalf("history event %d (%s) holds the subject %q", ev.EventId, ev.EventType, h.Subject)
			}
		}
	}
}
