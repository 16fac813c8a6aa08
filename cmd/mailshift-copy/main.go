// Command mailshift-copy runs the copy engine alone between two IMAP
// accounts, the way operators use imapsync: it copies every folder and
// message, prints a per-folder table and the throughput, and can verify.
// Running it again copies only what is missing.
//
//	mailshift-copy --from imap.old.example:993 --from-user alice@example.com \
//	    --to imap.new.example:993 --to-user alice@example.com --verify
//
// Passwords come from MAILSHIFT_FROM_PASSWORD / MAILSHIFT_TO_PASSWORD or
// --from-password-file / --to-password-file, never from the command line.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/procstat"
	"github.com/mailshift/mailshift/internal/profiling"
)

// Exit codes: 0 when every message was copied or reported (skipped,
// preserved, altered items are listed, they are not failures); 1 when the
// run itself failed (a connection, a server down: run again to resume); 3
// for a permanent run-level error (credentials, quota, configuration); 4
// when --verify finds a message missing or duplicated.
const (
	exitRun       = 1
	exitPermanent = 3
	exitVerify    = 4
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mailshift-copy:", err)
		var ve verifyError
		switch {
		case errors.As(err, &ve):
			os.Exit(exitVerify)
		case isPermanent(err):
			os.Exit(exitPermanent)
		}
		os.Exit(exitRun)
	}
}

func isPermanent(err error) bool {
	_, perm := mailcopy.IsPermanent(err)
	return perm
}

// verifyError is a verification that found a message missing or
// duplicated.
type verifyError struct{ msg string }

func (e verifyError) Error() string { return e.msg }

type side struct {
	addr, user, master, security, pwFile, pwEnv string
	insecure                                    bool
	caFile                                      string
}

func (s *side) flags(fs *flag.FlagSet, name string) {
	fs.StringVar(&s.addr, name, "", name+" server host:port")
	fs.StringVar(&s.user, name+"-user", "", "account on the "+name+" server")
	fs.StringVar(&s.master, name+"-master", "", "log in as this master user on behalf of the account (user*master)")
	fs.StringVar(&s.security, name+"-security", "tls", "tls, starttls or plain")
	fs.StringVar(&s.pwFile, name+"-password-file", "", "file holding the password (else $"+s.pwEnv+")")
	fs.BoolVar(&s.insecure, name+"-insecure", false, "do not check the server's certificate")
	fs.StringVar(&s.caFile, name+"-ca", "", "PEM file of authorities to trust for the server's certificate, besides the system's")
}

