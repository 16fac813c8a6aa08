package mailcopy

import (
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestUTF7Encode(t *testing.T) {
	for in, want := range map[string]string{
		"INBOX":            "INBOX",
		"Factures & Reçus": "Factures &- Re&AOc-us",
		"Projets/Été 2025": "Projets/&AMk-t&AOk- 2025",
		"Спам-фильтр":      "&BCEEPwQwBDw--&BEQEOAQ7BEwEQgRA-",
		"日本語":              "&ZeVnLIqe-",
		"a~b":              "a~b",
	} {
		if got := utf7Encode(in); got != want {
			t.Fatalf("utf7Encode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendCmd(t *testing.T) {
	date := time.Date(2021, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3600))
	got := appendCmd("Été", []imap.Flag{imap.FlagSeen, "$Forwarded"}, date, 1234, false)
	want := "APPEND {11+}\r\n&AMk-t&AOk- (\\Seen $Forwarded) \"04-Mar-2021 05:06:07 +0100\" {1234+}\r\n"
	if got != want {
		t.Fatalf("appendCmd() = %q, want %q", got, want)
	}
	if n, ok := trailingLiteral("* 1 FETCH (BODY[] {42}"); !ok || n != 42 {
		t.Fatalf("trailingLiteral = %d, %v", n, ok)
	}
}

// TestAppendUIDs: a MULTIAPPEND's APPENDUID names its messages' UIDs in
// the order they were sent; an answer that does not name exactly as many
// gives none (the copy then finds them by content).
func TestAppendUIDs(t *testing.T) {
	for _, tc := range []struct {
		args string
		n    int
		want []imap.UID
	}{
		{"7 5:9", 5, []imap.UID{5, 6, 7, 8, 9}},
		{"7 5,7:8", 3, []imap.UID{5, 7, 8}},
		{"7 9:5", 5, []imap.UID{5, 6, 7, 8, 9}},
		{"7 12", 1, []imap.UID{12}},
		{"7 5:9", 4, nil},
		{"7 5:9", 6, nil},
		{"7 1:4294967295", 3, nil},
		{"7 x", 1, nil},
		{"7 0:3", 4, nil},
		{"7", 1, nil},
	} {
		got := rawResult{ok: true, code: "APPENDUID", args: tc.args}.appendUIDs(tc.n)
		if !slices.Equal(got, tc.want) {
			t.Errorf("APPENDUID %s for %d messages: %v, want %v", tc.args, tc.n, got, tc.want)
		}
	}
	if got := (rawResult{ok: true, code: "OK"}).appendUIDs(1); got != nil {
		t.Errorf("no APPENDUID: %v, want none", got)
	}
}
