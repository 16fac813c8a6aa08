package cli

import (
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/mailshift/mailshift/workflows"
)

// htmlReport is what the printable summary shows.
type htmlReport struct {
	Title     string
	Generated string
	Accounts  int
	ByStage   []chartRow
	PerStage  []chartRow
	Rows      []htmlAccount
	Folders   []htmlFolder
	// FolderRows are every folder of the accounts that ended.
	FolderRows []folderRow
	NotListed  map[string]int
	Items      []Item
	Lockout    string
}

// chartRow is one bar of a chart: its label, value as written, and
// width in percent of the longest.
type chartRow struct {
	Label, Value string
	Width        float64
}

type htmlAccount struct {
	Address, Stage, Copied, Present, Bytes, Skipped, Reported, Lockout, Took, DNS, Note string
}

// htmlFolder counts one folder's skipped and reported items.
type htmlFolder struct {
	Address, Folder   string
	Skipped, Reported int
}

func chart(labels []string, values []float64, format func(float64) string) []chartRow {
	top := 0.0
	for _, v := range values {
		top = max(top, v)
	}
	var out []chartRow
	for i, l := range labels {
		w := 0.0
		if top > 0 {
			w = 100 * values[i] / top
		}
		out = append(out, chartRow{Label: l, Value: format(values[i]), Width: w})
	}
	return out
}

