package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/mailshift/mailshift/activities"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/sieve"
	"github.com/mailshift/mailshift/internal/testenv"
)

const owner = "alice@example.com"

// The owner's filters on the MX Plan server: the active script files list
// mail into a non-ASCII folder and invoices into a folder that does not
// exist; a second script needs imap4flags, which the destination lacks; a
// third is an auto-responder.
const (
	mainScript = "require [\"fileinto\", \"mailbox\"];\r\n" +
		"# Listes de diffusion\r\n" +
		"if header :contains \"List-Id\" \"debats.example.org\" {\r\n  fileinto \"Listes/Débats\";\r\n  stop;\r\n}\r\n" +
		"if header :contains \"Subject\" \"facture\" { fileinto :create \"Nulle part\"; }\r\n"
	flagsScript = "require \"imap4flags\";\r\nif header :contains \"Subject\" \"urgent\" { addflag \"\\\\Flagged\"; }\r\n"
	awayScript  = "require \"vacation\";\r\nvacation :days 7 \"Je suis absente.\";\r\n"
)

// sieveLab is the lab pair with Pigeonhole on both servers; the
// destination lacks the imap4flags extension.
func sieveLab(t *testing.T) (*lab, *activities.Activities) {
	t.Helper()
	return sieveLabWith(t, false)
}

// sieveLabWith is sieveLab, with TLS on both servers (ManageSieve then
// offers STARTTLS, and the services say "starttls") when tls is set.
func sieveLabWith(t *testing.T, tls bool) (*lab, *activities.Activities) {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "directory.db")
	dir, err := directory.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	srcPort, dstPort := testenv.FreePort(t), testenv.FreePort(t)
	sec := "plain"
	if tls {
		sec = "starttls"
	}
	for _, sv := range []directory.Service{
		{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: addrOf(srcPort), IMAPSecurity: sec},
		{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: addrOf(dstPort), IMAPSecurity: sec},
	} {
		if err := dir.AddService(ctx, sv); err != nil {
			t.Fatal(err)
		}
	}
	// The destination account as the slot becomes once configured.
	for _, sv := range []string{"mxplan-1", "emailpro-1"} {
		if err := dir.AddAccount(ctx, directory.Account{Address: owner, ServiceID: sv, Locale: "fr"}, directory.HashPassword("alice-pw")); err != nil {
			t.Fatal(err)
		}
	}
	mh := directory.HashPassword(masterPW)
	src := testenv.StartDovecot(t, testenv.DovecotOptions{Name: "mxplan", Directory: dbPath, Services: []string{"mxplan-1"},
		MasterUser: "mailshift", MasterHash: mh, Port: srcPort, Sieve: true, TLS: tls})
	dst := testenv.StartDovecot(t, testenv.DovecotOptions{Name: "emailpro", Directory: dbPath, Services: []string{"emailpro-1"},
		Separator: ".", Prefix: "INBOX.", MasterUser: "mailshift", MasterHash: mh, Port: dstPort, Sieve: true, SieveExtensions: "-imap4flags", TLS: tls})
	for sv, addr := range map[string]string{"mxplan-1": src.SieveAddr, "emailpro-1": dst.SieveAddr} {
		if err := dir.SetSieveAddr(ctx, sv, addr); err != nil {
			t.Fatal(err)
		}
	}
	acts := &activities.Activities{Dir: dir, Mail: mailcopy.Engine{},
		Master: activities.Master{User: "mailshift", Password: masterPW, Plain: true}}
	if tls {
		pool := x509.NewCertPool()
		for _, f := range []string{src.CAFile, dst.CAFile} {
			pem, err := os.ReadFile(f)
			if err != nil || !pool.AppendCertsFromPEM(pem) {
				t.Fatalf("CA file %s: %v", f, err)
			}
		}
		acts.Master.RootCAs = pool
	}
	return &lab{dbPath: dbPath, dir: dir, src: src, dst: dst}, acts
}

