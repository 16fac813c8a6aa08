package mailcopy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// meta is what the engine knows of a message before copying its body.
type meta struct {
	UID       imap.UID
	Flags     []imap.Flag
	Date      time.Time
	Size      int64
	MessageID string
	// HeaderHash is set for messages without Message-ID.
	HeaderHash string
}

// key is the fingerprint that nominates candidates: the Message-ID, or for
// messages without one a hash of the normalized header block. It never
// decides identity on its own (see identity.go).
func (m meta) key() string {
	if m.MessageID != "" {
		return "m:" + m.MessageID
	}
	return "h:" + m.HeaderHash
}

var midSection = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}
var headerSection = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}

// scanMeta fetches the metadata of the messages in uids of the selected
// folder, with their fingerprints.
func scanMeta(c *conn, uids imap.UIDSet) ([]meta, error) {
	cmd := c.Fetch(uids, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{midSection},
	})
	var out []meta
	var noID imap.UIDSet
	index := map[imap.UID]int{}
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var m meta
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				m.UID = it.UID
			case imapclient.FetchItemDataFlags:
				m.Flags = it.Flags
			case imapclient.FetchItemDataInternalDate:
				m.Date = it.Time
			case imapclient.FetchItemDataRFC822Size:
				m.Size = it.Size
			case imapclient.FetchItemDataBodySection:
				if it.Literal != nil {
					b, err := io.ReadAll(io.LimitReader(it.Literal, 64<<10))
					if err != nil {
						_ = cmd.Close()
						return nil, err
					}
					_, _ = io.Copy(io.Discard, it.Literal)
					m.MessageID = headerValue(b, "Message-Id")
				}
			}
		}
		if m.UID == 0 {
			continue
		}
		if m.MessageID == "" {
			noID.AddNum(m.UID)
		}
		index[m.UID] = len(out)
		out = append(out, m)
	}
	if err := cmd.Close(); err != nil {
		return nil, err
	}
	if len(noID) == 0 {
		return out, nil
	}
	cmd = c.Fetch(noID, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{headerSection}})
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var uid imap.UID
		var sum string
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataBodySection:
				if it.Literal != nil {
					// Normalized: a destination that rewrites bare CRs
					// must still nominate the same candidates.
					h := &normWriter{h: sha256.New()}
					if _, err := io.Copy(h, it.Literal); err != nil {
						_ = cmd.Close()
						return nil, err
					}
					sum = hex.EncodeToString(h.h.Sum(nil)[:16])
				}
			}
		}
		if i, ok := index[uid]; ok {
			out[i].HeaderHash = sum
		}
	}
	return out, cmd.Close()
}

// headerValue returns the unfolded value of a header field in a header block.
func headerValue(block []byte, field string) string {
	r := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(block), strings.NewReader("\r\n\r\n"))))
	h, err := r.ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return ""
	}
	return strings.TrimSpace(h.Get(field))
}
