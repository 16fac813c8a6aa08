// Package activities holds the migration's side effects: thin, idempotent
// and heartbeating wrappers around the engines in internal/. Every
// permanent failure leaves here as a non-retryable ApplicationError whose
// type names the reason, so the workflow can show it to an operator.
package activities

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/address"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/dnscheck"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// Error types of permanent failures (ApplicationError.Type).
const (
	ErrTypeBadInput       = "BadInput"
	ErrTypeAccountMissing = "AccountMissing"
	ErrTypeAccountState   = "AccountNotActive"
	ErrTypeRedirection    = "RedirectionPresent"
	ErrTypeLockConflict   = "HeldByAnotherMigration"
	ErrTypeBadService     = "BadDestinationService"
	ErrTypeNoSlot         = "NoFreeSlot"
	ErrTypeAuth           = "AuthFailed"
	ErrTypeQuota          = "OverQuota"
	ErrTypeVerify         = "VerifyMismatch"
	ErrTypeDNSRefused     = "DNSUpdateRefused"
	ErrTypeConfig         = "BadConfig"
)

// Directory is what the activities need of the platform's system of record.
type Directory interface {
	Service(ctx context.Context, id string) (directory.Service, error)
	SourceAccount(ctx context.Context, address string) (directory.Account, error)
	Redirections(ctx context.Context, address string) ([]directory.Redirection, error)
	FreeSlots(ctx context.Context, serviceID string, minQuota int64) ([]directory.Slot, error)
	HoldsSlot(ctx context.Context, serviceID, wfID string, minQuota int64) (bool, error)
	Lock(ctx context.Context, address, wfID string) error
	Unlock(ctx context.Context, address, wfID string) error
	ClaimSlot(ctx context.Context, serviceID, address, wfID string, minQuota int64) (directory.Slot, error)
	ConfigureSlot(ctx context.Context, wfID string) error
	ReleaseSlot(ctx context.Context, wfID string) error
	SwitchRoute(ctx context.Context, address, serviceID, wfID string) error
	MarkMigrated(ctx context.Context, address, wfID string) error
	// DomainNeeds computes the DNS records a domain needs from every one of
	// its accounts, with moves (address → service) counted at their
	// destination.
	DomainNeeds(ctx context.Context, domain string, moves map[string]string) (*dnscheck.Needs, error)
	// RecordReportItems stores the subject and sender of reported
	// messages for the report (never in a workflow's history).
	RecordReportItems(ctx context.Context, wfID string, items []directory.ReportItem) error
}

// Mail is the IMAP copy engine.
type Mail interface {
	Copy(ctx context.Context, src, dst mailcopy.Endpoint, opts mailcopy.Options) (*mailcopy.Result, error)
	Verify(ctx context.Context, src, dst mailcopy.Endpoint, opts mailcopy.Options) (*mailcopy.VerifyResult, error)
	// VerifySource and VerifyAgainst are Verify in two halves: the
	// source's reading, then the destination checked against it.
	VerifySource(ctx context.Context, src, dst mailcopy.Endpoint, opts mailcopy.Options) (*mailcopy.SourceSnapshot, error)
	VerifyAgainst(ctx context.Context, dst mailcopy.Endpoint, snap *mailcopy.SourceSnapshot) (*mailcopy.VerifyResult, error)
	Measure(ctx context.Context, ep mailcopy.Endpoint) (*mailcopy.Totals, error)
	// MeasureFolders measures each folder and says which the copy leaves out.
	MeasureFolders(ctx context.Context, ep mailcopy.Endpoint, opts mailcopy.MapOptions, limit int64) (*mailcopy.MailboxTotals, error)
	// ItemHeaders reads the subject and sender of reported messages.
	ItemHeaders(ctx context.Context, ep mailcopy.Endpoint, items []mailcopy.Skip) ([]mailcopy.ItemHeader, error)
	Clear(ctx context.Context, ep mailcopy.Endpoint) error
	AppendOnce(ctx context.Context, ep mailcopy.Endpoint, folder, marker string, msg []byte) (bool, error)
	// AppendMarked appends once (found again by its marker) and says
	// where the message is.
	AppendMarked(ctx context.Context, ep mailcopy.Endpoint, folder, marker string, msg []byte) (mailcopy.Placed, error)
	Replay(ctx context.Context, src, dst mailcopy.Endpoint, opts mailcopy.Options) (*mailcopy.ReplayResult, error)
}