// ownerSieve logs in to a ManageSieve server as the owner, as a mail
// client's filter editor does.
func ownerSieve(t *testing.T, addr string) *sieve.Client {
	t.Helper()
	c, err := sieve.Dial(context.Background(), sieve.Endpoint{Addr: addr, Security: sieve.SecurityPlain, User: owner, Password: "alice-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestFiltersArriveWithTheMailbox: the owner's scripts are read from the
// MX Plan server, the folder their rule names follows the copy's folder
// map, the script is installed and active on the E-mail Pro server, and a
// message delivered there by dovecot-lda lands in that folder. The script
// the destination refuses is reported in the server's words, the
// auto-responder by the platform's rule; a second run changes nothing.
func TestFiltersArriveWithTheMailbox(t *testing.T) {
	l, acts := sieveLab(t)
	seed := imapLogin(t, l.src.Addr, owner, "alice-pw")
	if err := seed.Create("Listes/Débats", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	seed.Close()
	sc := ownerSieve(t, l.src.SieveAddr)
	for name, body := range map[string]string{"principal": mainScript, "drapeaux": flagsScript, "absence": awayScript} {
		if err := sc.PutScript(name, body); err != nil {
			t.Fatalf("source PutScript(%s) = %v\n%s", name, err, l.src.Log())
		}
	}
	if err := sc.SetActive("principal"); err != nil {
		t.Fatal(err)
	}

	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(acts.CopyMailbox, activities.CopyInput{Address: owner, From: "mxplan-1", To: "emailpro-1"})
	if err != nil {
		t.Fatalf("CopyMailbox: %v\n%s", err, l.dst.Log())
	}
	var copied activities.CopySummary
	if err := v.Get(&copied); err != nil {
		t.Fatal(err)
	}
	in := activities.FiltersInput{Address: owner, From: "mxplan-1", To: "emailpro-1", Folders: copied.Folders}
	want := activities.FiltersResult{
		Scripts: []activities.ScriptReport{
			{Name: "absence", Refused: "auto-responder (vacation): the platform accepts no auto-responder; remove it from the script and migrate the filters again"},
			{Name: "drapeaux"},
			{Name: "principal", Active: true, Installed: true,
				Renamed:  []activities.FolderRename{{From: "Listes/Débats", To: "INBOX.Listes.Débats"}},
				Unmapped: []string{"Nulle part"}},
		},
		Active: "principal", Installed: 1, Refused: 2,
	}
	for run := 1; run <= 2; run++ {
		v, err := env.ExecuteActivity(acts.CopyFilters, in)
		if err != nil {
			t.Fatalf("CopyFilters run %d: %v\n%s", run, err, l.dst.Log())
		}
		var got activities.FiltersResult
		if err := v.Get(&got); err != nil {
			t.Fatal(err)
		}
		t.Logf("run %d: %+v", run, got)
		// The destination's words for the script it refuses.
		refusal := got.Scripts[1].Refused
		if !strings.Contains(refusal, "imap4flags") {
			t.Fatalf("run %d: drapeaux refused with %q, want the server's words naming imap4flags", run, refusal)
		}
		got.Scripts[1].Refused = ""
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("run %d: CopyFilters() = %+v, want %+v", run, got, want)
		}
	}

	dc := ownerSieve(t, l.dst.SieveAddr)
	scripts, err := dc.ListScripts()
	if err != nil || !reflect.DeepEqual(scripts, []sieve.Script{{Name: "principal", Active: true}}) {
		t.Fatalf("destination ListScripts() = %+v, %v; want principal, active, alone", scripts, err)
	}
	body, err := dc.GetScript("principal")
	if err != nil || body != strings.Replace(mainScript, `"Listes/Débats"`, `"INBOX.Listes.Débats"`, 1) {
		t.Fatalf("destination GetScript() = %q, %v", body, err)
	}

	// Delivery on the destination runs the script.
	msg := "From: bob@example.org\r\nTo: " + owner + "\r\nSubject: ordre du jour\r\nList-Id: <debats.example.org>\r\nMessage-ID: <debat-1@example.org>\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\r\nBonjour.\r\n"
	deliverLDA(t, l.dst, owner, msg)
	c := imapLogin(t, l.dst.Addr, owner, "alice-pw")
	defer c.Close()
	for _, f := range []struct {
		name string
		want int
	}{{"INBOX.Listes.Débats", 1}, {"INBOX", 0}} {
		found := 0
		if _, err := c.Select(f.name, nil).Wait(); err != nil {
			t.Fatalf("select %s on the destination: %v", f.name, err)
		}
		res, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "debat-1@example.org"}}}, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		found = len(res.AllUIDs())
		if found != f.want {
			t.Fatalf("destination %s holds the delivered message %d times, want %d\n%s", f.name, found, f.want, l.dst.Log())
		}
	}
}

