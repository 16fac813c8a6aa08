package workflows

import (
	"sort"

	"go.temporal.io/sdk/workflow"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// FolderRow is one folder of a migration's report: what the source held
// at preflight, what the copy passes did with it, and why a message is not
// on the destination exactly as it was. Counts only; the items themselves
// are in Result.Skipped and Result.Reported.
type FolderRow struct {
	// Folder is the source folder's name; Dest where its messages went.
	Folder string `json:"folder"`
	Dest   string `json:"dest,omitempty"`
	// SourceMessages and SourceBytes are the folder's size at preflight.
	SourceMessages int   `json:"sourceMessages"`
	SourceBytes    int64 `json:"sourceBytes"`
	// Copied, Present and Bytes (copied) are summed over the copy passes.
	Copied  int   `json:"copied"`
	Present int   `json:"present"`
	Bytes   int64 `json:"bytesCopied"`
	// Skipped counts, by reason, the messages not on the destination;
	// Preserved and Altered the ones on it in another form; Reported the
	// other reported items (keyword dropped, empty, folder renamed) by
	// reason.
	Skipped   map[string]int `json:"skipped,omitempty"`
	Preserved int            `json:"preserved,omitempty"`
	Altered   int            `json:"altered,omitempty"`
	Reported  map[string]int `json:"reported,omitempty"`
	// Excluded names the include/exclude rule that left the folder out;
	// Unreadable the source's answer when it could not be opened.
	Excluded   string `json:"excluded,omitempty"`
	Unreadable string `json:"unreadable,omitempty"`
}

// FolderTally is what the copy passes did to one folder, kept in the
// state: the passes' counts summed, and for each reason the most any one
// pass met (a message the destination refuses is refused again by every
// later pass).
type FolderTally struct {
	Source   string         `json:"s"`
	Dest     string         `json:"d,omitempty"`
	Copied   int            `json:"c,omitempty"`
	Present  int            `json:"p,omitempty"`
	Bytes    int64          `json:"b,omitempty"`
	ByReason map[string]int `json:"r,omitempty"`
}

// tally adds a copy pass's folders to the state's tallies; a full copy
// (not a delta) starts them again.
func (st *State) tally(sum activities.CopySummary, delta bool) {
	if !delta {
		st.Tallies = nil
	}
	at := make(map[string]int, len(st.Tallies))
	for i, t := range st.Tallies {
		at[t.Source] = i
	}
	for _, f := range sum.Folders {
		i, ok := at[f.Source]
		if !ok {
			if len(st.Tallies) >= activities.MaxFolderRows {
				// Full: a folder with items takes the place of one
				// without; else it is only counted.
				i = -1
				if len(f.ByReason) > 0 {
					for j, t := range st.Tallies {
						if len(t.ByReason) == 0 {
							i = j
							break
						}
					}
				}
				st.TalliesNotListed++
				if i < 0 {
					continue
				}
				delete(at, st.Tallies[i].Source)
				st.Tallies[i] = FolderTally{Source: f.Source, Dest: f.Dest}
			} else {
				i = len(st.Tallies)
				st.Tallies = append(st.Tallies, FolderTally{Source: f.Source, Dest: f.Dest})
			}
			at[f.Source] = i
		}
		t := &st.Tallies[i]
		t.Copied += f.Copied
		t.Present += f.Present
		t.Bytes += f.Bytes
		for _, k := range sortedKeys(f.ByReason) {
			if t.ByReason == nil {
				t.ByReason = map[string]int{}
			}
			t.ByReason[k] = max(t.ByReason[k], f.ByReason[k])
		}
	}
}

func sortedKeys(m map[string]int) []string {
	return workflow.DeterministicKeys(m)
}

// folderRows joins what preflight measured with what the copy passes
// did, one row per source folder (excluded and unreadable ones included),
// by name; at most activities.MaxFolderRows (folders with items first),
// and how many it left out. A reason's count is the larger of the passes'
// count and the listed items (each once), so it is exact while the lists
// are.
func (st *State) folderRows() ([]FolderRow, int) {
	rows := map[string]*FolderRow{}
	var names []string
	row := func(name string) *FolderRow {
		r, ok := rows[name]
		if !ok {
			r = &FolderRow{Folder: name}
			rows[name] = r
			names = append(names, name)
		}
		return r
	}
	omitted := st.TalliesNotListed
	if st.Preflight != nil {
		omitted = max(omitted, st.Preflight.SourceFoldersNotListed)
		for _, f := range st.Preflight.SourceFolders {
			r := row(f.Name)
			r.SourceMessages, r.SourceBytes, r.Excluded, r.Unreadable = f.Messages, f.Bytes, f.Excluded, f.Unreadable
		}
	}
	reasons := map[string]map[string]int{}
	for _, t := range st.Tallies {
		r := row(t.Source)
		r.Dest, r.Copied, r.Present, r.Bytes = t.Dest, t.Copied, t.Present, t.Bytes
		reasons[t.Source] = t.ByReason
	}
	listed := map[string]map[string]int{}
	for _, list := range [][]mailcopy.Skip{st.Skips, st.Reported} {
		for _, s := range list {
			if listed[s.Folder] == nil {
				listed[s.Folder] = map[string]int{}
			}
			listed[s.Folder][s.Category]++
		}
	}
	sort.Strings(names)
	for _, name := range names {
		r := rows[name]
		counts := map[string]int{}
		for _, k := range sortedKeys(reasons[name]) {
			counts[k] = reasons[name][k]
		}
		for _, k := range sortedKeys(listed[name]) {
			counts[k] = max(counts[k], listed[name][k])
		}
		for _, k := range sortedKeys(counts) {
			n := counts[k]
			switch {
			case k == mailcopy.CatPreserved:
				r.Preserved = n
			case k == mailcopy.CatAltered:
				r.Altered = n
			case (mailcopy.Skip{Category: k}).NotCopied():
				if r.Skipped == nil {
					r.Skipped = map[string]int{}
				}
				r.Skipped[k] = n
			default:
				if r.Reported == nil {
					r.Reported = map[string]int{}
				}
				r.Reported[k] = n
			}
		}
	}
	out := make([]FolderRow, 0, len(names))
	for _, name := range names {
		out = append(out, *rows[name])
	}
	if len(out) > activities.MaxFolderRows {
		noted := func(r FolderRow) bool {
			return r.Excluded != "" || r.Unreadable != "" || len(r.Skipped) > 0 || len(r.Reported) > 0 || r.Preserved > 0 || r.Altered > 0
		}
		sort.SliceStable(out, func(i, j int) bool { return noted(out[i]) && !noted(out[j]) })
		omitted += len(out) - activities.MaxFolderRows
		out = out[:activities.MaxFolderRows]
		sort.SliceStable(out, func(i, j int) bool { return out[i].Folder < out[j].Folder })
	}
	return out, omitted
}
