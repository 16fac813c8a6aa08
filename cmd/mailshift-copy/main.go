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
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mailshift-copy:", err)
		if _, perm := mailcopy.IsPermanent(err); perm {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

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
	from := &side{pwEnv: "MAILSHIFT_FROM_PASSWORD"}
	to := &side{pwEnv: "MAILSHIFT_TO_PASSWORD"}
	fs := flag.NewFlagSet("mailshift-copy", flag.ContinueOnError)
	from.flags(fs, "from")
	to.flags(fs, "to")
	conns := fs.Int("connections", 2, "connection pairs (folders are split across them)")
	maxSize := fs.Int64("max-size", 0, "skip (and report) messages larger than this many bytes")
	verify := fs.Bool("verify", false, "verify every message by fingerprint afterwards")
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
	opts := mailcopy.Options{Connections: *conns, MaxMessageBytes: *maxSize,
		Folders: mailcopy.MapOptions{Include: include, Exclude: exclude}}
	start := time.Now()
	res, err := mailcopy.Copy(ctx, src, dst, opts)
	if err != nil {
		return err
	}
	el := time.Since(start)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tDESTINATION\tCOPIED\tPRESENT\tSKIPPED\tBYTES\tNOTE")
	for _, f := range res.Folders {
		note := f.Note
		if f.Rescanned {
			note = strings.TrimSpace(note + " UIDVALIDITY changed: matched by fingerprint")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", f.Source, f.Dest, f.Copied, f.Present, len(f.Skipped), f.Bytes, note)
	}
	tw.Flush()
	for _, f := range res.Folders {
		for _, s := range f.Skipped {
			fmt.Printf("skipped: %s uid %d (%d bytes): %s\n", s.Folder, s.UID, s.Size, s.Reason)
		}
	}
	fmt.Printf("copied %d messages (%.1f MB), %d already present, %d skipped in %.2fs: %.0f msg/s, %.1f MB/s, peak RSS %.0f MB\n",
		res.Copied, float64(res.Bytes)/1e6, res.Present, res.Skipped, el.Seconds(),
		float64(res.Copied)/el.Seconds(), float64(res.Bytes)/1e6/el.Seconds(), peakRSS())
	if *verify {
		v, err := mailcopy.Verify(ctx, src, dst, opts)
		if err != nil {
			return err
		}
		if !v.OK() {
			return fmt.Errorf("verify: %d of %d messages missing: %s", v.Missing, v.Checked, v.MissingSummary())
		}
		fmt.Printf("verified: all %d source messages are on the destination\n", v.Checked)
	}
	return nil
}

// peakRSS is this process's peak resident memory in MB (Linux).
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			var kb float64
			fmt.Sscan(f[1], &kb)
			return kb / 1024
		}
	}
	return 0
}
