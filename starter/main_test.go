package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOperatorInputRefusedBeforeConnecting: operator text and plan IDs are
// checked by the starter itself, so a bad one is refused with a clear error
// before it reaches Temporal (nothing listens on the Temporal address here).
func TestOperatorInputRefusedBeforeConnecting(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plan.csv")
	if err := os.WriteFile(file, []byte("address,to\nalice@example.com,emailpro-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cancel", "alice@example.com", "--by", strings.Repeat("b", 201)}, `"--by" is 201 bytes long; at most 200`},
		{[]string{"confirm", "alice@example.com", "--by", "ops\r\nX-Injected: 1"}, `"--by" contains a control character`},
		{[]string{"rollback", "alice@example.com", "--by", "ops", "--reason", strings.Repeat("r", 2001)}, `"--reason" is 2001 bytes long; at most 2000`},
		{[]string{"retry", "--plan", "wave-1", "--reason", "fixed \xff"}, `"--reason" is not valid UTF-8`},
		{[]string{"cancel", "--plan", "wave'x"}, `--plan: plan ID "wave'x": character '\''`},
		{[]string{"status", "--plan", `wave\`}, `--plan: plan ID "wave\\"`},
		{[]string{"watch", "--plan", strings.Repeat("w", 3000)}, "plan ID is 3000 bytes long; at most 100"},
		{[]string{"report", "--plan", "w\xffve"}, "not valid UTF-8"},
		{[]string{"start", "alice@example.com", "--to", "emailpro-1", "--plan", "wave x"}, "--plan: plan ID"},
		{[]string{"start", "a*b@example.com", "--to", "emailpro-1"}, `"*" is not allowed`},
		{[]string{"plan", file, "--plan-id", "wave'x"}, "--plan-id: plan ID"},
		{[]string{"set-window", "alice@example.com"}, "set-window: want --window"},
		{[]string{"set-window", "alice@example.com", "--window", "25:00-06:00 Europe/Paris"}, "--window:"},
		{[]string{"set-window", "alice@example.com", "--window", "22:00-06:00 Mars/Olympus"}, "--window:"},
		{[]string{"cutover-now", "alice@example.com", "--window", "22:00-06:00 Europe/Paris"}, "flag provided but not defined: -window"},
		{[]string{"pause", "--plan", "wave'x"}, "--plan: plan ID"},
		{[]string{"resume"}, "resume: want --plan ID"},
		{[]string{"pause", "alice@example.com", "--plan", "wave-1"}, "pause: want --plan ID (and nothing else)"},
	} {
		args := append([]string{"--temporal", "127.0.0.1:1"}, tc.args...)
		err := run(args, &bytes.Buffer{}, func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("starter %.60q = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestImportHelpDocumentsTheFormat: import --help prints the file format
// with an example, without a directory or Temporal.
func TestImportHelpDocumentsTheFormat(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"import", "--help"}, &out, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"usage: starter import FILE.json", `"services": [`, `"placeholder": "x1@configureme.me"`, "nothing is imported"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("import --help lacks %q:\n%s", want, out.String())
		}
	}
}
