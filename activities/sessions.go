package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

// Sessions keeps a migration's IMAP connection pair open from one of its
// local steps to the next: a small mailbox's copy, final delta, delta-sync
// (and a verify's halves) run one after the other in one workflow task on
// this worker, under leases the migration holds throughout, and each would
// otherwise log in to both servers, list their folders and log out again.
// A kept pair is closed before the migration gives any lease back
// (ReleaseLeases, in this worker: the local steps and the release run in
// the same workflow task's worker), after Idle without a step, and at once
// after a step that failed. Activities (a large mailbox's steps, run on any
// worker) never keep one.
type Sessions struct {
	mu   sync.Mutex
	kept map[string]*keptSession
	// Idle is how long a pair waits for the next step.
	Idle time.Duration
}

type keptSession struct {
	s     *mailcopy.Session
	timer *time.Timer
}

// NewSessions returns the worker's store: a pair waits 2 s for the next
// step (steps of one workflow task follow within milliseconds).
func NewSessions() *Sessions { return &Sessions{Idle: 2 * time.Second} }

// session returns the pair a step uses and what the step calls when it
// ends, with its error: the pair the migration's last local step left
// open, if it still answers, or a new one.
func (ss *Sessions) session(ctx context.Context) (*mailcopy.Session, func(error)) {
	wid := workflowID(ctx)
	if ss == nil || wid == "" || !activity.GetInfo(ctx).IsLocalActivity {
		s := &mailcopy.Session{}
		return s, func(error) { s.Close() }
	}
	ss.mu.Lock()
	k := ss.kept[wid]
	delete(ss.kept, wid)
	ss.mu.Unlock()
	s := &mailcopy.Session{}
	if k != nil {
		k.timer.Stop()
		if k.s.Renew(ctx) {
			s = k.s
		}
	}
	return s, func(err error) {
		if err != nil {
			s.Close()
			return
		}
		ss.keep(wid, s)
	}
}

func (ss *Sessions) keep(wid string, s *mailcopy.Session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.kept == nil {
		ss.kept = map[string]*keptSession{}
	}
	if old := ss.kept[wid]; old != nil {
		// Two steps at once (never in a workflow task's sequence): the
		// later one's pair is kept.
		old.timer.Stop()
		old.s.Close()
	}
	k := &keptSession{s: s}
	k.timer = time.AfterFunc(ss.Idle, func() {
		ss.mu.Lock()
		mine := ss.kept[wid] == k
		if mine {
			delete(ss.kept, wid)
		}
		ss.mu.Unlock()
		if mine {
			s.Close()
		}
	})
	ss.kept[wid] = k
}

// close logs out of the pair kept for a migration, if any.
func (ss *Sessions) close(wid string) {
	if ss == nil || wid == "" {
		return
	}
	ss.mu.Lock()
	k := ss.kept[wid]
	delete(ss.kept, wid)
	ss.mu.Unlock()
	if k != nil {
		k.timer.Stop()
		k.s.Close()
	}
}
