package activities

import (
	"context"
)

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
	if err := checkAddress(in.Address); err != nil {
		return nil, err
	}
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
