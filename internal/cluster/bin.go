package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/mailshift/mailshift/internal/testenv"
)

// BinDir returns the directory holding temporal-server and
// temporal-sql-tool: $MAILSHIFT_TEMPORAL_CLUSTER_BIN, or the one
// deploy/cluster/build.sh builds and caches.
func BinDir() (string, error) {
	if p := os.Getenv("MAILSHIFT_TEMPORAL_CLUSTER_BIN"); p != "" {
		return p, nil
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(root, "deploy/cluster/build.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("deploy/cluster/build.sh: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// TempDir makes a fresh directory for a cluster under the system's
// temporary directory, reachable by the postgres user (a test's own
// t.TempDir is not: its parent is mode 0700).
func TempDir() (string, error) {
	dir, err := os.MkdirTemp("", "mailshift-cluster-")
	if err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, 0o755)
}
