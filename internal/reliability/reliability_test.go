package reliability

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/testenv"
)

// TestChaosGuard is the short chaos run of make test, every fault at once:
// two worker processes, one killed with SIGKILL at random moments, fault
// proxies cutting and stalling IMAP connections, the DNS primary down for a
// while after the first routing switch, mail arriving all along; every
// invariant must hold for every account.
func TestChaosGuard(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./worker")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build worker: %v\n%s", err, out)
	}
	var log strings.Builder
	rep, err := Run(context.Background(), Options{Bin: bin, Temporal: testenv.TemporalPath(t), Accounts: 5, Messages: 40,
		KillEvery: 5 * time.Second, IMAPFaults: true, DNSOutage: 5 * time.Second, Deliver: true, Seed: 7, Timeout: 20 * time.Minute, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var b strings.Builder
	rep.Print(&b, "chaos (guard)")
	t.Log("\n" + b.String())
	if rep.Kills == 0 {
		t.Fatalf("no worker was killed: the run proves nothing")
	}
	if rep.Cuts+rep.Stalls+rep.Refused == 0 {
		t.Fatalf("no IMAP connection was cut, stalled or refused: the run proves nothing")
	}
	if rep.DNSDown == 0 {
		t.Fatalf("the DNS primary was never down")
	}
	if rep.Delivered == 0 {
		t.Fatalf("no mail arrived during the run")
	}
	if rep.Done != rep.Accounts || len(rep.Violations) > 0 {
		t.Fatalf("%d of %d done, %d violations", rep.Done, rep.Accounts, len(rep.Violations))
	}
}

// TestOwnerChangesGuard is a short owner-changes run: two migrations held
// before the lock while their owners change flags, delete, move, create,
// rename and delete folders on the source, then cut over with the worker
// of each final delta killed; the destination must be the source as the
// owner left it plus what was delivered.
func TestOwnerChangesGuard(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./worker")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build worker: %v\n%s", err, out)
	}
	var log strings.Builder
	rep, err := Run(context.Background(), Options{Bin: bin, Temporal: testenv.TemporalPath(t), Accounts: 2, Messages: 60,
		OwnerChanges: true, Deliver: true, Seed: 11, Timeout: 15 * time.Minute, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var b strings.Builder
	rep.Print(&b, "owner-changes (guard)")
	t.Log("\n" + b.String())
	if rep.FinalDeltaKills == 0 {
		t.Fatalf("no final delta ran again after a kill: the run proves nothing\n%s", log.String())
	}
	if c := rep.Replayed; c.Expunged == 0 || c.Flags == 0 || c.Moved == 0 || c.Folders == 0 {
		t.Fatalf("replayed %+v: every kind of change should have been replayed", c)
	}
	if rep.Done != rep.Accounts || len(rep.Violations) > 0 {
		t.Fatalf("%d of %d done, %d violations", rep.Done, rep.Accounts, len(rep.Violations))
	}
}
