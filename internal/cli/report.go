package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/workflows"
)

// stageTime is the time one stage took.
type stageTime struct {
	Stage   string
	Seconds float64
}

// stageTimes sums the time spent in each stage, in the order first
// entered; operator actions are points in time, not stages. The last stage
// runs until end.
func stageTimes(stages []workflows.StageEvent, end time.Time) []stageTime {
	var out []stageTime
	at := map[string]int{}
	for i, e := range stages {
		if strings.HasPrefix(string(e.Stage), "operator:") {
			continue
		}
		next := end
		for _, f := range stages[i+1:] {
			if !strings.HasPrefix(string(f.Stage), "operator:") {
				next = f.At
				break
			}
		}
		j, seen := at[string(e.Stage)]
		if !seen {
			j = len(out)
			at[string(e.Stage)] = j
			out = append(out, stageTime{Stage: string(e.Stage)})
		}
		out[j].Seconds += next.Sub(e.At).Seconds()
	}
	return out
}

// StageSeconds sums the time spent in each stage ("preflight=0.2;
// copy=41.0;…" in the order first entered); operator actions are points in
// time, not stages. The last stage runs until end.
func StageSeconds(stages []workflows.StageEvent, end time.Time) string {
	var parts []string
	for _, s := range stageTimes(stages, end) {
		parts = append(parts, fmt.Sprintf("%s=%.1f", s.Stage, s.Seconds))
	}
	return strings.Join(parts, ";")
}

// Item is one skipped or reported message (or folder, UID 0) of an
// account, as the reports list it: once, whatever the number of copy
// passes that met it.
type Item struct {
	Address string `json:"address"`
	// Kind is "skipped" (not on the destination) or "reported" (on it,
	// preserved, altered, renamed or empty).
	Kind string `json:"kind"`
	mailcopy.Skip
	// Subject and From are the message's, from the directory (recorded by
	// the copy; never in the workflow's history); empty when unknown.
	Subject string `json:"subject,omitempty"`
	From    string `json:"from,omitempty"`
}

// items lists the skipped and reported items of the accounts, each once,
// by account, folder and UID.
func items(lines []Line) []Item {
	var out []Item
	for _, l := range lines {
		r := l.Result
		if r == nil {
			continue
		}
		seen := map[string]bool{}
		for _, list := range []struct {
			kind  string
			items []mailcopy.Skip
		}{{"skipped", r.Skipped}, {"reported", r.Reported}} {
			sorted := append([]mailcopy.Skip(nil), list.items...)
			mailcopy.SortItems(sorted)
			for _, s := range sorted {
				key := fmt.Sprintf("%s\x00%s\x00%d\x00%s\x00%s", list.kind, s.Folder, s.UID, s.MessageID, s.Category)
				if seen[key] {
					continue
				}
				seen[key] = true
				it := Item{Address: l.Address, Kind: list.kind, Skip: s}
				if h, ok := l.headers[itemKey(s.Folder, s.UID)]; ok && s.UID != 0 {
					it.Subject, it.From = h.Subject, h.From
				}
				out = append(out, it)
			}
		}
	}
	return out
}

// lockout is an account's lockout (lock to routing switch) in seconds.
func (l Line) lockout() float64 {
	switch {
	case l.Result != nil:
		return l.Result.LockoutSeconds
	case l.Progress != nil:
		return l.Progress.LockoutSeconds
	}
	return 0
}

// byReason writes counts by category as "too-big=2;preserved=1".
func byReason(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, ";")
}

