package mailcopy

import (
	"bytes"
	"fmt"
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
// is read with BODY[]. The copy itself streams BODY[] (that gate costs the
// source a BODYSTRUCTURE and a BINARY.SIZE pass) and puts back the NUL
// bytes of the few messages that showed a 0x80 byte (restoreNULs);
// verify, the content match of a rerun and the retry of a refused message
// read through the gate.

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

// maxRestoreBytes bounds the messages restoreNULs reads whole: a larger
// one keeps 0x80 for its NUL bytes (verify reports it altered), and the
// copier's memory stays bounded.
const maxRestoreBytes = 16 << 20

// restoreNULs gives back their NUL bytes to the messages of the folder
// just copied that were streamed from BODY[] with a 0x80 byte in them
// (sus): for each whose BINARY[] is its bytes and holds a NUL, the bytes
// are APPENDed as a literal8 and the copy with 0x80 in their place is
// expunged (d has the destination folder selected), and the map follows.
// Without UIDPLUS the old copy could not be named, so the 0x80 copy stays
// and verify reports it altered.
func restoreNULs(s, d *conn, m Mapping, sus []pendingAppend, tr *tracker, cp *Checkpoint) error {
	if len(sus) == 0 || !d.Caps().Has(imap.CapUIDPlus) {
		return nil
	}
	var set imap.UIDSet
	for _, p := range sus {
		set.AddNum(p.uid)
	}
	safe, err := binarySafe(s, set)
	if err != nil {
		return classify(err, fmt.Sprintf("fetch body structures of %q", m.Source))
	}
	for _, p := range sus {
		old := lookupMap(cp.Map, uint32(p.uid))
		if !safe[p.uid] || old == 0 || p.size > maxRestoreBytes {
			continue
		}
		msgs, err := s.Fetch(imap.UIDSetNum(p.uid), &imap.FetchOptions{UID: true,
			BinarySection: []*imap.FetchItemBinarySection{{Peek: true}}}).Collect()
		if err != nil {
			return classify(err, fmt.Sprintf("read message %d of %q", p.uid, m.Source))
		}
		var body []byte
		for _, mm := range msgs {
			for _, b := range mm.BinarySection {
				body = b.Bytes
			}
		}
		if bytes.IndexByte(body, 0) < 0 {
			continue // a real 0x80 byte: the copy is exact
		}
		uid, err := appendBytes(tr, m.Dest, body, p.flags, p.date)
		if err != nil {
			if isNo(err) {
				continue // the 0x80 copy stays; verify reports it altered
			}
			return classify(err, fmt.Sprintf("append to %q", m.Dest))
		}
		oldSet := imap.UIDSetNum(imap.UID(old))
		// d selected the folder before the APPENDs of another connection:
		// Dovecot ignores a STORE on a UID the session has not seen yet.
		if err := d.Noop().Wait(); err != nil {
			return classify(err, fmt.Sprintf("replace message %d in %q", old, m.Dest))
		}
		if err := d.Store(oldSet, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return classify(err, fmt.Sprintf("replace message %d in %q", old, m.Dest))
		}
		gone, err := d.UIDExpunge(oldSet).Collect()
		if err != nil {
			return classify(err, fmt.Sprintf("replace message %d in %q", old, m.Dest))
		}
		if len(gone) != 1 {
			return fmt.Errorf("replace message %d in %q: the expunge removed %d messages", old, m.Dest, len(gone))
		}
		if uid != 0 {
			cp.Map = replaceInMap(cp.Map, uint32(p.uid), uint32(uid))
		}
	}
	return nil
}

// replaceInMap makes src map to dst, splitting the range that held it.
func replaceInMap(m []UIDMapRange, src, dst uint32) []UIDMapRange {
	out := make([]UIDMapRange, 0, len(m)+2)
	for _, r := range m {
		if src < r.Src || src >= r.Src+r.N {
			out = append(out, r)
			continue
		}
		if k := src - r.Src; k > 0 {
			out = append(out, UIDMapRange{Src: r.Src, Dst: r.Dst, N: k})
		}
		out = append(out, UIDMapRange{Src: src, Dst: dst, N: 1})
		if rest := r.Src + r.N - src - 1; rest > 0 {
			out = append(out, UIDMapRange{Src: src + 1, Dst: r.Dst + (src - r.Src) + 1, N: rest})
		}
	}
	return out
}
