// Package config loads and validates the worker's configuration: one
// struct, from a JSON file, then environment, then flags (each overriding
// the one before). Secrets are read from files or the environment, never
// from flags that show in a process list, and never logged.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Zone is a DNS zone mailshift manages with RFC 2136 updates.
type Zone struct {
	Zone      string `json:"zone"`
	Primary   string `json:"primary"`
	KeyName   string `json:"keyName"`
	Algorithm string `json:"algorithm,omitempty"`
	// KeyFile holds the base64 TSIG secret.
	KeyFile string `json:"keyFile"`
}

// Config is the worker's configuration.
type Config struct {
	TemporalAddress string `json:"temporalAddress"`
	Namespace       string `json:"namespace"`
	TaskQueue       string `json:"taskQueue"`
	DirectoryDSN    string `json:"directory"`
	// TemporalTLS connects to the frontend over TLS: a client certificate
	// and key for mTLS, the authority that signed the frontend's
	// certificate, the name to check in it. Zero: plaintext.
	TemporalTLS TemporalTLS `json:"temporalTLS"`

	MasterUser string `json:"masterUser"`
	MasterSep  string `json:"masterSeparator"`
	// MasterPasswordFile holds the master password; MAILSHIFT_MASTER_PASSWORD
	// may give it instead.
	MasterPasswordFile string `json:"masterPasswordFile"`
	MasterPassword     string `json:"-"`

	// IMAPPlain allows services whose imapSecurity is plain: the master
	// password then crosses the network in clear, so it is off unless set.
	IMAPPlain bool `json:"imapPlain"`
	// IMAPInsecureSkipVerify turns off certificate checks (lab use only).
	IMAPInsecureSkipVerify bool `json:"imapInsecureSkipVerify"`
	// IMAPCAFile adds a PEM bundle of authorities (an internal CA) to the
	// system's for the IMAP servers' certificates.
	IMAPCAFile  string `json:"imapCAFile"`
	Connections int    `json:"connections"`
	// ServerBudgets caps the connections every worker together opens to
	// an IMAP service (by service ID); DefaultServerBudget applies to the
	// others (0: no cap). Copies wait for a share instead of flooding a
	// shared server.
	ServerBudgets       map[string]int `json:"serverBudgets"`
	DefaultServerBudget int            `json:"defaultServerBudget"`
	// WorkflowCache is how many workflows a worker keeps in memory between
	// their tasks (the SDK's sticky cache); the others are replayed from
	// their history when they wake. A plan of thousands of accounts keeps
	// most of them waiting in a budget's queue: caching them all is memory
	// spent on sleepers (1,000 cached migrations: 143 MB RSS).
	WorkflowCache int `json:"workflowCache"`

	DNSResolver  string   `json:"dnsResolver"`
	DNSPort      string   `json:"dnsPort"`
	DNSResolvers []string `json:"dnsResolvers"`
	// DNSOverride maps nameserver names to the host:port to query instead.
	DNSOverride  map[string]string `json:"dnsOverride"`
	ManagedZones []Zone            `json:"managedZones"`

	MetricsAddr string `json:"metricsAddr"`
	LogLevel    string `json:"logLevel"`
	LogFormat   string `json:"logFormat"`

	// CodecKeyFile holds payload encryption keys, one "id:base64key" per
	// line, the first used to encrypt.
	CodecKeyFile string `json:"codecKeyFile"`
	// CodecServerAddr serves the codec to the Temporal UI (e.g. :8081);
	// requests need the bearer token MAILSHIFT_CODEC_TOKEN.
	CodecServerAddr string `json:"codecServerAddr"`
	CodecUIOrigin   string `json:"codecUIOrigin"`
	CodecToken      string `json:"-"`

	// Notify configures operator notifications (notify.go).
	Notify Notify `json:"notify"`

	// Dev runs the embedded platform in-process.
	Dev    bool   `json:"dev"`
	DevDir string `json:"devDir"`
	// DevAccounts is the number of demo accounts the dev mode seeds.
	DevAccounts int `json:"devAccounts"`
	// DevMessages is the number of messages per demo account.
	DevMessages int `json:"devMessages"`
}

// Defaults returns the configuration before any source is read.
func Defaults() Config {
	return Config{TemporalAddress: "localhost:7233", Namespace: "default", TaskQueue: "mailshift",
		MasterSep: "*", Connections: 2, DefaultServerBudget: 20, WorkflowCache: 150, LogLevel: "info", LogFormat: "json", DevDir: ".mailshift-dev",
		DevAccounts: 8, DevMessages: 300}
}

