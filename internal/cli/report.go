package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mailshift/mailshift/workflows"
)

// StageSeconds sums the time spent in each stage ("preflight=0.2;
// copy=41.0;…" in the order first entered); operator actions are points in
// time, not stages. The last stage runs until end.
func StageSeconds(stages []workflows.StageEvent, end time.Time) string {
	var order []string
	sum := map[string]float64{}
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
		if _, seen := sum[string(e.Stage)]; !seen {
			order = append(order, string(e.Stage))
		}
		sum[string(e.Stage)] += next.Sub(e.At).Seconds()
	}
	var parts []string
	for _, s := range order {
		parts = append(parts, fmt.Sprintf("%s=%.1f", s, sum[s]))
	}
	return strings.Join(parts, ";")
}

// Report writes one line per migration of a plan (or of the addresses) as
// CSV or JSON.
func (e *Env) Report(ctx context.Context, planID string, addrs []string, format string) error {
	lines, err := e.collect(ctx, planID, addrs)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		enc := json.NewEncoder(e.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(lines)
	case "csv":
		w := csv.NewWriter(e.Out)
		_ = w.Write([]string{"address", "status", "stage", "folders", "copied", "present", "delta_copied", "bytes", "skipped",
			"skipped_reasons", "verified", "dns_pending", "dns", "started", "finished", "seconds", "stage_seconds", "confirmed_by", "error"})
		for _, l := range lines {
			row := []string{l.Address, l.Status, string(l.Stage), "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", l.Error}
			if r := l.Result; r != nil {
				var reasons []string
				for _, s := range r.Skipped {
					reasons = append(reasons, fmt.Sprintf("%s uid %d: %s", s.Folder, s.UID, s.Reason))
				}
				row[3], row[4], row[5], row[6], row[7] = fmt.Sprint(r.Folders), fmt.Sprint(r.Copied), fmt.Sprint(r.Present), fmt.Sprint(r.DeltaCopied), fmt.Sprint(r.Bytes)
				row[8], row[9], row[10], row[11] = fmt.Sprint(len(r.Skipped)), strings.Join(reasons, "; "), fmt.Sprint(r.Verified), fmt.Sprint(r.DNSPending)
				if r.DNS != nil {
					row[12] = r.DNS.Summary()
				}
				row[13], row[14] = r.Started.Format(time.RFC3339), r.Finished.Format(time.RFC3339)
				row[15] = fmt.Sprintf("%.0f", r.Finished.Sub(r.Started).Seconds())
				row[16] = StageSeconds(r.Stages, r.Finished)
				row[17] = r.ConfirmedBy
			} else if p := l.Progress; p != nil {
				row[3], row[4], row[7] = fmt.Sprintf("%d/%d", p.FoldersDone, p.FoldersTotal), fmt.Sprint(p.MessagesDone), fmt.Sprint(p.BytesDone)
				row[11], row[12] = fmt.Sprint(p.DNSPending), p.DNS
				row[13] = p.Started.Format(time.RFC3339)
				row[17] = p.ConfirmedBy
				if p.LastError != "" {
					row[18] = p.LastError
				}
			}
			_ = w.Write(row)
		}
		w.Flush()
		return w.Error()
	}
	return fmt.Errorf("report format %q: want csv or json", format)
}
