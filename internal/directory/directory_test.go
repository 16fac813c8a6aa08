package directory_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/testenv"
)

// stores runs the suite against both stores: SQLite (embedded) and a real
// PostgreSQL cluster.
func stores(t *testing.T, f func(t *testing.T, s *directory.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := directory.Open(context.Background(), filepath.Join(t.TempDir(), "d.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		f(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		s, err := directory.Open(context.Background(), pgDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		f(t, s)
	})
}

var pgBase string

func TestMain(m *testing.M) {
	dsn, stop, err := testenv.StartPostgresCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "directory tests need PostgreSQL:", err)
		os.Exit(1)
	}
	pgBase = dsn
	code := m.Run()
	stop()
	os.Exit(code)
}

// pgDSN gives each test its own database in the shared cluster.
func pgDSN(t *testing.T) string {
	s, err := directory.Open(context.Background(), pgBase)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name := fmt.Sprintf("t%d", testCounter.Add())
	if _, err := s.DB().Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	return pgBase[:len(pgBase)-len("postgres?sslmode=disable")] + name + "?sslmode=disable"
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) Add() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

var testCounter counter

func seed(t *testing.T, s *directory.Store) {
	t.Helper()
	ctx := context.Background()
	for _, sv := range []directory.Service{
		{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: "src:993"},
		{ID: "pro-1", Kind: directory.KindEmailPro, IMAPAddr: "pro:993", MX: "10 mx.pro.test"},
	} {
		if err := s.AddService(ctx, sv); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddAccount(ctx, directory.Account{Address: "Alice@Example.com", ServiceID: "mxplan-1", Locale: "fr", UsageBytes: 100}, directory.HashPassword("pw-alice")); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAccount(ctx, directory.Account{Address: "bob@example.com", ServiceID: "mxplan-1"}, directory.HashPassword("pw-bob")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := s.AddSlot(ctx, "pro-1", fmt.Sprintf("slot%d@configureme.me", i), int64(1000*(i+1))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSchema(t *testing.T) {
	stores(t, func(t *testing.T, s *directory.Store) {
		v, err := s.SchemaVersion(context.Background())
		if err != nil || v != 3 {
			t.Fatalf("SchemaVersion() = %d, %v; want 3", v, err)
		}
		if err := s.AddService(context.Background(), directory.Service{ID: "x", Kind: "imap-box"}); err == nil {
			t.Fatalf("AddService() with an unknown kind succeeded")
		}
	})
}

func TestLock(t *testing.T) {
	stores(t, func(t *testing.T, s *directory.Store) {
		seed(t, s)
		ctx := context.Background()
		if err := s.Lock(ctx, "alice@example.com", "migrate:a"); err != nil {
			t.Fatal(err)
		}
		if err := s.Lock(ctx, "ALICE@example.com", "migrate:a"); err != nil {
			t.Fatalf("second Lock() by the holder = %v, want nil", err)
		}
		if err := s.Lock(ctx, "alice@example.com", "migrate:b"); !errors.Is(err, directory.ErrConflict) {
			t.Fatalf("Lock() by another workflow = %v, want ErrConflict", err)
		}
		a, _ := s.SourceAccount(ctx, "alice@example.com")
		if a.State != directory.StateLocked || a.LockHolder != "migrate:a" {
			t.Fatalf("account after lock = %+v", a)
		}
		if err := s.Unlock(ctx, "alice@example.com", "migrate:b"); err != nil {
			t.Fatal(err)
		}
		if a, _ := s.SourceAccount(ctx, "alice@example.com"); a.State != directory.StateLocked {
			t.Fatalf("Unlock() by a non-holder released the lock")
		}
		if err := s.Unlock(ctx, "alice@example.com", "migrate:a"); err != nil {
			t.Fatal(err)
		}
		if err := s.Unlock(ctx, "alice@example.com", "migrate:a"); err != nil {
			t.Fatalf("second Unlock() = %v", err)
		}
		if a, _ := s.SourceAccount(ctx, "alice@example.com"); a.State != directory.StateActive || a.LockHolder != "" {
			t.Fatalf("account after unlock = %+v", a)
		}
		if err := s.Lock(ctx, "nobody@example.com", "migrate:n"); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("Lock() of a missing account = %v, want ErrNotFound", err)
		}
	})
}

func TestSlots(t *testing.T) {
	stores(t, func(t *testing.T, s *directory.Store) {
		seed(t, s)
		ctx := context.Background()
		a1, err := s.ClaimSlot(ctx, "pro-1", "alice@example.com", "migrate:a", 1500)
		if err != nil {
			t.Fatal(err)
		}
		if a1.QuotaBytes < 1500 {
			t.Fatalf("claimed slot quota %d < 1500", a1.QuotaBytes)
		}
		a2, err := s.ClaimSlot(ctx, "pro-1", "alice@example.com", "migrate:a", 1500)
		if err != nil || a2.ID != a1.ID {
			t.Fatalf("second claim by the same workflow = %+v, %v; want slot %d again", a2, err, a1.ID)
		}
		if err := s.ConfigureSlot(ctx, "migrate:a"); err != nil {
			t.Fatal(err)
		}
		if err := s.ConfigureSlot(ctx, "migrate:a"); err != nil {
			t.Fatalf("second ConfigureSlot() = %v", err)
		}
		hash, state, err := s.PasswordHash(ctx, "pro-1", "alice@example.com")
		if err != nil || state != directory.StateActive || !directory.VerifyPassword(hash, "pw-alice") {
			t.Fatalf("destination account: state %q, password kept %v (%v)", state, directory.VerifyPassword(hash, "pw-alice"), err)
		}
		if dst, err := s.Account(ctx, "pro-1", "alice@example.com"); err != nil || dst.Locale != "fr" || dst.QuotaBytes != a1.QuotaBytes {
			t.Fatalf("destination account = %+v, %v", dst, err)
		}
		b, err := s.ClaimSlot(ctx, "pro-1", "bob@example.com", "migrate:b", 0)
		if err != nil || b.ID == a1.ID {
			t.Fatalf("claim by another workflow = %+v, %v; want another slot", b, err)
		}
		if _, err := s.ClaimSlot(ctx, "pro-1", "carol@example.com", "migrate:c", 5000); !errors.Is(err, directory.ErrNoFreeSlot) {
			t.Fatalf("claim with no big enough slot = %v, want ErrNoFreeSlot", err)
		}
		if err := s.ReleaseSlot(ctx, "migrate:a"); err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseSlot(ctx, "migrate:a"); err != nil {
			t.Fatalf("second ReleaseSlot() = %v", err)
		}
		if _, _, err := s.PasswordHash(ctx, "pro-1", "alice@example.com"); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("destination account after release: %v, want gone", err)
		}
		free, _ := s.FreeSlots(ctx, "pro-1", 0)
		if len(free) != 2 {
			t.Fatalf("%d free slots after release, want 2", len(free))
		}
	})
}

func TestConcurrentClaimsNeverShareASlot(t *testing.T) {
	stores(t, func(t *testing.T, s *directory.Store) {
		seed(t, s)
		ctx := context.Background()
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[int64]string{}
		noSlot := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				wf := fmt.Sprintf("migrate:w%d", i)
				sl, err := s.ClaimSlot(ctx, "pro-1", fmt.Sprintf("u%d@example.com", i), wf, 0)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, directory.ErrNoFreeSlot):
					noSlot++
				case err != nil:
					t.Errorf("claim %d: %v", i, err)
				default:
					if prev, dup := got[sl.ID]; dup {
						t.Errorf("slot %d given to %s and %s", sl.ID, prev, wf)
					}
					got[sl.ID] = wf
				}
			}(i)
		}
		wg.Wait()
		if len(got) != 3 || noSlot != 5 {
			t.Fatalf("%d slots claimed, %d refused; want 3 and 5", len(got), noSlot)
		}
	})
}

