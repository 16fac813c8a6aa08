package mailcopy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// Fingerprint identifies a message across servers: Message-ID, internal date
// (seconds) and size; for messages without Message-ID, a hash of the header
// block and the size. Two copies of one message share it; so can two truly
// identical messages, which is why the engine counts fingerprints as a
// multiset.
func (m meta) Fingerprint() string {
	if m.MessageID != "" {
		return fmt.Sprintf("m:%s|%d|%d", m.MessageID, m.Date.Unix(), m.Size)
	}
	return fmt.Sprintf("h:%s|%d", m.HeaderHash, m.Size)
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
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		var m meta
		for {
			item := msg.Next()
			if item == nil {
				break
			}
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
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		var uid imap.UID
		var sum string
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataBodySection:
				if it.Literal != nil {
					h := sha256.New()
					if _, err := io.Copy(h, it.Literal); err != nil {
						_ = cmd.Close()
						return nil, err
					}
					sum = hex.EncodeToString(h.Sum(nil)[:16])
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

// multiset counts fingerprints.
type multiset map[string]int

func fingerprints(ms []meta) multiset {
	s := multiset{}
	for _, m := range ms {
		s[m.Fingerprint()]++
	}
	return s
}

// take removes one occurrence of fp and reports whether there was one.
func (s multiset) take(fp string) bool {
	if s[fp] > 0 {
		s[fp]--
		return true
	}
	return false
}
