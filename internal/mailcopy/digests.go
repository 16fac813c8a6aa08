package mailcopy

import (
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Digests keeps the content hashes a copy took of the source messages it
// streamed, for one account, so that a later verify of that account in the
// same process reads each copied message's bytes from the destination only:
// the source's copy was hashed as it went out. A message's key is its source
// folder, UIDVALIDITY and UID, which IMAP never reuses for other content;
// verify still checks the size the source gives now and reads from the
// source every message the copy did not hash (another process copied it, a
// NUL byte made the copy read it twice, it was already on the destination).
type Digests struct {
	mu  sync.Mutex
	m   map[digestKey]hashed
	max int
}

// hashed is what is kept of a message: about 120 bytes with its key.
type hashed struct {
	raw, norm [32]byte
	size      int64
}

type digestKey struct {
	folder      string
	uidValidity uint32
	uid         imap.UID
}

// NewDigests returns an empty store that keeps up to max messages (0: no
// bound); the messages past it are read from the source by verify.
func NewDigests(max int) *Digests { return &Digests{m: map[digestKey]hashed{}, max: max} }

// Len is the number of messages held.
func (d *Digests) Len() int {
	if d == nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.m)
}

// Add records the hashes of a source message's bytes (BODY[]) and of their
// normalized form (the copy adds what it streams).
func (d *Digests) Add(folder string, uidValidity uint32, uid imap.UID, raw, norm [32]byte, size int64) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.max > 0 && len(d.m) >= d.max {
		return
	}
	d.m[digestKey{folder, uidValidity, uid}] = hashed{raw: raw, norm: norm, size: size}
}

// known returns the digest of a source message the copy hashed, if its size
// is still size; date is the source's internal date of now.
func (d *Digests) known(folder string, uidValidity uint32, uid imap.UID, size int64, date time.Time) (digest, bool) {
	if d == nil {
		return digest{}, false
	}
	d.mu.Lock()
	h, ok := d.m[digestKey{folder, uidValidity, uid}]
	d.mu.Unlock()
	if !ok || h.size != size {
		return digest{}, false
	}
	return digest{raw: h.raw, norm: h.norm, size: h.size, date: date}, true
}