func TestRouteMigratedAudit(t *testing.T) {
	stores(t, func(t *testing.T, s *directory.Store) {
		seed(t, s)
		ctx := context.Background()
		if err := s.MarkMigrated(ctx, "alice@example.com", "migrate:a"); err == nil {
			t.Fatalf("MarkMigrated() of an unlocked account succeeded")
		}
		if err := s.Lock(ctx, "alice@example.com", "migrate:a"); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := s.SwitchRoute(ctx, "alice@example.com", "pro-1", "migrate:a"); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkMigrated(ctx, "alice@example.com", "migrate:a"); err != nil {
				t.Fatal(err)
			}
		}
		r, err := s.Route(ctx, "alice@example.com")
		if err != nil || r.ServiceID != "pro-1" {
			t.Fatalf("Route() = %+v, %v", r, err)
		}
		if a, _ := s.SourceAccount(ctx, "alice@example.com"); a.State != directory.StateMigrated {
			t.Fatalf("state = %q, want migrated", a.State)
		}
		log, err := s.Audit(ctx, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range log {
			actions = append(actions, e.Action)
			if e.WorkflowID != "migrate:a" {
				t.Fatalf("audit entry %+v not keyed by the workflow", e)
			}
		}
		if fmt.Sprint(actions) != "[lock switch-route mark-migrated]" {
			t.Fatalf("audit = %v, want each change once", actions)
		}
		if err := s.AddRedirection(ctx, directory.Redirection{Address: "bob@example.com", Kind: "forward", Target: "b@elsewhere.test"}); err != nil {
			t.Fatal(err)
		}
		reds, _ := s.Redirections(ctx, "BOB@example.com")
		if len(reds) != 1 || reds[0].Target != "b@elsewhere.test" {
			t.Fatalf("Redirections() = %+v", reds)
		}
		accts, _ := s.AccountsOfDomain(ctx, "example.com")
		if len(accts) != 2 {
			t.Fatalf("AccountsOfDomain() = %d accounts, want 2", len(accts))
		}
	})
}

func TestPasswordHash(t *testing.T) {
	h := directory.HashPassword("s3cret")
	if !directory.VerifyPassword(h, "s3cret") || directory.VerifyPassword(h, "other") || directory.VerifyPassword("{PLAIN}s3cret", "s3cret") {
		t.Fatalf("VerifyPassword() does not match HashPassword()")
	}
	if h == directory.HashPassword("s3cret") {
		t.Fatalf("two hashes of one password are equal: no salt")
	}
}
