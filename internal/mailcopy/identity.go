package mailcopy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Identity: a fingerprint (Message-ID, or a hash of the normalized header
// block) only nominates destination candidates for a source message; a
// hash of the bytes decides. Metadata alone never makes a message present.

// UIDMapRange says source UIDs Src..Src+N-1 became destination UIDs
// Dst..Dst+N-1 (APPENDUID). UIDs rise in order, so a folder's map is a few
// of these.
type UIDMapRange struct {
	Src uint32 `json:"s"`
	Dst uint32 `json:"d"`
	N   uint32 `json:"n"`
}

// addToMap records src -> dst in ranges.
func addToMap(m []UIDMapRange, src, dst uint32) []UIDMapRange {
	if src == 0 || dst == 0 {
		return m
	}
	if n := len(m); n > 0 {
		last := &m[n-1]
		if last.Src+last.N == src && last.Dst+last.N == dst {
			last.N++
			return m
		}
		if src < last.Src+last.N {
			// Below the last range (a replay mapped a moved message
			// there first): keep the ranges sorted.
			return insertMap(m, src, dst)
		}
	}
	return append(m, UIDMapRange{Src: src, Dst: dst, N: 1})
}

// lookupMap returns the destination UID a source UID became, or 0.
func lookupMap(m []UIDMapRange, src uint32) uint32 {
	i := sort.Search(len(m), func(i int) bool { return m[i].Src+m[i].N > src })
	if i < len(m) && m[i].Src <= src {
		return m[i].Dst + (src - m[i].Src)
	}
	return 0
}

// digest is a message's content identity: the hash of its bytes, and of
// its bytes with line endings and NULs normalized (what a destination that
// normalizes bare CRs, or a server that serves NUL as 0x80, keeps equal).
type digest struct {
	raw, norm [32]byte
	size      int64
	date      time.Time
	// flags are the message's flags and keywords (\Recent left out),
	// sorted: verify compares them.
	flags []string
}

// normWriter hashes a normalized form of what is written: CRLF, bare CR and
// bare LF all become LF; NUL becomes 0x80.
type normWriter struct {
	h      hash.Hash
	lastCR bool
	buf    []byte
}

// Write normalizes p a run at a time (the bytes up to the next CR or NUL
// are copied as they are) and hashes it in one call: verify hashes every
// byte of a mailbox twice, and a byte at a time this was a quarter of a
// plan's worker CPU.
func (w *normWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.buf = w.buf[:0]
	for len(p) > 0 {
		if w.lastCR {
			w.lastCR = false
			if p[0] == '\n' {
				p = p[1:] // the CR already stood for this line break
				continue
			}
		}
		// The next CR, or a NUL before it (IndexByte is vectorized,
		// IndexAny is not).
		i := bytes.IndexByte(p, '\r')
		run := p
		if i >= 0 {
			run = p[:i]
		}
		if j := bytes.IndexByte(run, 0); j >= 0 {
			i = j
		}
		if i < 0 {
			w.buf = append(w.buf, p...)
			break
		}
		w.buf = append(w.buf, p[:i]...)
		if p[i] == '\r' {
			w.buf = append(w.buf, '\n')
			w.lastCR = true
		} else {
			w.buf = append(w.buf, 0x80)
		}
		p = p[i+1:]
	}
	w.h.Write(w.buf)
	return n, nil
}

// hashBodies fetches the bodies of uids in the selected folder and returns
// their digests. With binary, BINARY.PEEK[] is read (NUL bytes intact) for
// the messages whose BINARY[] is their bytes (binary.go).
func hashBodies(c *conn, uids imap.UIDSet, binary bool) (map[imap.UID]digest, error) {
	out := map[imap.UID]digest{}
	if len(uids) == 0 {
		return out, nil
	}
	// BODY[] first, for every message: it is the message's bytes but for
	// NUL bytes, served as 0x80. Only the messages where a 0x80 byte came
	// are read again the binary way (binary.go), as the copy does
	// (streamBatch): the common case costs the server no BODYSTRUCTURE
	// and BINARY.SIZE pass and the folder no UID SEARCH.
	var sus imap.UIDSet
	if err := hashRun(c, uids, false, out, &sus); err != nil {
		return nil, err
	}
	if !binary || len(sus) == 0 {
		return out, nil
	}
	runs, err := fetchPlan(c, sus, true)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if r.binary {
			if err := hashRun(c, r.uids, true, out, nil); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// seen80 notes whether a 0x80 byte passed.
type seen80 struct{ yes bool }

func (w *seen80) Write(p []byte) (int, error) {
	if !w.yes && bytes.IndexByte(p, 0x80) >= 0 {
		w.yes = true
	}
	return len(p), nil
}

// hashRun hashes the bodies of uids, read with BINARY.PEEK[] or
// BODY.PEEK[]; sus, when set, collects the UIDs whose bytes held 0x80.
func hashRun(c *conn, uids imap.UIDSet, binary bool, out map[imap.UID]digest, sus *imap.UIDSet) error {
	fo := &imap.FetchOptions{UID: true, InternalDate: true, Flags: true}
	if binary {
		fo.BinarySection = []*imap.FetchItemBinarySection{{Peek: true}}
	} else {
		fo.BodySection = []*imap.FetchItemBodySection{{Peek: true}}
	}
	cmd := c.Fetch(uids, fo)
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var uid imap.UID
		var d digest
		var lit imap.LiteralReader
		had80 := false
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataInternalDate:
				d.date = it.Time
			case imapclient.FetchItemDataFlags:
				d.flags = flagSet(it.Flags)
			case imapclient.FetchItemDataBodySection:
				lit = it.Literal
			case imapclient.FetchItemDataBinarySection:
				lit = it.Literal
			}
			if lit != nil {
				raw, norm, hi := sha256.New(), &normWriter{h: sha256.New()}, &seen80{}
				n, err := io.Copy(io.MultiWriter(raw, norm, hi), lit)
				if err != nil {
					_ = cmd.Close()
					return err
				}
				d.size = n
				raw.Sum(d.raw[:0])
				norm.h.Sum(d.norm[:0])
				lit = nil
				had80 = hi.yes
			}
		}
		if uid != 0 {
			out[uid] = d
			if had80 && sus != nil {
				sus.AddNum(uid)
			}
		}
	}
	return cmd.Close()
}

