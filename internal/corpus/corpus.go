// Package corpus writes a deterministic adversarial mailbox straight into a
// Dovecot Maildir++ directory: the odd things old mailboxes hold and no
// IMAP client could APPEND (zero-byte and NUL-byte messages, 8-bit and
// over-long keywords, folder names that are not valid modified UTF-7,
// dates before 1970), next to ordinary mail.
package corpus

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf16"
)

// Spec says what to write.
type Spec struct {
	Seed uint64
	// Big is the message count of the "Big" folder.
	Big int
	// HugeBytes is the size of the one huge message in INBOX.
	HugeBytes int
	// LongKeyword is a keyword longer than the destination takes.
	LongKeyword string
	// UID and GID own the files (the mail processes' user).
	UID, GID int
}

// Classes names what the corpus holds, for the report.
var Classes = []string{"ordinary", "empty", "headers-only", "body-only", "bare-CR", "bare-LF", "NUL bytes", "very long line",
	"8-bit headers", "RFC 6532 headers", "true duplicate", "shared Message-ID same date and size", "huge", "date before 1970",
	"date far in the future", "8-bit keyword", "over-long keyword", "odd folder names", "deep nesting", "\\Noselect parent",
	"special-use collision", "name beginning with ~", "control character in a name", "invalid modified UTF-7 folder", "big folder"}

type message struct {
	body  []byte
	date  time.Time
	flags string // maildir flags, keyword letters included, sorted
}

// Write lays the corpus down under root (the user's Maildir) and returns
// the number of messages written.
func Write(root string, s Spec) (int, error) {
	if s.HugeBytes == 0 {
		s.HugeBytes = 3 << 20
	}
	if s.LongKeyword == "" {
		s.LongKeyword = "Long" + strings.Repeat("k", 80)
	}
	r := rand.New(rand.NewPCG(s.Seed, s.Seed^0x5bd1e995))
	base := time.Date(2012, 3, 4, 5, 6, 7, 0, time.UTC)
	n := 0
	seq := 0
	// Seven hours apart, closer in a bigger corpus: every date stays
	// before 2026 (a destination replaces an internal date in the future
	// by the time of the APPEND; the corpus holds one such date on
	// purpose, not thousands by accident).
	step := 7 * time.Hour
	if s.Big > 2000 {
		step = step * 2000 / time.Duration(s.Big)
	}
	date := func() time.Time {
		seq++
		return base.Add(time.Duration(seq) * step)
	}
	msg := func(id, subject, body string) []byte {
		return []byte(fmt.Sprintf("From: Sender %d <s%d@example.org>\r\nTo: owner@example.com\r\nSubject: %s\r\nMessage-ID: <%s@corpus.test>\r\nDate: Mon, 1 Jan 2018 10:00:00 +0000\r\n\r\n%s\r\n", seq, seq, subject, id, body))
	}
	folders := map[string][]message{}
	add := func(folder string, m message) { folders[folder] = append(folders[folder], m) }

	for i := 0; i < 40; i++ {
		add("INBOX", message{body: msg(fmt.Sprintf("ord%d.%x", i, r.Uint32()), fmt.Sprintf("ordinary %d", i), strings.Repeat("line of text\r\n", 1+r.IntN(200))), date: date(), flags: pick(r, []string{"", "S", "FS", "RS"})})
	}
	add("INBOX", message{body: nil, date: date(), flags: "S"})
	add("INBOX", message{body: []byte("From: a@example.org\r\nSubject: headers only\r\nMessage-ID: <hdr@corpus.test>\r\n"), date: date()})
	add("INBOX", message{body: []byte("just a body, no header at all\r\nsecond line\r\n"), date: date()})
	add("INBOX", message{body: msg("barecr", "bare CR", "one\rtwo\rthree\r\nend"), date: date()})
	add("INBOX", message{body: []byte("From: a@example.org\nSubject: bare LF\nMessage-ID: <barelf@corpus.test>\n\nunix\nline endings\n"), date: date()})
	add("INBOX", message{body: msg("nul", "NUL bytes", "before\x00after\x00\x00end"), date: date()})
	add("INBOX", message{body: msg("longline", "a very long line", strings.Repeat("x", 200<<10)), date: date()})
	add("INBOX", message{body: msg("8bit", "caf\xe9 cr\xe8me (latin-1)", "8-bit header above"), date: date()})
	add("INBOX", message{body: msg("utf8hdr", "Grüße aus Köln — 日本", "RFC 6532 header above"), date: date()})
	dup := message{body: msg("truedup", "true duplicate", "the same bytes twice"), date: date(), flags: "S"}
	add("INBOX", dup)
	add("INBOX", dup)
	shared := date()
	add("INBOX", message{body: msg("shared", "shared id", "content AAAA"), date: shared})
	add("INBOX", message{body: msg("shared", "shared id", "content BBBB"), date: shared})
	huge := bytes.Buffer{}
	huge.Write(msg("huge", "huge", ""))
	for huge.Len() < s.HugeBytes {
		huge.WriteString(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("huge", 57))) + "\r\n")
	}
	add("INBOX", message{body: huge.Bytes(), date: date()})
	add("INBOX", message{body: msg("old", "before 1970", "from 1965"), date: time.Date(1965, 6, 1, 12, 0, 0, 0, time.UTC)})
	add("INBOX", message{body: msg("future", "far future", "from 2150"), date: time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC)})
	add("INBOX", message{body: msg("kw8bit", "8-bit keyword", "keyword b"), date: date(), flags: "Sb"})
	add("INBOX", message{body: msg("kwlong", "over-long keyword", "keyword c"), date: date(), flags: "Sac"})

	for _, f := range []string{"Sent", "Éléments envoyés", "Projets/Été 2025", "a/b/c/d/e/f/g", "日本語", "עברית", "Ελληνικά",
		"Русский", "emoji 📬", "Factures & Reçus", `quote"d`, "per%cent", "~tilde", "ctl\x01name"} {
		for i := 0; i < 3; i++ {
			add(f, message{body: msg(fmt.Sprintf("%x.%d", r.Uint64(), i), "in "+f, "text"), date: date(), flags: "S"})
		}
	}
	for i := 0; i < s.Big; i++ {
		add("Big", message{body: msg(fmt.Sprintf("big%d", i), fmt.Sprintf("big %d", i), strings.Repeat("b", 200+r.IntN(2000))), date: date()})
	}

	for folder, msgs := range folders {
		dir := root
		if folder != "INBOX" {
			dir = filepath.Join(root, "."+onDisk(folder))
		}
		if err := writeFolder(dir, folder != "INBOX", msgs, s.LongKeyword); err != nil {
			return n, err
		}
		n += len(msgs)
	}
	// A folder whose on-disk name is not valid modified UTF-7: listed,
	// cannot be opened.
	if err := writeFolder(filepath.Join(root, ".&AOk"), true, []message{{body: msg("badutf7", "unreachable", "x"), date: date()}}, s.LongKeyword); err != nil {
		return n, err
	}
	n++
	return n, chownAll(root, s.UID, s.GID)
}

