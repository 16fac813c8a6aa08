package mailcopy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// errFolderUnreadable marks a source folder the server lists but will not
// open: reported, and the copy goes on with the others.
var errFolderUnreadable = errors.New("source folder cannot be opened")

// refusal is an APPEND the destination refused for this one message.
type refusal struct {
	p   pendingAppend
	err *imap.Error
}

// copyFolder copies the messages of one folder past its checkpoint.
func copyFolder(ctx context.Context, s, d *conn, raw *rawConn, m Mapping, tr *tracker, limit int64) (FolderResult, error) {
	fr := FolderResult{Source: m.Source, Dest: m.Dest, Role: m.Role, Note: m.Note}
	sel, err := s.Select(m.Source, &imap.SelectOptions{ReadOnly: true, CondStore: s.Caps().Has(imap.CapCondStore)}).Wait()
	if err != nil {
		if isNo(err) {
			return fr, fmt.Errorf("%w: %w", errFolderUnreadable, err)
		}
		return fr, classify(err, fmt.Sprintf("select source %q", m.Source))
	}
	fr.UIDValidity = sel.UIDValidity
	cp, had := tr.checkpoint(m.Source)
	if had && cp.UIDValidity != sel.UIDValidity {
		// The source renumbered the folder: the checkpoint and its map mean
		// nothing now; content decides what is already there.
		fr.Rescanned = true
		cp = Checkpoint{UIDValidity: sel.UIDValidity}
	}
	cp.UIDValidity = sel.UIDValidity
	cp.Dest = m.Dest
	if !had {
		// A first copy takes every message with its flags of now.
		cp.ModSeq = sel.HighestModSeq
	}
	if sel.NumMessages == 0 {
		tr.update(m.Source, cp, nil)
		return fr, nil
	}
	// Only UIDs past the checkpoint are candidates. "n:*" always matches the
	// highest UID, so filter.
	srch, err := s.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: imap.UID(cp.LastUID + 1), Stop: 0}}}}, nil).Wait()
	if err != nil {
		return fr, classify(err, fmt.Sprintf("search %q", m.Source))
	}
	var uids imap.UIDSet
	for _, u := range tr.opts.withoutExcluded(m.Source, sel.UIDValidity, srch.AllUIDs()) {
		if uint32(u) > cp.LastUID {
			uids.AddNum(u)
		}
	}
	if len(uids) == 0 {
		tr.update(m.Source, cp, nil)
		return fr, nil
	}
	dsel, err := d.Select(m.Dest, nil).Wait()
	if err != nil {
		return fr, classify(err, fmt.Sprintf("select destination %q", m.Dest))
	}
	if cp.DestUIDValidity != 0 && cp.DestUIDValidity != dsel.UIDValidity {
		cp.Map = nil
	}
	cp.DestUIDValidity = dsel.UIDValidity
	if !had && dsel.NumMessages > 0 {
		cp.ModSeq = 0 // what is found there keeps its own flags
	}

	// Messages already on the destination (an earlier attempt that died
	// between APPEND and checkpoint, a rescan, a re-run) are found by
	// content: a fingerprint nominates candidates, a hash of the bytes
	// decides. Into an empty folder nothing can be a duplicate, so the
	// plain path does no metadata pass: the bodies' own sizes decide the
	// size limit.
	var srcMeta []meta
	var found map[imap.UID]match
	if dsel.NumMessages > 0 {
		if srcMeta, found, err = alreadyThere(s, d, uids, cp, tr.binary); err != nil {
			return fr, err
		}
	} else {
		all, _ := uids.Nums()
		for _, u := range all {
			srcMeta = append(srcMeta, meta{UID: u})
		}
	}
	sort.Slice(srcMeta, func(i, j int) bool { return srcMeta[i].UID < srcMeta[j].UID })

	var todo []meta
	kept := srcMeta[:0]
	for _, mm := range srcMeta {
		if !tr.opts.excludedID(m.Source, mm.MessageID) {
			kept = append(kept, mm)
		}
	}
	if srcMeta = kept; len(srcMeta) == 0 {
		tr.update(m.Source, cp, nil)
		return fr, nil
	}
	for _, mm := range srcMeta {
		if f, ok := found[mm.UID]; ok {
			fr.Present++
			cp.Map = addToMap(cp.Map, uint32(mm.UID), uint32(f.dest))
			if f.altered != "" {
				fr.Reported = append(fr.Reported, Skip{Folder: m.Source, UID: uint32(mm.UID), Size: mm.Size, Date: mm.Date, MessageID: mm.MessageID,
					Category: CatAltered, Reason: "stored altered by the destination: " + f.altered})
			}
			continue
		}
		if tr.preserved[fmt.Sprintf("%s\x00%d\x00%d", utf7Encode(m.Source), sel.UIDValidity, mm.UID)] {
			// Refused by the destination on an earlier run and kept in
			// the problems folder: refusing it twice more adds nothing.
			fr.Reported = append(fr.Reported, Skip{Folder: m.Source, UID: uint32(mm.UID), Size: mm.Size, Date: mm.Date, MessageID: mm.MessageID,
				Category: CatPreserved, Reason: fmt.Sprintf("kept as an attachment of a message in %q (an earlier run)", tr.problems.name)})
			continue
		}
		switch {
		case mm.Size == 0 && dsel.NumMessages > 0:
			fr.Reported = append(fr.Reported, emptyItem(m.Source, mm.UID, mm.Date))
		case limit > 0 && mm.Size > limit:
			fr.Skipped = append(fr.Skipped, tooBigItem(m.Source, mm.UID, mm.Size, mm.Date, limit))
		default:
			todo = append(todo, mm)
		}
	}
	tr.update(m.Source, cp, func(p *Progress) { p.Present += fr.Present; p.Skipped += len(fr.Skipped) })
	if len(todo) == 0 {
		cp.LastUID = uint32(srcMeta[len(srcMeta)-1].UID)
		tr.update(m.Source, cp, nil)
		fillMessageIDs(s, fr.Skipped, fr.Reported)
		return fr, nil
	}
	byUID := make(map[imap.UID]meta, len(todo))
	for _, mm := range todo {
		byUID[mm.UID] = mm
	}
	// The checkpoint may only pass a UID once every lower candidate is done;
	// skipped, refused-and-retried and present ones count as done.
	order := make([]imap.UID, 0, len(srcMeta))
	for _, mm := range srcMeta {
		order = append(order, mm.UID)
	}
	ap := &appender{d: d, dest: m.Dest, inflight: tr.opts.InFlight, binary: tr.binary && raw != nil, multi: tr.multi, norm: tr.opts.Digests != nil}
	if raw != nil {
		if err := raw.selectFolder(m.Dest); err != nil {
			return fr, fmt.Errorf("select destination %q: %w", m.Dest, err)
		}
		ap.raw = raw
	}
	next := 0 // index in order of the lowest UID not yet confirmed
	confirmed := map[imap.UID]bool{}
	advance := func() {
		for next < len(order) {
			u := order[next]
			if _, pending := byUID[u]; pending && !confirmed[u] {
				break
			}
			cp.LastUID = uint32(u)
			next++
		}
	}
	done := func(u imap.UID, f func(p *Progress)) {
		confirmed[u] = true
		advance()
		tr.update(m.Source, cp, f)
	}
	var refused []refusal
	var suspects []pendingAppend // streamed with a 0x80 byte (restoreNULs)
	onDone := func(p pendingAppend, destUID imap.UID, err error) error {
		if err != nil {
			var ie *imap.Error
			if !errors.As(err, &ie) || ie.Code == imap.ResponseCodeOverQuota {
				// The connection or the account failed, not this message.
				return classify(err, fmt.Sprintf("append to %q", m.Dest))
			}
			if k := OverloadKind(ie); p.batched() && k != "" && k != OverloadLimit {
				// "Not now" to a whole MULTIAPPEND is the server's, not a
				// message's: the pass stops as a transient failure, to be
				// retried later (its server's share halved), rather than
				// send the batch again message by message into the same
				// overload.
				return classify(err, fmt.Sprintf("append to %q", m.Dest))
			}
			if (ie.Code == imap.ResponseCodeLimit || ie.Code == imap.ResponseCodeTooBig) && !p.batched() {
				fr.Skipped = append(fr.Skipped, Skip{Folder: m.Source, UID: uint32(p.uid), Size: p.size, Date: p.date,
					Category: CatTooBig, Reason: "refused by the destination: " + errText(err)})
				done(p.uid, func(p *Progress) { p.Skipped++ })
				return nil
			}
			// Refused for this message only: retried once, on a fresh
			// connection, when the folder's stream is done. A refused
			// MULTIAPPEND says nothing of which of its messages: each is
			// sent again alone first.
			refused = append(refused, refusal{p: p, err: ie})
			return nil
		}
		cp.Map = addToMap(cp.Map, uint32(p.uid), uint32(destUID))
		if ap.norm && !p.had80 {
			// The bytes verify would read from the source (BODY[]).
			tr.opts.Digests.Add(m.Source, cp.UIDValidity, p.uid, p.sum, p.norm, p.size)
		}
		if p.had80 && ap.binary {
			suspects = append(suspects, p)
		}
		fr.Copied++
		fr.Bytes += p.size
		size := p.size
		done(p.uid, func(p *Progress) { p.Copied++; p.Bytes += size })
		return nil
	}
	hooks := batchHooks{
		onDone: onDone,
		skip: func(u imap.UID, size int64, date time.Time) bool {
			switch {
			case size == 0:
				fr.Reported = append(fr.Reported, emptyItem(m.Source, u, date))
			case limit > 0 && size > limit:
				fr.Skipped = append(fr.Skipped, tooBigItem(m.Source, u, size, date, limit))
			default:
				return false
			}
			done(u, func(p *Progress) { p.Skipped++ })
			return true
		},
		dropped: func(u imap.UID, size int64, date time.Time, kws []string) {
			fr.Reported = append(fr.Reported, Skip{Folder: m.Source, UID: uint32(u), Size: size, Date: date, Category: CatKeywordDropped,
				Reason: fmt.Sprintf("keyword(s) %s have 8-bit bytes no IMAP client can send: copied without them", strings.Join(kws, " "))})
		},
	}

	// Fetch bodies in batches so one FETCH never spans the whole folder.
	for i := 0; i < len(todo); i += tr.opts.BatchSize {
		end := min(i+tr.opts.BatchSize, len(todo))
		var batch imap.UIDSet
		for _, mm := range todo[i:end] {
			batch.AddNum(mm.UID)
		}
		if err := streamBatch(ctx, s, batch, byUID, ap, hooks); err != nil {
			ap.settle(func(p pendingAppend, destUID imap.UID, err error) error {
				if err == nil {
					return onDone(p, destUID, nil)
				}
				return nil
			})
			return fr, err
		}
	}
	if err := ap.drain(onDone); err != nil {
		ap.settle(func(pendingAppend, imap.UID, error) error { return nil })
		return fr, err
	}
	for _, r := range refused {
		if err := ctx.Err(); err != nil {
			return fr, err
		}
		if err := retryRefused(s, raw, m, r, tr, &fr, &cp); err != nil {
			return fr, err
		}
		done(r.p.uid, nil)
	}
	if err := restoreNULs(s, d, m, suspects, tr, &cp, &fr); err != nil {
		return fr, err
	}
	advance()
	fillMessageIDs(s, fr.Skipped, fr.Reported)
	tr.update(m.Source, cp, nil)
	return fr, nil
}