// match is how a source message was found on the destination.
type match struct {
	dest imap.UID
	// altered says how the destination's copy differs ("" when exact).
	altered string
}

// matcher pairs source messages with destination messages by content.
type matcher struct {
	src, dst map[imap.UID]digest
	used     map[imap.UID]bool
	byRaw    map[[32]byte][]imap.UID
	byNorm   map[[32]byte][]imap.UID
}

func newMatcher(src, dst map[imap.UID]digest) *matcher {
	m := &matcher{src: src, dst: dst, used: map[imap.UID]bool{}, byRaw: map[[32]byte][]imap.UID{}, byNorm: map[[32]byte][]imap.UID{}}
	uids := make([]imap.UID, 0, len(dst))
	for u := range dst {
		uids = append(uids, u)
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	for _, u := range uids {
		m.byRaw[dst[u].raw] = append(m.byRaw[dst[u].raw], u)
		m.byNorm[dst[u].norm] = append(m.byNorm[dst[u].norm], u)
	}
	return m
}

// pair takes the destination message mapped to a source message (the
// APPENDUID map) if its content is the source's.
func (m *matcher) pair(src, dst imap.UID) (match, bool) {
	s, ok1 := m.src[src]
	d, ok2 := m.dst[dst]
	if !ok1 || !ok2 || m.used[dst] || s.norm != d.norm {
		return match{}, false
	}
	m.used[dst] = true
	return match{dest: dst, altered: alteration(s, d)}, true
}

// find takes an unused destination message with the source message's
// content: the exact bytes (same date first), else the normalized bytes.
func (m *matcher) find(src imap.UID) (match, bool) {
	s, ok := m.src[src]
	if !ok {
		return match{}, false
	}
	for _, pass := range []struct {
		idx     map[[32]byte][]imap.UID
		key     [32]byte
		sameDay bool
	}{{m.byRaw, s.raw, true}, {m.byRaw, s.raw, false}, {m.byNorm, s.norm, false}} {
		for _, u := range pass.idx[pass.key] {
			if m.used[u] || (pass.sameDay && !SameInternalDate(m.dst[u].date, s.date)) {
				continue
			}
			m.used[u] = true
			return match{dest: u, altered: alteration(s, m.dst[u])}, true
		}
	}
	return match{}, false
}

// duplicates counts unused destination messages whose content is also
// that of a matched one: copies made twice.
func (m *matcher) duplicates() int {
	matched := map[[32]byte]bool{}
	for u := range m.used {
		matched[m.dst[u].norm] = true
	}
	n := 0
	for u, d := range m.dst {
		if !m.used[u] && matched[d.norm] {
			n++
		}
	}
	return n
}

// alteration says how a destination copy differs from its source.
func alteration(s, d digest) string {
	var why []string
	if s.raw != d.raw {
		why = append(why, fmt.Sprintf("line endings or NUL bytes normalized (%d bytes stored for %d)", d.size, s.size))
	}
	if !s.date.IsZero() && !d.date.IsZero() && !SameInternalDate(s.date, d.date) {
		why = append(why, fmt.Sprintf("internal date %s replaced by %s", s.date.UTC().Format(time.RFC3339), d.date.UTC().Format(time.RFC3339)))
	}
	return strings.Join(why, "; ")
}

// SameInternalDate reports whether two internal dates are the same stored
// value. Dovecot 2.3 keeps a message's received date in its index as an
// unsigned 32-bit time: a date before 1970 is served as itself until the
// index caches it, then as the same instant plus 2^32 seconds (1965 reads
// as 2101), on the source as on the destination. Which of the two a server
// serves depends on whether its index has cached the message yet, so the
// same message would read as altered on one pass and exact on the next:
// dates 2^32 seconds apart are one stored value.
func SameInternalDate(a, b time.Time) bool {
	if a.Equal(b) {
		return true
	}
	d := a.Sub(b)
	return d == 1<<32*time.Second || d == -(1<<32)*time.Second
}

// flagSet is flags without \Recent (per session, never copied), sorted.
func flagSet(flags []imap.Flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if !strings.EqualFold(string(f), `\Recent`) {
			out = append(out, string(f))
		}
	}
	sort.Strings(out)
	return out
}

