// Package testenv starts the real servers integration tests run against and
// reads mailboxes back for comparison. Tests never skip because a server is
// missing: they build or install it, or fail saying what is missing.
package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
)

// RepoRoot finds the module root.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// TemporalPath returns the pinned Temporal CLI: $MAILSHIFT_TEMPORAL, or the
// one deploy/dev/temporal.sh builds and caches.
func TemporalPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MAILSHIFT_TEMPORAL"); p != "" {
		return p
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(root, "deploy/dev/temporal.sh")).Output()
	if err != nil {
		t.Fatalf("deploy/dev/temporal.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// StartTemporal starts a Temporal dev server with mailshift's search
// attributes and returns a client to it; it stops with the test.
func StartTemporal(t testing.TB, dbFile string) (*testsuite.DevServer, client.Client) {
	t.Helper()
	srv, c, _ := startTemporal(t, dbFile, false)
	return srv, c
}

// StartTemporalUI is StartTemporal with the Temporal UI served too; it
// returns the UI's base URL.
func StartTemporalUI(t testing.TB) (*testsuite.DevServer, client.Client, string) {
	t.Helper()
	return startTemporal(t, "", true)
}

func startTemporal(t testing.TB, dbFile string, ui bool) (*testsuite.DevServer, client.Client, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := DevServerOptions(TemporalPath(t), fmt.Sprintf("127.0.0.1:%d", FreePort(t)), dbFile)
	var uiURL string
	if ui {
		port := FreePort(t)
		opts.EnableUI, opts.UIPort = true, fmt.Sprint(port)
		uiURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	srv, err := testsuite.StartDevServer(ctx, opts)
	if err != nil {
		t.Fatalf("start Temporal dev server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv, srv.Client(), uiURL
}

// DevServerOptions are a quiet Temporal dev server on hostPort (empty: a
// free one) with mailshift's search attributes registered (workflows.SAPlan,
// SADomain, SAStage; named here because testenv serves tests of packages
// that workflows imports), its history in dbFile (empty: in memory).
func DevServerOptions(temporalPath, hostPort, dbFile string) testsuite.DevServerOptions {
	var args []string
	for _, k := range []string{"MigrationPlan", "MigrationDomain", "MigrationStage"} {
		args = append(args, "--search-attribute", k+"=Keyword")
	}
	return testsuite.DevServerOptions{ExistingPath: temporalPath, ClientOptions: &client.Options{Logger: quiet{}, HostPort: hostPort},
		DBFilename: dbFile, LogLevel: "error", ExtraArgs: args, Stdout: io.Discard, Stderr: io.Discard}
}

type quiet struct{}

func (quiet) Debug(string, ...interface{}) {}
func (quiet) Info(string, ...interface{})  {}
func (quiet) Warn(string, ...interface{})  {}
func (quiet) Error(string, ...interface{}) {}

// Msg is a message as read back from a server.
type Msg struct {
	Hash  string
	Flags string
	Date  time.Time
	Size  int
}

// Mailbox is every folder's messages, sorted by hash.
type Mailbox map[string][]Msg

// Read logs in (plain IMAP) and reads every message of every folder.
func Read(addr, user, password string) (Mailbox, error) {
	return ReadNormalized(addr, user, password, nil)
}

// ReadNormalized is Read with each body passed through norm before hashing.
func ReadNormalized(addr, user, password string, norm func([]byte) []byte) (Mailbox, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Login(user, password).Wait(); err != nil {
		return nil, fmt.Errorf("login %s: %w", user, err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return nil, err
	}
	mb := Mailbox{}
	for _, l := range list {
		noSelect := false
		for _, a := range l.Attrs {
			if a == imap.MailboxAttrNoSelect {
				noSelect = true
			}
		}
		if noSelect {
			continue
		}
		sel, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return nil, fmt.Errorf("select %q: %w", l.Mailbox, err)
		}
		mb[l.Mailbox] = []Msg{}
		if sel.NumMessages == 0 {
			continue
		}
		msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, InternalDate: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			return nil, fmt.Errorf("fetch %q: %w", l.Mailbox, err)
		}
		for _, m := range msgs {
			var body []byte
			for _, b := range m.BodySection {
				body = b.Bytes
			}
			if norm != nil {
				body = norm(body)
			}
			sum := sha256.Sum256(body)
			var fl []string
			for _, f := range m.Flags {
				if !strings.EqualFold(string(f), `\Recent`) {
					fl = append(fl, strings.ToLower(string(f)))
				}
			}
			sort.Strings(fl)
			mb[l.Mailbox] = append(mb[l.Mailbox], Msg{Hash: hex.EncodeToString(sum[:]), Flags: strings.Join(fl, " "), Date: m.InternalDate.UTC(), Size: len(body)})
		}
		sort.Slice(mb[l.Mailbox], func(i, j int) bool { return mb[l.Mailbox][i].Hash < mb[l.Mailbox][j].Hash })
	}
	return mb, nil
}

// Count is the number of messages in the mailbox.
func (m Mailbox) Count() int {
	n := 0
	for _, l := range m {
		n += len(l)
	}
	return n
}

// Missing lists, per folder, the messages of src that dst lacks (by body
// hash, with flags and internal date), and messages dst has more than once
// beyond what src has. extra names dst messages allowed on top (notices).
func Missing(src, dst Mailbox) []string {
	var out []string
	for folder, msgs := range src {
		have := map[string]int{}
		byHash := map[string]Msg{}
		for _, m := range dst[folder] {
			have[m.Hash]++
			byHash[m.Hash] = m
		}
		for _, m := range msgs {
			if have[m.Hash] == 0 {
				out = append(out, fmt.Sprintf("%s: message %s (%d bytes) missing", folder, m.Hash[:12], m.Size))
				continue
			}
			have[m.Hash]--
			d := byHash[m.Hash]
			if d.Flags != m.Flags {
				out = append(out, fmt.Sprintf("%s: message %s flags %q, want %q", folder, m.Hash[:12], d.Flags, m.Flags))
			}
			if !d.Date.Equal(m.Date) {
				out = append(out, fmt.Sprintf("%s: message %s internal date %v, want %v", folder, m.Hash[:12], d.Date, m.Date))
			}
		}
	}
	return out
}

// Duplicates lists messages that dst holds more often than src.
func Duplicates(src, dst Mailbox) []string {
	var out []string
	for folder, msgs := range dst {
		want := map[string]int{}
		for _, m := range src[folder] {
			want[m.Hash]++
		}
		got := map[string]int{}
		for _, m := range msgs {
			got[m.Hash]++
		}
		for h, n := range got {
			if want[h] > 0 && n > want[h] {
				out = append(out, fmt.Sprintf("%s: message %s %d times, source has it %d times", folder, h[:12], n, want[h]))
			}
		}
	}
	return out
}

// HashOf is the hash Read gives a message body.
func HashOf(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// Extra lists dst messages that no src message accounts for (a truncated
// or foreign message).
func Extra(src, dst Mailbox) []string {
	var out []string
	for f, msgs := range dst {
		want := map[string]int{}
		for _, m := range src[f] {
			want[m.Hash]++
		}
		for _, m := range msgs {
			if want[m.Hash] == 0 {
				out = append(out, fmt.Sprintf("%s: unexpected message of %d bytes dated %v", f, m.Size, m.Date))
				continue
			}
			want[m.Hash]--
		}
	}
	return out
}

// StartPostgres starts a throwaway PostgreSQL cluster for one test.
func StartPostgres(t testing.TB) string {
	t.Helper()
	dsn, stop, err := StartPostgresCluster()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return dsn
}

// StartPostgresCluster starts a throwaway PostgreSQL cluster and returns
// its DSN and how to stop it.
func StartPostgresCluster() (string, func(), error) {
	pg, err := LaunchPostgres()
	if err != nil {
		return "", nil, err
	}
	return pg.DSN, pg.Stop, nil
}

// PG is a throwaway PostgreSQL cluster.
type PG struct {
	DSN  string
	data string
	dir  string
	opts string
	asPG func(name string, args ...string) *exec.Cmd
}

// Stop stops the cluster and removes its files.
func (p *PG) Stop() {
	_ = p.asPG("pg_ctl", "-D", p.data, "-m", "immediate", "-w", "stop").Run()
	os.RemoveAll(p.dir)
}

// Restart stops the cluster abruptly and starts it again on the same data.
func (p *PG) Restart() error {
	if out, err := p.asPG("pg_ctl", "-D", p.data, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	if out, err := p.asPG("pg_ctl", "-D", p.data, "-o", p.opts, "-l", filepath.Join(p.dir, "log"), "-w", "start").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	return nil
}

// LaunchPostgres starts a throwaway PostgreSQL cluster in a temporary
// directory (as the postgres user when run as root).
func LaunchPostgres() (*PG, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return nil, fmt.Errorf("PostgreSQL is not installed: run deploy/lab/install.sh (make test does)")
	}
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "mailshift-pg-")
	if err != nil {
		return nil, err
	}
	asPG := func(name string, args ...string) *exec.Cmd {
		if os.Geteuid() == 0 {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		}
		return exec.Command(filepath.Join(bin, name), args...)
	}
	fail := func(err error) (*PG, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			return fail(fmt.Errorf("chown: %v: %s", err, out))
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := asPG("initdb", "-D", data, "-A", "trust", "-U", "mailshift", "--no-sync").CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v: %s", err, out))
	}
	port, err := PickPort()
	if err != nil {
		return fail(err)
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir)
	if out, err := asPG("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return fail(fmt.Errorf("pg_ctl start: %v: %s\n%s", err, out, log))
	}
	return &PG{DSN: fmt.Sprintf("postgres://mailshift@127.0.0.1:%d/postgres?sslmode=disable", port), data: data, dir: dir, opts: opts, asPG: asPG}, nil
}

// FreePort returns a TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := PickPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
