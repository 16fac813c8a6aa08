// Package cluster runs a production-shaped Temporal cluster in the lab: the
// Temporal server built from its Go module (deploy/cluster/build.sh), its
// schema and SQL visibility schema laid on a private PostgreSQL by the
// server's own temporal-sql-tool, one process per service (frontend,
// history, matching, worker) from one configuration file, mailshift's
// search attributes registered, and mTLS between clients and the frontend
// with certificates from a throwaway CA. Services can be killed, stopped
// and started again one by one, which is what the reliability suite does
// to them.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/testenv"
)

// Services are the Temporal services, one process each, in start order.
var Services = []string{"history", "matching", "frontend", "worker"}

// SearchAttributes are mailshift's custom search attributes.
var SearchAttributes = []string{"MigrationPlan", "MigrationDomain", "MigrationStage"}

// Options shape a cluster.
type Options struct {
	// Dir holds the configuration, certificates, logs, PostgreSQL's data
	// and the state file; it is created when missing.
	Dir string
	// Bin holds temporal-server and temporal-sql-tool.
	Bin string
	// Shards is numHistoryShards (default 4). It cannot change once the
	// schema holds shards.
	Shards int
	// Namespace is registered with Retention (defaults "default", 72h).
	Namespace string
	Retention time.Duration
	// LogLevel of the services (default warn).
	LogLevel string
}

// State is what a started cluster leaves in Dir/cluster.json, so another
// process (cluster.sh stop, status) can find it.
type State struct {
	Frontend  string         `json:"frontend"`
	Namespace string         `json:"namespace"`
	Ports     map[string]int `json:"ports"`
	PIDs      map[string]int `json:"pids"`
	PGPort    int            `json:"pgPort"`
	Certs     Certs          `json:"certs"`
	Bin       string         `json:"bin"`
}

// Cluster is a running cluster.
type Cluster struct {
	Dir   string
	State State
	pg    *postgres
	mu    sync.Mutex
	cmds  map[string]*exec.Cmd
}

// Frontend is the frontend's host:port (mTLS).
func (c *Cluster) Frontend() string { return c.State.Frontend }

// ClientTLS is what mailshift's worker and starter need to reach the
// frontend.
func (c *Cluster) ClientTLS() config.TemporalTLS {
	return config.TemporalTLS{CertFile: c.State.Certs.ClientCert, KeyFile: c.State.Certs.ClientKey, CAFile: c.State.Certs.CA, ServerName: "localhost"}
}

// Dial connects an SDK client to the frontend with the client certificate.
func (c *Cluster) Dial(logger log.Logger) (client.Client, error) {
	tlsCfg, err := c.ClientTLS().Config()
	if err != nil {
		return nil, err
	}
	opts := client.Options{HostPort: c.State.Frontend, Namespace: c.State.Namespace, Logger: logger}
	opts.ConnectionOptions.TLS = tlsCfg
	return client.Dial(opts)
}

