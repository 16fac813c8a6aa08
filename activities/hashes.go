package activities

import (
	"sync"
	"time"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

// Hashes keeps, in the worker's memory, what lets a migration's verify read
// the source less: the content hashes its copy passes took (by migration)
// and the source's half of a verify until its destination half runs (by
// the activity that read it). Both are hints: a verify that finds nothing
// here reads the source itself, so a worker's restart or another worker
// costs time, never a check. A small mailbox's steps run as local
// activities in the worker that runs its workflow tasks, so its verify
// finds its copy's hashes here.
type Hashes struct {
	mu       sync.Mutex
	accounts map[string]*accountHashes
	snaps    map[string]heldSnapshot
	// MaxMessages bounds the hashes kept across accounts (the least
	// recently used account's go first); MaxPerAccount bounds one
	// account's (its messages past it are read from the source by verify).
	MaxMessages, MaxPerAccount int
	// SnapshotTTL is how long a source's reading waits for its
	// destination half.
	SnapshotTTL time.Duration
}

type accountHashes struct {
	d    *mailcopy.Digests
	used time.Time
}

type heldSnapshot struct {
	s  *mailcopy.SourceSnapshot
	at time.Time
}

// NewHashes returns a store with the worker's bounds: about 120 bytes a
// message, 100,000 messages (12 MB) at most, 5,000 an account.
func NewHashes() *Hashes {
	return &Hashes{MaxMessages: 100_000, MaxPerAccount: 5_000, SnapshotTTL: 10 * time.Minute}
}

// digests returns the account's store of copy hashes (nil: none kept).
func (h *Hashes) digests(wid string) *mailcopy.Digests {
	if h == nil || wid == "" {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.accounts == nil {
		h.accounts = map[string]*accountHashes{}
	}
	ah := h.accounts[wid]
	if ah == nil {
		ah = &accountHashes{d: mailcopy.NewDigests(h.MaxPerAccount)}
		h.accounts[wid] = ah
	}
	ah.used = time.Now()
	h.trim(wid)
	return ah.d
}

// trim drops the least recently used accounts' hashes (never keep's) while
// more than MaxMessages are kept.
func (h *Hashes) trim(keep string) {
	total := 0
	for _, ah := range h.accounts {
		total += ah.d.Len()
	}
	for total > h.MaxMessages {
		oldest := ""
		for wid, ah := range h.accounts {
			if wid != keep && (oldest == "" || ah.used.Before(h.accounts[oldest].used)) {
				oldest = wid
			}
		}
		if oldest == "" {
			return
		}
		total -= h.accounts[oldest].d.Len()
		delete(h.accounts, oldest)
	}
}

// forget drops an account's hashes (its verify passed).
func (h *Hashes) forget(wid string) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.accounts, wid)
}

// hold keeps a source's reading under key until take.
func (h *Hashes) hold(key string, s *mailcopy.SourceSnapshot) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.snaps == nil {
		h.snaps = map[string]heldSnapshot{}
	}
	now := time.Now()
	for k, hs := range h.snaps {
		if now.Sub(hs.at) > h.SnapshotTTL {
			delete(h.snaps, k)
		}
	}
	h.snaps[key] = heldSnapshot{s: s, at: now}
	return true
}

// take returns and forgets the reading held under key (nil: none here).
func (h *Hashes) take(key string) *mailcopy.SourceSnapshot {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.snaps[key]
	delete(h.snaps, key)
	if !ok || time.Since(hs.at) > h.SnapshotTTL {
		return nil
	}
	return hs.s
}
