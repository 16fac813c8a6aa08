package mailcopy

import (
	"bytes"
	"fmt"
	"io"
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
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var uid imap.UID
		var bs imap.BodyStructure
		for item := msg.Next(); item != nil; item = msg.Next() {
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

// restoreNULs gives back their NUL bytes to the messages of the folder
// just copied that were streamed from BODY[] with a 0x80 byte in them
// (sus): for each whose BINARY[] is its bytes and holds a NUL, BINARY[] is
// streamed into an APPEND as a literal8 and the copy with 0x80 in their
// place is expunged (d has the destination folder selected), and the map
// follows. Nothing holds a whole message, so there is no size cap: a first
// pass over BINARY[] only looks for a NUL (most 0x80 bytes are real: a
// euro sign in windows-1252), the second streams it to the destination.
// A message that keeps its 0x80 bytes for its NULs (no UIDPLUS to name
// the old copy, the destination refusing the new one) is reported, never
// left silent.
func restoreNULs(s, d *conn, m Mapping, sus []pendingAppend, tr *tracker, cp *Checkpoint, fr *FolderResult) error {
	if len(sus) == 0 {
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
		if !safe[p.uid] {
			continue // BINARY[] is not its bytes: verify reads BODY[] too
		}
		nul, err := binaryHasNUL(s, p.uid)
		if err != nil {
			return classify(err, fmt.Sprintf("read message %d of %q", p.uid, m.Source))
		}
		if !nul {
			continue // a real 0x80 byte: the copy is exact
		}
		old := lookupMap(cp.Map, uint32(p.uid))
		if old == 0 || !d.Caps().Has(imap.CapUIDPlus) {
			fr.Reported = append(fr.Reported, nulItem(m.Source, p, "the destination does not say which message the copy became (UIDPLUS), so it cannot be replaced"))
			continue
		}
		uid, err := appendBinaryStream(s, tr, m.Dest, p)
		if err != nil {
			if isNo(err) {
				fr.Reported = append(fr.Reported, nulItem(m.Source, p, "the destination refused the copy with NUL bytes: "+errText(err)))
				continue
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

// nulItem reports a message stored with 0x80 in place of its NUL bytes.
func nulItem(folder string, p pendingAppend, why string) Skip {
	return Skip{Folder: folder, UID: uint32(p.uid), Size: p.size, Date: p.date, Category: CatAltered,
		Reason: "stored altered by the destination: its NUL bytes are shown as 0x80 (" + why + ")"}
}

// binaryLiteral FETCHes BINARY.PEEK[] of one message of the selected folder
// and hands its literal to f, as it streams; f must read it or return.
func binaryLiteral(s *conn, uid imap.UID, f func(lit imap.LiteralReader) error) error {
	cmd := s.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true,
		BinarySection: []*imap.FetchItemBinarySection{{Peek: true}}})
	var ferr error
	seen := false
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			it, ok := item.(imapclient.FetchItemDataBinarySection)
			if !ok || it.Literal == nil {
				continue
			}
			if seen || ferr != nil {
				_, _ = io.Copy(io.Discard, it.Literal)
				continue
			}
			seen = true
			if ferr = f(it.Literal); ferr != nil {
				// Read the rest so go-imap's reader is not left waiting;
				// a source that failed mid-literal fails Close too.
				_, _ = io.Copy(io.Discard, it.Literal)
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	if ferr != nil {
		return ferr
	}
	if !seen {
		return fmt.Errorf("message %d: the source sent no BINARY[] body", uid)
	}
	return nil
}

// binaryHasNUL reports whether BINARY[] of a message holds a NUL byte.
func binaryHasNUL(s *conn, uid imap.UID) (bool, error) {
	found := false
	err := binaryLiteral(s, uid, func(lit imap.LiteralReader) error {
		buf := make([]byte, 32<<10)
		for {
			n, err := lit.Read(buf)
			if bytes.IndexByte(buf[:n], 0) >= 0 {
				found = true
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	return found, err
}

// appendBinaryStream streams BINARY[] of a source message into an APPEND
// with a literal8, on a fresh LITERAL+ destination connection, and returns
// its destination UID. A source that stops mid-literal leaves the APPEND
// short: the connection is closed, so the destination drops it.
func appendBinaryStream(s *conn, tr *tracker, folder string, p pendingAppend) (imap.UID, error) {
	rc, err := dialRaw(tr.dst)
	if err != nil {
		return 0, err
	}
	defer rc.close()
	var res rawResult
	err = binaryLiteral(s, p.uid, func(lit imap.LiteralReader) error {
		cr := &sourceReader{r: lit}
		ch, err := rc.start(appendCmd(folder, p.flags, p.date, lit.Size(), true), cr)
		if err == nil {
			err = rc.flush()
		}
		if err != nil {
			if cr.err != nil {
				return cr.err // the source's failure, not the destination's
			}
			return fmt.Errorf("append to %q: %w", folder, err)
		}
		res, err = rc.wait(ch)
		return err
	})
	if err != nil {
		return 0, err
	}
	if err := res.err(); err != nil {
		return 0, err
	}
	return res.appendUID(), nil
}

// sourceReader remembers why reading the source failed.
type sourceReader struct {
	r   io.Reader
	err error
}

func (r *sourceReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
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
