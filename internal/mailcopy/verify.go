package mailcopy

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// FolderVerify is the verification of one folder.
type FolderVerify struct {
	Source      string `json:"source"`
	Dest        string `json:"dest"`
	SourceCount int    `json:"sourceCount"`
	DestCount   int    `json:"destCount"`
	Exact       int    `json:"exact"`
	Empty       int    `json:"empty,omitempty"`
	// Missing lists source messages whose content is nowhere on the
	// destination and that no report accounts for.
	Missing []Skip `json:"missing,omitempty"`
	// OverLimit lists source messages the destination cannot take for
	// their size: reported, not on the destination.
	OverLimit []Skip `json:"overLimit,omitempty"`
	// NotCopied lists other reported messages not on the destination
	// (refused, the folder unreadable).
	NotCopied []Skip `json:"notCopied,omitempty"`
	// Altered lists messages the destination stored differently (why).
	Altered []Skip `json:"altered,omitempty"`
	// Preserved lists messages kept wrapped in the problems folder.
	Preserved []Skip `json:"preserved,omitempty"`
	// Duplicates counts destination messages that repeat a copied one.
	Duplicates int `json:"duplicates,omitempty"`
	// excluded counts source messages left on the source on purpose.
	excluded int
}

// VerifyResult is the outcome of a verification by content: every source
// message is on the destination byte for byte (exact), stored altered by
// the destination in a known way, preserved, empty, reported as not
// copied, or missing.
type VerifyResult struct {
	Folders    []FolderVerify `json:"folders"`
	Checked    int            `json:"checked"`
	Exact      int            `json:"exact"`
	Altered    int            `json:"altered"`
	Preserved  int            `json:"preserved"`
	Empty      int            `json:"empty"`
	NotCopied  int            `json:"notCopied"`
	Missing    int            `json:"missing"`
	Duplicates int            `json:"duplicates"`
	// Excluded counts source messages left on the source on purpose
	// (Options.Exclude).
	Excluded int           `json:"excluded,omitempty"`
	Duration time.Duration `json:"duration"`
}

// OK reports whether nothing was lost silently and nothing duplicated:
// every source message is on the destination (exact or altered in a known
// way), preserved, empty, or reported as not copied (listed).
func (v *VerifyResult) OK() bool { return v.Missing == 0 && v.Duplicates == 0 }

// Verify checks, by content, that every message of every selected source
// folder is in its destination folder. The checkpoints' maps pair messages
// first; the others are matched by a hash of their bytes. Each folder is
// read on both servers at once.
func Verify(ctx context.Context, src, dst Endpoint, opts Options) (_ *VerifyResult, err error) {
	opts.defaults()
	start := time.Now()
	s, d, err := opts.Session.pair(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	defer func() { opts.Session.done(s, d, err) }()
	p, err := planVerify(s, d, opts)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{}
	for _, m := range p.selectable() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Two servers, two connections, half the wait.
		var dh map[imap.UID]digest
		var derr error
		dread := meanwhile(func() { dh, derr = p.readDest(d, m.Dest) })
		sf, serr := p.readSource(s, m, opts)
		dread()
		if serr != nil {
			return nil, serr
		}
		if derr != nil && sf.unreadable == "" {
			return nil, derr
		}
		res.add(p.compare(sf, dh, opts))
	}
	res.Duration = time.Since(start)
	return res, nil
}

// SourceSnapshot is what a verify read of the source: its folders, each
// message's metadata and content hash. VerifyAgainst checks the
// destination against it once the source's connection is closed, so a
// verify holds the source (the scarcer server, shared with every other
// account on it) only while it reads the source.
type SourceSnapshot struct {
	plan    *verifyPlan
	folders []sourceFolder
	opts    Options
	start   time.Time
	// Messages counts the source messages read, Hashed those whose bytes
	// were read from the source (the others' hashes came from the copy).
	Messages, Hashed int
}

// Started is when the reading began.
func (s *SourceSnapshot) Started() time.Time { return s.start }

