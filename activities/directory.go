package activities

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/eligibility"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

// errTypeOf is the permanent error type of each reason an account cannot
// migrate (package eligibility owns the rule).
var errTypeOf = map[eligibility.Kind]string{
	eligibility.AccountMissing:   ErrTypeAccountMissing,
	eligibility.HeldByAnother:    ErrTypeLockConflict,
	eligibility.AlreadyMigrated:  ErrTypeAccountState,
	eligibility.NotActive:        ErrTypeAccountState,
	eligibility.Redirection:      ErrTypeRedirection,
	eligibility.UnknownService:   ErrTypeBadService,
	eligibility.WrongServiceKind: ErrTypeBadService,
}

// PreflightInput names the account and the destination.
type PreflightInput struct {
	Address    string
	To         string
	WorkflowID string
	// IncludeFolders / ExcludeFolders are the copy's folder globs: the
	// measure counts what the copy takes and says which folders it leaves
	// out, by which rule.
	IncludeFolders []string `json:",omitempty"`
	ExcludeFolders []string `json:",omitempty"`
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
	// Connections a copy opens on each server, and the servers' budgets
	// (0: none).
	Connections  int    `json:"connections,omitempty"`
	SourceBudget int    `json:"sourceBudget,omitempty"`
	DestBudget   int    `json:"destBudget,omitempty"`
	Locale       string `json:"locale,omitempty"`
	// Largest is the size of the largest message the copy takes, in
	// LargestFolder; MaxMessageBytes the destination's limit (0: none).
	Largest         int64  `json:"largest,omitempty"`
	LargestFolder   string `json:"largestFolder,omitempty"`
	MaxMessageBytes int64  `json:"maxMessageBytes,omitempty"`
	// SourceFolders measure the source folder by folder, excluded ones
	// included (with their rule); at most MaxFolderRows, the others
	// counted in SourceFoldersNotListed.
	SourceFolders          []SourceFolder `json:"sourceFolders,omitempty"`
	SourceFoldersNotListed int            `json:"sourceFoldersNotListed,omitempty"`
}

// Preflight checks, read-only, that the migration can go ahead (the rule of
// package eligibility: the first reason it gives is the permanent error) and
// measures the mailbox.
func (a *Activities) Preflight(ctx context.Context, in PreflightInput) (*PreflightResult, error) {
	if err := checkAddress(in.Address); err != nil {
		return nil, err
	}
	began := time.Now()
	v, err := eligibility.Check(ctx, a.Dir, in.Address, in.To, in.WorkflowID)
	if err != nil {
		return nil, err
	}
	if !v.OK() {
		r := v.Reasons[0]
		return nil, permanent(errTypeOf[r.Kind], "%s", r.Message)
	}
	acct, dst := *v.Account, *v.Service
	src, err := a.Dir.Service(ctx, acct.ServiceID)
	if err != nil {
		return nil, err
	}
	ep, err := a.endpoint(src, in.Address)
	if err != nil {
		return nil, err
	}
	_, stop := keepAlive(ctx)
	tot, err := a.Mail.MeasureFolders(ctx, ep, mailcopy.MapOptions{Include: in.IncludeFolders, Exclude: in.ExcludeFolders}, dst.MaxMessageBytes)
	stop()
	if err != nil {
		a.reportOverload(ctx, acct.ServiceID, err)
		return nil, fromEngine(err)
	}
	need := max(tot.Bytes, acct.UsageBytes)
	free, err := a.Dir.FreeSlots(ctx, in.To, need)
	if err != nil {
		return nil, err
	}
	if len(free) == 0 {
		// Run again after its own assign-slot (a workflow task lost with
		// its worker runs its local activities again): the slot this
		// migration claimed is the one it gets.
		held, err := a.Dir.HoldsSlot(ctx, in.To, in.WorkflowID, need)
		if err != nil {
			return nil, err
		}
		if held {
			free = append(free, directory.Slot{})
		}
	}
	res := &PreflightResult{SourceService: acct.ServiceID, DestKind: dst.Kind, Folders: tot.Totals.Folders, Messages: tot.Messages,
		Bytes: tot.Bytes, QuotaNeeded: need, FreeSlots: len(free), Locale: acct.Locale,
		Connections: max(1, a.Connections), SourceBudget: a.budgetOf(acct.ServiceID), DestBudget: a.budgetOf(in.To),
		Largest: tot.Largest, LargestFolder: tot.LargestFolder, MaxMessageBytes: dst.MaxMessageBytes}
	res.SourceFolders, res.SourceFoldersNotListed = sourceFolders(tot.Folders)
	a.log(ctx).Info("preflight done", zap.String("account", in.Address), zap.Int("messages", res.Messages),
		zap.Int("folders", res.Folders), zap.Duration("took", time.Since(began)))
	return res, nil
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
	if err := checkAddress(in.Address); err != nil {
		return err
	}
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
	if err := checkAddress(in.Address); err != nil {
		return nil, err
	}
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
	// IncludeFolders / ExcludeFolders are the copy's folder globs: the
	// measure counts what the copy takes and says which folders it leaves
	// out, by which rule.
	IncludeFolders []string `json:",omitempty"`
	ExcludeFolders []string `json:",omitempty"`
}

// Rollback undoes everything before the routing switch: the copied mail is
// removed from the destination, the slot released and the source unlocked.
// Nothing on the source was ever changed.
func (a *Activities) Rollback(ctx context.Context, in RollbackInput) error {
	if err := checkAddress(in.Address); err != nil {
		return err
	}
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