// TestFiltersAliasesMove: the aliases delivering to the address move to
// the destination service with it, once.
func TestFiltersAliasesMove(t *testing.T) {
	l, acts := sieveLab(t)
	ctx := context.Background()
	for _, a := range []string{"contact@example.com", "ventes@example.com"} {
		if err := l.dir.AddAlias(ctx, directory.Alias{Alias: a, Target: owner, ServiceID: "mxplan-1"}); err != nil {
			t.Fatal(err)
		}
	}
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	for run := 1; run <= 2; run++ {
		v, err := env.ExecuteActivity(acts.MoveAliases, activities.AliasesInput{Address: owner, To: "emailpro-1"})
		if err != nil {
			t.Fatal(err)
		}
		var got activities.AliasesResult
		if err := v.Get(&got); err != nil || !reflect.DeepEqual(got.Aliases, []string{"contact@example.com", "ventes@example.com"}) {
			t.Fatalf("run %d: MoveAliases() = %+v, %v", run, got, err)
		}
	}
	als, err := l.dir.AliasesOf(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range als {
		if a.ServiceID != "emailpro-1" {
			t.Fatalf("alias %s is on %s, want emailpro-1", a.Alias, a.ServiceID)
		}
	}
}

func imapLogin(t *testing.T, addr, user, pw string) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(user, pw).Wait(); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}

// deliverLDA delivers msg to user through the lab Dovecot's delivery
// agent, which runs the user's active Sieve script.
func deliverLDA(t *testing.T, d *testenv.Dovecot, user, msg string) {
	t.Helper()
	lda := "/usr/lib/dovecot/dovecot-lda"
	cmd := exec.Command(lda, "-c", filepath.Join(d.Dir, "dovecot.conf"), "-d", user, "-f", "bob@example.org")
	cmd.Stdin = strings.NewReader(msg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s\n%s", lda, err, out.String(), d.Log())
	}
}

// TestFiltersPreflightRefusesAutoResponder: an active script with a
// vacation action is an auto-responder, refused at preflight for good
// (naming the script and line); once the owner deactivates it, preflight
// lets the migration go on. The lab runs TLS: ManageSieve is reached with
// STARTTLS and the servers' CAs.
func TestFiltersPreflightRefusesAutoResponder(t *testing.T) {
	l, acts := sieveLabWith(t, true)
	sc := ownerSieve(t, l.src.SieveAddr)
	if err := sc.PutScript("absence", awayScript); err != nil {
		t.Fatal(err)
	}
	if err := sc.SetActive("absence"); err != nil {
		t.Fatal(err)
	}
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	in := activities.FiltersCheckInput{Address: owner, From: "mxplan-1"}
	_, err := env.ExecuteActivity(acts.CheckFilters, in)
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != activities.ErrTypeRedirection || !ae.NonRetryable() || !strings.Contains(ae.Error(), `"absence"`) || !strings.Contains(ae.Error(), "line 2") {
		t.Fatalf("CheckFilters() = %v, want a permanent %s naming the script and line", err, activities.ErrTypeRedirection)
	}
	if err := sc.SetActive(""); err != nil {
		t.Fatal(err)
	}
	if _, err := env.ExecuteActivity(acts.CheckFilters, in); err != nil {
		t.Fatalf("CheckFilters() with the auto-responder inactive = %v, want nil", err)
	}
}

// TestFiltersRefusedLogin: a master password the server refuses stops the
// filters for good (AuthFailed); a bad input is refused before any server
// is asked.
func TestFiltersRefusedLogin(t *testing.T) {
	_, acts := sieveLab(t)
	acts.Master.Password = "not-the-master-password"
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	for _, tc := range []struct {
		in   activities.FiltersInput
		want string
	}{
		{activities.FiltersInput{Address: owner, From: "mxplan-1", To: "emailpro-1"}, activities.ErrTypeAuth},
		{activities.FiltersInput{Address: owner, From: "mxplan-1", To: "mxplan-1"}, activities.ErrTypeBadInput},
		{activities.FiltersInput{Address: "Alice@Example.com", From: "mxplan-1", To: "emailpro-1"}, activities.ErrTypeBadInput},
	} {
		_, err := env.ExecuteActivity(acts.CopyFilters, tc.in)
		var ae *temporal.ApplicationError
		if !errors.As(err, &ae) || ae.Type() != tc.want || !ae.NonRetryable() {
			t.Fatalf("CopyFilters(%+v) = %v, want a permanent %s", tc.in, err, tc.want)
		}
	}
}
