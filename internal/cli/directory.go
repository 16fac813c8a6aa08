package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/mailshift/mailshift/internal/address"
	"github.com/mailshift/mailshift/internal/directory"
)

// ImportHelp documents the import file: what `starter import --help` prints.
const ImportHelp = `usage: starter import FILE.json

Loads services, free slots, accounts and redirections into the directory
(--directory DSN or --dev-dir DIR). The file is one JSON object; every
section is optional; unknown fields are refused by name.

  services      a service definition, created or updated in place:
    id            the service's ID, used by plans (--to) and slots
    kind          mxplan (a source), emailpro or exchange (destinations)
    imapAddr      host:port of its IMAP server
    imapSecurity  tls, starttls or plain
    smtpAddr, webmailUrl                      optional
    mx            "preference host" pairs, comma-separated ("10 mx1.x.test, 20 mx2.x.test")
    spfInclude    host name the domain's SPF record includes
    autodiscover  CNAME target of autodiscover.<domain>
    maxMessageBytes  the largest message the service accepts (0: no limit)
  slots         a free account ordered on a destination service:
    service, placeholder (its temporary address), quotaBytes (> 0)
  accounts      a mailbox:
    address, service, quotaBytes, locale (optional, e.g. "fr"),
    and password (hashed on import, never stored) or passwordHash
    ("{SSHA256}..." with its scheme)
  redirections  a redirection, forward or auto-responder set on an address:
    address, kind (e.g. forward, redirection, auto-responder), target

Example:

  {
    "services": [
      {"id": "mxplan-1", "kind": "mxplan", "imapAddr": "imap.old.test:993", "imapSecurity": "tls"},
      {"id": "emailpro-1", "kind": "emailpro", "imapAddr": "pro1.test:993", "imapSecurity": "tls",
       "mx": "10 mx1.pro.test", "spfInclude": "_spf.pro.test", "maxMessageBytes": 52428800}
    ],
    "slots": [
      {"service": "emailpro-1", "placeholder": "x1@configureme.me", "quotaBytes": 5000000000}
    ],
    "accounts": [
      {"address": "zoe@example.com", "service": "mxplan-1", "password": "zoe-pw", "locale": "fr", "quotaBytes": 5000000000}
    ],
    "redirections": [
      {"address": "zoe@example.com", "kind": "auto-responder", "target": "on holiday"}
    ]
  }

Every row is checked first: when any is wrong, each problem is listed and
nothing is imported. What is already there (a slot's placeholder, an
account, the same redirection) is skipped, so the same file can be run again.
`

// Import loads a directory import file (services, slots, accounts,
// redirections) and prints what it did. Every row is checked before the
// first is written, so a wrong row imports nothing.
func (e *Env) Import(ctx context.Context, path string) error {
	dir, err := e.needDirectory(ctx, "import")
	if err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	problems, err := checkImport(ctx, dir, data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(e.Out, "problem: %s\n", p)
		}
		return fmt.Errorf("%s: %s; nothing imported (see starter import --help for the format)", path, count(len(problems), "problem"))
	}
	rep, err := dir.Import(ctx, bytes.NewReader(data))
	if rep != nil {
		fmt.Fprintf(e.Out, "imported %s, %s, %s, %s; %d already there\n", count(rep.Services, "service"), count(rep.Slots, "slot"),
			count(rep.Accounts, "account"), count(rep.Redirections, "redirection"), len(rep.Skipped))
	}
	if err != nil {
		return fmt.Errorf("%s: %w (the rows counted above were imported; fix the cause and run the same file again: what is there is skipped)", path, err)
	}
	return nil
}

