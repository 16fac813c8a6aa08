package corpus

import (
	"path/filepath"
	"time"
)

// Message is one message to lay down exactly as given.
type Message struct {
	Body []byte
	// Date becomes the internal date (the file's modification time).
	Date time.Time
	// Flags are Maildir flag letters, sorted ("S" seen, "F" flagged, "R"
	// answered).
	Flags string
}

// WriteFolder lays msgs into folder ("INBOX", or a "/"-separated path) of
// the Maildir++ directory root, byte for byte, as real old mailboxes hold
// them (no line-ending or header repair: only an IMAP APPEND would do
// that), owned by uid:gid when they are not both 0.
func WriteFolder(root, folder string, msgs []Message, uid, gid int) error {
	dir := root
	if folder != "INBOX" {
		dir = filepath.Join(root, "."+onDisk(folder))
	}
	ms := make([]message, len(msgs))
	for i, m := range msgs {
		ms[i] = message{body: m.Body, date: m.Date, flags: m.Flags}
	}
	if err := writeFolder(dir, folder != "INBOX", ms, "Long"); err != nil {
		return err
	}
	return chownAll(root, uid, gid)
}
