package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/mailshift/mailshift/internal/testenv"
)

// postgres is the cluster's own PostgreSQL, in Dir/pg (as the postgres
// user when run as root, since PostgreSQL refuses to run as root).
type postgres struct {
	dir, data string
	port      int
}

func pgCmd(name string, args ...string) (*exec.Cmd, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return nil, fmt.Errorf("PostgreSQL is not installed: run deploy/lab/install.sh")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...), nil
	}
	return exec.Command(filepath.Join(bin, name), args...), nil
}

func runPG(name string, args ...string) error {
	cmd, err := pgCmd(name, args...)
	if err != nil {
		return err
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, out)
	}
	return nil
}

func startPostgres(dir string) (*postgres, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("chown: %v: %s", err, out)
		}
	}
	port, err := testenv.PickPort()
	if err != nil {
		return nil, err
	}
	p := &postgres{dir: dir, data: filepath.Join(dir, "data"), port: port}
	if err := runPG("initdb", "-D", p.data, "-A", "trust", "-U", "mailshift", "--no-sync"); err != nil {
		return nil, fmt.Errorf("%w (the postgres user must be able to reach %s)", err, dir)
	}
	return p, p.start()
}

func attachPostgres(dir string, port int) *postgres {
	return &postgres{dir: dir, data: filepath.Join(dir, "data"), port: port}
}

func (p *postgres) opts() string {
	// Four services with their connection pools need more than the default
	// 100 connections.
	return "-p " + strconv.Itoa(p.port) + " -k " + p.dir + " -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off"
}

func (p *postgres) start() error {
	if err := runPG("pg_ctl", "-D", p.data, "-o", p.opts(), "-l", filepath.Join(p.dir, "log"), "-w", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		return fmt.Errorf("%w\n%s", err, log)
	}
	return nil
}

func (p *postgres) stop() {
	_ = runPG("pg_ctl", "-D", p.data, "-m", "fast", "-w", "stop")
}

func (p *postgres) restart() error {
	if err := runPG("pg_ctl", "-D", p.data, "-m", "immediate", "-w", "stop"); err != nil {
		return err
	}
	return p.start()
}
