package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/testenv"
)

// freePort is a port nothing listens on right now, below the ephemeral
// range: the demo hands it to the Temporal server it starts.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := testenv.PickPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDemoHonoursPortsAndDevDir runs `make demo` on ports other than 7233
// and 8233 and in its own DEV_DIR (it once started the server there but
// pointed the worker and the starter at 7233 and printed the 8233 UI),
// keeps the stack, then `make demo-stop DEV_DIR=...` stops it.
func TestDemoHonoursPortsAndDevDir(t *testing.T) {
	// The demo finds the pinned Temporal CLI itself; building it here
	// first (when MAILSHIFT_TEMPORAL is not set) fails the test clearly
	// if it cannot be had.
	testenv.TemporalPath(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	port, ui := freePort(t), freePort(t)
	dev := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stop := func() string {
		out, err := exec.Command("make", "-C", root, "demo-stop", "DEV_DIR="+dev).CombinedOutput()
		if err != nil {
			t.Errorf("make demo-stop: %v\n%s", err, out)
		}
		return string(out)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "deploy/dev/demo.sh"))
	cmd.Env = append(os.Environ(), "DEV_DIR="+dev, "DEMO_KEEP=1", "TEMPORAL_PORT="+strconv.Itoa(port), "TEMPORAL_UI_PORT="+strconv.Itoa(ui))
	out, err := cmd.CombinedOutput()
	if err != nil {
		stop()
		log, _ := os.ReadFile(filepath.Join(dev, "worker.log"))
		t.Fatalf("demo.sh: %v\n%s\nworker log:\n%s", err, out, tail(string(log), 20))
	}
	text := string(out)
	pid, err := os.ReadFile(filepath.Join(dev, "temporal.pid"))
	if err != nil {
		t.Fatalf("no temporal.pid in DEV_DIR: %v\n%s", err, text)
	}
	for _, want := range []string{
		fmt.Sprintf("Temporal dev server on 127.0.0.1:%d, UI on http://localhost:%d", port, ui),
		"All 5 accounts migrated",
		fmt.Sprintf("http://localhost:%d/namespaces/default/workflows?query=MigrationPlan", ui),
		fmt.Sprintf("stack left running (UI http://localhost:%d); stop it with: make demo-stop DEV_DIR=%s", ui, dev),
	} {
		if !strings.Contains(text, want) {
			stop()
			t.Fatalf("demo output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "8233") || strings.Contains(text, "7233") {
		stop()
		t.Fatalf("demo output names a default port:\n%s", text)
	}
	if s := stop(); !strings.Contains(s, "stopped 2 process(es) of "+dev) {
		t.Fatalf("make demo-stop DEV_DIR=%s said:\n%s", dev, s)
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err := exec.Command("kill", "-0", strconv.Itoa(p)).Run(); err == nil {
		t.Fatalf("the dev server (pid %d) still runs after make demo-stop", p)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Fatalf("something still listens on %d", port)
	}
}
