package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/mailcopy"
)

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
	// Replay, with Delta, first carries to the destination what the owner
	// changed in what was already copied (the final delta, source locked):
	// expunges, flags, moves, folder renames and deletions.
	Replay bool `json:",omitempty"`
	// Locale is the owner's language: it names the folder where messages
	// refused for their form are preserved.
	Locale string `json:",omitempty"`
	// Reported are the items earlier copy passes reported: verify accounts
	// for them instead of calling them missing.
	Reported []mailcopy.Skip `json:",omitempty"`
	// Exclude are source messages that stay on the source (the owner's
	// advance notice).
	Exclude []mailcopy.Exclude `json:",omitempty"`
	// Pairs caps the connection pairs the pass opens: what its lease
	// holds (0: the worker's setting).
	Pairs int `json:",omitempty"`
	// Sync, for Verify, runs the last delta pass first, on the same
	// connections (VerifySummary.Pass): one activity and one login on each
	// server instead of two.
	Sync bool `json:",omitempty"`
}

// FolderSummary is one folder's line in a copy summary.
type FolderSummary struct {
	Source  string `json:"source"`
	Dest    string `json:"dest"`
	Copied  int    `json:"copied"`
	Present int    `json:"present"`
	Skipped int    `json:"skipped"`
	Bytes   int64  `json:"bytes"`
	// ByReason counts the folder's skipped and reported items by category
	// (too-big, refused, preserved, altered-by-destination…).
	ByReason map[string]int `json:"byReason,omitempty"`
}

// CopySummary is the result of a copy pass, small enough for history.
type CopySummary struct {
	Folders     []FolderSummary                `json:"folders"`
	Checkpoints map[string]mailcopy.Checkpoint `json:"checkpoints"`
	Copied      int                            `json:"copied"`
	Present     int                            `json:"present"`
	Bytes       int64                          `json:"bytes"`
	// Skips are the items not on the destination (too big, refused,
	// unreadable or uncreatable folder), each listed once.
	Skips     []mailcopy.Skip `json:"skips,omitempty"`
	SkipCount int             `json:"skipCount"`
	// Reported are the items on the destination but reported (preserved,
	// stored altered, keyword dropped, folder renamed, empty).
	Reported      []mailcopy.Skip `json:"reported,omitempty"`
	ReportedCount int             `json:"reportedCount,omitempty"`
	// ByReason counts both by category.
	ByReason map[string]int `json:"byReason,omitempty"`
	Seconds  float64        `json:"seconds"`
	// Replayed counts the owner's changes a replaying delta carried over.
	Replayed *mailcopy.ReplayCounts `json:"replayed,omitempty"`
}

// CopyHeartbeat is the heartbeat detail of a copy: enough to resume.
type CopyHeartbeat struct {
	Checkpoints  map[string]mailcopy.Checkpoint `json:"checkpoints"`
	FoldersDone  int                            `json:"foldersDone"`
	FoldersTotal int                            `json:"foldersTotal"`
	Copied       int                            `json:"copied"`
	Bytes        int64                          `json:"bytes"`
	// Replayed is what the replay of this activity did (see CopyInput.Replay).
	Replayed *mailcopy.ReplayCounts `json:"replayed,omitempty"`
}

const maxSkipsInResult = 50

// CopyMailbox copies the mailbox from the source to the destination service,
// resuming from the last heartbeat's checkpoints after a retry.
func (a *Activities) CopyMailbox(ctx context.Context, in CopyInput) (_ *CopySummary, err error) {
	p, err := a.serversOf(ctx, in)
	if err != nil {
		return nil, err
	}
	// The replay and the copy share one login on each server (and the
	// migration's next local step too: Sessions).
	sess, done := a.Sessions.session(ctx)
	defer func() { done(err) }()
	return a.copyPass(ctx, in, p, sess)
}

// servers are the two services of a pass and the account's endpoints on
// them.
type servers struct {
	src, dst directory.Service
	sep, dep mailcopy.Endpoint
}

func (a *Activities) serversOf(ctx context.Context, in CopyInput) (servers, error) {
	var p servers
	var err error
	if p.src, err = a.Dir.Service(ctx, in.From); err != nil {
		return p, err
	}
	if p.dst, err = a.Dir.Service(ctx, in.To); err != nil {
		return p, err
	}
	if p.sep, err = a.endpoint(p.src, in.Address); err != nil {
		return p, err
	}
	p.dep, err = a.endpoint(p.dst, in.Address)
	return p, err
}