// writeHTML writes the printable summary of a plan: a chart of accounts by
// stage, one of the time spent per stage (summed over the accounts), the
// accounts with their lockout, the folders with skipped or reported items,
// and the items, each once.
func writeHTML(w io.Writer, title string, lines []Line, now time.Time) error {
	rep := htmlReport{Title: title, Generated: now.Format("2006-01-02 15:04:05 MST"), Accounts: len(lines)}
	byStage := map[string]int{}
	perStage := map[string]float64{}
	var stageOrder []string
	var lockout []float64
	for _, l := range lines {
		s := string(l.Stage)
		if s == "" {
			s = strings.ToLower(l.Status)
		}
		byStage[s]++
		a := htmlAccount{Address: l.Address, Stage: s, Note: l.Error}
		if r := l.Result; r != nil {
			it := items([]Line{l})
			skipped := 0
			for _, i := range it {
				if i.Kind == "skipped" {
					skipped++
				}
			}
			a.Copied, a.Present, a.Bytes = fmt.Sprint(r.Copied), fmt.Sprint(r.Present), human(r.Bytes)
			a.Skipped, a.Reported = fmt.Sprint(skipped), fmt.Sprint(len(it)-skipped)
			a.Took, a.DNS = r.Finished.Sub(r.Started).Round(time.Second).String(), resultDNS(r)
			for _, st := range stageTimes(r.Stages, r.Finished) {
				if _, ok := perStage[st.Stage]; !ok {
					stageOrder = append(stageOrder, st.Stage)
				}
				perStage[st.Stage] += st.Seconds
			}
		} else if p := l.Progress; p != nil {
			done, b := l.copied()
			a.Copied, a.Bytes = fmt.Sprintf("%d/%d", done, p.MessagesTotal), fmt.Sprintf("%s/%s", human(b), human(p.BytesTotal))
			a.Skipped, a.DNS = fmt.Sprint(p.Skipped), p.DNS
			a.Took = now.Sub(p.Started).Round(time.Second).String() + " so far"
			if n := waitNote(l, now); n != "" {
				a.Note = n
			}
		}
		if s := l.lockout(); s > 0 {
			a.Lockout = fmt.Sprintf("%.1f s", s)
			lockout = append(lockout, s)
		}
		rep.Rows = append(rep.Rows, a)
	}
	var labels []string
	var values []float64
	for _, s := range append(append([]workflows.Stage{}, workflows.Stages...), workflows.StageNeedsAttention, workflows.StageCancelled, workflows.StageRolledBack) {
		if n := byStage[string(s)]; n > 0 {
			labels, values = append(labels, string(s)), append(values, float64(n))
			delete(byStage, string(s))
		}
	}
	var rest []string
	for s := range byStage {
		rest = append(rest, s)
	}
	sort.Strings(rest)
	for _, s := range rest {
		labels, values = append(labels, s), append(values, float64(byStage[s]))
	}
	rep.ByStage = chart(labels, values, func(v float64) string { return count(int(v), "account") })
	labels, values = nil, nil
	for _, s := range stageOrder {
		labels, values = append(labels, s), append(values, perStage[s])
	}
	rep.PerStage = chart(labels, values, func(v float64) string {
		return (time.Duration(v * float64(time.Second))).Round(100 * time.Millisecond).String()
	})
	if len(lockout) > 0 {
		sort.Float64s(lockout)
		rep.Lockout = fmt.Sprintf("%s; median %.1f s, longest %.1f s", count(len(lockout), "account"), lockout[len(lockout)/2], lockout[len(lockout)-1])
	}
	rep.Items = items(lines)
	rep.FolderRows, rep.NotListed = folderRows(lines)
	folders := map[[2]string]*htmlFolder{}
	for _, it := range rep.Items {
		k := [2]string{it.Address, it.Folder}
		f := folders[k]
		if f == nil {
			f = &htmlFolder{Address: it.Address, Folder: it.Folder}
			folders[k] = f
			rep.Folders = append(rep.Folders, *f)
		}
		if it.Kind == "skipped" {
			f.Skipped++
		} else {
			f.Reported++
		}
	}
	for i, f := range rep.Folders {
		rep.Folders[i] = *folders[[2]string{f.Address, f.Folder}]
	}
	return reportTemplate.Execute(w, rep)
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"date": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format("2006-01-02 15:04")
	},
	"bytes":   human,
	"reasons": byReason,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>mailshift report — {{.Title}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.chart td { border: none; padding: 2px 6px; }
.bar { background: #3b6fb6; height: 14px; min-width: 2px; print-color-adjust: exact; -webkit-print-color-adjust: exact; }
.muted { color: #777; }
@media print { body { margin: 1cm; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
</style></head><body>
<h1>mailshift report — {{.Title}}</h1>
<p class="muted">{{.Accounts}} account{{if ne .Accounts 1}}s{{end}}; generated {{.Generated}}.</p>

<h2>Accounts by stage</h2>
<table class="chart" id="by-stage">{{range .ByStage}}
<tr><td style="width:12em">{{.Label}}</td><td><div class="bar" style="width:{{printf "%.1f" .Width}}%"></div></td><td style="width:8em">{{.Value}}</td></tr>{{end}}
</table>

<h2>Time per stage</h2>
<p class="muted">Summed over the accounts that ended.</p>
<table class="chart" id="per-stage">{{range .PerStage}}
<tr><td style="width:12em">{{.Label}}</td><td><div class="bar" style="width:{{printf "%.1f" .Width}}%"></div></td><td style="width:8em">{{.Value}}</td></tr>{{else}}
<tr><td class="muted">no account has ended yet</td></tr>{{end}}
</table>
{{if .Lockout}}<p>Lockout (source locked until the routing switch): {{.Lockout}}.</p>{{end}}

<h2>Accounts</h2>
<table id="accounts"><tr><th>Account</th><th>Stage</th><th>Copied</th><th>Already present</th><th>Bytes</th><th>Skipped</th><th>Reported</th><th>Lockout</th><th>Took</th><th>DNS</th><th>Note</th></tr>
{{range .Rows}}<tr><td>{{.Address}}</td><td>{{.Stage}}</td><td class="n">{{.Copied}}</td><td class="n">{{.Present}}</td><td class="n">{{.Bytes}}</td><td class="n">{{.Skipped}}</td><td class="n">{{.Reported}}</td><td class="n">{{.Lockout}}</td><td>{{.Took}}</td><td>{{.DNS}}</td><td>{{.Note}}</td></tr>
{{end}}</table>

<h2>Folders</h2>
{{if .FolderRows}}<table id="folder-rows"><tr><th>Account</th><th>Folder</th><th>Source</th><th>Copied</th><th>Already present</th><th>Skipped</th><th>Preserved</th><th>Altered</th><th>Other reported</th><th>Excluded</th></tr>
{{range .FolderRows}}<tr><td>{{.Address}}</td><td>{{.Folder}}{{if and .Dest (ne .Dest .Folder)}} → {{.Dest}}{{end}}</td><td class="n">{{.SourceMessages}} ({{bytes .SourceBytes}})</td><td class="n">{{.Copied}}</td><td class="n">{{.Present}}</td><td>{{reasons .Skipped}}</td><td class="n">{{.Preserved}}</td><td class="n">{{.Altered}}</td><td>{{reasons .Reported}}</td><td>{{.Excluded}}{{.Unreadable}}</td></tr>
{{end}}</table>{{range $a, $n := .NotListed}}<p class="muted">{{$a}}: {{$n}} more folders not listed.</p>{{end}}{{else}}<p class="muted">No account has ended yet.</p>{{end}}

<h2>Folders with skipped or reported messages</h2>
{{if .Folders}}<table id="folders"><tr><th>Account</th><th>Folder</th><th>Skipped</th><th>Reported</th></tr>
{{range .Folders}}<tr><td>{{.Address}}</td><td>{{.Folder}}</td><td class="n">{{.Skipped}}</td><td class="n">{{.Reported}}</td></tr>
{{end}}</table>{{else}}<p class="muted">None: every message was copied as it is.</p>{{end}}

<h2>Skipped and reported messages</h2>
{{if .Items}}<table id="items"><tr><th>Account</th><th></th><th>Category</th><th>Folder</th><th>UID</th><th>Size</th><th>Date</th><th>Message-ID</th><th>Subject</th><th>From</th><th>Reason</th></tr>
{{range .Items}}<tr><td>{{.Address}}</td><td>{{.Kind}}</td><td>{{.Category}}</td><td>{{.Folder}}</td><td class="n">{{.UID}}</td><td class="n">{{bytes .Size}}</td><td>{{date .Date}}</td><td>{{.MessageID}}</td><td>{{.Subject}}</td><td>{{.From}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>{{else}}<p class="muted">None.</p>{{end}}
</body></html>
`))
