package plan

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func problemStrings(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// TestParseCSVUnreadableRows: a row the CSV reader cannot read is a
// problem on its line (a stray quote once panicked the starter), and the
// rows around it are still read.
func TestParseCSVUnreadableRows(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		rows       []string
		problems   []string
	}{
		{
			name:     "bare quote",
			text:     "address,to\nal\"ice@example.com,emailpro-1\nbob@example.com,emailpro-1\n",
			rows:     []string{"bob@example.com"},
			problems: []string{`line 2: column 3: a quote (") inside a field that does not start with one`},
		},
		{
			name:     "text after a closing quote",
			text:     "address,to\nbob@example.com,emailpro-1\n\"carol@example.com\"x,emailpro-1\n",
			rows:     []string{"bob@example.com"},
			problems: []string{"line 3: column 19: text after a closing quote"},
		},
		{
			name:     "quote never closed",
			text:     "address,to\nbob@example.com,emailpro-1\n\"carol@example.com,emailpro-1\ndave@example.com,emailpro-1\nerin@example.com,emailpro-1\n",
			rows:     []string{"bob@example.com"},
			problems: []string{"line 3: a quoted field opened on this line runs to line 5 without closing properly; lines 3 to 5 are not read"},
		},
		{
			name:     "more fields than columns",
			text:     "address,to\nbob@example.com,emailpro-1,extra\ncarol@example.com,emailpro-1\n",
			rows:     []string{"carol@example.com"},
			problems: []string{"line 2: 3 fields, but the header names 2 columns"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, probs, err := ParseCSV(strings.NewReader(tc.text), Defaults{})
			if err != nil {
				t.Fatalf("ParseCSV() error %v", err)
			}
			var got []string
			for _, r := range rows {
				got = append(got, r.Input.Address)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.rows) {
				t.Fatalf("ParseCSV() rows = %v, want %v", got, tc.rows)
			}
			ps := problemStrings(probs)
			if len(ps) != len(tc.problems) {
				t.Fatalf("ParseCSV() problems = %q, want %q", ps, tc.problems)
			}
			for i := range ps {
				if !strings.HasPrefix(ps[i], tc.problems[i]) {
					t.Fatalf("ParseCSV() problem %d = %q, want %q...", i, ps[i], tc.problems[i])
				}
			}
		})
	}
}

// TestParseRefusesRepeats: a column named twice, a key repeated in an
// account or at the top, and a second YAML document are refused naming the
// line and the key, never silently resolved.
func TestParseRefusesRepeats(t *testing.T) {
	for _, tc := range []struct {
		name, file, text string
		err, problem     string
	}{
		{name: "csv column twice", file: "p.csv", text: "address,to,Address\na@example.com,emailpro-1,b@example.com\n",
			err: `plan header (line 1): column "address" appears twice (columns 1 and 3)`},
		{name: "csv column twice after a comment", file: "p.csv", text: "# wave 1\nto,address,TO\n",
			err: `plan header (line 2): column "to" appears twice (columns 1 and 3)`},
		{name: "yaml field twice in an account", file: "p.yaml", text: "accounts:\n  - address: a@example.com\n    to: emailpro-1\n    to: exchange-1\n",
			problem: `line 4 (a@example.com): field "to" appears twice (first on line 3)`},
		{name: "yaml field twice in another case", file: "p.yaml", text: "accounts:\n  - address: a@example.com\n    Address: b@example.com\n    to: emailpro-1\n",
			problem: `line 3 (a@example.com): field "Address" appears twice (first on line 2)`},
		{name: "yaml field twice in defaults", file: "p.yml", text: "defaults:\n  to: emailpro-1\n  to: exchange-1\naccounts: [a@example.com]\n",
			err: `plan defaults: line 3: field "to" appears twice (first on line 2)`},
		{name: "yaml top key twice", file: "p.yaml", text: "accounts: [a@example.com]\ndefaults: {to: x}\naccounts: [b@example.com]\n",
			err: `plan line 3: key "accounts" appears twice`},
		{name: "second yaml document", file: "p.yaml", text: "accounts: [a@example.com]\n---\naccounts: [b@example.com]\n",
			err: "plan line 2: a second YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, probs, err := Parse(tc.file, strings.NewReader(tc.text), Defaults{To: "emailpro-1"})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse() error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error %v", err)
			}
			ps := problemStrings(probs)
			if len(rows) != 0 || len(ps) != 1 || !strings.HasPrefix(ps[0], tc.problem) {
				t.Fatalf("Parse() = %d rows, problems %q, want no row and %q", len(rows), ps, tc.problem)
			}
		})
	}
}