// copyPass is one copy or delta pass (with its replay) on sess's
// connections.
func (a *Activities) copyPass(ctx context.Context, in CopyInput, p servers, sess *mailcopy.Session) (*CopySummary, error) {
	src, dst, sep, dep := p.src, p.dst, p.sep, p.dep
	var err error
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
		Locale:          in.Locale,
		Exclude:         in.Exclude,
		Session:         sess,
		Digests:         a.Hashes.digests(workflowID(ctx)),
		OnProgress: func(p mailcopy.Progress) {
			latest = p
			// The SDK throttles heartbeats itself; skip building details
			// more often than needed.
			if time.Since(last) < time.Second && p.FoldersDone < p.FoldersTotal {
				return
			}
			last = time.Now()
			set(CopyHeartbeat{Checkpoints: p.Checkpoints, FoldersDone: p.FoldersDone,
				FoldersTotal: p.FoldersTotal, Copied: base.Copied + p.Copied, Bytes: base.Bytes + p.Bytes, Replayed: base.Replayed})
		},
	}
	if in.Pairs > 0 && (opts.Connections <= 0 || in.Pairs < opts.Connections) {
		opts.Connections = in.Pairs
	}
	var replayItems []mailcopy.Skip
	if in.Replay && in.Delta {
		if opts.Checkpoints, replayItems, err = a.replayChanges(ctx, in, sep, dep, opts, &base, set); err != nil {
			return nil, fromEngine(err)
		}
	}
	var res *mailcopy.Result
	err = reconnecting(ctx, a.log(ctx), "copy of "+in.Address, func() (bool, error) {
		latest = mailcopy.Progress{}
		r, err := a.Mail.Copy(ctx, sep, dep, opts)
		if err == nil {
			res = r
			return true, nil
		}
		// A server that says it is overloaded gets a smaller share; the
		// next attempt sends a message per APPEND, so an answer that was
		// about one message after all is that message's refusal.
		a.reportOverloads(ctx, err, in.From, in.To, src.IMAPAddr, dst.IMAPAddr)
		if mailcopy.OverloadKind(err) != "" {
			opts.NoMultiAppend = true
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
		SkipCount: res.Skipped, ReportedCount: res.Reported, ByReason: res.ByReason, Seconds: res.Duration.Seconds()}
	for _, f := range res.Folders {
		fs := FolderSummary{Source: f.Source, Dest: f.Dest, Copied: f.Copied, Present: f.Present, Skipped: len(f.Skipped), Bytes: f.Bytes}
		if len(f.Skipped)+len(f.Reported) > 0 {
			fs.ByReason = mailcopy.CountByCategory(f.Skipped, f.Reported)
		}
		sum.Folders = append(sum.Folders, fs)
	}
	// Items carry folder, UID, size, date, Message-ID and the reason, never
	// content; each once (Items is one list over all folders).
	sum.Replayed = base.Replayed
	if len(replayItems) > 0 {
		sum.ReportedCount += len(replayItems)
		if sum.ByReason == nil {
			sum.ByReason = map[string]int{}
		}
		for k, n := range mailcopy.CountByCategory(replayItems) {
			sum.ByReason[k] += n
		}
	}
	for _, it := range append(res.Items(), replayItems...) {
		switch {
		case it.NotCopied() && len(sum.Skips) < maxSkipsInResult:
			sum.Skips = append(sum.Skips, it)
		case !it.NotCopied() && len(sum.Reported) < maxSkipsInResult:
			sum.Reported = append(sum.Reported, it)
		}
	}
	a.recordItemHeaders(ctx, sep, res.Items())
	a.log(ctx).Info("copy pass done", zap.String("account", in.Address), zap.Bool("delta", in.Delta),
		zap.Int("copied", res.Copied), zap.Int("present", res.Present), zap.Int("skipped", res.Skipped), zap.Int("reported", res.Reported),
		zap.Any("byReason", res.ByReason), zap.Int64("bytes", res.Bytes), zap.Duration("took", res.Duration))
	return sum, nil
}

// VerifySummary is the result of verification by content.
type VerifySummary struct {
	Checked int `json:"checked"`
	Missing int `json:"missing"`
	// OverLimit are messages not on the destination for their size;
	// NotCopied other reported ones not on it (refused, unreadable folder).
	OverLimit  []mailcopy.Skip `json:"overLimit,omitempty"`
	NotCopied  []mailcopy.Skip `json:"notCopied,omitempty"`
	Exact      int             `json:"exact,omitempty"`
	Altered    int             `json:"altered,omitempty"`
	Preserved  int             `json:"preserved,omitempty"`
	Empty      int             `json:"empty,omitempty"`
	Duplicates int             `json:"duplicates,omitempty"`
	Seconds    float64         `json:"seconds,omitempty"`
	// Pass is the last delta's summary when CopyInput.Sync ran it first.
	Pass *CopySummary `json:"pass,omitempty"`
	// Unread: VerifyDestination found no reading of the source in its
	// worker, and checked nothing.
	Unread bool `json:"unread,omitempty"`
}

// Verify checks that every source message is on the destination. A missing
// message is a permanent VerifyMismatch naming the folders.
func (a *Activities) Verify(ctx context.Context, in CopyInput) (*VerifySummary, error) {
	var res *mailcopy.VerifyResult
	pass, err := a.verifyStep(ctx, in, "verification of "+in.Address, func(p servers, opts mailcopy.Options) (err error) {
		res, err = a.Mail.Verify(ctx, p.sep, p.dep, opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a.verified(ctx, in, res, pass)
}

// verifyStep runs read, a verify's reading, on the migration's
// connections after the last delta (CopyInput.Sync), again after a lost
// connection, and returns the delta's summary.
func (a *Activities) verifyStep(ctx context.Context, in CopyInput, what string, read func(servers, mailcopy.Options) error) (_ *CopySummary, err error) {
	p, err := a.serversOf(ctx, in)
	if err != nil {
		return nil, err
	}
	sess, done := a.Sessions.session(ctx)
	defer func() { done(err) }()
	pass, err := a.lastDelta(ctx, &in, p, sess)
	if err != nil {
		return nil, err
	}
	if err := a.reading(ctx, in, p, what, func() error { return read(p, a.verifyOptions(ctx, in, p, sess)) }); err != nil {
		return nil, err
	}
	return pass, nil
}

// reading runs read, heartbeating, again after a lost connection; an
// overload the servers answer shrinks their shares.
func (a *Activities) reading(ctx context.Context, in CopyInput, p servers, what string, read func() error) error {
	_, stop := keepAlive(ctx)
	defer stop()
	err := reconnecting(ctx, a.log(ctx), what, func() (bool, error) {
		err := read()
		a.reportOverloads(ctx, err, in.From, in.To, p.src.IMAPAddr, p.dst.IMAPAddr)
		return false, err
	})
	if err != nil {
		return fromEngine(err)
	}
	return nil
}

// lastDelta runs, for CopyInput.Sync, the last delta before a verify, on
// the connections the check then reads through: what it copies is
// checked, what it skips or reports is accounted for (in takes its
// checkpoints and reports).
func (a *Activities) lastDelta(ctx context.Context, in *CopyInput, p servers, sess *mailcopy.Session) (*CopySummary, error) {
	if !in.Sync {
		return nil, nil
	}
	din := *in
	din.Delta, din.Replay, din.Sync = true, false, false
	pass, err := a.copyPass(ctx, din, p, sess)
	if err != nil {
		return nil, err
	}
	in.Checkpoints = pass.Checkpoints
	in.Reported = append(append([]mailcopy.Skip(nil), in.Reported...), pass.Skips...)
	return pass, nil
}

func (a *Activities) verifyOptions(ctx context.Context, in CopyInput, p servers, sess *mailcopy.Session) mailcopy.Options {
	return mailcopy.Options{MaxMessageBytes: p.dst.MaxMessageBytes,
		Folders:     mailcopy.MapOptions{Include: in.IncludeFolders, Exclude: in.ExcludeFolders},
		Checkpoints: in.Checkpoints, Locale: in.Locale, Reported: in.Reported, Exclude: in.Exclude, Session: sess,
		Digests: a.Hashes.digests(workflowID(ctx))}
}

// verified turns a verification into the step's result: a missing or
// duplicated message is a permanent VerifyMismatch naming the folders.
func (a *Activities) verified(ctx context.Context, in CopyInput, res *mailcopy.VerifyResult, pass *CopySummary) (*VerifySummary, error) {
	if !res.OK() {
		return nil, permanent(ErrTypeVerify, "%d of %d messages of %q are not on the destination, %d duplicated: %s", res.Missing, res.Checked, in.Address, res.Duplicates, res.MissingSummary())
	}
	// Checked: the copy's hashes are not needed again.
	a.Hashes.forget(workflowID(ctx))
	out := &VerifySummary{Checked: res.Checked, Exact: res.Exact, Altered: res.Altered, Preserved: res.Preserved,
		Empty: res.Empty, Duplicates: res.Duplicates, Seconds: res.Duration.Seconds(), Pass: pass}
	for _, f := range res.Folders {
		out.OverLimit = append(out.OverLimit, f.OverLimit...)
		out.NotCopied = append(out.NotCopied, f.NotCopied...)
	}
	return out, nil
}

// VerifySourceSummary is what VerifySource read: Snapshot names the
// reading, held in this worker for VerifyDestination.
type VerifySourceSummary struct {
	Snapshot string `json:"snapshot"`
	// Messages were read from the source, Hashed of them by their bytes
	// (the others' hashes came from the copy).
	Messages int `json:"messages"`
	Hashed   int `json:"hashed"`
	// Pass is the last delta's summary when CopyInput.Sync ran it first.
	Pass *CopySummary `json:"pass,omitempty"`
}

// VerifySource is verify's source half: the last delta (CopyInput.Sync),
// then every source message's metadata and content hash, held in this
// worker's memory (Hashes) for VerifyDestination, which reads the
// destination once the source's lease is given back.
func (a *Activities) VerifySource(ctx context.Context, in CopyInput) (*VerifySourceSummary, error) {
	var snap *mailcopy.SourceSnapshot
	pass, err := a.verifyStep(ctx, in, "verification of "+in.Address+" (source)", func(p servers, opts mailcopy.Options) (err error) {
		snap, err = a.Mail.VerifySource(ctx, p.sep, p.dep, opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	a.log(ctx).Info("verify: source read", zap.String("account", in.Address), zap.Int("messages", snap.Messages),
		zap.Int("hashedNow", snap.Hashed), zap.Duration("took", time.Since(snap.Started())))
	info := activity.GetInfo(ctx)
	out := &VerifySourceSummary{Messages: snap.Messages, Hashed: snap.Hashed, Pass: pass}
	key := info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID + "/" + info.ActivityID
	if a.Hashes.hold(key, snap) {
		out.Snapshot = key
	}
	return out, nil
}

// VerifyDestinationInput names a source's reading and the pass it checks.
type VerifyDestinationInput struct {
	Copy     CopyInput `json:"copy"`
	Snapshot string    `json:"snapshot"`
}

// VerifyDestination is verify's destination half: every message of the
// source's reading (VerifySource) on the destination. A reading this
// worker does not hold (another worker read it, or this one restarted)
// gives VerifySummary.Unread, and verify runs again whole.
func (a *Activities) VerifyDestination(ctx context.Context, in VerifyDestinationInput) (*VerifySummary, error) {
	snap := a.Hashes.take(in.Snapshot)
	if snap == nil {
		return &VerifySummary{Unread: true}, nil
	}
	p, err := a.serversOf(ctx, in.Copy)
	if err != nil {
		return nil, err
	}
	var res *mailcopy.VerifyResult
	if err := a.reading(ctx, in.Copy, p, "verification of "+in.Copy.Address+" (destination)", func() (err error) {
		res, err = a.Mail.VerifyAgainst(ctx, p.dep, snap)
		return err
	}); err != nil {
		return nil, err
	}
	a.log(ctx).Info("verify: destination checked", zap.String("account", in.Copy.Address), zap.Int("checked", res.Checked),
		zap.Duration("took", res.Duration))
	return a.verified(ctx, in.Copy, res, nil)
}

// workflowID is the ID of the workflow an activity runs for ("" outside
// one).
func workflowID(ctx context.Context) string {
	if !activity.IsActivity(ctx) {
		return ""
	}
	return activity.GetInfo(ctx).WorkflowExecution.ID
}