// flagDifference says which flags of the source message the destination's
// copy lacks, and which it has in addition ("" when the sets agree).
func flagDifference(src, dst []string) string {
	have := map[string]bool{}
	for _, f := range dst {
		have[strings.ToLower(f)] = true
	}
	want := map[string]bool{}
	var lacks, extra []string
	for _, f := range src {
		want[strings.ToLower(f)] = true
		if !have[strings.ToLower(f)] {
			lacks = append(lacks, f)
		}
	}
	for _, f := range dst {
		if !want[strings.ToLower(f)] {
			extra = append(extra, f)
		}
	}
	var why []string
	if len(lacks) > 0 {
		why = append(why, "flags "+strings.Join(lacks, " ")+" not on the destination")
	}
	if len(extra) > 0 {
		why = append(why, "flags "+strings.Join(extra, " ")+" only on the destination")
	}
	return strings.Join(why, "; ")
}

// nominate returns, for source messages, the destination messages sharing
// their fingerprint key (Message-ID, else normalized header hash): only
// those are worth a content comparison.
func nominate(src, dst []meta) (srcSet, dstSet imap.UIDSet) {
	keys := map[string][]imap.UID{}
	for _, d := range dst {
		keys[d.key()] = append(keys[d.key()], d.UID)
	}
	seen := map[imap.UID]bool{}
	for _, s := range src {
		c := keys[s.key()]
		if len(c) == 0 {
			continue
		}
		srcSet.AddNum(s.UID)
		for _, u := range c {
			if !seen[u] {
				seen[u] = true
				dstSet.AddNum(u)
			}
		}
	}
	return srcSet, dstSet
}