// Load reads the configuration: defaults, then the JSON file named by
// -config or MAILSHIFT_CONFIG, then MAILSHIFT_* variables, then flags.
func Load(args []string, getenv func(string) string) (Config, error) {
	c := Defaults()
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	file := fs.String("config", getenv("MAILSHIFT_CONFIG"), "JSON configuration file")
	temporal := fs.String("temporal", "", "Temporal frontend host:port")
	ns := fs.String("namespace", "", "Temporal namespace")
	dir := fs.String("directory", "", "directory DSN: SQLite path or postgres:// URL")
	dev := fs.Bool("dev", false, "run the embedded platform (in-memory IMAP, SQLite directory, DNS) in-process")
	devDir := fs.String("dev-dir", "", "where --dev keeps its files")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on this address (e.g. :9090)")
	conns := fs.Int("connections", 0, "IMAP connection pairs per account copy")
	logLevel := fs.String("log-level", "", "debug, info, warn or error")
	logFormat := fs.String("log-format", "", "json or console")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("config file %s: %w", *file, err)
		}
	}
	env := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	env("MAILSHIFT_TEMPORAL_ADDRESS", &c.TemporalAddress)
	env("MAILSHIFT_NAMESPACE", &c.Namespace)
	c.TemporalTLS = c.TemporalTLS.FromEnv(getenv)
	env("MAILSHIFT_DIRECTORY", &c.DirectoryDSN)
	env("MAILSHIFT_MASTER_USER", &c.MasterUser)
	env("MAILSHIFT_MASTER_PASSWORD_FILE", &c.MasterPasswordFile)
	env("MAILSHIFT_MASTER_PASSWORD", &c.MasterPassword)
	env("MAILSHIFT_METRICS_ADDR", &c.MetricsAddr)
	env("MAILSHIFT_CODEC_KEY_FILE", &c.CodecKeyFile)
	env("MAILSHIFT_CODEC_TOKEN", &c.CodecToken)
	env("MAILSHIFT_NOTIFY_WEBHOOK_URL", &c.Notify.WebhookURL)
	env("MAILSHIFT_NOTIFY_WEBHOOK_SECRET", &c.Notify.WebhookSecret)
	env("MAILSHIFT_NOTIFY_SMTP_PASSWORD", &c.Notify.SMTPPassword)
	if v := getenv("MAILSHIFT_CONNECTIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("MAILSHIFT_CONNECTIONS=%q: not a number", v)
		}
		c.Connections = n
	}
	set := func(v string, dst *string) {
		if v != "" {
			*dst = v
		}
	}
	set(*temporal, &c.TemporalAddress)
	set(*ns, &c.Namespace)
	set(*dir, &c.DirectoryDSN)
	set(*devDir, &c.DevDir)
	set(*metrics, &c.MetricsAddr)
	set(*logLevel, &c.LogLevel)
	set(*logFormat, &c.LogFormat)
	if *conns != 0 {
		c.Connections = *conns
	}
	if *dev {
		c.Dev = true
	}
	if c.MasterPassword == "" && c.MasterPasswordFile != "" {
		b, err := os.ReadFile(c.MasterPasswordFile)
		if err != nil {
			return c, fmt.Errorf("master password file: %w", err)
		}
		c.MasterPassword = strings.TrimSpace(string(b))
	}
	if err := c.Notify.readSecrets(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.TemporalAddress); err != nil {
		errs = append(errs, fmt.Errorf("temporalAddress %q: want host:port", c.TemporalAddress))
	}
	if c.Namespace == "" {
		errs = append(errs, errors.New("namespace: empty"))
	}
	if err := c.TemporalTLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.DefaultServerBudget < 0 {
		errs = append(errs, fmt.Errorf("defaultServerBudget = %d: want 0 (no cap) or more", c.DefaultServerBudget))
	}
	if c.WorkflowCache < 0 {
		errs = append(errs, fmt.Errorf("workflowCache = %d: want 0 (the SDK's default, 10,000) or more", c.WorkflowCache))
	}
	for id, n := range c.ServerBudgets {
		if n < 1 {
			errs = append(errs, fmt.Errorf("serverBudgets[%q] = %d: want at least 1", id, n))
		}
	}
	if c.Connections < 1 || c.Connections > 8 {
		errs = append(errs, fmt.Errorf("connections = %d: want 1 to 8 (servers allow about 10 per user and IP)", c.Connections))
	}
	if !c.Dev {
		if c.DirectoryDSN == "" {
			errs = append(errs, errors.New("directory: required (SQLite path or postgres:// URL), or run with --dev"))
		}
		if c.MasterUser == "" {
			errs = append(errs, errors.New("masterUser: required (MAILSHIFT_MASTER_USER)"))
		}
		if c.MasterPassword == "" {
			errs = append(errs, errors.New("master password: set masterPasswordFile or MAILSHIFT_MASTER_PASSWORD"))
		}
	}
	for i, z := range c.ManagedZones {
		if z.Zone == "" || z.Primary == "" {
			errs = append(errs, fmt.Errorf("managedZones[%d]: zone and primary are required", i))
		}
		if _, _, err := net.SplitHostPort(z.Primary); z.Primary != "" && err != nil {
			errs = append(errs, fmt.Errorf("managedZones[%d].primary %q: want host:port", i, z.Primary))
		}
		if z.KeyName != "" && z.KeyFile == "" {
			errs = append(errs, fmt.Errorf("managedZones[%d]: keyName %q needs keyFile", i, z.KeyName))
		}
	}
	if c.CodecServerAddr != "" && (c.CodecKeyFile == "" || c.CodecToken == "") {
		errs = append(errs, errors.New("codecServerAddr needs codecKeyFile and MAILSHIFT_CODEC_TOKEN"))
	}
	errs = append(errs, c.Notify.validate()...)
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("metricsAddr %q: want host:port or :port", c.MetricsAddr))
		}
	}
	return errors.Join(errs...)
}
