package activities

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/eligibility"
)

// TestPreflightRefusesOnTheFirstReason: preflight refuses with the
// eligibility rule's first reason, as a permanent error of the type the
// workflow and its operators know.
func TestPreflightRefusesOnTheFirstReason(t *testing.T) {
	ctx := context.Background()
	dir, err := directory.Open(ctx, filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(dir.AddService(ctx, directory.Service{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: "127.0.0.1:1", IMAPSecurity: "plain"}))
	must(dir.AddService(ctx, directory.Service{ID: "emailpro-1", Kind: directory.KindEmailPro, IMAPAddr: "127.0.0.1:2", IMAPSecurity: "plain"}))
	for _, a := range []string{"held@example.com", "done@example.com", "fwd@example.com", "ok@example.com"} {
		must(dir.AddAccount(ctx, directory.Account{Address: a, ServiceID: "mxplan-1"}, directory.HashPassword("pw")))
	}
	must(dir.AddAccount(ctx, directory.Account{Address: "off@example.com", ServiceID: "mxplan-1", State: "suspended"}, directory.HashPassword("pw")))
	must(dir.Lock(ctx, "held@example.com", "migrate:other"))
	must(dir.Lock(ctx, "done@example.com", "migrate:done@example.com"))
	must(dir.MarkMigrated(ctx, "done@example.com", "migrate:done@example.com"))
	must(dir.AddRedirection(ctx, directory.Redirection{Address: "fwd@example.com", Kind: "forward", Target: "f@elsewhere.test"}))

	a := &Activities{Dir: dir}
	for _, tc := range []struct {
		addr, to, typ, words string
	}{
		{"zed@example.com", "nosuch-1", ErrTypeAccountMissing, `no MX Plan account "zed@example.com"`},
		{"held@example.com", "emailpro-1", ErrTypeLockConflict, "held by another migration (migrate:other)"},
		{"done@example.com", "emailpro-1", ErrTypeAccountState, "already migrated"},
		{"off@example.com", "emailpro-1", ErrTypeAccountState, "is suspended, not active"},
		{"fwd@example.com", "emailpro-1", ErrTypeRedirection, "has forward to f@elsewhere.test: remove it"},
		{"ok@example.com", "nosuch-1", ErrTypeBadService, `"nosuch-1": it does not exist`},
		{"ok@example.com", "mxplan-1", ErrTypeBadService, "it must be an E-mail Pro or Exchange service"},
	} {
		_, err := a.Preflight(ctx, PreflightInput{Address: tc.addr, To: tc.to, WorkflowID: "migrate:" + tc.addr})
		var ae *temporal.ApplicationError
		if !errors.As(err, &ae) || ae.Type() != tc.typ || !ae.NonRetryable() || !strings.Contains(ae.Message(), tc.words) {
			t.Fatalf("Preflight(%s, %s) = %v, want a non-retryable %s naming %q", tc.addr, tc.to, err, tc.typ, tc.words)
		}
	}
	for _, k := range []eligibility.Kind{eligibility.AccountMissing, eligibility.HeldByAnother, eligibility.AlreadyMigrated,
		eligibility.NotActive, eligibility.Redirection, eligibility.UnknownService, eligibility.WrongServiceKind} {
		if errTypeOf[k] == "" {
			t.Fatalf("reason %q has no error type", k)
		}
	}
}
