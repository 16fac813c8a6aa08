package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailshift/mailshift/internal/corpus"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/testenv"
)

// TestRealWorldCorpusThreeRuns lays the adversarial corpus into a lab
// Dovecot's Maildir, copies it with mailshift-copy three times to a lab
// Dovecot that refuses messages over 1 MB (quota_max_mail_size, no
// APPENDLIMIT) and its own odd keywords and names, and compares every
// message by content hash, flags, date and folder after each run: nothing
// lost silently, nothing duplicated, and verify passes.
func TestRealWorldCorpusThreeRuns(t *testing.T) {
	ctx := context.Background()
	l := startRealWorldLab(t, 1<<20)
	src, dst := l.src, l.dst

	big := 2000
	if os.Getenv("MAILSHIFT_BIG_FOLDER") != "" {
		big = 20000
	}
	n := layCorpus(t, l, corpus.Spec{Seed: 12, Big: big})
	t.Logf("corpus: %d messages, classes: %s", n, strings.Join(corpus.Classes, ", "))

	bin := buildCopy(t)
	srcEP := mailcopy.Endpoint{Addr: src.Addr, Security: mailcopy.SecurityPlain, User: "alice@example.com", MasterUser: "mailshift", Password: masterPW}
	dstEP := srcEP
	dstEP.Addr = dst.Addr

	var rows []string
	reported := map[string]mailcopy.Skip{}
	for run := 1; run <= 3; run++ {
		jsonPath := filepath.Join(t.TempDir(), "result.json")
		cmd := exec.Command(bin, "--from", src.Addr, "--from-user", "alice@example.com", "--from-master", "mailshift", "--from-security", "plain",
			"--to", dst.Addr, "--to-user", "alice@example.com", "--to-master", "mailshift", "--to-security", "plain",
			"--locale", "fr", "--verify", "--json", jsonPath)
		cmd.Env = append(os.Environ(), "MAILSHIFT_FROM_PASSWORD="+masterPW, "MAILSHIFT_TO_PASSWORD="+masterPW)
		output, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		var out struct {
			mailcopy.Result
			Verify *mailcopy.VerifyResult `json:"verify"`
		}
		b, rerr := os.ReadFile(jsonPath)
		res := &out.Result
		if rerr != nil || json.Unmarshal(b, &out) != nil || out.Verify == nil {
			t.Fatalf("run %d: exit %d, no result: %v\n%s\n%s", run, code, rerr, output, dst.Log())
		}
		for _, it := range res.Items() {
			reported[fmt.Sprintf("%s\x00%d", it.Folder, it.UID)] = it
		}
		c := compareCorpus(t, ctx, srcEP, dstEP, res, reported)
		if got, want := alteredOf(out.Verify), c.alteredList; got != want {
			t.Errorf("run %d: verify calls altered %s, the comparison %s", run, got, want)
		}
		if run == 1 {
			t.Logf("altered by the destination (verify and comparison agree): %s", c.alteredList)
		}
		rows = append(rows, fmt.Sprintf("| %d | %d | %d | %d | %d | %d | %d | %d | %d |", run, c.exact, c.altered, c.preserved, c.reported, c.lost, c.duplicated, res.Copied, code))
		if c.lost != 0 || c.duplicated != 0 || code != 0 {
			t.Errorf("run %d: exit %d, %d lost, %d duplicated: %s\n%s", run, code, c.lost, c.duplicated, strings.Join(c.problems, "; "), output)
		}
		if run == 1 {
			t.Logf("mailshift-copy run 1 output:\n%s", output)
		}
	}
	// A source folder that cannot be opened leaves nothing on the
	// destination: no empty folder under its name or a safe one.
	dc, err := imapclient.DialInsecure(dst.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	if err := dc.Login("alice@example.com*mailshift", masterPW).Wait(); err != nil {
		t.Fatal(err)
	}
	list, err := dc.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if strings.Contains(l.Mailbox, "tilde") || strings.Contains(l.Mailbox, "&AOk") {
			t.Errorf("destination folder %q exists for a source folder that cannot be opened", l.Mailbox)
		}
	}
	t.Logf("three runs of mailshift-copy on the adversarial corpus (%d messages):\n| run | exact | altered by destination | preserved | reported | lost | duplicated | copied this run | exit |\n|---|---|---|---|---|---|---|---|---|\n%s",
		n, strings.Join(rows, "\n"))
}