// DNS checks and updates zones.
type DNS interface {
	Check(ctx context.Context, domain string, want []dnscheck.Record) (*dnscheck.Diagnostic, error)
	// Apply sets the records in a managed zone; managed is false (and
	// nothing is sent) when mailshift does not manage the domain's zone.
	Apply(ctx context.Context, domain string, want []dnscheck.Record) (managed, changed bool, err error)
}

// Master is the migrator's master-user login. It comes from the worker's
// files or environment, never from a workflow input.
type Master struct {
	User     string
	Password string
	Sep      string
	// Plain allows IMAP without TLS (lab and dev only).
	Plain bool
	// InsecureSkipVerify turns certificate checks off (lab only).
	InsecureSkipVerify bool
	// RootCAs are trusted for the IMAP servers' certificates (nil: the
	// system's).
	RootCAs *x509.CertPool
}

// Activities are the migration's activities; the fields are dependencies
// built by the worker.
type Activities struct {
	Dir         Directory
	Mail        Mail
	DNS         DNS
	Master      Master
	Connections int
	Logger      *zap.Logger
	// Temporal is the worker's client (budget requests signal-with-start
	// the budget workflows on TaskQueue).
	Temporal  client.Client
	TaskQueue string
	// Budgets are IMAP services' connection budgets across every worker
	// (by service ID; DefaultBudget for the others; 0: unlimited).
	Budgets       map[string]int
	DefaultBudget int
	// Metrics, if set, counts what the activities do.
	Metrics Recorder
	// Notify, if set, sends operator notifications.
	Notify Notifier
	// Hashes, if set, keeps the copy's content hashes and the source's
	// half of a verify in this worker (hashes.go).
	Hashes *Hashes
	// Sessions, if set, keeps a migration's connections open from one
	// local step to the next (sessions.go).
	Sessions *Sessions
}

// Recorder receives counters; the worker backs it with Prometheus.
type Recorder interface {
	Copied(messages int, bytes int64)
}

func (a *Activities) log(ctx context.Context) *zap.Logger {
	l := a.Logger
	if l == nil {
		l = zap.NewNop()
	}
	info := activity.GetInfo(ctx)
	return l.With(zap.String("workflowId", info.WorkflowExecution.ID), zap.String("activity", info.ActivityType.Name))
}

func permanent(typ string, format string, args ...any) error {
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf(format, args...), typ, temporal.ApplicationErrorOptions{NonRetryable: true})
}

// fromEngine turns an engine error into a permanent ApplicationError when
// retrying cannot help; other errors stay retryable.
func fromEngine(err error) error {
	if err == nil {
		return nil
	}
	if kind, ok := mailcopy.IsPermanent(err); ok {
		typ := map[string]string{mailcopy.KindAuthFailed: ErrTypeAuth, mailcopy.KindOverQuota: ErrTypeQuota,
			mailcopy.KindVerifyMismatch: ErrTypeVerify, mailcopy.KindBadConfig: ErrTypeConfig}[kind]
		return permanent(typ, "%v", err)
	}
	if errors.Is(err, dnscheck.ErrRefused) {
		return permanent(ErrTypeDNSRefused, "%v", err)
	}
	return err
}

// checkAddress refuses, for good, an address outside the platform's policy
// (package address): activities are called by workflows, but a workflow
// input is typed by people, and an activity is the last place before the
// directory, the mail servers and DNS.
func checkAddress(addr string) error {
	n, err := address.Normalize(addr)
	if err != nil {
		return permanent(ErrTypeBadInput, "%v", err)
	}
	if n != addr {
		return permanent(ErrTypeBadInput, "address %q is not in its normal form %q", addr, n)
	}
	return nil
}

// endpoint is how the migrator reaches address on a service.
func (a *Activities) endpoint(sv directory.Service, address string) (mailcopy.Endpoint, error) {
	// The definition is checked where it is used, not only on import: a
	// service edited in the database by hand must not reach the engine.
	if err := sv.Validate(); err != nil {
		return mailcopy.Endpoint{}, permanent(ErrTypeConfig, "%v", err)
	}
	sec := mailcopy.Security(sv.IMAPSecurity)
	if sec == mailcopy.SecurityPlain && !a.Master.Plain {
		return mailcopy.Endpoint{}, permanent(ErrTypeConfig, "service %q serves IMAP without TLS; the worker allows that only with \"imapPlain\": true in its configuration", sv.ID)
	}
	return mailcopy.Endpoint{Addr: sv.IMAPAddr, Security: sec, InsecureSkipVerify: a.Master.InsecureSkipVerify, RootCAs: a.Master.RootCAs,
		User: address, MasterUser: a.Master.User, MasterSep: a.Master.Sep, Password: a.Master.Password}, nil
}
