package workflows

import (
	"fmt"
	"testing"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// TestFolderRowsCountEachItemOnceAndStayBounded: a message refused by
// the copy and again by a delta pass counts once; a delta's new refusal
// adds to it; a folder only preflight saw (excluded) gets a row with its
// rule; past MaxFolderRows the folders with something to report stay and
// the rest are counted.
func TestFolderRowsCountEachItemOnceAndStayBounded(t *testing.T) {
	st := &State{Preflight: &activities.PreflightResult{SourceFolders: []activities.SourceFolder{
		{Name: "INBOX", Messages: 5, Bytes: 500}, {Name: "Trash", Messages: 2, Excluded: `exclude "Trash"`}}}}
	full := activities.CopySummary{Folders: []activities.FolderSummary{{Source: "INBOX", Dest: "INBOX", Copied: 3, Skipped: 1,
		ByReason: map[string]int{mailcopy.CatTooBig: 1, mailcopy.CatPreserved: 1}}}}
	st.tally(full, false)
	st.Skips = []mailcopy.Skip{{Folder: "INBOX", UID: 2, Category: mailcopy.CatTooBig}}
	delta := activities.CopySummary{Folders: []activities.FolderSummary{{Source: "INBOX", Dest: "INBOX", Copied: 1, Skipped: 1,
		ByReason: map[string]int{mailcopy.CatTooBig: 1}}}}
	st.tally(delta, true) // the same refusal again
	rows, omitted := st.folderRows()
	if len(rows) != 2 || omitted != 0 {
		t.Fatalf("folderRows() = %+v, %d; want INBOX and Trash", rows, omitted)
	}
	in, trash := rows[0], rows[1]
	if in.Copied != 4 || in.Skipped[mailcopy.CatTooBig] != 1 || in.Preserved != 1 || in.SourceMessages != 5 {
		t.Fatalf("INBOX row = %+v, want 4 copied, 1 too-big, 1 preserved, 5 at the source", in)
	}
	if trash.Excluded == "" || trash.SourceMessages != 2 {
		t.Fatalf("Trash row = %+v", trash)
	}
	st.Skips = append(st.Skips, mailcopy.Skip{Folder: "INBOX", UID: 9, Category: mailcopy.CatTooBig})
	if rows, _ := st.folderRows(); rows[0].Skipped[mailcopy.CatTooBig] != 2 {
		t.Fatalf("a second listed refusal: too-big = %d, want 2", rows[0].Skipped[mailcopy.CatTooBig])
	}

	var many activities.CopySummary
	for i := range activities.MaxFolderRows + 50 {
		f := activities.FolderSummary{Source: fmt.Sprintf("f%04d", i), Copied: 1}
		if i == activities.MaxFolderRows+40 {
			f.ByReason = map[string]int{mailcopy.CatRefused: 1}
		}
		many.Folders = append(many.Folders, f)
	}
	big := &State{}
	big.tally(many, false)
	rows, omitted = big.folderRows()
	if len(rows) != activities.MaxFolderRows || omitted != 50 {
		t.Fatalf("%d rows, %d omitted; want %d and 50", len(rows), omitted, activities.MaxFolderRows)
	}
	kept := false
	for _, r := range rows {
		kept = kept || r.Skipped[mailcopy.CatRefused] == 1
	}
	if !kept {
		t.Fatalf("the folder with a refused message was dropped past the cap")
	}
}