// TestParseBoundsEveryField: every field of a row is bounded and checked
// where it enters; a bad one is a problem on the row's line, in CSV and
// YAML alike.
func TestParseBoundsEveryField(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	globs := func(n int) string {
		var g []string
		for i := 0; i < n; i++ {
			g = append(g, fmt.Sprintf("f%d", i))
		}
		return strings.Join(g, "|")
	}
	for _, tc := range []struct {
		name   string
		column string
		value  string
		want   string // problem text; "" when the row is valid
	}{
		{"plan ID", "plan", "wave-1", ""},
		{"plan ID with a quote", "plan", "wave'x", `plan: plan ID "wave'x": character '\'' is not allowed`},
		{"plan ID with a backslash", "plan", `wave\`, "is not allowed"},
		{"plan ID of 3000 bytes", "plan", long(3000), "plan ID is 3000 bytes long; at most 100"},
		{"plan ID not UTF-8", "plan", "w\xffve", "not valid UTF-8"},
		{"service ID of 64 bytes", "to", long(64), ""},
		{"service ID of 65 bytes", "to", long(65), `"to" is 65 bytes long; at most 64`},
		{"service ID with a control character", "to", "emailpro\x01", "control character"},
		{"100 folder patterns", "exclude_folders", globs(100), ""},
		{"101 folder patterns", "exclude_folders", globs(101), "exclude_folders has 101 patterns; at most 100"},
		{"folder pattern of 501 bytes", "include_folders", long(501), `"include_folders" is 501 bytes long; at most 500`},
		{"duration of 41 bytes", "dns_interval", strings.Repeat("1", 39) + "ms", "dns_interval is 41 bytes long; at most 40"},
		{"not a duration", "dns_deadline", "soon", `"dnsDeadline" = "soon" is not a positive duration`},
		{"non-ASCII local part", "address", "jösé@example.com", "non-ASCII character"},
		{"star in the local part", "address", "a*b@example.com", `"*" is not allowed`},
		{"CR LF in the address", "address", "a\r\nb@example.com", "contains a control character"},
		{"address of 300 bytes", "address", long(290) + "@example.com", "address is 302 bytes long; at most 254"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields := map[string]string{"address": "alice@example.com", "to": "emailpro-1"}
			fields[tc.column] = tc.value
			var cols, vals, yml []string
			for i, c := range []string{"address", "to", "plan", "include_folders", "exclude_folders", "dns_interval", "dns_deadline"} {
				if v, ok := fields[c]; ok {
					cols = append(cols, c)
					vals = append(vals, `"`+strings.ReplaceAll(v, `"`, `""`)+`"`)
					dash := "    "
					if i == 0 {
						dash = "  - "
					}
					yml = append(yml, fmt.Sprintf("%s%s: %q", dash, c, v))
				}
			}
			for _, f := range []struct{ name, text string }{
				{"plan.csv", "# a comment\n" + strings.Join(cols, ",") + "\n" + strings.Join(vals, ",") + "\n"},
				{"plan.yaml", "accounts:\n  # a comment\n" + strings.Join(yml, "\n") + "\n"},
			} {
				if !utf8.ValidString(tc.value) && f.name == "plan.yaml" {
					continue // a YAML file is UTF-8: it cannot carry the value
				}
				rows, probs, err := Parse(f.name, strings.NewReader(f.text), Defaults{})
				if err != nil {
					t.Fatalf("%s: Parse() error %v", f.name, err)
				}
				ps := problemStrings(probs)
				if tc.want == "" {
					if len(rows) != 1 || len(ps) != 0 {
						t.Fatalf("%s: Parse() = %d rows, problems %q, want the row", f.name, len(rows), ps)
					}
					continue
				}
				if len(rows) != 0 || len(ps) != 1 || !strings.HasPrefix(ps[0], "line 3 (") || !strings.Contains(ps[0], tc.want) {
					t.Fatalf("%s: Parse() = %d rows, problems %q, want line 3: %q", f.name, len(rows), ps, tc.want)
				}
				if strings.ContainsAny(ps[0], "\r\n") || len(ps[0]) > 400 {
					t.Fatalf("%s: problem %q prints control characters or the whole field", f.name, ps[0])
				}
			}
		})
	}
}

// TestParseNormalizesAddresses: a row's address is the platform's normal
// form (package address), so duplicates are found however they are
// written and the workflow ID, the domain and the directory agree.
func TestParseNormalizesAddresses(t *testing.T) {
	rows, probs, err := ParseCSV(strings.NewReader("address\nAlice@BÜCHER.example\n alice@bücher.example. \n"), Defaults{To: "emailpro-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Input.Address != "alice@xn--bcher-kva.example" {
		t.Fatalf("ParseCSV() rows = %+v, want alice@xn--bcher-kva.example", rows)
	}
	if ps := problemStrings(probs); len(ps) != 1 || ps[0] != "line 3 (alice@xn--bcher-kva.example): duplicate of line 2" {
		t.Fatalf("ParseCSV() problems = %q, want line 3 a duplicate of line 2", ps)
	}
}
