package mailcopy

import (
	"strings"
	"testing"
)

func TestCleanHeader(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Réunion\r\n\tdemain", "Réunion demain"},
		{"a\x1b[31mred\x00", "a [31mred"},
		{"\u202eevil\u202c name", "evil name"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{strings.Repeat("é", 250), strings.Repeat("é", 200) + "…"},
		{"   ", ""},
	} {
		if got := CleanHeader(tc.in, 200); got != tc.want {
			t.Errorf("CleanHeader(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestExcludedBy(t *testing.T) {
	opts := MapOptions{Include: []string{"Work/*", "Sent"}, Exclude: []string{"Work/Old*"}}
	for _, tc := range []struct{ path, want string }{
		{"INBOX", ""},
		{"Work/2024", ""},
		{"Work/Old 2019", `exclude "Work/Old*"`},
		{"Trash", `not in include "Work/*, Sent"`},
	} {
		if got := ExcludedBy(tc.path, opts); got != tc.want {
			t.Errorf("ExcludedBy(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