// Report writes a plan's (or the addresses') report: csv, one line per
// account; items, one CSV line per skipped or reported message, each once;
// json, the accounts with their results (items included); html, a
// printable summary (accounts by stage, time per stage, accounts, items).
func (e *Env) Report(ctx context.Context, planID string, addrs []string, format string) error {
	switch format {
	case "csv", "json", "items", "html", "folders", "folders-text":
	default:
		return fmt.Errorf("report format %q: want csv or json (accounts), items (one row per skipped or reported message), folders (one CSV row per folder), folders-text or html", format)
	}
	lines, err := e.collect(ctx, planID, addrs)
	if err != nil {
		return err
	}
	if err := e.itemHeaders(ctx, lines, format); err != nil {
		return err
	}
	switch format {
	case "json":
		enc := json.NewEncoder(e.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(lines)
	case "items":
		return writeItems(e, lines)
	case "folders":
		return writeFoldersCSV(e.Out, lines)
	case "folders-text":
		return writeFoldersText(e.Out, lines)
	case "html":
		title := "plan " + planID
		if planID == "" {
			title = strings.Join(addrs, ", ")
		}
		return writeHTML(e.Out, title, lines, time.Now())
	}
	w := csv.NewWriter(e.Out)
	_ = w.Write([]string{"address", "status", "stage", "folders", "copied", "present", "delta_copied", "bytes", "skipped",
		"skipped_reasons", "verified", "dns_pending", "dns", "started", "finished", "seconds", "stage_seconds", "confirmed_by", "error",
		"reported", "by_reason", "lockout_seconds"})
	for _, l := range lines {
		row := []string{l.Address, l.Status, string(l.Stage), "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", l.Error, "", "", ""}
		if r := l.Result; r != nil {
			var reasons []string
			for _, it := range items([]Line{l}) {
				if it.Kind == "skipped" {
					reasons = append(reasons, fmt.Sprintf("%s uid %d: %s", it.Folder, it.UID, it.Reason))
				}
			}
			row[3], row[4], row[5], row[6], row[7] = fmt.Sprint(r.Folders), fmt.Sprint(r.Copied), fmt.Sprint(r.Present), fmt.Sprint(r.DeltaCopied), fmt.Sprint(r.Bytes)
			row[8], row[9], row[10], row[11] = fmt.Sprint(len(reasons)), strings.Join(reasons, "; "), fmt.Sprint(r.Verified), fmt.Sprint(r.DNSPending)
			row[12] = resultDNS(r)
			if r.DNS != nil && r.Outcome == workflows.StageDone {
				row[12] = r.DNS.Summary()
			}
			row[13], row[14] = r.Started.Format(time.RFC3339), r.Finished.Format(time.RFC3339)
			row[15] = fmt.Sprintf("%.0f", r.Finished.Sub(r.Started).Seconds())
			row[16] = StageSeconds(r.Stages, r.Finished)
			row[17] = r.ConfirmedBy
			row[19], row[20] = fmt.Sprint(len(items([]Line{l}))-len(reasons)), byReason(r.ByReason)
		} else if p := l.Progress; p != nil {
			row[3], row[4], row[7] = fmt.Sprintf("%d/%d", p.FoldersDone, p.FoldersTotal), fmt.Sprint(p.MessagesDone), fmt.Sprint(p.BytesDone)
			row[11], row[12] = fmt.Sprint(p.DNSPending), p.DNS
			row[13] = p.Started.Format(time.RFC3339)
			row[17] = p.ConfirmedBy
			if p.LastError != "" {
				row[18] = p.LastError
			}
			row[20] = byReason(p.ByReason)
		}
		if s := l.lockout(); s > 0 {
			row[21] = fmt.Sprintf("%.1f", s)
		}
		_ = w.Write(row)
	}
	w.Flush()
	return w.Error()
}

func writeItems(e *Env, lines []Line) error {
	w := csv.NewWriter(e.Out)
	_ = w.Write([]string{"address", "kind", "category", "folder", "uid", "size", "date", "message_id", "reason", "subject", "from"})
	for _, it := range items(lines) {
		date := ""
		if !it.Date.IsZero() {
			date = it.Date.Format(time.RFC3339)
		}
		_ = w.Write([]string{it.Address, it.Kind, it.Category, it.Folder, fmt.Sprint(it.UID), fmt.Sprint(it.Size), date, it.MessageID, it.Reason,
			cellText(it.Subject), cellText(it.From)})
	}
	w.Flush()
	return w.Error()
}