// layCorpus writes the adversarial corpus into alice's Maildir on the
// lab's source, owned by the mail user, and returns its message count.
func layCorpus(t *testing.T, l *lab, spec corpus.Spec) int {
	t.Helper()
	spec.UID, spec.GID = 65534, 65534
	n, err := corpus.Write(filepath.Join(l.src.Dir, "mail", "example.com", "alice"), spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(l.src.Dir, "mail"), filepath.Join(l.src.Dir, "mail", "example.com")} {
		_ = os.Chown(p, 65534, 65534)
	}
	return n
}

// startRealWorldLab starts a source and a destination lab Dovecot (the
// destination Courier-style, refusing messages over maxMail bytes with NO
// [LIMIT] when maxMail > 0, without APPENDLIMIT) for alice@example.com,
// whose slot is assigned.
func startRealWorldLab(t *testing.T, maxMail int64) *lab {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "directory.db")
	dir, err := directory.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	srcPort, dstPort := testenv.FreePort(t), testenv.FreePort(t)
	for _, sv := range []directory.Service{
		{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: addrOf(srcPort), IMAPSecurity: "plain"},
		{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: addrOf(dstPort), IMAPSecurity: "plain"},
	} {
		if err := dir.AddService(ctx, sv); err != nil {
			t.Fatal(err)
		}
	}
	if err := dir.AddAccount(ctx, directory.Account{Address: "alice@example.com", ServiceID: "mxplan-1", Locale: "fr"}, directory.HashPassword("alice-pw")); err != nil {
		t.Fatal(err)
	}
	if err := dir.AddSlot(ctx, "emailpro-1", "ab12@configureme.me", 5<<30); err != nil {
		t.Fatal(err)
	}
	mh := directory.HashPassword(masterPW)
	src := testenv.StartDovecot(t, testenv.DovecotOptions{Name: "mxplan", Directory: dbPath, Services: []string{"mxplan-1"},
		MasterUser: "mailshift", MasterHash: mh, Port: srcPort})
	dst := testenv.StartDovecot(t, testenv.DovecotOptions{Name: "emailpro", Directory: dbPath, Services: []string{"emailpro-1"},
		Separator: ".", Prefix: "INBOX.", MasterUser: "mailshift", MasterHash: mh, Port: dstPort, MaxMailSize: maxMail})
	l := &lab{dbPath: dbPath, dir: dir, src: src, dst: dst}
	l.assignSlot(t, "migrate:alice@example.com")
	return l
}

// buildCopy builds mailshift-copy for the test.
func buildCopy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mailshift-copy")
	root, _ := testenv.RepoRoot()
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, "cmd/mailshift-copy")).CombinedOutput(); err != nil {
		t.Fatalf("build mailshift-copy: %v\n%s", err, out)
	}
	return bin
}

type corpusCounts struct {
	exact, altered, preserved, reported, lost, duplicated int
	problems                                              []string
	// alteredList names the altered messages ("folder uid", sorted).
	alteredList string
}