// VerifySource reads the source's half of a verify: the folders paired on
// both servers, then each source folder's messages, hashed (the copy's
// hashes where opts.Digests holds them, else the bytes read now).
func VerifySource(ctx context.Context, src, dst Endpoint, opts Options) (_ *SourceSnapshot, err error) {
	opts.defaults()
	snap := &SourceSnapshot{opts: opts, start: time.Now()}
	snap.opts.Session, snap.opts.Digests = nil, nil // the destination's half uses neither
	s, d, err := opts.Session.pair(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	defer func() { opts.Session.done(s, d, err) }()
	if snap.plan, err = planVerify(s, d, opts); err != nil {
		return nil, err
	}
	for _, m := range snap.plan.selectable() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sf, err := snap.plan.readSource(s, m, opts)
		if err != nil {
			return nil, err
		}
		snap.Messages += len(sf.sm)
		snap.Hashed += sf.hashed
		snap.folders = append(snap.folders, sf)
	}
	return snap, nil
}

// VerifyAgainst checks the destination against a source snapshot, on a
// destination connection of its own.
func VerifyAgainst(ctx context.Context, dst Endpoint, snap *SourceSnapshot) (*VerifyResult, error) {
	d, err := dial(ctx, dst)
	if err != nil {
		return nil, err
	}
	defer d.close()
	res := &VerifyResult{}
	for _, sf := range snap.folders {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var dh map[imap.UID]digest
		if sf.unreadable == "" {
			if dh, err = snap.plan.readDest(d, sf.m.Dest); err != nil {
				return nil, err
			}
		}
		res.add(snap.plan.compare(sf, dh, snap.opts))
	}
	res.Duration = time.Since(snap.start)
	return res, nil
}

// verifyPlan is what a verify knows before it reads a folder: the folders
// paired, the destination's listing and size limit, what its problems
// folder holds and what the copy reported.
type verifyPlan struct {
	mappings  []Mapping
	have      map[string]bool
	dns       Namespace
	limit     int64
	binary    bool
	preserved map[string][]string
	reported  map[string]Skip
}

// selectable are the folders to read, each with its destination as the
// destination's listing names it.
func (p *verifyPlan) selectable() []Mapping {
	var out []Mapping
	for _, m := range p.mappings {
		if !m.NoSelect {
			m.Dest = resolveDest(m, p.have, p.dns)
			out = append(out, m)
		}
	}
	return out
}

func planVerify(s, d *conn, opts Options) (*verifyPlan, error) {
	mappings, listed, err := planFoldersListed(s, d, opts.Folders)
	if err != nil {
		return nil, err
	}
	p := &verifyPlan{mappings: mappings, dns: listed.ns, have: map[string]bool{"INBOX": true},
		limit: opts.MaxMessageBytes, preserved: map[string][]string{}, reported: map[string]Skip{}}
	for _, f := range listed.folders {
		p.have[f.Name] = true
	}
	if l, ok := d.Caps().AppendLimit(); ok && l != nil && (p.limit == 0 || int64(*l) < p.limit) {
		p.limit = int64(*l)
	}
	p.binary = d.Caps().Has(imap.CapBinary) && s.Caps().Has(imap.CapBinary)
	if pf := problemsFolderIn(opts.Locale, listed); listed.has(pf.name) {
		if p.preserved, err = preservedOrigins(d, pf.name); err != nil {
			return nil, classify(err, "read the problems folder")
		}
	}
	for _, r := range opts.Reported {
		p.reported[reportKey(r.Folder, r.UID)] = r
	}
	return p, nil
}

func reportKey(folder string, uid uint32) string { return folder + "\x00" + strconv.Itoa(int(uid)) }

// sourceFolder is what verify read of one source folder.
type sourceFolder struct {
	m Mapping
	// unreadable says why the folder could not be opened ("": it was).
	unreadable  string
	uidValidity uint32
	sm          []meta
	sh          map[imap.UID]digest
	// hashed counts the messages whose bytes were read now.
	hashed int
}

var allUIDs = imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}

