package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeConfig writes Dir/config/cluster.yaml, the one configuration every
// service process reads (each starts with its own --service), and the
// dynamic configuration next to it.
func (c *Cluster) writeConfig(o Options) error {
	cdir := filepath.Join(c.Dir, "config")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return err
	}
	p := c.State.Ports
	ca, cert, key := c.State.Certs.CA, c.State.Certs.ServerCert, c.State.Certs.ServerKey
	store := func(db string, conns int) string {
		return fmt.Sprintf(`      sql:
        pluginName: postgres12
        databaseName: %s
        connectAddr: "127.0.0.1:%d"
        connectProtocol: tcp
        user: mailshift
        password: ""
        maxConns: %d
        maxIdleConns: %d
        maxConnLifetime: 1h
`, db, c.pg.port, conns, conns)
	}
	svc := func(name string) string {
		s := fmt.Sprintf("  %s:\n    rpc:\n      grpcPort: %d\n      membershipPort: %d\n      bindOnLocalHost: true\n", name, p[name], p[name+".membership"])
		if name == "frontend" {
			s += fmt.Sprintf("      httpPort: %d\n", p["frontend.http"])
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by mailshift's internal/cluster: one file for every service
# process (temporal-server --env cluster start --service NAME).
log:
  stdout: true
  level: %s

persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: %d
  datastores:
    default:
%s    visibility:
%s
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  tls:
    # Clients (mailshift's worker and starter, the CLI, the UI) must
    # present a certificate from the CA to reach the frontend.
    frontend:
      server:
        certFile: %q
        keyFile: %q
        requireClientAuth: true
        clientCaFiles: [%q]
      client:
        serverName: localhost
        rootCaFiles: [%q]
    # The internal worker service is a client of the frontend too.
    systemWorker:
      certFile: %q
      keyFile: %q
      client:
        serverName: localhost
        rootCaFiles: [%q]

services:
%s%s%s%s
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: %q

dcRedirectionPolicy:
  policy: noop

publicClient:
  hostPort: %q

dynamicConfigClient:
  filepath: %q
  pollInterval: 10s
`, o.LogLevel, o.Shards, store("temporal", 20), store("temporal_visibility", 10), cert, key, ca, ca, cert, key, ca,
		svc("frontend"), svc("history"), svc("matching"), svc("worker"), c.State.Frontend, c.State.Frontend,
		filepath.Join(cdir, "dynamicconfig.yaml"))
	if err := os.WriteFile(filepath.Join(cdir, "cluster.yaml"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	// Lab settings: a namespace and search attributes registered a moment
	// ago are seen at once instead of after the caches' refresh.
	dyn := `system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
system.namespaceCacheRefreshInterval:
  - value: 2s
limit.maxIDLength:
  - value: 255
`
	return os.WriteFile(filepath.Join(cdir, "dynamicconfig.yaml"), []byte(dyn), 0o644)
}
