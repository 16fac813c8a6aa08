package activities

import (
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

// The worker's hashes stay within their bounds: the least recently used
// account's go first, never the one asked for; a reading is taken once,
// and not after its time.
func TestHashesBounds(t *testing.T) {
	var none *Hashes
	if none.digests("migrate:a") != nil || none.hold("k", &mailcopy.SourceSnapshot{}) || none.take("k") != nil {
		t.Fatal("a worker without Hashes keeps something")
	}
	h := NewHashes()
	h.MaxMessages, h.MaxPerAccount = 5, 3
	a := h.digests("migrate:a")
	if a == nil || h.digests("migrate:a") != a {
		t.Fatal("an account's hashes are not one store")
	}
	for uid := 1; uid <= 4; uid++ {
		a.Add("INBOX", 7, imap.UID(uid), [32]byte{byte(uid)}, [32]byte{}, 10)
	}
	if a.Len() != 3 {
		t.Fatalf("one account keeps %d hashes, want MaxPerAccount 3", a.Len())
	}
	time.Sleep(time.Millisecond)
	b := h.digests("migrate:b")
	for uid := 1; uid <= 3; uid++ {
		b.Add("INBOX", 7, imap.UID(uid), [32]byte{}, [32]byte{}, 10)
	}
	// 6 kept > 5: the next request trims a, the least recently used.
	if h.digests("migrate:b") != b || len(h.accounts) != 1 || h.accounts["migrate:b"] == nil {
		t.Fatalf("after going past MaxMessages, kept %v, want only b's", h.accounts)
	}
	h.forget("migrate:b")
	if len(h.accounts) != 0 {
		t.Fatal("forget kept the account's hashes")
	}

	s := &mailcopy.SourceSnapshot{Messages: 2}
	h.hold("r1", s)
	if h.take("r1") != s || h.take("r1") != nil {
		t.Fatal("a reading is not taken exactly once")
	}
	h.SnapshotTTL = time.Millisecond
	h.hold("r2", s)
	time.Sleep(5 * time.Millisecond)
	if h.take("r2") != nil {
		t.Fatal("a reading past its time was taken")
	}
}