// checkImport is the validation pass of an import: the file decoded as
// strictly as the import decodes it, then every row of every section
// checked, all problems listed. An error is a file that cannot be read as
// an import file at all.
func checkImport(ctx context.Context, dir *directory.Store, data []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f directory.ImportFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("import file: %w (nothing imported)", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("import file: more after the JSON object; want one object (nothing imported)")
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	defined := map[string]int{}
	for i, sv := range f.Services {
		if err := sv.Validate(); err != nil {
			bad("services[%d]: %v", i, err)
		}
		if j, ok := defined[sv.ID]; ok {
			bad("services[%d]: service %q is already defined at services[%d]", i, sv.ID, j)
		} else {
			defined[sv.ID] = i
		}
	}
	known := map[string]error{}
	service := func(id string) error {
		if _, ok := defined[id]; ok {
			return nil
		}
		if err, ok := known[id]; ok {
			return err
		}
		_, err := dir.Service(ctx, id)
		if errors.Is(err, directory.ErrNotFound) {
			err = fmt.Errorf("service %q is neither in the file nor in the directory", id)
		}
		known[id] = err
		return err
	}
	for i, sl := range f.Slots {
		if sl.Placeholder == "" || sl.Service == "" || sl.QuotaBytes <= 0 {
			bad("slots[%d]: service, placeholder and a positive quotaBytes are required", i)
			continue
		}
		if _, err := address.Normalize(sl.Placeholder); err != nil {
			bad("slots[%d]: placeholder: %v", i, err)
		}
		if err := service(sl.Service); err != nil {
			bad("slots[%d]: %v", i, err)
		}
	}
	for i, a := range f.Accounts {
		if _, err := address.Normalize(a.Address); err != nil {
			bad("accounts[%d]: address: %v", i, err)
		}
		switch {
		case a.PasswordHash == "" && a.Password == "":
			bad("accounts[%d] (%s): password or passwordHash is required", i, a.Address)
		case a.PasswordHash != "" && !strings.HasPrefix(a.PasswordHash, "{"):
			bad("accounts[%d] (%s): passwordHash must carry its scheme, like {SSHA256}", i, a.Address)
		}
		if a.QuotaBytes < 0 {
			bad("accounts[%d] (%s): quotaBytes is negative", i, a.Address)
		}
		if a.Service == "" {
			bad("accounts[%d] (%s): service is required", i, a.Address)
		} else if err := service(a.Service); err != nil {
			bad("accounts[%d] (%s): %v", i, a.Address, err)
		}
	}
	for i, rd := range f.Redirections {
		if rd.Address == "" || rd.Kind == "" {
			bad("redirections[%d]: address and kind are required", i)
			continue
		}
		if _, err := address.Normalize(rd.Address); err != nil {
			bad("redirections[%d]: address: %v", i, err)
		}
	}
	return problems, nil
}

// Redirections lists the redirections, forwards and auto-responders of an
// address and, with remove ("KIND:TARGET"), removes that one first: the
// operator's tool on the dev and lab platforms, where no control panel
// exists.
func (e *Env) Redirections(ctx context.Context, addr, remove, by string) error {
	dir, err := e.needDirectory(ctx, "redirections")
	if err != nil {
		return err
	}
	addr, err = address.Normalize(addr)
	if err != nil {
		return err
	}
	if remove != "" {
		kind, target, ok := strings.Cut(remove, ":")
		if !ok || kind == "" {
			return fmt.Errorf("--remove %q: want KIND:TARGET, as listed", remove)
		}
		n, err := dir.RemoveRedirection(ctx, addr, kind, target, by)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%s has no %s to %q; nothing removed (list them with: starter redirections %s)", addr, kind, target, addr)
		}
		fmt.Fprintf(e.Out, "removed %s %s to %s of %s\n", count(int(n), "redirection"), kind, target, addr)
	}
	reds, err := dir.Redirections(ctx, addr)
	if err != nil {
		return err
	}
	if len(reds) == 0 {
		fmt.Fprintf(e.Out, "%s has no redirection\n", addr)
		return nil
	}
	fmt.Fprintf(e.Out, "%s has %s (remove one with --remove KIND:TARGET):\n", addr, count(len(reds), "redirection"))
	tw := tabwriter.NewWriter(e.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  KIND\tTARGET\tREMOVE WITH")
	for _, r := range reds {
		fmt.Fprintf(tw, "  %s\t%s\t--remove '%s:%s'\n", r.Kind, r.Target, r.Kind, r.Target)
	}
	return tw.Flush()
}

// Slots prints the free slots of each destination service.
func (e *Env) Slots(ctx context.Context, service string) error {
	dir, err := e.needDirectory(ctx, "slots")
	if err != nil {
		return err
	}
	svs, err := dir.Services(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tKIND\tFREE SLOTS\tLARGEST QUOTA")
	for _, sv := range svs {
		if (service != "" && sv.ID != service) || sv.Kind == directory.KindMXPlan {
			continue
		}
		free, err := dir.FreeSlots(ctx, sv.ID, 0)
		if err != nil {
			return err
		}
		var largest int64
		for _, s := range free {
			largest = max(largest, s.QuotaBytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", sv.ID, sv.Kind, len(free), human(largest))
	}
	return tw.Flush()
}
