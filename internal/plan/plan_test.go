package plan

import (
	"reflect"
	"strings"
	"testing"
)

const csvPlan = `address,to,auto_confirm,exclude_folders
alice@example.com,emailpro-1,true,Junk|Trash
Bob@Example.com,,,
carol@example.com,emailpro-1,maybe,
alice@example.com,emailpro-1,,
not-an-address,emailpro-1,,
`

const yamlPlan = `plan: wave-1
defaults:
  to: emailpro-1
accounts:
  - address: alice@example.com
    auto_confirm: true
    exclude_folders: [Junk, Trash]
  - Bob@Example.com
  - address: carol@example.com
    auto_confirm: maybe
  - address: alice@example.com
  - address: not-an-address
  - address: dave@example.com
    colour: blue
  - [1, 2]
`

func TestParseSameRowsFromCSVAndYAML(t *testing.T) {
	def := Defaults{Plan: "wave-1", To: "emailpro-1"}
	cRows, cProb, err := Parse("plan.csv", strings.NewReader(csvPlan), def)
	if err != nil {
		t.Fatal(err)
	}
	yRows, yProb, err := Parse("plan.YAML", strings.NewReader(yamlPlan), Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	for name, rows := range map[string][]Row{"csv": cRows, "yaml": yRows} {
		if len(rows) != 2 {
			t.Fatalf("%s: %d rows, want alice and bob: %+v", name, len(rows), rows)
		}
		a, b := rows[0].Input, rows[1].Input
		if a.Address != "alice@example.com" || !a.AutoConfirm || !reflect.DeepEqual(a.ExcludeFolders, []string{"Junk", "Trash"}) || a.Plan != "wave-1" || a.To != "emailpro-1" {
			t.Fatalf("%s: alice = %+v", name, a)
		}
		if b.Address != "bob@example.com" || b.AutoConfirm || b.To != "emailpro-1" || b.Plan != "wave-1" {
			t.Fatalf("%s: bob = %+v (lower-cased, defaults applied)", name, b)
		}
	}
	wantCSV := []string{
		`line 4 (carol@example.com): auto_confirm "maybe": want true or false`,
		"line 5 (alice@example.com): duplicate of line 2",
		"line 6 (not-an-address):",
	}
	wantYAML := []string{
		`line 14 (dave@example.com): unknown field "colour"`,
		"line 15: want an address or a mapping",
		`line 9 (carol@example.com): auto_confirm "maybe": want true or false`,
		"line 11 (alice@example.com): duplicate of line 5",
		"line 12 (not-an-address):",
	}
	check := func(name string, got []Problem, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: problems %v, want %d", name, got, len(want))
		}
		for i, w := range want {
			if !strings.HasPrefix(got[i].String(), w) {
				t.Fatalf("%s: problem %d = %q, want %q...", name, i, got[i], w)
			}
		}
	}
	check("csv", cProb, wantCSV)
	check("yaml", yProb, wantYAML)
}

func TestParseYAMLFileErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"", "plan is empty"},
		{"accounts: [a@b.c\n", "plan: yaml:"},
		{"- a@b.c\n", "want a mapping with \"accounts:\""},
		{"plan: x\n", "no \"accounts:\" list"},
		{"acounts:\n  - a@b.c\n", `unknown key "acounts"`},
		{"defaults:\n  too: x\naccounts: []\n", `unknown field "too"`},
	} {
		_, _, err := ParseYAML(strings.NewReader(tc.text), Defaults{To: "emailpro-1"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseYAML(%q) = %v, want %q", tc.text, err, tc.want)
		}
	}
}

func TestParseCSVHeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		text string
		def  Defaults
		want string
	}{
		{"", Defaults{}, "plan is empty"},
		{"address,colour\n", Defaults{To: "x"}, `unknown column "colour"`},
		{"to\nemailpro-1\n", Defaults{}, `no "address" column`},
		{"address\na@b.c\n", Defaults{}, `no "to" column and no --to default`},
	} {
		_, _, err := ParseCSV(strings.NewReader(tc.text), tc.def)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseCSV(%q) = %v, want %q", tc.text, err, tc.want)
		}
	}
}
