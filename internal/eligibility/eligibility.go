// Package eligibility owns the rule for whether an account can migrate now:
// the activities' preflight refuses on the first reason, the plan check and
// the dry run list them all, so the three never disagree.
//
// The rule, in the order the reasons are reported:
//   - the address has an account on an MX Plan service;
//   - no other migration holds it (a lock by this workflow ID is its own);
//   - it is not already migrated, and it is active (or locked by this
//     workflow ID);
//   - it has no redirection, forward or auto-responder;
//   - the destination service exists and is E-mail Pro or Exchange.
package eligibility

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mailshift/mailshift/internal/directory"
)

// Kind names a reason in a machine-readable way.
type Kind string

// The reasons an account cannot migrate.
const (
	// AccountMissing: no MX Plan account has the address.
	AccountMissing Kind = "account-missing"
	// HeldByAnother: another migration holds the account's lock.
	HeldByAnother Kind = "held-by-another-migration"
	// AlreadyMigrated: the account has been migrated.
	AlreadyMigrated Kind = "already-migrated"
	// NotActive: the account is neither active nor locked by this migration.
	NotActive Kind = "not-active"
	// Redirection: a redirection, forward or auto-responder is set on it.
	Redirection Kind = "redirection"
	// UnknownService: the destination service does not exist.
	UnknownService Kind = "unknown-service"
	// WrongServiceKind: the destination is not E-mail Pro or Exchange.
	WrongServiceKind Kind = "wrong-service-kind"
)

// Reason is one thing that stops a migration, in an operator's words.
type Reason struct {
	Kind    Kind
	Message string
}

func (r Reason) String() string { return r.Message }

// Directory is what the rule reads.
type Directory interface {
	Service(ctx context.Context, id string) (directory.Service, error)
	SourceAccount(ctx context.Context, address string) (directory.Account, error)
	Redirections(ctx context.Context, address string) ([]directory.Redirection, error)
}

// Verdict is the rule applied to one account.
type Verdict struct {
	// Account is the source account (nil when it is missing).
	Account *directory.Account
	// Service is the destination service (nil when it is unknown).
	Service *directory.Service
	// Reasons lists every reason the account cannot migrate, in the order
	// of the package documentation; empty when it can.
	Reasons []Reason
}

// OK tells whether nothing stops the migration.
func (v Verdict) OK() bool { return len(v.Reasons) == 0 }

// Check applies the rule to the migration workflowID of addr to the service
// to. Only a failure to read the directory is an error.
func Check(ctx context.Context, dir Directory, addr, to, workflowID string) (Verdict, error) {
	var v Verdict
	add := func(k Kind, format string, args ...any) {
		v.Reasons = append(v.Reasons, Reason{Kind: k, Message: fmt.Sprintf(format, args...)})
	}
	acct, err := dir.SourceAccount(ctx, addr)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		add(AccountMissing, "no MX Plan account %q in the directory", addr)
	case err != nil:
		return v, err
	default:
		v.Account = &acct
		held := acct.LockHolder != "" && acct.LockHolder != workflowID
		if held {
			add(HeldByAnother, "account %q is held by another migration (%s)", addr, acct.LockHolder)
		}
		switch {
		case acct.State == directory.StateMigrated:
			add(AlreadyMigrated, "account %q is already migrated", addr)
		case held && acct.State == directory.StateLocked:
			// Locked by the other migration: that is the reason above.
		case acct.State != directory.StateActive && acct.LockHolder != workflowID:
			add(NotActive, "account %q is %s, not active", addr, acct.State)
		}
		reds, err := dir.Redirections(ctx, addr)
		if err != nil {
			return v, err
		}
		if len(reds) > 0 {
			var names []string
			for _, r := range reds {
				names = append(names, fmt.Sprintf("%s to %s", r.Kind, r.Target))
			}
			add(Redirection, "account %q has %s: remove it in the control panel, then retry", addr, strings.Join(names, ", "))
		}
	}
	sv, err := dir.Service(ctx, to)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		add(UnknownService, "unknown destination service %q: it does not exist in the directory", to)
	case err != nil:
		return v, err
	default:
		v.Service = &sv
		if sv.Kind != directory.KindEmailPro && sv.Kind != directory.KindExchange {
			add(WrongServiceKind, "destination service %q is %s; it must be an E-mail Pro or Exchange service", to, sv.Kind)
		}
	}
	return v, nil
}