// readSource reads a source folder's messages: their metadata, and the
// hashes of their bytes (opts.Digests' for the messages the copy hashed).
func (p *verifyPlan) readSource(s *conn, m Mapping, opts Options) (sourceFolder, error) {
	sf := sourceFolder{m: m}
	sel, err := s.Select(m.Source, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		if !isNo(err) {
			return sf, classify(err, fmt.Sprintf("select source %q", m.Source))
		}
		sf.unreadable = errText(err)
		return sf, nil
	}
	sf.uidValidity = sel.UIDValidity
	if sel.NumMessages == 0 {
		return sf, nil
	}
	if sf.sm, err = scanMeta(s, allUIDs); err != nil {
		return sf, classify(err, fmt.Sprintf("scan %q", m.Source))
	}
	sf.sh = map[imap.UID]digest{}
	var need imap.UIDSet
	for _, mm := range sf.sm {
		if dg, ok := opts.Digests.known(m.Source, sel.UIDValidity, mm.UID, mm.Size, mm.Date); ok {
			sf.sh[mm.UID] = dg
		} else {
			need.AddNum(mm.UID)
		}
	}
	if len(sf.sh) == 0 {
		need = allUIDs // one short command for the whole folder
	}
	if len(need) > 0 {
		got, err := hashBodies(s, need, p.binary)
		if err != nil {
			return sf, classify(err, fmt.Sprintf("read %q", m.Source))
		}
		for u, dg := range got {
			sf.sh[u] = dg
		}
		sf.hashed = len(got)
	}
	return sf, nil
}

// readDest hashes the messages of a destination folder (none when the
// folder is not there).
func (p *verifyPlan) readDest(d *conn, folder string) (map[imap.UID]digest, error) {
	if !p.have[folder] {
		return map[imap.UID]digest{}, nil
	}
	dsel, err := d.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, classify(err, fmt.Sprintf("select destination %q", folder))
	}
	if dsel.NumMessages == 0 {
		return map[imap.UID]digest{}, nil
	}
	dh, err := hashBodies(d, allUIDs, p.binary)
	if err != nil {
		return nil, classify(err, fmt.Sprintf("read destination %q", folder))
	}
	return dh, nil
}

// compare accounts for every message of a source folder on the
// destination folder's hashes dh.
func (p *verifyPlan) compare(sf sourceFolder, dh map[imap.UID]digest, opts Options) FolderVerify {
	m := sf.m
	fv := FolderVerify{Source: m.Source, Dest: m.Dest}
	if sf.unreadable != "" {
		fv.NotCopied = append(fv.NotCopied, Skip{Folder: m.Source, Category: CatFolderUnreadable, Reason: "the source folder cannot be opened: " + sf.unreadable})
		return fv
	}
	sm, sh := sf.sm, sf.sh
	fv.SourceCount, fv.DestCount = len(sm), len(dh)
	mt := newMatcher(sh, dh)
	cp := opts.Checkpoints[m.Source]
	found := map[imap.UID]match{}
	if cp.UIDValidity == sf.uidValidity {
		for _, mm := range sm {
			if du := lookupMap(cp.Map, uint32(mm.UID)); du != 0 {
				if f, ok := mt.pair(mm.UID, imap.UID(du)); ok {
					found[mm.UID] = f
				}
			}
		}
	}
	// What mailshift put on the source for the owner stays there.
	var kept []meta
	for _, mm := range sm {
		if opts.excludedUID(m.Source, sf.uidValidity, mm.UID) || opts.excludedID(m.Source, mm.MessageID) {
			fv.excluded++
			continue
		}
		kept = append(kept, mm)
	}
	sm = kept
	fv.SourceCount = len(sm)
	for _, mm := range sm {
		sk := Skip{Folder: m.Source, UID: uint32(mm.UID), Size: mm.Size, Date: mm.Date, MessageID: mm.MessageID}
		f, ok := found[mm.UID]
		if !ok {
			f, ok = mt.find(mm.UID)
		}
		if ok {
			// Exact means the bytes, the date and the flags: a copy
			// without a keyword the destination refused is on the
			// destination, altered, as the copy reported it.
			if fd := flagDifference(flagSet(mm.Flags), dh[f.dest].flags); fd != "" {
				f.altered = strings.TrimPrefix(f.altered+"; "+fd, "; ")
			}
		}
		dg := sh[mm.UID]
		origin := fmt.Sprintf("%s\x00%d\x00%d", utf7Encode(m.Source), sf.uidValidity, mm.UID)
		r := p.reported[reportKey(sk.Folder, sk.UID)]
		switch {
		case ok && f.altered == "":
			fv.Exact++
		case ok:
			sk.Category, sk.Reason = CatAltered, "stored altered by the destination: "+f.altered
			fv.Altered = append(fv.Altered, sk)
		case mm.Size == 0:
			fv.Empty++
		case contains(p.preserved[origin], hex.EncodeToString(dg.raw[:])):
			sk.Category, sk.Reason = CatPreserved, "kept as an attachment in the problems folder"
			fv.Preserved = append(fv.Preserved, sk)
		case p.limit > 0 && mm.Size > p.limit:
			sk.Category, sk.Reason = CatTooBig, fmt.Sprintf("%d bytes is over the destination's limit of %d bytes: not on the destination", mm.Size, p.limit)
			fv.OverLimit = append(fv.OverLimit, sk)
		case r.NotCopied() && r.Reason != "":
			sk.Category, sk.Reason = r.Category, r.Reason+": not on the destination"
			if r.Category == CatTooBig {
				fv.OverLimit = append(fv.OverLimit, sk)
			} else {
				fv.NotCopied = append(fv.NotCopied, sk)
			}
		default:
			sk.Reason = "no message with this content on the destination"
			fv.Missing = append(fv.Missing, sk)
		}
	}
	fv.Duplicates = mt.duplicates()
	return fv
}

