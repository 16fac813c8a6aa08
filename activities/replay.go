package activities

import (
	"context"

	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

// replayChanges carries the owner's changes since the checkpoints to the
// destination before the final delta copies what is new (expunges, flags,
// moves, folder renames and deletions; mailcopy.Replay). It returns the
// checkpoints the copy goes on from. The counts add to what an earlier
// attempt of the same activity replayed (base, from its heartbeat): a
// rerun finds that already done and counts nothing twice.
func (a *Activities) replayChanges(ctx context.Context, in CopyInput, src, dst mailcopy.Endpoint, opts mailcopy.Options, base *CopyHeartbeat, set func(any)) (map[string]mailcopy.Checkpoint, []mailcopy.Skip, error) {
	var res *mailcopy.ReplayResult
	err := reconnecting(ctx, a.log(ctx), "replay of "+in.Address, func() (bool, error) {
		var err error
		res, err = a.Mail.Replay(ctx, src, dst, opts)
		return false, err
	})
	if err != nil {
		return nil, nil, err
	}
	if base.Replayed == nil {
		base.Replayed = &mailcopy.ReplayCounts{}
	}
	base.Replayed.Add(res.ReplayCounts)
	base.Checkpoints = res.Checkpoints
	set(*base)
	a.log(ctx).Info("owner's changes replayed", zap.String("account", in.Address),
		zap.Int("expunged", res.Expunged), zap.Int("flags", res.Flags), zap.Int("moved", res.Moved), zap.Int("folders", res.Folders),
		zap.Int("items", len(res.Items)), zap.Int("changedSinceFolders", res.ChangedSince), zap.Int("scannedFolders", res.Scanned))
	return res.Checkpoints, res.Items, nil
}
