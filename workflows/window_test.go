package workflows

import (
	"strings"
	"testing"
	"time"
)

func TestParseWindow(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{in: "22:00-06:00 Europe/Paris"},
		{in: "01:30-03:00 UTC"},
		{in: "22:00-06:00", err: "want"},
		{in: "22-06 UTC", err: "24-hour"},
		{in: "22:00-22:00 UTC", err: "empty"},
		{in: "22:00-06:00 Mars/Olympus", err: "unknown time zone"},
		{in: "22:00-06:00 Local", err: "unknown time zone"},
		{in: "25:00-06:00 UTC", err: "24-hour"},
	} {
		w, err := ParseWindow(tc.in)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseWindow(%q) = %v, %v; want error %q", tc.in, w, err, tc.err)
		}
		if err == nil && w.String() != tc.in {
			t.Errorf("String() = %q, want %q", w.String(), tc.in)
		}
	}
}

func TestWindowNext(t *testing.T) {
	w, err := ParseWindow("22:00-06:00 Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, paris)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		now          string
		open         bool
		opens, close string
	}{
		{"2026-12-04 12:00", false, "2026-12-04 22:00", "2026-12-05 06:00"},
		{"2026-12-04 23:30", true, "2026-12-04 22:00", "2026-12-05 06:00"},
		{"2026-12-05 05:59", true, "2026-12-04 22:00", "2026-12-05 06:00"},
		{"2026-12-05 06:00", false, "2026-12-05 22:00", "2026-12-06 06:00"},
		// The night the clocks go back (2026-10-25 03:00 → 02:00).
		{"2026-10-24 21:00", false, "2026-10-24 22:00", "2026-10-25 06:00"},
	} {
		open, opens, closes := w.Next(at(tc.now))
		if open != tc.open || !opens.Equal(at(tc.opens)) || !closes.Equal(at(tc.close)) {
			t.Errorf("Next(%s) = %v, %v, %v; want %v, %s, %s", tc.now, open, opens.In(paris), closes.In(paris), tc.open, tc.opens, tc.close)
		}
	}
}
