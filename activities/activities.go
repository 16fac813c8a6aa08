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
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

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
	Lock(ctx context.Context, address, wfID string) error
	Unlock(ctx context.Context, address, wfID string) error
	ClaimSlot(ctx context.Context, serviceID, address, wfID string, minQuota int64) (directory.Slot, error)
	ConfigureSlot(ctx context.Context, wfID string) error
	ReleaseSlot(ctx context.Context, wfID string) error
	SwitchRoute(ctx context.Context, address, serviceID, wfID string) error
	MarkMigrated(ctx context.Context, address, wfID string) error
}

// Mail is the IMAP copy engine.
type Mail interface {
	Copy(ctx context.Context, src, dst mailcopy.Endpoint, opts mailcopy.Options) (*mailcopy.Result, error)
	Verify(ctx context.Context, src, dst mailcopy.Endpoint, opts mailcopy.Options) (*mailcopy.VerifyResult, error)
	Measure(ctx context.Context, ep mailcopy.Endpoint) (*mailcopy.Totals, error)
	Clear(ctx context.Context, ep mailcopy.Endpoint) error
	AppendOnce(ctx context.Context, ep mailcopy.Endpoint, folder, marker string, msg []byte) (bool, error)
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
	// Metrics, if set, counts what the activities do.
	Metrics Recorder
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

// heartbeatEvery is how often a long activity tells the server it is alive;
// the workflow's heartbeat timeout (30 s) detects a dead worker within it.
const heartbeatEvery = 10 * time.Second

// keepAlive heartbeats until the returned stop is called, with the details
// last handed to set (nil: none). Engines that run long without progress
// events (measuring, verifying, clearing, one huge message) stay alive, and
// a killed worker is noticed within the heartbeat timeout.
func keepAlive(ctx context.Context) (set func(any), stop func()) {
	var mu sync.Mutex
	var details any
	done := make(chan struct{})
	beat := func() {
		mu.Lock()
		d := details
		mu.Unlock()
		if d != nil {
			activity.RecordHeartbeat(ctx, d)
		} else {
			activity.RecordHeartbeat(ctx)
		}
	}
	go func() {
		every := heartbeatEvery
		if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 && hb/3 < every {
			every = hb / 3
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				beat()
			}
		}
	}()
	var once sync.Once
	return func(d any) {
			mu.Lock()
			details = d
			mu.Unlock()
			beat()
		}, func() {
			once.Do(func() { close(done) })
		}
}

// reconnectTries is how many times in a row an activity reconnects after a
// transient error (connection cut, server busy) without progress before it
// lets the attempt fail to Temporal's retry policy. A try that made
// progress resets the count, so a long copy over a flaky network keeps
// going, as imapsync's reconnect does, instead of burning the stage's
// attempts.
const reconnectTries = 3

// reconnectWait is the first pause before a reconnect; it doubles.
var reconnectWait = time.Second