// compareCorpus classifies every source message independently of the
// engine: by content hash, flags and date in its mapped folder, or in the
// problems folder, or in the reported items.
func compareCorpus(t *testing.T, ctx context.Context, srcEP, dstEP mailcopy.Endpoint, res *mailcopy.Result, reported map[string]mailcopy.Skip) corpusCounts {
	t.Helper()
	srcInv, err := mailcopy.Inventory(ctx, srcEP)
	if err != nil {
		t.Fatalf("source inventory: %v", err)
	}
	dstInv, err := mailcopy.Inventory(ctx, dstEP)
	if err != nil {
		t.Fatalf("destination inventory: %v", err)
	}
	dest := map[string]string{}
	for _, f := range res.Folders {
		dest[f.Source] = f.Dest
	}
	byFolder := map[string][]*mailcopy.InventoryMessage{}
	var preserved []string
	for i := range dstInv {
		m := &dstInv[i]
		byFolder[m.Folder] = append(byFolder[m.Folder], m)
		if m.Preserved != "" {
			preserved = append(preserved, m.Preserved)
		}
	}
	used := map[*mailcopy.InventoryMessage]bool{}
	want := map[string]int{} // dest folder + norm -> source count
	var c corpusCounts
	var altered []string
	for _, s := range srcInv {
		df := dest[s.Folder]
		want[df+"\x00"+s.Norm]++
		it, isReported := reported[fmt.Sprintf("%s\x00%d", s.Folder, s.UID)]
		var found *mailcopy.InventoryMessage
		for _, pass := range []func(d *mailcopy.InventoryMessage) bool{
			func(d *mailcopy.InventoryMessage) bool {
				return d.SHA256 == s.SHA256 && mailcopy.SameInternalDate(d.Date, s.Date)
			},
			func(d *mailcopy.InventoryMessage) bool { return d.SHA256 == s.SHA256 },
			func(d *mailcopy.InventoryMessage) bool { return d.Norm == s.Norm },
		} {
			for _, d := range byFolder[df] {
				if !used[d] && pass(d) {
					found = d
					break
				}
			}
			if found != nil {
				break
			}
		}
		switch {
		case found != nil:
			used[found] = true
			sameFlags := strings.Join(sorted(s.Flags), " ") == strings.Join(sorted(found.Flags), " ")
			if found.SHA256 == s.SHA256 && mailcopy.SameInternalDate(found.Date, s.Date) && sameFlags {
				c.exact++
			} else if isReported || found.SHA256 != s.SHA256 || !mailcopy.SameInternalDate(found.Date, s.Date) {
				c.altered++
				altered = append(altered, fmt.Sprintf("%q %d", s.Folder, s.UID))
				if !isReported {
					c.problems = append(c.problems, fmt.Sprintf("%q uid %d altered without a report (flags %v / %v, date %v / %v)", s.Folder, s.UID, s.Flags, found.Flags, s.Date, found.Date))
				}
			} else {
				c.lost++
				c.problems = append(c.problems, fmt.Sprintf("%q uid %d: flags %v on the destination, %v on the source, not reported", s.Folder, s.UID, found.Flags, s.Flags))
			}
		case s.Size == 0 && isReported && it.Category == mailcopy.CatEmpty:
			c.reported++
		case hasPreserved(preserved, s):
			c.preserved++
		case isReported && it.NotCopied():
			c.reported++
		default:
			c.lost++
			c.problems = append(c.problems, fmt.Sprintf("%q uid %d (%d bytes) lost", s.Folder, s.UID, s.Size))
		}
	}
	c.alteredList = strings.Join(sorted(altered), ", ")
	have := map[string]int{}
	for f, ms := range byFolder {
		for _, m := range ms {
			if m.Preserved == "" {
				have[f+"\x00"+m.Norm]++
			}
		}
	}
	for k, n := range have {
		if n > want[k] && want[k] > 0 {
			c.duplicated += n - want[k]
			c.problems = append(c.problems, fmt.Sprintf("%d extra copies in %q", n-want[k], strings.Split(k, "\x00")[0]))
		}
	}
	return c
}

func hasPreserved(origins []string, s mailcopy.InventoryMessage) bool {
	for _, o := range origins {
		if strings.Contains(o, fmt.Sprintf("; uid=%d;", s.UID)) && strings.HasSuffix(o, "sha256="+s.SHA256) {
			return true
		}
	}
	return false
}

func sorted(l []string) []string {
	out := append([]string(nil), l...)
	sort.Strings(out)
	return out
}

// alteredOf names the messages verify found stored altered, as
// compareCorpus does.
func alteredOf(v *mailcopy.VerifyResult) string {
	var l []string
	for _, f := range v.Folders {
		for _, a := range f.Altered {
			l = append(l, fmt.Sprintf("%q %d", a.Folder, a.UID))
		}
	}
	return strings.Join(sorted(l), ", ")
}
