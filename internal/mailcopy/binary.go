package mailcopy

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// BINARY[] is not the message's bytes. Dovecot's FETCH BINARY[] of a whole
// message decodes every base64 and quoted-printable part and renames its
// Content-Transfer-Encoding to "binary": another message, which the
// destination then stores (and which a BINARY[] verify on both sides
// would call identical). On a truncated base64 part it drops the
// connection in the middle of the literal. Its MIME parser also finds
// parts BODYSTRUCTURE does not show (a header block that runs into the
// body without an empty line: enmime's qp-utf8-header-no-break.raw comes
// back 10 bytes shorter). So BINARY[] is used only for a message whose
// every part is in an identity encoding (7bit, 8bit, binary, none) and
// whose BINARY.SIZE[] is its RFC822.SIZE: there it is the message's bytes,
// NUL bytes intact, where BODY[] serves NUL as 0x80. Every other message
// is read with BODY[].

// identityEncoded reports whether no part of bs (encapsulated messages
// included) has a content-transfer-encoding a server would decode.
func identityEncoded(bs imap.BodyStructure) bool {
	ok := true
	var walk func(bs imap.BodyStructure)
	walk = func(bs imap.BodyStructure) {
		bs.Walk(func(_ []int, part imap.BodyStructure) bool {
			sp, single := part.(*imap.BodyStructureSinglePart)
			if !single {
				return true
			}
			switch strings.ToLower(strings.TrimSpace(sp.Encoding)) {
			case "", "7bit", "8bit", "binary":
			default:
				ok = false
			}
			if sp.MessageRFC822 != nil && sp.MessageRFC822.BodyStructure != nil {
				walk(sp.MessageRFC822.BodyStructure)
			}
			return true
		})
	}
	walk(bs)
	return ok
}

// binarySafe returns the UIDs of uids (in the selected folder) whose
// BINARY[] is their bytes.
func binarySafe(c *conn, uids imap.UIDSet) (map[imap.UID]bool, error) {
	var candidates imap.UIDSet
	cmd := c.Fetch(uids, &imap.FetchOptions{UID: true, BodyStructure: &imap.FetchItemBodyStructure{}})
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		var uid imap.UID
		var bs imap.BodyStructure
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataBodyStructure:
				bs = it.BodyStructure
			}
		}
		if uid != 0 && bs != nil && identityEncoded(bs) {
			candidates.AddNum(uid)
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, err
	}
	out := map[imap.UID]bool{}
	if len(candidates) == 0 {
		return out, nil
	}
	msgs, err := c.Fetch(candidates, &imap.FetchOptions{UID: true, RFC822Size: true,
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{}}}).Collect()
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		for _, bs := range m.BinarySectionSize {
			if len(bs.Part) == 0 && int64(bs.Size) == m.RFC822Size {
				out[m.UID] = true
			}
		}
	}
	return out, nil
}

// fetchRun is a run of consecutive UIDs read the same way.
type fetchRun struct {
	uids   imap.UIDSet
	binary bool
}

// splitRuns splits uids, in order, into runs of messages read with
// BINARY[] (safe) or BODY[], so bodies still arrive in UID order.
func splitRuns(uids []imap.UID, safe map[imap.UID]bool) []fetchRun {
	var out []fetchRun
	for _, u := range uids {
		b := safe[u]
		if n := len(out); n == 0 || out[n-1].binary != b {
			out = append(out, fetchRun{binary: b})
		}
		out[len(out)-1].uids.AddNum(u)
	}
	return out
}

// fetchPlan says how to read uids: one BODY[] run without binary, else
// runs by what binarySafe finds.
func fetchPlan(c *conn, uids imap.UIDSet, binary bool) ([]fetchRun, error) {
	if !binary {
		return []fetchRun{{uids: uids}}, nil
	}
	nums, ok := uids.Nums()
	if !ok {
		// A dynamic set ("1:*"): the folder's UIDs decide.
		srch, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{uids}}, nil).Wait()
		if err != nil {
			return nil, err
		}
		nums = srch.AllUIDs()
	}
	if len(nums) == 0 {
		return nil, nil
	}
	var set imap.UIDSet
	set.AddNum(nums...)
	safe, err := binarySafe(c, set)
	if err != nil {
		return nil, err
	}
	return splitRuns(nums, safe), nil
}
