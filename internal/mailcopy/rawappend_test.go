package mailcopy

import (
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
