package sieve

import (
	"reflect"
	"strings"
	"testing"
)

func TestRewrite(t *testing.T) {
	names := map[string]string{"Listes/Débats": "Listes.Débats", "Factures": "INBOX.Factures", "INBOX": "INBOX"}
	rename := func(f string) (string, bool) {
		to, ok := names[f]
		return to, ok
	}
	tests := []struct {
		name, src, want string
		kept            []string
	}{
		{
			name: "plain fileinto",
			src:  "require \"fileinto\";\nif header :contains \"list-id\" \"debats\" { fileinto \"Listes/Débats\"; stop; }\n",
			want: "require \"fileinto\";\nif header :contains \"list-id\" \"debats\" { fileinto \"Listes.Débats\"; stop; }\n",
		},
		{
			name: "tags before the folder, comments and other strings untouched",
			src:  "# fileinto \"Factures\"\r\nrequire [\"fileinto\", \"imap4flags\", \"mailbox\"];\r\n/* \"Factures\" */ if address :is \"from\" \"Factures\" {\r\n  fileinto :flags [\"\\\\Seen\", \"x\"] :create :copy \"Factures\";\r\n}\r\n",
			want: "# fileinto \"Factures\"\r\nrequire [\"fileinto\", \"imap4flags\", \"mailbox\"];\r\n/* \"Factures\" */ if address :is \"from\" \"Factures\" {\r\n  fileinto :flags [\"\\\\Seen\", \"x\"] :create :copy \"INBOX.Factures\";\r\n}\r\n",
		},
		{
			name: "unmapped folder kept and reported once",
			src:  "require \"fileinto\"; fileinto \"Nowhere\"; fileinto \"Nowhere\"; fileinto \"INBOX\";",
			want: "require \"fileinto\"; fileinto \"Nowhere\"; fileinto \"Nowhere\"; fileinto \"INBOX\";",
			kept: []string{"Nowhere"},
		},
		{
			name: "escaped quote in a name and a multi-line string elsewhere",
			src:  "require [\"fileinto\",\"reject\"]; if true { reject text:\nno \"Factures\"\n.\n; fileinto \"Fact\\ures\"; }",
			want: "require [\"fileinto\",\"reject\"]; if true { reject text:\nno \"Factures\"\n.\n; fileinto \"INBOX.Factures\"; }",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, kept, err := Rewrite(tc.src, rename)
			if err != nil {
				t.Fatalf("Rewrite() error %v", err)
			}
			if got != tc.want {
				t.Fatalf("Rewrite() = %q, want %q", got, tc.want)
			}
			if !reflect.DeepEqual(kept, tc.kept) {
				t.Fatalf("Rewrite() kept %q, want %q", kept, tc.kept)
			}
		})
	}
}

func TestParse(t *testing.T) {
	sc, err := Parse("require [\"vacation\", \"fileinto\"];\nvacation :days 3 \"away\";\nfileinto \"A\";\n")
	if err != nil {
		t.Fatal(err)
	}
	if !sc.Vacation || sc.VacationLine != 2 || len(sc.Targets) != 1 || sc.Targets[0].Line != 3 || !reflect.DeepEqual(sc.Require, []string{"vacation", "fileinto"}) {
		t.Fatalf("Parse() = %+v", sc)
	}
	for _, bad := range []string{"fileinto \"A", "/* x", "fileinto ;", "if true { reject text:\nx\n"} {
		if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "line") {
			t.Fatalf("Parse(%q) error = %v, want one naming the line", bad, err)
		}
	}
}
