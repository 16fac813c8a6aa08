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
// first; the others are matched by a hash of their bytes.
func Verify(ctx context.Context, src, dst Endpoint, opts Options) (_ *VerifyResult, err error) {
	opts.defaults()
	start := time.Now()
	s, d, err := opts.Session.pair(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	defer func() { opts.Session.done(s, d, err) }()
	mappings, listed, err := planFoldersListed(s, d, opts.Folders)
	if err != nil {
		return nil, err
	}
	existing, dns := listed.folders, listed.ns
	have := map[string]bool{"INBOX": true}
	for _, f := range existing {
		have[f.Name] = true
	}
	limit := opts.MaxMessageBytes
	if l, ok := d.Caps().AppendLimit(); ok && l != nil && (limit == 0 || int64(*l) < limit) {
		limit = int64(*l)
	}
	binary := d.Caps().Has(imap.CapBinary) && s.Caps().Has(imap.CapBinary)
	preserved := map[string][]string{}
	if pf := problemsFolderIn(opts.Locale, listed); listed.has(pf.name) {
		if preserved, err = preservedOrigins(d, pf.name); err != nil {
			return nil, classify(err, "read the problems folder")
		}
	}
	reported := map[string]Skip{}
	for _, r := range opts.Reported {
		reported[fmt.Sprintf("%s\x00%d", r.Folder, r.UID)] = r
	}
	res := &VerifyResult{}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	for _, m := range mappings {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if m.NoSelect {
			continue
		}
		m.Dest = resolveDest(m, have, dns)
		fv := FolderVerify{Source: m.Source, Dest: m.Dest}
		sel, err := s.Select(m.Source, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			if !isNo(err) {
				return nil, classify(err, fmt.Sprintf("select source %q", m.Source))
			}
			fv.NotCopied = append(fv.NotCopied, Skip{Folder: m.Source, Category: CatFolderUnreadable, Reason: "the source folder cannot be opened: " + errText(err)})
			res.NotCopied++
			res.Folders = append(res.Folders, fv)
			continue
		}
		// The destination folder is read while the source folder is: two
		// servers, two connections, half the wait.
		dh := map[imap.UID]digest{}
		var derr error
		dread := meanwhile(func() {
			if !have[m.Dest] {
				return
			}
			dsel, err := d.Select(m.Dest, &imap.SelectOptions{ReadOnly: true}).Wait()
			if err != nil {
				derr = classify(err, fmt.Sprintf("select destination %q", m.Dest))
				return
			}
			if dsel.NumMessages > 0 {
				if dh, err = hashBodies(d, all, binary); err != nil {
					derr = classify(err, fmt.Sprintf("read destination %q", m.Dest))
				}
			}
		})
		var sm []meta
		var sh map[imap.UID]digest
		var serr error
		if sel.NumMessages > 0 {
			if sm, err = scanMeta(s, all); err != nil {
				serr = classify(err, fmt.Sprintf("scan %q", m.Source))
			} else if sh, err = hashBodies(s, all, binary); err != nil {
				serr = classify(err, fmt.Sprintf("read %q", m.Source))
			}
		}
		dread()
		if serr != nil {
			return nil, serr
		}
		if derr != nil {
			return nil, derr
		}
		fv.SourceCount, fv.DestCount = len(sm), len(dh)
		mt := newMatcher(sh, dh)
		cp := opts.Checkpoints[m.Source]
		found := map[imap.UID]match{}
		if cp.UIDValidity == sel.UIDValidity {
			for _, mm := range sm {
				if du := lookupMap(cp.Map, uint32(mm.UID)); du != 0 {
					if f, ok := mt.pair(mm.UID, imap.UID(du)); ok {
						found[mm.UID] = f
					}
				}
			}
		}
		// What mailshift put on the source for the owner stays there.
		kept := sm[:0]
		for _, mm := range sm {
			if opts.excludedUID(m.Source, sel.UIDValidity, mm.UID) || opts.excludedID(m.Source, mm.MessageID) {
				res.Excluded++
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
			origin := fmt.Sprintf("%s\x00%d\x00%d", utf7Encode(m.Source), sel.UIDValidity, mm.UID)
			switch {
			case ok && f.altered == "":
				fv.Exact++
			case ok:
				sk.Category, sk.Reason = CatAltered, "stored altered by the destination: "+f.altered
				fv.Altered = append(fv.Altered, sk)
			case mm.Size == 0:
				fv.Empty++
			case contains(preserved[origin], hex.EncodeToString(dg.raw[:])):
				sk.Category, sk.Reason = CatPreserved, "kept as an attachment in the problems folder"
				fv.Preserved = append(fv.Preserved, sk)
			case limit > 0 && mm.Size > limit:
				sk.Category, sk.Reason = CatTooBig, fmt.Sprintf("%d bytes is over the destination's limit of %d bytes: not on the destination", mm.Size, limit)
				fv.OverLimit = append(fv.OverLimit, sk)
			case reported[sk.Folder+"\x00"+strconv.Itoa(int(sk.UID))].NotCopied() && reported[sk.Folder+"\x00"+strconv.Itoa(int(sk.UID))].Reason != "":
				r := reported[sk.Folder+"\x00"+strconv.Itoa(int(sk.UID))]
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
		res.Checked += len(sm)
		res.Exact += fv.Exact
		res.Altered += len(fv.Altered)
		res.Preserved += len(fv.Preserved)
		res.Empty += fv.Empty
		res.NotCopied += len(fv.OverLimit) + len(fv.NotCopied)
		res.Missing += len(fv.Missing)
		res.Duplicates += fv.Duplicates
		res.Folders = append(res.Folders, fv)
	}
	res.Duration = time.Since(start)
	return res, nil
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