// Start lays out a fresh cluster in o.Dir and starts it: PostgreSQL, the
// schemas, the four services, the namespace and the search attributes.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Shards == 0 {
		o.Shards = 4
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Retention == 0 {
		o.Retention = 72 * time.Hour
	}
	if o.LogLevel == "" {
		o.LogLevel = "warn"
	}
	for _, b := range []string{"temporal-server", "temporal-sql-tool"} {
		if _, err := os.Stat(filepath.Join(o.Bin, b)); err != nil {
			return nil, fmt.Errorf("%s is not built: run deploy/cluster/build.sh (%w)", b, err)
		}
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "cluster.json")); err == nil {
		return nil, fmt.Errorf("%s already holds a cluster (cluster.json): stop it and remove the directory first", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// PostgreSQL runs as its own user and must reach its data directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, cmds: map[string]*exec.Cmd{}}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	if c.State.Certs, err = WriteCerts(filepath.Join(dir, "certs"), "localhost"); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	c.State.Namespace, c.State.Bin = o.Namespace, o.Bin
	c.State.Ports = map[string]int{}
	for _, name := range []string{"frontend", "frontend.http", "frontend.membership", "history", "history.membership",
		"matching", "matching.membership", "worker", "worker.membership"} {
		if c.State.Ports[name], err = testenv.PickPort(); err != nil {
			return nil, err
		}
	}
	c.State.Frontend = "127.0.0.1:" + strconv.Itoa(c.State.Ports["frontend"])
	if c.pg, err = startPostgres(filepath.Join(dir, "pg")); err != nil {
		return nil, err
	}
	c.State.PGPort = c.pg.port
	if err := c.save(); err != nil {
		return nil, err
	}
	if err := c.setupSchema(ctx); err != nil {
		return nil, err
	}
	if err := c.writeConfig(o); err != nil {
		return nil, err
	}
	for _, s := range Services {
		if err := c.StartService(s); err != nil {
			return nil, err
		}
	}
	if err := c.registerNamespace(ctx, o); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// Attach finds the cluster a Start in dir left running (in another
// process).
func Attach(dir string) (*Cluster, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if err != nil {
		return nil, fmt.Errorf("no cluster in %s: %w", dir, err)
	}
	c := &Cluster{Dir: dir, cmds: map[string]*exec.Cmd{}}
	if err := json.Unmarshal(b, &c.State); err != nil {
		return nil, fmt.Errorf("%s/cluster.json: %w", dir, err)
	}
	c.pg = attachPostgres(filepath.Join(dir, "pg"), c.State.PGPort)
	return c, nil
}

func (c *Cluster) save() error {
	c.mu.Lock()
	b, err := json.MarshalIndent(c.State, "", "  ")
	c.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.Dir, "cluster.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(c.Dir, "cluster.json"))
}

func (c *Cluster) sqlTool(ctx context.Context, db string, args ...string) error {
	base := []string{"--endpoint", "127.0.0.1", "--port", strconv.Itoa(c.pg.port), "--user", "mailshift", "--plugin", "postgres12", "--database", db}
	cmd := exec.CommandContext(ctx, filepath.Join(c.State.Bin, "temporal-sql-tool"), append(base, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("temporal-sql-tool %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// setupSchema creates both databases and brings them to the schema version
// the server build embeds.
func (c *Cluster) setupSchema(ctx context.Context) error {
	for _, db := range []struct{ name, schema string }{{"temporal", "postgresql/v12/temporal"}, {"temporal_visibility", "postgresql/v12/visibility"}} {
		if err := c.sqlTool(ctx, db.name, "create-database"); err != nil {
			return err
		}
		if err := c.sqlTool(ctx, db.name, "setup-schema", "-v", "0.0"); err != nil {
			return err
		}
		if err := c.sqlTool(ctx, db.name, "update-schema", "--schema-name", db.schema); err != nil {
			return err
		}
	}
	return nil
}

// StartService starts one service's process (again).
func (c *Cluster) StartService(name string) error {
	logf, err := os.OpenFile(filepath.Join(c.Dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(c.State.Bin, "temporal-server"), "--root", c.Dir, "--config", "config", "--env", "cluster",
		"--allow-no-auth", "start", "--service", name)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C meant for the caller does not reach
	// it, and cluster.sh can leave it running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.mu.Lock()
	c.cmds[name] = cmd
	if c.State.PIDs == nil {
		c.State.PIDs = map[string]int{}
	}
	c.State.PIDs[name] = cmd.Process.Pid
	c.mu.Unlock()
	go func() { _ = cmd.Wait() }()
	if err := c.save(); err != nil {
		return err
	}
	return c.waitListening(name, 60*time.Second)
}

// waitListening waits until the service accepts connections on its gRPC
// port, or its process has exited.
func (c *Cluster) waitListening(name string, limit time.Duration) error {
	port := c.State.Ports[name]
	if name == "worker" {
		// The worker service serves no gRPC; it joins the membership ring.
		port = c.State.Ports[name+".membership"]
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if !c.Alive(name) {
			return fmt.Errorf("%s exited; the end of %s:\n%s", name, filepath.Join(c.Dir, name+".log"), tail(filepath.Join(c.Dir, name+".log"), 2000))
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s does not listen on %s after %s; see %s", name, addr, limit, filepath.Join(c.Dir, name+".log"))
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Alive tells whether the service's process runs.
func (c *Cluster) Alive(name string) bool {
	c.mu.Lock()
	pid := c.State.PIDs[name]
	cmd := c.cmds[name]
	c.mu.Unlock()
	if pid == 0 {
		return false
	}
	if cmd != nil && cmd.ProcessState != nil {
		return false
	}
	// A zombie child still answers signal 0: look at its state.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// StopService stops a service's process with sig (SIGTERM: a graceful
// stop; SIGKILL: a crash) and waits for it to be gone.
func (c *Cluster) StopService(name string, sig syscall.Signal) error {
	c.mu.Lock()
	pid := c.State.PIDs[name]
	c.mu.Unlock()
	if pid == 0 {
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s: %w", name, err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for c.Alive(name) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(10 * time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.mu.Lock()
	delete(c.State.PIDs, name)
	delete(c.cmds, name)
	c.mu.Unlock()
	return c.save()
}

// RestartService stops a service with sig and starts it again.
func (c *Cluster) RestartService(name string, sig syscall.Signal) error {
	if err := c.StopService(name, sig); err != nil {
		return err
	}
	return c.StartService(name)
}

// RestartPostgres stops the cluster's PostgreSQL abruptly (no shutdown
// checkpoint, like a crash) and starts it again on the same data, while
// the services keep running.
func (c *Cluster) RestartPostgres() error { return c.pg.restart() }

// Stop stops every service, then PostgreSQL. The directory stays.
func (c *Cluster) Stop() {
	for i := len(Services) - 1; i >= 0; i-- {
		_ = c.StopService(Services[i], syscall.SIGTERM)
	}
	if c.pg != nil {
		c.pg.stop()
	}
}

// Health reports every service process and whether the frontend answers
// a namespace description over mTLS.
func (c *Cluster) Health(ctx context.Context) error {
	var errs []error
	for _, s := range Services {
		if !c.Alive(s) {
			errs = append(errs, fmt.Errorf("%s: not running", s))
		}
	}
	cl, err := c.Dial(quiet{})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("frontend %s: %w", c.State.Frontend, err))...)
	}
	defer cl.Close()
	if _, err := cl.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: c.State.Namespace}); err != nil {
		errs = append(errs, fmt.Errorf("namespace %s: %w", c.State.Namespace, err))
	}
	return errors.Join(errs...)
}

// registerNamespace registers the namespace and the search attributes,
// then waits until a visibility query that names them is answered: from
// then on, workflows can be started and listed by MigrationPlan.
func (c *Cluster) registerNamespace(ctx context.Context, o Options) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var cl client.Client
	var err error
	for {
		if cl, err = c.Dial(quiet{}); err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("dial the frontend: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	defer cl.Close()
	retry := func(what string, f func() error) error {
		for {
			err := f()
			if err == nil {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	err = retry("register namespace", func() error {
		_, err := cl.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: o.Namespace,
			WorkflowExecutionRetentionPeriod: durationpb.New(o.Retention), Description: "mailshift migrations"})
		var exists *serviceerror.NamespaceAlreadyExists
		if errors.As(err, &exists) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	sas := map[string]enums.IndexedValueType{}
	for _, name := range SearchAttributes {
		sas[name] = enums.INDEXED_VALUE_TYPE_KEYWORD
	}
	err = retry("add search attributes", func() error {
		_, err := cl.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: o.Namespace, SearchAttributes: sas})
		var exists *serviceerror.AlreadyExists
		if errors.As(err, &exists) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	return retry("list by MigrationPlan", func() error {
		_, err := cl.WorkflowService().ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: o.Namespace,
			Query: `MigrationPlan = "probe" AND MigrationStage = "done" AND MigrationDomain = "example.com"`})
		return err
	})
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
