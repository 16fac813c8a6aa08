package activities

import (
	"sort"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

// MaxFolderRows bounds the per-folder lists a result carries: a mailbox
// can hold a thousand folders, and each row stays in the workflow's
// history. Past it, the folders with something to report (excluded,
// unreadable) come first, then the largest; the rest are counted, and the
// totals stay exact.
const MaxFolderRows = 300

// SourceFolder is one source folder as preflight measured it.
type SourceFolder struct {
	Name     string `json:"name"`
	Messages int    `json:"messages"`
	Bytes    int64  `json:"bytes"`
	Largest  int64  `json:"largest,omitempty"`
	// Excluded names the include/exclude rule that leaves it out.
	Excluded string `json:"excluded,omitempty"`
	// Unreadable is the server's answer when it cannot be opened.
	Unreadable string `json:"unreadable,omitempty"`
}

// sourceFolders turns the engine's measure into at most MaxFolderRows
// rows, by name, and how many it left out.
func sourceFolders(all []mailcopy.FolderTotals) ([]SourceFolder, int) {
	rows := make([]SourceFolder, 0, len(all))
	for _, f := range all {
		rows = append(rows, SourceFolder{Name: f.Name, Messages: f.Messages, Bytes: f.Bytes, Largest: f.Largest,
			Excluded: f.Excluded, Unreadable: f.Unreadable})
	}
	omitted := 0
	if len(rows) > MaxFolderRows {
		sort.SliceStable(rows, func(i, j int) bool {
			ni, nj := rows[i].Excluded != "" || rows[i].Unreadable != "", rows[j].Excluded != "" || rows[j].Unreadable != ""
			if ni != nj {
				return ni
			}
			return rows[i].Messages > rows[j].Messages
		})
		omitted = len(rows) - MaxFolderRows
		rows = rows[:MaxFolderRows]
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	return rows, omitted
}
