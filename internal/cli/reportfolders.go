package cli

import (
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/mailshift/mailshift/workflows"
)

// folderRow is one folder of one account in the folder reports.
type folderRow struct {
	Address string
	workflows.FolderRow
}

// folderRows lists the folder rows of the accounts that ended, and per
// account how many folders the result left out (past its cap).
func folderRows(lines []Line) (rows []folderRow, notListed map[string]int) {
	notListed = map[string]int{}
	for _, l := range lines {
		r := l.Result
		if r == nil {
			continue
		}
		for _, f := range r.FolderRows {
			rows = append(rows, folderRow{Address: l.Address, FolderRow: f})
		}
		if r.FoldersNotListed > 0 {
			notListed[l.Address] = r.FoldersNotListed
		}
	}
	return rows, notListed
}

// notCopied sums a row's skipped messages.
func (f folderRow) notCopied() int {
	n := 0
	for _, v := range f.Skipped {
		n += v
	}
	return n
}

// otherReported sums the row's reported items other than preserved and
// altered.
func (f folderRow) otherReported() int {
	n := 0
	for _, v := range f.Reported {
		n += v
	}
	return n
}

// writeFoldersCSV writes one CSV line per folder of every account that
// ended: the source's messages and bytes at preflight, copied, already
// present, skipped (by reason), preserved, altered, other reported items,
// and the rule that excluded it. An account whose folders were past the
// result's cap gets a last line saying how many are not listed.
func writeFoldersCSV(out io.Writer, lines []Line) error {
	w := csv.NewWriter(out)
	_ = w.Write([]string{"address", "folder", "dest", "source_messages", "source_bytes", "copied", "present", "bytes_copied",
		"skipped", "skipped_reasons", "preserved", "altered", "reported", "reported_reasons", "excluded", "unreadable"})
	rows, notListed := folderRows(lines)
	last := ""
	flush := func(addr string) {
		if n := notListed[addr]; n > 0 {
			_ = w.Write([]string{addr, fmt.Sprintf("(%s not listed)", count(n, "more folder")), "", "", "", "", "", "", "", "", "", "", "", "", "", ""})
		}
	}
	for _, f := range rows {
		if f.Address != last && last != "" {
			flush(last)
		}
		last = f.Address
		_ = w.Write([]string{f.Address, f.Folder, f.Dest, fmt.Sprint(f.SourceMessages), fmt.Sprint(f.SourceBytes), fmt.Sprint(f.Copied),
			fmt.Sprint(f.Present), fmt.Sprint(f.Bytes), fmt.Sprint(f.notCopied()), byReason(f.Skipped), fmt.Sprint(f.Preserved),
			fmt.Sprint(f.Altered), fmt.Sprint(f.otherReported()), byReason(f.Reported), f.Excluded, f.Unreadable})
	}
	if last != "" {
		flush(last)
	}
	w.Flush()
	return w.Error()
}

// writeFoldersText writes the folder rows as an aligned table per account,
// for a terminal.
func writeFoldersText(out io.Writer, lines []Line) error {
	rows, notListed := folderRows(lines)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	last := ""
	end := func() {
		if n := notListed[last]; n > 0 {
			fmt.Fprintf(tw, "  (%s not listed)\n", count(n, "more folder"))
		}
	}
	for _, f := range rows {
		if f.Address != last {
			if last != "" {
				end()
				fmt.Fprintln(tw)
			}
			last = f.Address
			fmt.Fprintf(tw, "%s\n", f.Address)
			fmt.Fprintln(tw, "  FOLDER\tSOURCE\tCOPIED\tPRESENT\tSKIPPED\tPRESERVED\tALTERED\tNOTE")
		}
		var note []string
		if f.Excluded != "" {
			note = append(note, "excluded: "+f.Excluded)
		}
		if f.Unreadable != "" {
			note = append(note, "unreadable: "+f.Unreadable)
		}
		if len(f.Skipped) > 0 {
			note = append(note, "skipped: "+byReason(f.Skipped))
		}
		if len(f.Reported) > 0 {
			note = append(note, "reported: "+byReason(f.Reported))
		}
		if f.Dest != "" && f.Dest != f.Folder {
			note = append(note, "→ "+f.Dest)
		}
		fmt.Fprintf(tw, "  %s\t%d (%s)\t%d\t%d\t%d\t%d\t%d\t%s\n", f.Folder, f.SourceMessages, human(f.SourceBytes), f.Copied, f.Present,
			f.notCopied(), f.Preserved, f.Altered, strings.Join(note, "; "))
	}
	if last == "" {
		fmt.Fprintln(tw, "no account has ended yet: folder rows come with the result")
	} else {
		end()
	}
	return tw.Flush()
}