// add counts a folder's verification in the result.
func (v *VerifyResult) add(fv FolderVerify) {
	v.Checked += fv.SourceCount
	v.Exact += fv.Exact
	v.Altered += len(fv.Altered)
	v.Preserved += len(fv.Preserved)
	v.Empty += fv.Empty
	v.NotCopied += len(fv.OverLimit) + len(fv.NotCopied)
	v.Missing += len(fv.Missing)
	v.Duplicates += fv.Duplicates
	v.Excluded += fv.excluded
	v.Folders = append(v.Folders, fv)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// MissingSummary names the first few missing messages, for an operator.
func (v *VerifyResult) MissingSummary() string {
	var parts []string
	for _, f := range v.Folders {
		if len(f.Missing) > 0 {
			parts = append(parts, fmt.Sprintf("%q: %d missing (first UID %d)", f.Source, len(f.Missing), f.Missing[0].UID))
		}
		if f.Duplicates > 0 {
			parts = append(parts, fmt.Sprintf("%q: %d duplicated", f.Source, f.Duplicates))
		}
	}
	return strings.Join(parts, "; ")
}

// InventoryMessage is one message as a server serves it, by content.
type InventoryMessage struct {
	Folder string
	UID    uint32
	Flags  []string
	Date   time.Time
	Size   int64
	// SHA256 is the hash of the bytes (BINARY[] when the server has it);
	// Norm the hash with line endings and NULs normalized.
	SHA256, Norm string
	// Preserved is the origin named by a preserved message's wrapper.
	Preserved string
}

// Inventory reads every message of a mailbox (through the same tolerant
// reader as the copy), for tests and audits: no content, only hashes.
func Inventory(ctx context.Context, ep Endpoint) ([]InventoryMessage, error) {
	c, err := dial(ctx, ep)
	if err != nil {
		return nil, err
	}
	defer c.close()
	folders, _, err := listFolders(c)
	if err != nil {
		return nil, err
	}
	binary := c.Caps().Has(imap.CapBinary)
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	var out []InventoryMessage
	for _, f := range folders {
		if f.NoSelect() {
			continue
		}
		sel, err := c.Select(f.Name, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			if isNo(err) {
				continue
			}
			return nil, err
		}
		if sel.NumMessages == 0 {
			continue
		}
		ms, err := scanMeta(c, all)
		if err != nil {
			return nil, err
		}
		dg, err := hashBodies(c, all, binary)
		if err != nil {
			return nil, err
		}
		origins := map[imap.UID]string{}
		sec := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{preservedHeader}, Peek: true}
		msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			for _, b := range m.BodySection {
				origins[m.UID] = headerValue(b.Bytes, preservedHeader)
			}
		}
		for _, m := range ms {
			var flags []string
			for _, fl := range m.Flags {
				if !strings.EqualFold(string(fl), `\Recent`) {
					flags = append(flags, string(fl))
				}
			}
			d := dg[m.UID]
			out = append(out, InventoryMessage{Folder: f.Name, UID: uint32(m.UID), Flags: flags, Date: m.Date, Size: m.Size,
				SHA256: hex.EncodeToString(d.raw[:]), Norm: hex.EncodeToString(d.norm[:]), Preserved: origins[m.UID]})
		}
	}
	return out, nil
}