func (s *side) endpoint() (mailcopy.Endpoint, error) {
	if s.addr == "" || s.user == "" {
		return mailcopy.Endpoint{}, errors.New("both servers and users are required (--from, --from-user, --to, --to-user)")
	}
	pw := os.Getenv(s.pwEnv)
	if s.pwFile != "" {
		b, err := os.ReadFile(s.pwFile)
		if err != nil {
			return mailcopy.Endpoint{}, err
		}
		pw = strings.TrimSpace(string(b))
	}
	if pw == "" {
		return mailcopy.Endpoint{}, fmt.Errorf("no password for %s: set $%s or a password file", s.user, s.pwEnv)
	}
	ep := mailcopy.Endpoint{Addr: s.addr, Security: mailcopy.Security(s.security), InsecureSkipVerify: s.insecure,
		User: s.user, MasterUser: s.master, Password: pw}
	if s.caFile != "" {
		pool, err := mailcopy.LoadCAs(s.caFile)
		if err != nil {
			return mailcopy.Endpoint{}, err
		}
		ep.RootCAs = pool
	}
	return ep, nil
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func run() error {
	// A CPU profile of the whole run, for the benchmarks.
	stopProfile, err := profiling.StartCPU(os.Getenv("MAILSHIFT_CPUPROFILE"))
	if err != nil {
		return err
	}
	defer stopProfile()
	from := &side{pwEnv: "MAILSHIFT_FROM_PASSWORD"}
	to := &side{pwEnv: "MAILSHIFT_TO_PASSWORD"}
	fs := flag.NewFlagSet("mailshift-copy", flag.ContinueOnError)
	from.flags(fs, "from")
	to.flags(fs, "to")
	conns := fs.Int("connections", 2, "connection pairs (folders are split across them)")
	maxSize := fs.Int64("max-size", 0, "skip (and report) messages larger than this many bytes")
	verify := fs.Bool("verify", false, "verify every message by content afterwards")
	locale := fs.String("locale", "en", "the owner's language (en, fr, de, es, it): names the folder of preserved messages")
	jsonOut := fs.String("json", "", "also write the result (folders, items, counts; no content) as JSON to this file")
	state := fs.String("state", "", "file keeping the checkpoints and message map between runs (optional: without it, a rerun matches by content)")
	var include, exclude list
	fs.Var(&include, "include", "copy only folders matching this glob (repeatable)")
	fs.Var(&exclude, "exclude", "skip folders matching this glob (repeatable)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	src, err := from.endpoint()
	if err != nil {
		return err
	}
	dst, err := to.endpoint()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := mailcopy.Options{Connections: *conns, MaxMessageBytes: *maxSize, Locale: *locale,
		Folders: mailcopy.MapOptions{Include: include, Exclude: exclude}}
	if *state != "" {
		if b, err := os.ReadFile(*state); err == nil {
			if err := json.Unmarshal(b, &opts.Checkpoints); err != nil {
				return fmt.Errorf("state file %s: %w", *state, err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		opts.OnProgress = func(p mailcopy.Progress) { lastCheckpoints = p.Checkpoints }
	}
	start := time.Now()
	res, err := mailcopy.Copy(ctx, src, dst, opts)
	if *state != "" {
		cps := lastCheckpoints
		if res != nil {
			cps = res.Checkpoints
		}
		if cps != nil {
			if b, jerr := json.Marshal(cps); jerr == nil {
				if werr := os.WriteFile(*state, b, 0o600); werr != nil && err == nil {
					err = werr
				}
			}
		}
	}
	if err != nil {
		return err
	}
	el := time.Since(start)
	out := jsonResult{Result: res}
	if !*verify {
		if err := writeJSON(*jsonOut, out); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tDESTINATION\tCOPIED\tPRESENT\tSKIPPED\tREPORTED\tBYTES\tNOTE")
	for _, f := range res.Folders {
		note := f.Note
		if f.Rescanned {
			note = strings.TrimSpace(note + " UIDVALIDITY changed: matched by content")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", f.Source, f.Dest, f.Copied, f.Present, len(f.Skipped), len(f.Reported), f.Bytes, note)
	}
	tw.Flush()
	for _, it := range res.Items() {
		printItem(it)
	}
	fmt.Printf("copied %d messages (%.1f MB), %d already present, %d skipped, %d reported in %.2fs: %.0f msg/s, %.1f MB/s, peak RSS %.0f MB\n",
		res.Copied, float64(res.Bytes)/1e6, res.Present, res.Skipped, res.Reported, el.Seconds(),
		float64(res.Copied)/el.Seconds(), float64(res.Bytes)/1e6/el.Seconds(), procstat.PeakRSSMB(0))
	if len(res.ByReason) > 0 {
		fmt.Printf("items by reason: %s\n", byReason(res.ByReason))
	}
	if *verify {
		opts.Reported = res.Items()
		opts.Checkpoints = res.Checkpoints
		v, err := mailcopy.Verify(ctx, src, dst, opts)
		if err != nil {
			return err
		}
		out.Verify = v
		if err := writeJSON(*jsonOut, out); err != nil {
			return err
		}
		fmt.Printf("verify (by content, %.2fs): %d checked: %d exact, %d stored altered by the destination, %d preserved, %d empty, %d reported not copied, %d missing, %d duplicated\n",
			v.Duration.Seconds(), v.Checked, v.Exact, v.Altered, v.Preserved, v.Empty, v.NotCopied, v.Missing, v.Duplicates)
		if !v.OK() {
			return verifyError{fmt.Sprintf("verify: %d of %d messages missing, %d duplicated: %s", v.Missing, v.Checked, v.Duplicates, v.MissingSummary())}
		}
		if v.NotCopied > 0 {
			fmt.Printf("verified: every source message is on the destination or reported; %d reported are NOT on the destination (listed above)\n", v.NotCopied)
		} else {
			fmt.Printf("verified: every source message is on the destination or reported\n")
		}
	}
	return nil
}

var lastCheckpoints map[string]mailcopy.Checkpoint

// jsonResult is what --json writes: the copy's result and, with --verify,
// the verification, so a script sees which messages verify called
// altered, preserved or missing.
type jsonResult struct {
	*mailcopy.Result
	Verify *mailcopy.VerifyResult `json:"verify,omitempty"`
}

func writeJSON(path string, r jsonResult) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func printItem(it mailcopy.Skip) {
	kind := "reported"
	if it.NotCopied() {
		kind = "skipped"
	}
	var extra []string
	if !it.Date.IsZero() {
		extra = append(extra, it.Date.UTC().Format(time.RFC3339))
	}
	if it.MessageID != "" {
		extra = append(extra, "Message-ID "+it.MessageID)
	}
	where := fmt.Sprintf("%q", it.Folder)
	if it.UID != 0 {
		where += fmt.Sprintf(" uid %d (%d bytes", it.UID, it.Size)
		if len(extra) > 0 {
			where += ", " + strings.Join(extra, ", ")
		}
		where += ")"
	}
	fmt.Printf("%s [%s]: %s: %s\n", kind, it.Category, where, it.Reason)
}

func byReason(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
