package directory_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mailshift/mailshift/internal/directory"
)

func TestAliasesMoveWithTheMailbox(t *testing.T) {
	stores(t, func(t *testing.T, s *directory.Store) {
		ctx := context.Background()
		seed(t, s)
		for _, a := range []directory.Alias{
			{Alias: "Sales@Example.com", Target: "alice@example.com", ServiceID: "mxplan-1"},
			{Alias: "contact@example.com", Target: "alice@example.com", ServiceID: "mxplan-1"},
			{Alias: "info@example.com", Target: "bob@example.com", ServiceID: "mxplan-1"},
		} {
			if err := s.AddAlias(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddAlias(ctx, directory.Alias{Alias: "a@example.com", Target: "A@example.com", ServiceID: "mxplan-1"}); err == nil {
			t.Fatalf("AddAlias() of an address to itself succeeded")
		}
		want := []directory.Alias{
			{Alias: "contact@example.com", Target: "alice@example.com", ServiceID: "pro-1"},
			{Alias: "sales@example.com", Target: "alice@example.com", ServiceID: "pro-1"},
		}
		for i := 0; i < 2; i++ { // the second time is a retried activity
			got, err := s.MoveAliases(ctx, "Alice@example.com", "pro-1", "wf-1")
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("MoveAliases() #%d = %+v, %v; want %+v", i+1, got, err, want)
			}
		}
		if got, err := s.AliasesOf(ctx, "bob@example.com"); err != nil || len(got) != 1 || got[0].ServiceID != "mxplan-1" {
			t.Fatalf("AliasesOf(bob) = %+v, %v; want info@ left on mxplan-1", got, err)
		}
		audit, err := s.Audit(ctx, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		moves := 0
		for _, e := range audit {
			if e.Action == "move-alias" {
				moves++
			}
		}
		if moves != 2 {
			t.Fatalf("audit has %d move-alias lines, want 2 (one per alias, none for the retry): %+v", moves, audit)
		}
	})
}

func TestSieveAddr(t *testing.T) {
	stores(t, func(t *testing.T, s *directory.Store) {
		ctx := context.Background()
		seed(t, s)
		if got, err := s.SieveAddr(ctx, "pro-1"); err != nil || got != "" {
			t.Fatalf("SieveAddr() = %q, %v; want none recorded", got, err)
		}
		if err := s.SetSieveAddr(ctx, "pro-1", "sieve.pro:4191"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.SieveAddr(ctx, "pro-1"); err != nil || got != "sieve.pro:4191" {
			t.Fatalf("SieveAddr() = %q, %v; want sieve.pro:4191", got, err)
		}
		if err := s.SetSieveAddr(ctx, "nope", "x:1"); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("SetSieveAddr(unknown service) = %v, want ErrNotFound", err)
		}
		if err := s.SetSieveAddr(ctx, "pro-1", "no-port"); err == nil {
			t.Fatalf("SetSieveAddr(no port) succeeded")
		}
	})
}

// A directory at schema version 1 (services already defined) upgrades in
// place: its services keep their rows and get the default ManageSieve
// address.
func TestSchemaUpgradeFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d.db")
	s, err := directory.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	seed(t, s)
	for _, stmt := range []string{`DROP TABLE report_items`, `DROP INDEX aliases_target`, `DROP TABLE aliases`, `ALTER TABLE services DROP COLUMN sieve_addr`, `DELETE FROM schema_migrations WHERE version >= 2`} {
		if _, err := s.DB().Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	s.Close()
	s, err = directory.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open() of a version 1 directory = %v", err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != 3 {
		t.Fatalf("SchemaVersion() = %d, %v; want 3", v, err)
	}
	// No ManageSieve address was recorded: filters are not carried until
	// one is.
	if got, err := s.SieveAddr(ctx, "mxplan-1"); err != nil || got != "" {
		t.Fatalf("SieveAddr() = %q, %v; want none", got, err)
	}
}