func pick(r *rand.Rand, l []string) string { return l[r.IntN(len(l))] }

func writeFolder(dir string, sub bool, msgs []message, longKw string) error {
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if sub {
		if err := os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o644); err != nil {
			return err
		}
	}
	kw := "0 $Label1\n1 caf\x9c\xe9\n2 " + longKw + "\n"
	if err := os.WriteFile(filepath.Join(dir, "dovecot-keywords"), []byte(kw), 0o644); err != nil {
		return err
	}
	for i, m := range msgs {
		name := fmt.Sprintf("%d.M%dP1.corpus:2,%s", 1000000000+i, i, m.flags)
		p := filepath.Join(dir, "cur", name)
		if err := os.WriteFile(p, m.body, 0o644); err != nil {
			return err
		}
		if err := os.Chtimes(p, m.date, m.date); err != nil {
			return err
		}
	}
	return nil
}

// onDisk is a folder's Maildir++ directory name: modified UTF-7, "."
// between levels.
func onDisk(folder string) string {
	segs := strings.Split(folder, "/")
	for i, s := range segs {
		segs[i] = utf7(s)
	}
	return strings.Join(segs, ".")
}

var b64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

func utf7(s string) string {
	var b strings.Builder
	var pending []rune
	flush := func() {
		if len(pending) == 0 {
			return
		}
		u := utf16.Encode(pending)
		raw := make([]byte, 0, len(u)*2)
		for _, c := range u {
			raw = append(raw, byte(c>>8), byte(c))
		}
		b.WriteString("&" + b64.EncodeToString(raw) + "-")
		pending = pending[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		pending = append(pending, r)
	}
	flush()
	return b.String()
}

func chownAll(root string, uid, gid int) error {
	if uid == 0 && gid == 0 {
		return nil
	}
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