func emptyItem(folder string, uid imap.UID, date time.Time) Skip {
	return Skip{Folder: folder, UID: uint32(uid), Date: date, Category: CatEmpty,
		Reason: "a zero-byte message on the source: there is nothing to copy"}
}

func tooBigItem(folder string, uid imap.UID, size int64, date time.Time, limit int64) Skip {
	return Skip{Folder: folder, UID: uint32(uid), Size: size, Date: date, Category: CatTooBig,
		Reason: fmt.Sprintf("%d bytes is over the destination's limit of %d bytes", size, limit)}
}

// alreadyThere finds which source messages of uids are already in the
// selected destination folder: the checkpoint's map first, then
// fingerprint candidates confirmed by content.
func alreadyThere(s, d *conn, uids imap.UIDSet, cp Checkpoint, binary bool) ([]meta, map[imap.UID]match, error) {
	dm, err := scanMeta(d, imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}})
	if err != nil {
		return nil, nil, classify(err, "scan destination")
	}
	sm, err := scanMeta(s, uids)
	if err != nil {
		return nil, nil, classify(err, "scan source")
	}
	srcSet, dstSet := nominate(sm, dm)
	for _, mm := range sm {
		if du := lookupMap(cp.Map, uint32(mm.UID)); du != 0 {
			srcSet.AddNum(mm.UID)
			dstSet.AddNum(imap.UID(du))
		}
	}
	found := map[imap.UID]match{}
	if len(srcSet) == 0 {
		return sm, found, nil
	}
	sh, err := hashBodies(s, srcSet, binary)
	if err != nil {
		return nil, nil, classify(err, "read source candidates")
	}
	dh, err := hashBodies(d, dstSet, binary)
	if err != nil {
		return nil, nil, classify(err, "read destination candidates")
	}
	mt := newMatcher(sh, dh)
	for _, mm := range sm {
		if du := lookupMap(cp.Map, uint32(mm.UID)); du != 0 {
			if f, ok := mt.pair(mm.UID, imap.UID(du)); ok {
				found[mm.UID] = f
				continue
			}
		}
	}
	for _, mm := range sm {
		if _, ok := found[mm.UID]; ok {
			continue
		}
		if f, ok := mt.find(mm.UID); ok {
			found[mm.UID] = f
		}
	}
	return sm, found, nil
}

// fillMessageIDs completes items with the source's Message-ID (the plain
// path learns it only when something is reported).
func fillMessageIDs(s *conn, lists ...[]Skip) {
	var need imap.UIDSet
	for _, l := range lists {
		for _, it := range l {
			if it.UID != 0 && it.MessageID == "" {
				need.AddNum(imap.UID(it.UID))
			}
		}
	}
	if len(need) == 0 {
		return
	}
	ms, err := scanMeta(s, need)
	if err != nil {
		return // the report just lacks them
	}
	ids := map[uint32]meta{}
	for _, m := range ms {
		ids[uint32(m.UID)] = m
	}
	for _, l := range lists {
		for i := range l {
			if mm, ok := ids[l[i].UID]; ok {
				l[i].MessageID = mm.MessageID
				if l[i].Size == 0 {
					l[i].Size = mm.Size
				}
				if l[i].Date.IsZero() {
					l[i].Date = mm.Date
				}
			}
		}
	}
}
