package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// workflowCache defaults to 150, takes a file's value, and refuses a
// negative one with the setting's name.
func TestWorkflowCache(t *testing.T) {
	c, err := Load([]string{"-dev"}, func(string) string { return "" })
	if err != nil || c.WorkflowCache != 150 {
		t.Fatalf("default: workflowCache %d, %v; want 150", c.WorkflowCache, err)
	}
	dir := t.TempDir()
	for body, want := range map[string]string{`{"dev": true, "workflowCache": 40}`: "", `{"dev": true, "workflowCache": -1}`: "workflowCache = -1"} {
		file := filepath.Join(dir, "worker.json")
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load([]string{"-config", file}, func(string) string { return "" })
		switch {
		case want == "" && (err != nil || c.WorkflowCache != 40):
			t.Fatalf("%s: workflowCache %d, %v; want 40", body, c.WorkflowCache, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Fatalf("%s: error %v; want one naming %q", body, err, want)
		}
	}
}
