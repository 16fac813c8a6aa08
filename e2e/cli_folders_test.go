package e2e

import (
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/cli"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/workflows"
)

// TestReportFolderRows: a migration to a destination that refuses
// messages over 1,500 bytes, with Trash excluded, reports one row per
// source folder: Trash with its rule and its messages counted at the
// source but not copied; every other folder's source count equal to what
// was copied, already present and skipped; the too-big counts per folder
// equal to the items listed (each once); the same rows in the folders CSV,
// the text view and the HTML summary.
func TestReportFolderRows(t *testing.T) {
	s := start(t, 1, 40)
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
}
