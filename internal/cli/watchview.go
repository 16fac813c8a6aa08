package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mailshift/mailshift/workflows"
)

// watchView draws `starter watch`: one line per plan with accounts by
// stage and an overall bar, then a bar per account that is copying (or
// syncing), with its rate and ETA, then the accounts waiting for an
// operator with what they wait for. Rates come from the bytes seen at the
// previous draw, so the first draw has none.
type watchView struct {
	prev map[string]sample
	// totals holds each account's size as preflight measured it, so the
	// plan's totals stay the same from the first draw to the last (a done
	// account's result counts only what was copied: excluded folders and
	// skipped messages would make the totals shrink).
	totals map[string]counts
	// copied holds what each account's bar showed last during the copy:
	// between the copy activity's end and the workflow recording it, the
	// progress shows neither the heartbeat nor the pass's result, and the
	// bar must not fall back to what earlier passes copied.
	copied map[string]counts
	width  int
}

type sample struct {
	at    time.Time
	bytes int64
}

func newWatchView() *watchView {
	return &watchView{prev: map[string]sample{}, totals: map[string]counts{}, copied: map[string]counts{}, width: 24}
}

// countsOf is countsOf with the account's total as first measured: a done
// account is full at that total.
func (v *watchView) countsOf(l Line) counts {
	c := countsOf(l)
	t, seen := v.totals[l.Address]
	switch {
	case l.Progress != nil && (c.msgsTotal > 0 || c.bytesTotal > 0):
		v.totals[l.Address] = counts{msgsTotal: c.msgsTotal, bytesTotal: c.bytesTotal}
	case l.Result != nil && l.Result.Outcome == workflows.StageDone && seen:
		return counts{t.msgsTotal, t.msgsTotal, t.bytesTotal, t.bytesTotal}
	}
	if l.Progress != nil && l.Progress.Stage == workflows.StageCopy {
		last := v.copied[l.Address]
		c.msgs, c.bytes = max(c.msgs, last.msgs), max(c.bytes, last.bytes)
		v.copied[l.Address] = c
	}
	return c
}

// counts are an account's copy counts as the watch shows them.
type counts struct {
	msgs, msgsTotal   int
	bytes, bytesTotal int64
}

func countsOf(l Line) counts {
	switch {
	case l.Result != nil:
		r := l.Result
		n := r.Copied + r.Present
		return counts{n, n, r.Bytes, r.Bytes}
	case l.Progress != nil:
		p := l.Progress
		c := counts{msgsTotal: p.MessagesTotal, bytesTotal: p.BytesTotal}
		c.msgs, c.bytes = l.copied()
		if p.Stage != workflows.StageCopy && p.Stage != workflows.StageNeedsAttention && stageIndex(p.Stage) > stageIndex(workflows.StageCopy) {
			// Past the copy: all of it is there, whatever came on top.
			c.bytes, c.msgs = max(c.bytes, c.bytesTotal), max(c.msgs, c.msgsTotal)
		}
		return c
	}
	return counts{}
}

func stageIndex(s workflows.Stage) int {
	for i, x := range workflows.Stages {
		if x == s {
			return i
		}
	}
	return -1
}

func bar(frac float64, width int) string {
	frac = min(max(frac, 0), 1)
	full := int(frac*float64(width) + 0.5)
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", width-full) + "]"
}

func ratio(done, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return float64(done) / float64(total)
}

// rate returns bytes per second since the previous sample and stores the
// new one.
func (v *watchView) rate(key string, now time.Time, bytes int64) float64 {
	p, ok := v.prev[key]
	v.prev[key] = sample{now, bytes}
	if !ok || !now.After(p.at) || bytes < p.bytes {
		return 0
	}
	return float64(bytes-p.bytes) / now.Sub(p.at).Seconds()
}

func eta(remaining int64, rate float64) string {
	if remaining <= 0 {
		return "-"
	}
	if rate <= 0 {
		return "?"
	}
	return time.Duration(float64(remaining) / rate * float64(time.Second)).Round(time.Second).String()
}

func perSecond(rate float64) string {
	if rate <= 0 {
		return "-"
	}
	return human(int64(rate)) + "/s"
}

// render draws one frame.
func (v *watchView) render(title string, lines []Line, now time.Time) string {
	var b strings.Builder
	byStage := map[string]int{}
	var all counts
	// left is what the accounts at work still have to copy: the ETA's
	// numerator. Waiting accounts are left out (their wait has no rate)
	// and counted instead.
	var left int64
	var active, waiting, ended []Line
	for _, l := range lines {
		s := string(l.Stage)
		if s == "" {
			s = strings.ToLower(l.Status)
		}
		byStage[s]++
		c := v.countsOf(l)
		all.msgs += c.msgs
		all.msgsTotal += c.msgsTotal
		all.bytes += c.bytes
		all.bytesTotal += c.bytesTotal
		switch {
		case l.terminal():
			if l.Result == nil || l.Result.Outcome != workflows.StageDone {
				ended = append(ended, l)
			}
		case l.waits():
			waiting = append(waiting, l)
		default:
			left += max(c.bytesTotal-c.bytes, 0)
			if l.Stage == workflows.StageCopy || l.Stage == workflows.StageFinalDelta || l.Stage == workflows.StageDeltaSync {
				active = append(active, l)
			}
		}
	}
	var parts []string
	for _, s := range append(append([]workflows.Stage{}, workflows.Stages...), workflows.StageNeedsAttention, workflows.StageCancelled, workflows.StageRolledBack) {
		if n := byStage[string(s)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
			delete(byStage, string(s))
		}
	}
	var rest []string
	for s := range byStage {
		rest = append(rest, s)
	}
	sort.Strings(rest)
	for _, s := range rest {
		parts = append(parts, fmt.Sprintf("%s %d", s, byStage[s]))
	}
	fmt.Fprintf(&b, "%s  %s — %s: %s\n", now.Format(time.TimeOnly), title, count(len(lines), "account"), strings.Join(parts, ", "))
	r := v.rate("", now, all.bytes)
	planETA := eta(left, r)
	if len(waiting) > 0 {
		planETA += fmt.Sprintf(" (%s waiting, not counted)", count(len(waiting), "account"))
	}
	fmt.Fprintf(&b, "  %-32s %s %4.0f%%  %d/%d msgs  %s/%s  %s  ETA %s\n", "all", bar(ratio(all.bytes, all.bytesTotal), v.width),
		100*ratio(all.bytes, all.bytesTotal), all.msgs, all.msgsTotal, human(all.bytes), human(all.bytesTotal), perSecond(r), planETA)
	for _, l := range active {
		c := v.countsOf(l)
		r := v.rate(l.Address, now, c.bytes)
		fmt.Fprintf(&b, "  %-32s %s %4.0f%%  %d/%d msgs  %s/%s  %s  ETA %s  (%s)\n", l.Address, bar(ratio(c.bytes, c.bytesTotal), v.width),
			100*ratio(c.bytes, c.bytesTotal), c.msgs, c.msgsTotal, human(c.bytes), human(c.bytesTotal), perSecond(r), eta(c.bytesTotal-c.bytes, r), l.Stage)
	}
	for _, l := range waiting {
		fmt.Fprintf(&b, "  %-32s %s: %s\n", l.Address, l.Stage, waitNote(l, now))
	}
	for _, l := range ended {
		what := string(l.Stage)
		if what == "" {
			what = strings.ToLower(l.Status)
		}
		if l.Error != "" {
			what += ": " + l.Error
		}
		fmt.Fprintf(&b, "  %-32s ended: %s\n", l.Address, what)
	}
	return b.String()
}