func reconnecting(ctx context.Context, log *zap.Logger, what string, try func() (progressed bool, err error)) error {
	wait := reconnectWait
	for fails := 0; ; {
		progressed, err := try()
		if err == nil {
			return nil
		}
		if _, perm := mailcopy.IsPermanent(err); perm || ctx.Err() != nil {
			return err
		}
		if progressed {
			fails, wait = 0, reconnectWait
		}
		if fails++; fails >= reconnectTries {
			return err
		}
		log.Warn("reconnecting", zap.String("what", what), zap.Duration("after", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
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

// endpoint is how the migrator reaches address on a service.
func (a *Activities) endpoint(sv directory.Service, address string) (mailcopy.Endpoint, error) {
	sec := mailcopy.Security(sv.IMAPSecurity)
	if sec == mailcopy.SecurityPlain && !a.Master.Plain {
		return mailcopy.Endpoint{}, permanent(ErrTypeConfig, "service %q serves IMAP without TLS; the worker allows that only with imap_plain enabled", sv.ID)
	}
	return mailcopy.Endpoint{Addr: sv.IMAPAddr, Security: sec, InsecureSkipVerify: a.Master.InsecureSkipVerify, RootCAs: a.Master.RootCAs,
		User: address, MasterUser: a.Master.User, MasterSep: a.Master.Sep, Password: a.Master.Password}, nil
}

// PreflightInput names the account and the destination.
type PreflightInput struct {
	Address    string
	To         string
	WorkflowID string
}

// PreflightResult is what preflight measured.
type PreflightResult struct {
	SourceService string `json:"sourceService"`
	DestKind      string `json:"destKind"`
	Folders       int    `json:"folders"`
	Messages      int    `json:"messages"`
	Bytes         int64  `json:"bytes"`
	QuotaNeeded   int64  `json:"quotaNeeded"`
	FreeSlots     int    `json:"freeSlots"`
	Locale        string `json:"locale,omitempty"`
}

// Preflight checks, read-only, that the migration can go ahead: the source
// account exists and is active, has no redirection, forward or
// auto-responder, and no other migration holds it; the destination is an
// E-mail Pro or Exchange service; and it measures the mailbox.
func (a *Activities) Preflight(ctx context.Context, in PreflightInput) (*PreflightResult, error) {
	acct, err := a.Dir.SourceAccount(ctx, in.Address)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, permanent(ErrTypeAccountMissing, "no MX Plan account %q in the directory", in.Address)
	}
	if err != nil {
		return nil, err
	}
	if acct.LockHolder != "" && acct.LockHolder != in.WorkflowID {
		return nil, permanent(ErrTypeLockConflict, "account %q is held by another migration (%s)", in.Address, acct.LockHolder)
	}
	if acct.State == directory.StateMigrated {
		return nil, permanent(ErrTypeAccountState, "account %q is already migrated", in.Address)
	}
	if acct.State != directory.StateActive && acct.LockHolder != in.WorkflowID {
		return nil, permanent(ErrTypeAccountState, "account %q is %s, not active", in.Address, acct.State)
	}
	reds, err := a.Dir.Redirections(ctx, in.Address)
	if err != nil {
		return nil, err
	}
	if len(reds) > 0 {
		var names []string
		for _, r := range reds {
			names = append(names, fmt.Sprintf("%s to %s", r.Kind, r.Target))
		}
		return nil, permanent(ErrTypeRedirection, "account %q has %s: remove it in the control panel, then retry", in.Address, strings.Join(names, ", "))
	}
	dst, err := a.Dir.Service(ctx, in.To)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, permanent(ErrTypeBadService, "destination service %q does not exist", in.To)
	}
	if err != nil {
		return nil, err
	}
	if dst.Kind != directory.KindEmailPro && dst.Kind != directory.KindExchange {
		return nil, permanent(ErrTypeBadService, "destination service %q is %s; it must be an E-mail Pro or Exchange service", in.To, dst.Kind)
	}
	src, err := a.Dir.Service(ctx, acct.ServiceID)
	if err != nil {
		return nil, err
	}
	ep, err := a.endpoint(src, in.Address)
	if err != nil {
		return nil, err
	}
	_, stop := keepAlive(ctx)
	tot, err := a.Mail.Measure(ctx, ep)
	stop()
	if err != nil {
		return nil, fromEngine(err)
	}
	need := max(tot.Bytes, acct.UsageBytes)
	free, err := a.Dir.FreeSlots(ctx, in.To, need)
	if err != nil {
		return nil, err
	}
	return &PreflightResult{SourceService: acct.ServiceID, DestKind: dst.Kind, Folders: tot.Folders, Messages: tot.Messages,
		Bytes: tot.Bytes, QuotaNeeded: need, FreeSlots: len(free), Locale: acct.Locale}, nil
}

// SlotQuery asks for free slots.
type SlotQuery struct {
	Service  string
	MinQuota int64
}

// FreeSlots counts the free slots of a service big enough for the mailbox.
func (a *Activities) FreeSlots(ctx context.Context, in SlotQuery) (int, error) {
	_, stop := keepAlive(ctx)
	defer stop()
	s, err := a.Dir.FreeSlots(ctx, in.Service, in.MinQuota)
	return len(s), err
}

// LockInput names the account and the migration that holds it.
type LockInput struct {
	Address    string
	WorkflowID string
}

// LockSource blocks the owner's logins on the source; delivery continues.
func (a *Activities) LockSource(ctx context.Context, in LockInput) error {
	_, stop := keepAlive(ctx)
	defer stop()
	err := a.Dir.Lock(ctx, in.Address, in.WorkflowID)
	switch {
	case errors.Is(err, directory.ErrConflict):
		return permanent(ErrTypeLockConflict, "%v", err)
	case errors.Is(err, directory.ErrNotFound):
		return permanent(ErrTypeAccountMissing, "%v", err)
	case err != nil && strings.Contains(err.Error(), "not active"):
		return permanent(ErrTypeAccountState, "%v", err)
	}
	if err == nil {
		a.log(ctx).Info("source locked", zap.String("account", in.Address))
	}
	return err
}

// AssignInput asks for a slot on a service.
type AssignInput struct {
	Address    string
	To         string
	WorkflowID string
	MinQuota   int64
}

// SlotResult is the claimed slot.
type SlotResult struct {
	SlotID      int64  `json:"slotId"`
	Placeholder string `json:"placeholder"`
	QuotaBytes  int64  `json:"quotaBytes"`
}

// AssignSlot claims a free slot (the same one again for the same workflow)
// and configures it as the address with the source's password hash.
func (a *Activities) AssignSlot(ctx context.Context, in AssignInput) (*SlotResult, error) {
	_, stop := keepAlive(ctx)
	defer stop()
	sl, err := a.Dir.ClaimSlot(ctx, in.To, in.Address, in.WorkflowID, in.MinQuota)
	if errors.Is(err, directory.ErrNoFreeSlot) {
		return nil, permanent(ErrTypeNoSlot, "%v: add a slot to the service, then retry", err)
	}
	if err != nil {
		return nil, err
	}
	if err := a.Dir.ConfigureSlot(ctx, in.WorkflowID); err != nil {
		return nil, err
	}
	return &SlotResult{SlotID: sl.ID, Placeholder: sl.Placeholder, QuotaBytes: sl.QuotaBytes}, nil
}

// RollbackInput names what to undo.
type RollbackInput struct {
	Address    string
	To         string
	WorkflowID string
}

// Rollback undoes everything before the routing switch: the copied mail is
// removed from the destination, the slot released and the source unlocked.
// Nothing on the source was ever changed.
func (a *Activities) Rollback(ctx context.Context, in RollbackInput) error {
	dst, err := a.Dir.Service(ctx, in.To)
	if err == nil {
		if ep, err := a.endpoint(dst, in.Address); err == nil {
			_, stop := keepAlive(ctx)
			err := a.Mail.Clear(ctx, ep)
			stop()
			if err != nil {
				if _, perm := mailcopy.IsPermanent(err); !perm {
					return err
				}
				// The destination refuses the migrator (account never
				// configured, or a broken service definition): nothing can
				// have been copied there.
				a.log(ctx).Warn("destination not cleared", zap.String("account", in.Address), zap.Error(err))
			}
		}
	}
	if err := a.Dir.ReleaseSlot(ctx, in.WorkflowID); err != nil {
		return err
	}
	return a.Dir.Unlock(ctx, in.Address, in.WorkflowID)
}

// CopyInput asks for a full copy or a delta pass.
type CopyInput struct {
	Address string
	From    string
	To      string
	// Checkpoints of the previous pass: a delta copies only what is past them.
	Checkpoints    map[string]mailcopy.Checkpoint
	IncludeFolders []string
	ExcludeFolders []string
	Delta          bool
}

// FolderSummary is one folder's line in a copy summary.
type FolderSummary struct {
	Source  string `json:"source"`
	Dest    string `json:"dest"`
	Copied  int    `json:"copied"`
	Present int    `json:"present"`
	Skipped int    `json:"skipped"`
	Bytes   int64  `json:"bytes"`
}

// CopySummary is the result of a copy pass, small enough for history.
type CopySummary struct {
	Folders     []FolderSummary                `json:"folders"`
	Checkpoints map[string]mailcopy.Checkpoint `json:"checkpoints"`
	Copied      int                            `json:"copied"`
	Present     int                            `json:"present"`
	Bytes       int64                          `json:"bytes"`
	Skips       []mailcopy.Skip                `json:"skips,omitempty"`
	SkipCount   int                            `json:"skipCount"`
	Seconds     float64                        `json:"seconds"`
}

// CopyHeartbeat is the heartbeat detail of a copy: enough to resume.
type CopyHeartbeat struct {
	Checkpoints  map[string]mailcopy.Checkpoint `json:"checkpoints"`
	FoldersDone  int                            `json:"foldersDone"`
	FoldersTotal int                            `json:"foldersTotal"`
	Copied       int                            `json:"copied"`
	Bytes        int64                          `json:"bytes"`
}

const maxSkipsInResult = 50

// CopyMailbox copies the mailbox from the source to the destination service,
// resuming from the last heartbeat's checkpoints after a retry.
func (a *Activities) CopyMailbox(ctx context.Context, in CopyInput) (*CopySummary, error) {
	src, err := a.Dir.Service(ctx, in.From)
	if err != nil {
		return nil, err
	}
	dst, err := a.Dir.Service(ctx, in.To)
	if err != nil {
		return nil, err
	}
	sep, err := a.endpoint(src, in.Address)
	if err != nil {
		return nil, err
	}
	dep, err := a.endpoint(dst, in.Address)
	if err != nil {
		return nil, err
	}
	cps := in.Checkpoints
	// base counts what earlier attempts and earlier connections of this
	// attempt copied, so the totals shown cover the whole pass.
	var base CopyHeartbeat
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &base) == nil && base.Checkpoints != nil {
		cps = base.Checkpoints
		a.log(ctx).Info("resuming copy from heartbeat", zap.Int("folders", len(cps)), zap.Int("copiedBefore", base.Copied))
	}
	var last time.Time
	var latest mailcopy.Progress
	set, stop := keepAlive(ctx)
	defer stop()
	opts := mailcopy.Options{
		Connections:     a.Connections,
		Folders:         mailcopy.MapOptions{Include: in.IncludeFolders, Exclude: in.ExcludeFolders},
		MaxMessageBytes: dst.MaxMessageBytes,
		Checkpoints:     cps,
		Logger:          a.Logger,
		OnProgress: func(p mailcopy.Progress) {
			latest = p
			// The SDK throttles heartbeats itself; skip building details
			// more often than needed.
			if time.Since(last) < time.Second && p.FoldersDone < p.FoldersTotal {
				return
			}
			last = time.Now()
			set(CopyHeartbeat{Checkpoints: p.Checkpoints, FoldersDone: p.FoldersDone,
				FoldersTotal: p.FoldersTotal, Copied: base.Copied + p.Copied, Bytes: base.Bytes + p.Bytes})
		},
	}
	var res *mailcopy.Result
	err = reconnecting(ctx, a.log(ctx), "copy of "+in.Address, func() (bool, error) {
		latest = mailcopy.Progress{}
		r, err := a.Mail.Copy(ctx, sep, dep, opts)
		if err == nil {
			res = r
			return true, nil
		}
		// Go on from where this connection got to.
		if latest.Checkpoints != nil {
			opts.Checkpoints = latest.Checkpoints
		}
		base.Copied += latest.Copied
		base.Bytes += latest.Bytes
		return latest.Copied > 0, err
	})
	if err != nil {
		return nil, fromEngine(err)
	}
	res.Copied += base.Copied
	res.Bytes += base.Bytes
	if a.Metrics != nil {
		a.Metrics.Copied(res.Copied, res.Bytes)
	}
	sum := &CopySummary{Checkpoints: res.Checkpoints, Copied: res.Copied, Present: res.Present, Bytes: res.Bytes,
		SkipCount: res.Skipped, Seconds: res.Duration.Seconds()}
	for _, f := range res.Folders {
		sum.Folders = append(sum.Folders, FolderSummary{Source: f.Source, Dest: f.Dest, Copied: f.Copied, Present: f.Present, Skipped: len(f.Skipped), Bytes: f.Bytes})
		for _, s := range f.Skipped {
			if len(sum.Skips) < maxSkipsInResult {
				sum.Skips = append(sum.Skips, s)
			}
		}
	}
	a.log(ctx).Info("copy pass done", zap.String("account", in.Address), zap.Bool("delta", in.Delta),
		zap.Int("copied", res.Copied), zap.Int("present", res.Present), zap.Int("skipped", res.Skipped), zap.Int64("bytes", res.Bytes))
	return sum, nil
}

// VerifySummary is the result of verification.
type VerifySummary struct {
	Checked   int             `json:"checked"`
	Missing   int             `json:"missing"`
	OverLimit []mailcopy.Skip `json:"overLimit,omitempty"`
}

// Verify checks that every source message is on the destination. A missing
// message is a permanent VerifyMismatch naming the folders.
func (a *Activities) Verify(ctx context.Context, in CopyInput) (*VerifySummary, error) {
	src, err := a.Dir.Service(ctx, in.From)
	if err != nil {
		return nil, err
	}
	dst, err := a.Dir.Service(ctx, in.To)
	if err != nil {
		return nil, err
	}
	sep, err := a.endpoint(src, in.Address)
	if err != nil {
		return nil, err
	}
	dep, err := a.endpoint(dst, in.Address)
	if err != nil {
		return nil, err
	}
	_, stop := keepAlive(ctx)
	var res *mailcopy.VerifyResult
	err = reconnecting(ctx, a.log(ctx), "verification of "+in.Address, func() (bool, error) {
		var err error
		res, err = a.Mail.Verify(ctx, sep, dep, mailcopy.Options{MaxMessageBytes: dst.MaxMessageBytes,
			Folders: mailcopy.MapOptions{Include: in.IncludeFolders, Exclude: in.ExcludeFolders}})
		return false, err
	})
	stop()
	if err != nil {
		return nil, fromEngine(err)
	}
	if !res.OK() {
		return nil, permanent(ErrTypeVerify, "%d of %d messages of %q are not on the destination: %s", res.Missing, res.Checked, in.Address, res.MissingSummary())
	}
	out := &VerifySummary{Checked: res.Checked}
	for _, f := range res.Folders {
		out.OverLimit = append(out.OverLimit, f.OverLimit...)
	}
	return out, nil
}

// RouteInput switches an address to a service.
type RouteInput struct {
	Address    string
	To         string
	WorkflowID string
}

// RouteResult says what the switch did to DNS.
type RouteResult struct {
	ManagedZone bool `json:"managedZone"`
	DNSChanged  bool `json:"dnsChanged"`
}

// SwitchRouting sends the address's mail to the destination and, for a zone
// mailshift manages, sets the records the destination needs.
func (a *Activities) SwitchRouting(ctx context.Context, in RouteInput) (*RouteResult, error) {
	_, stop := keepAlive(ctx)
	defer stop()
	if err := a.Dir.SwitchRoute(ctx, in.Address, in.To, in.WorkflowID); err != nil {
		return nil, err
	}
	want, err := a.expected(ctx, in.Address, in.To)
	if err != nil {
		return nil, err
	}
	managed, changed, err := a.DNS.Apply(ctx, domainOf(in.Address), want)
	if err != nil {
		return nil, fromEngine(err)
	}
	a.log(ctx).Info("routing switched", zap.String("account", in.Address), zap.String("to", in.To), zap.Bool("dnsChanged", changed))
	return &RouteResult{ManagedZone: managed, DNSChanged: changed}, nil
}

func (a *Activities) expected(ctx context.Context, address, to string) ([]dnscheck.Record, error) {
	sv, err := a.Dir.Service(ctx, to)
	if err != nil {
		return nil, err
	}
	want, err := dnscheck.Expected(domainOf(address), dnscheck.Requirements{MX: sv.MX, SPFInclude: sv.SPFInclude, Autodiscover: sv.Autodiscover})
	if err != nil {
		return nil, permanent(ErrTypeConfig, "service %q: %v", to, err)
	}
	return want, nil
}

func domainOf(address string) string {
	_, d, _ := strings.Cut(address, "@")
	return d
}

// DNSInput asks for the DNS diagnostic of an address's domain.
type DNSInput struct {
	Address string
	To      string
}

// CheckDNS returns the diagnostic of the domain's records on every
// authoritative server. A failed lookup is a diagnostic, not an error: the
// workflow keeps polling until its deadline.
func (a *Activities) CheckDNS(ctx context.Context, in DNSInput) (*dnscheck.Diagnostic, error) {
	_, stop := keepAlive(ctx)
	defer stop()
	want, err := a.expected(ctx, in.Address, in.To)
	if err != nil {
		return nil, err
	}
	d, err := a.DNS.Check(ctx, domainOf(in.Address), want)
	if err != nil {
		return &dnscheck.Diagnostic{Domain: domainOf(in.Address), Problems: []string{err.Error()}}, nil
	}
	return d, nil
}

// FinishInput closes a migration.
type FinishInput struct {
	Address    string
	To         string
	WorkflowID string
	Notice     bool
	Locale     string
	DNSPending string
}

// FinishResult says what finishing did.
type FinishResult struct {
	NoticeAppended bool `json:"noticeAppended"`
}

// Finish marks the source migrated (kept read-only, never deleted here) and
// appends the owner's notice to the new INBOX, once.
func (a *Activities) Finish(ctx context.Context, in FinishInput) (*FinishResult, error) {
	_, stop := keepAlive(ctx)
	defer stop()
	res := &FinishResult{}
	if in.Notice {
		dst, err := a.Dir.Service(ctx, in.To)
		if err != nil {
			return nil, err
		}
		ep, err := a.endpoint(dst, in.Address)
		if err != nil {
			return nil, err
		}
		msg := Notice(in.Address, dst, in.Locale, in.DNSPending, in.WorkflowID)
		added, err := a.Mail.AppendOnce(ctx, ep, "INBOX", noticeMarker(in.WorkflowID), msg)
		if err != nil {
			return nil, fromEngine(err)
		}
		res.NoticeAppended = added
	}
	if err := a.Dir.MarkMigrated(ctx, in.Address, in.WorkflowID); err != nil {
		return nil, err
	}
	return res, nil
}
