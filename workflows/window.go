package workflows

import (
	"fmt"
	"strings"
	"time"
)

// Window is a daily cutover window in a time zone: the source is locked and
// the routing switched only inside it, so the owner's short lockout falls
// at a time the plan chose (the night, a weekend hour).
type Window struct {
	Start, End time.Duration // since local midnight; End <= Start runs past midnight
	Zone       string
	loc        *time.Location
}

// ParseWindow reads "22:00-06:00 Europe/Paris" ("" is no window: nil).
func ParseWindow(s string) (*Window, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if len(s) > 80 {
		return nil, fmt.Errorf("%.20q... is too long", s)
	}
	span, zone, ok := strings.Cut(s, " ")
	if !ok {
		return nil, fmt.Errorf("%q: want \"HH:MM-HH:MM Zone\", like \"22:00-06:00 Europe/Paris\"", s)
	}
	from, to, ok := strings.Cut(span, "-")
	if !ok {
		return nil, fmt.Errorf("%q: want \"HH:MM-HH:MM Zone\", like \"22:00-06:00 Europe/Paris\"", s)
	}
	w := &Window{Zone: strings.TrimSpace(zone)}
	var err error
	if w.Start, err = clock(from); err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	if w.End, err = clock(to); err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	if w.Start == w.End {
		return nil, fmt.Errorf("%q: the window is empty (start equals end)", s)
	}
	// The zone database is the worker's (time/tzdata is embedded in the
	// worker, so every worker reads the same one).
	//workflowcheck:ignore
	if w.loc, err = time.LoadLocation(w.Zone); err != nil || w.Zone == "" || w.Zone == "Local" {
		return nil, fmt.Errorf("%q: unknown time zone %q (an IANA name like Europe/Paris or UTC)", s, w.Zone)
	}
	return w, nil
}

func clock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a 24-hour time like 22:00", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// String is the window as written.
func (w *Window) String() string {
	f := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	return f(w.Start) + "-" + f(w.End) + " " + w.Zone
}

// Next reports whether t is inside the window and, if not, when it next
// opens; when inside, closes is when this opening ends.
func (w *Window) Next(t time.Time) (open bool, opens, closes time.Time) {
	lt := t.In(w.loc)
	// Look at yesterday's, today's and tomorrow's openings: one that began
	// yesterday may still run past midnight.
	// Wall-clock times, so a day with a clock change keeps 22:00 and 06:00.
	at := func(y int, m time.Month, d int, c time.Duration) time.Time {
		return time.Date(y, m, d, int(c/time.Hour), int(c%time.Hour/time.Minute), 0, 0, w.loc)
	}
	for day := -1; day <= 1; day++ {
		y, m, d := lt.Date()
		start := at(y, m, d+day, w.Start)
		end := at(y, m, d+day, w.End)
		if w.End <= w.Start {
			end = at(y, m, d+day+1, w.End)
		}
		if !t.Before(start) && t.Before(end) {
			return true, start, end
		}
		if t.Before(start) {
			return false, start, end
		}
	}
	y, m, d := lt.Date()
	if w.End <= w.Start {
		return false, at(y, m, d+2, w.Start), at(y, m, d+3, w.End)
	}
	return false, at(y, m, d+2, w.Start), at(y, m, d+2, w.End)
}
