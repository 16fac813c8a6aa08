package mailcopy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Replay: the owner keeps working while the pre-copy runs, so before the
// final delta copies what is new, the destination must also learn what the
// owner changed in what was already copied: messages expunged, flags and
// keywords set or cleared, messages moved between folders, folders
// created, renamed or deleted. The checkpoints' message maps (APPENDUID)
// say which destination message each copied source message became; only
// those are ever touched, so mail the destination got some other way (a
// delivery after the switch, a message the map does not cover) survives.

// Reported item categories of a replay.
const (
	// CatFolderKept: a folder deleted on the source that the destination
	// keeps, because it holds mail this migration did not put there (or
	// subfolders, or it is one of the destination's own special folders).
	CatFolderKept = "folder-kept"
	// CatNotReplayed: a change of the owner the destination would not take
	// (a flag it refuses, an expunge it cannot do selectively).
	CatNotReplayed = "not-replayed"
)

// ReplayCounts counts the owner's changes a replay carried to the
// destination, by kind.
type ReplayCounts struct {
	// Expunged are messages removed from the destination because the
	// owner removed them on the source after they were copied.
	Expunged int `json:"expunged,omitempty"`
	// Flags are messages whose flags or keywords were set to the source's.
	Flags int `json:"flags,omitempty"`
	// Moved are messages moved between destination folders, as the owner
	// moved them on the source (not copied again).
	Moved int `json:"moved,omitempty"`
	// Folders are destination folders renamed or deleted as on the source.
	Folders int `json:"folders,omitempty"`
}

// Add adds o to c.
func (c *ReplayCounts) Add(o ReplayCounts) {
	c.Expunged += o.Expunged
	c.Flags += o.Flags
	c.Moved += o.Moved
	c.Folders += o.Folders
}

// Total is the number of changes replayed.
func (c ReplayCounts) Total() int { return c.Expunged + c.Flags + c.Moved + c.Folders }

// ReplayResult is the outcome of a replay.
type ReplayResult struct {
	ReplayCounts
	// Checkpoints are the input's, with the maps following what moved,
	// renamed folders under their new names, deleted folders gone and
	// HIGHESTMODSEQ advanced: the copy that follows starts from them.
	Checkpoints map[string]Checkpoint `json:"checkpoints"`
	// Items are the changes not carried over, and why.
	Items []Skip `json:"items,omitempty"`
	// ChangedSince counts folders whose flag changes were read with
	// CONDSTORE's CHANGEDSINCE; Scanned those whose flags were all read.
	ChangedSince int           `json:"changedSince,omitempty"`
	Scanned      int           `json:"scanned,omitempty"`
	Duration     time.Duration `json:"duration"`
}

// Replay carries to the destination what the owner changed on the source
// since the checkpoints were taken, for the messages and folders they
// cover. It copies nothing new: Copy with the returned checkpoints does.
// It is idempotent: run again, it finds nothing left to do.
func Replay(ctx context.Context, src, dst Endpoint, opts Options) (_ *ReplayResult, err error) {
	opts.defaults()
	start := time.Now()
	res := &ReplayResult{Checkpoints: make(map[string]Checkpoint, len(opts.Checkpoints))}
	for k, v := range opts.Checkpoints {
		v.Map = append([]UIDMapRange(nil), v.Map...)
		res.Checkpoints[k] = v
	}
	if len(res.Checkpoints) == 0 {
		return res, nil
	}
	s, d, err := opts.Session.pair(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	defer func() { opts.Session.done(s, d, err) }()
	r := &replayer{ctx: ctx, s: s, d: d, cps: res.Checkpoints, res: res, mo: opts.Folders,
		condstore: s.Caps().Has(imap.CapCondStore), fresh: map[string][]imap.UID{}, srcUV: map[string]uint32{}}
	if err := r.run(); err != nil {
		return nil, err
	}
	SortItems(res.Items)
	res.Duration = time.Since(start)
	return res, nil
}

// vanished is a copied message no longer in its source folder: expunged
// there, or moved to another folder.
type vanished struct {
	key      string // source folder (checkpoint key)
	dest     string // destination folder
	src, dst imap.UID
	done     bool // moved (or found gone from the destination)
	// stale: the source folder was renumbered (a new UIDVALIDITY), so
	// src belongs to the old numbering and the map no longer holds it.
	stale bool
}

type replayer struct {
	ctx       context.Context
	s, d      *conn
	cps       map[string]Checkpoint
	res       *ReplayResult
	mo        MapOptions
	condstore bool

	srcListed map[string]bool    // every selectable source folder
	maps      map[string]Mapping // selected source folder -> mapping
	guess     map[string]string  // gone source folder -> destination name
	dstHave   map[string]Folder
	dstDelim  rune

	gone     []string              // checkpointed folders the source no longer has
	lost     []vanished            // copied messages no longer where they were
	fresh    map[string][]imap.UID // source folder -> messages the map does not cover
	srcUV    map[string]uint32     // source folder -> UIDVALIDITY, for fresh ones
	scanned  map[string]bool       // folders whose fresh messages are listed
	selected string                // destination folder selected (read-write)
}

func (r *replayer) run() error {
	if err := r.list(); err != nil {
		return err
	}
	renamed, err := r.renames()
	if err != nil {
		return err
	}
	if renamed {
		if err := r.list(); err != nil {
			return err
		}
	}
	// Moves may go into folders the owner created: create them now (the
	// copy that follows would, and finds them made).
	var ms []Mapping
	for _, k := range sortedKeys(r.maps) {
		ms = append(ms, r.maps[k])
	}
	ms, _, err = createFolders(r.d, ms)
	if err != nil {
		return err
	}
	for _, m := range ms {
		r.maps[m.Source] = m
	}
	if err := r.listDest(); err != nil {
		return err
	}
	r.scanned = map[string]bool{}
	for _, k := range sortedKeys(r.cps) {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if err := r.scanFolder(k); err != nil {
			return err
		}
	}
	if err := r.moves(); err != nil {
		return err
	}
	if err := r.expunges(); err != nil {
		return err
	}
	return r.deletions()
}

// list reads both folder lists and decides every folder's destination.
func (r *replayer) list() error {
	sf, sns, err := listFolders(r.s)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	df, dns, err := listFolders(r.d)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	ms, err := MapFolders(sf, sns, df, dns, r.mo)
	if err != nil {
		return &PermanentError{Kind: KindBadConfig, Err: err}
	}
	r.srcListed = map[string]bool{}
	for _, f := range sf {
		if !f.NoSelect() {
			r.srcListed[f.Name] = true
		}
	}
	r.maps = map[string]Mapping{}
	for _, m := range ms {
		if !m.NoSelect {
			r.maps[m.Source] = m
		}
	}
	// Checkpoints written before they named their destination folder:
	// a folder gone from the source gets the name the copy gave it.
	var synth []Folder
	for k, cp := range r.cps {
		if cp.Dest == "" && !r.srcListed[k] {
			synth = append(synth, Folder{Name: k, Delim: sns.Delim})
		}
	}
	r.guess = map[string]string{}
	if len(synth) > 0 {
		sort.Slice(synth, func(i, j int) bool { return synth[i].Name < synth[j].Name })
		all, err := MapFolders(append(append([]Folder(nil), sf...), synth...), sns, df, dns, r.mo)
		if err == nil {
			for _, m := range all {
				if !r.srcListed[m.Source] {
					r.guess[m.Source] = m.Dest
				}
			}
		}
	}
	r.setDest(df, dns)
	return nil
}

func (r *replayer) listDest() error {
	df, dns, err := listFolders(r.d)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	r.setDest(df, dns)
	return nil
}

func (r *replayer) setDest(df []Folder, ns Namespace) {
	r.dstHave = map[string]Folder{"INBOX": {Name: "INBOX"}}
	for _, f := range df {
		r.dstHave[f.Name] = f
	}
	r.dstDelim = ns.Delim
}

// destOf is the destination folder of a checkpointed source folder.
func (r *replayer) destOf(key string) string {
	if cp := r.cps[key]; cp.Dest != "" {
		return cp.Dest
	}
	if m, ok := r.maps[key]; ok {
		return m.Dest
	}
	return r.guess[key]
}

// selectDest selects a destination folder read-write and returns its
// UIDVALIDITY (0 when the destination has no such folder).
func (r *replayer) selectDest(name string) (uint32, error) {
	r.selected = ""
	sel, err := r.d.Select(name, nil).Wait()
	if err != nil {
		if isNo(err) {
			return 0, nil
		}
		return 0, classify(err, fmt.Sprintf("select destination %q", name))
	}
	r.selected = name
	return sel.UIDValidity, nil
}

// scanFolder compares one checkpointed folder with the source: which
// copied messages are gone, which messages are new, and (on the spot)
// whose flags changed.
func (r *replayer) scanFolder(key string) error {
	cp := r.cps[key]
	if !r.srcListed[key] {
		// Deleted on the source (not renamed): each copied message is
		// gone from it, unless it was moved out first.
		r.gone = append(r.gone, key)
		r.addLost(key, cp, func(uint32) bool { return false })
		return nil
	}
	if _, ok := r.maps[key]; !ok {
		return nil // no longer selected by the operator's folder options
	}
	if cp.UIDValidity == 0 || r.destOf(key) == "" {
		return nil
	}
	sel, err := r.s.Select(key, &imap.SelectOptions{ReadOnly: true, CondStore: r.condstore}).Wait()
	if err != nil {
		if isNo(err) {
			return nil // unreadable now: the copy reports it
		}
		return classify(err, fmt.Sprintf("select source %q", key))
	}
	if sel.UIDValidity != cp.UIDValidity {
		return r.renumbered(key, cp, sel.UIDValidity, sel.NumMessages)
	}
	present := map[uint32]bool{}
	if sel.NumMessages > 0 {
		srch, err := r.s.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return classify(err, fmt.Sprintf("search %q", key))
		}
		for _, u := range srch.AllUIDs() {
			present[uint32(u)] = true
			if uint32(u) > cp.LastUID && lookupMap(cp.Map, uint32(u)) == 0 {
				r.fresh[key] = append(r.fresh[key], u)
			}
		}
	}
	r.scanned[key] = true
	r.srcUV[key] = sel.UIDValidity
	r.addLost(key, cp, func(u uint32) bool { return present[u] })

	// Flags of the copied messages still there: with CONDSTORE only those
	// changed since the last pass, else all of them.
	var mapped imap.UIDSet
	for _, rg := range cp.Map {
		for i := uint32(0); i < rg.N; i++ {
			if present[rg.Src+i] {
				mapped.AddNum(imap.UID(rg.Src + i))
			}
		}
	}
	if len(mapped) == 0 {
		r.advanceModSeq(key, sel.HighestModSeq)
		return nil
	}
	fo := &imap.FetchOptions{UID: true, Flags: true}
	set := mapped
	if r.condstore && cp.ModSeq > 0 {
		fo.ChangedSince = cp.ModSeq
		set = imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
		r.res.ChangedSince++
	} else {
		r.res.Scanned++
	}
	srcFlags, err := fetchFlags(r.s, set, fo)
	if err != nil {
		return classify(err, fmt.Sprintf("read flags of %q", key))
	}
	for u := range srcFlags {
		if !present[uint32(u)] || lookupMap(cp.Map, uint32(u)) == 0 {
			delete(srcFlags, u)
		}
	}
	if len(srcFlags) > 0 {
		if err := r.syncFlags(key, cp, srcFlags); err != nil {
			return err
		}
	}
	r.advanceModSeq(key, sel.HighestModSeq)
	return nil
}

// renumbered handles a source folder with a new UIDVALIDITY (deleted and
// created again, or a server that rebuilt its index): every copied
// message is lost under its old UID and every message there is new; the
// ones that are the same content are paired again by moves (same folder:
// only the map changes), the others removed from the destination.
func (r *replayer) renumbered(key string, cp Checkpoint, uv, n uint32) error {
	dest := r.destOf(key)
	r.addLost(key, cp, func(uint32) bool { return false })
	for i := range r.lost {
		if r.lost[i].key == key {
			r.lost[i].stale = true
		}
	}
	r.cps[key] = Checkpoint{UIDValidity: uv, DestUIDValidity: cp.DestUIDValidity, Dest: dest}
	r.scanned[key] = true
	r.srcUV[key] = uv
	if n == 0 {
		return nil
	}
	srch, err := r.s.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		return classify(err, fmt.Sprintf("search %q", key))
	}
	r.fresh[key] = append(r.fresh[key], srch.AllUIDs()...)
	return nil
}

// advanceModSeq records that the folder's flags are on the destination as
// of modseq: the next replay asks only for what changed after it.
func (r *replayer) advanceModSeq(key string, modseq uint64) {
	if !r.condstore || modseq == 0 {
		return
	}
	cp := r.cps[key]
	cp.ModSeq = modseq
	r.cps[key] = cp
}

// addLost lists the copied messages of a folder that keep(src) says are
// no longer there.
func (r *replayer) addLost(key string, cp Checkpoint, keep func(uint32) bool) {
	dest := r.destOf(key)
	for _, rg := range cp.Map {
		for i := uint32(0); i < rg.N; i++ {
			if !keep(rg.Src + i) {
				r.lost = append(r.lost, vanished{key: key, dest: dest, src: imap.UID(rg.Src + i), dst: imap.UID(rg.Dst + i)})
			}
		}
	}
}

// fetchFlags reads the flags of uids in the selected folder.
func fetchFlags(c *conn, uids imap.UIDSet, fo *imap.FetchOptions) (map[imap.UID][]imap.Flag, error) {
	out := map[imap.UID][]imap.Flag{}
	cmd := c.Fetch(uids, fo)
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var uid imap.UID
		var flags []imap.Flag
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataFlags:
				flags = it.Flags
			}
		}
		if uid != 0 {
			out[uid] = flags
		}
	}
	return out, cmd.Close()
}

// sameFlags compares flag sets the way a destination stores them: \Recent
// and keywords no client can send left out, case ignored.
func sameFlags(src, dst []imap.Flag) bool {
	a, _ := appendable(src)
	x, y := flagSet(a), flagSet(withoutRecent(dst))
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !strings.EqualFold(x[i], y[i]) {
			return false
		}
	}
	return true
}

// syncFlags sets the flags of the mapped destination messages to the
// source's, one STORE per distinct flag set.
func (r *replayer) syncFlags(key string, cp Checkpoint, src map[imap.UID][]imap.Flag) error {
	dest := r.destOf(key)
	uv, err := r.selectDest(dest)
	if err != nil || uv == 0 || uv != cp.DestUIDValidity {
		return err // no such folder, or renumbered: the map means nothing there
	}
	var dset imap.UIDSet
	for u := range src {
		dset.AddNum(imap.UID(lookupMap(cp.Map, uint32(u))))
	}
	have, err := fetchFlags(r.d, dset, &imap.FetchOptions{UID: true, Flags: true})
	if err != nil {
		return classify(err, fmt.Sprintf("read flags of destination %q", dest))
	}
	groups := map[string]imap.UIDSet{}
	want := map[string][]imap.Flag{}
	var order []string
	uids := make([]imap.UID, 0, len(src))
	for u := range src {
		uids = append(uids, u)
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	for _, u := range uids {
		du := imap.UID(lookupMap(cp.Map, uint32(u)))
		df, ok := have[du]
		if !ok || sameFlags(src[u], df) {
			continue
		}
		fl, _ := appendable(src[u])
		k := strings.Join(flagSet(fl), " ")
		if _, seen := groups[k]; !seen {
			order = append(order, k)
			want[k] = withoutRecent(fl)
		}
		set := groups[k]
		set.AddNum(du)
		groups[k] = set
	}
	for _, k := range order {
		n := countUIDs(groups[k])
		err := r.d.Store(groups[k], &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: want[k]}, nil).Close()
		if err != nil {
			if !isNo(err) {
				return classify(err, fmt.Sprintf("store flags in %q", dest))
			}
			r.res.Items = append(r.res.Items, Skip{Folder: key, Category: CatNotReplayed,
				Reason: fmt.Sprintf("the destination refused the flags %q on %d message(s): %s", k, n, errText(err))})
			continue
		}
		r.res.Flags += n
	}
	return nil
}

func countUIDs(s imap.UIDSet) int {
	n := 0
	for _, rg := range s {
		n += int(rg.Stop-rg.Start) + 1
	}
	return n
}

// expunges removes from the destination the copied messages the owner
// removed from the source, and only those: UID EXPUNGE of their mapped
// UIDs, so nothing else flagged \Deleted there goes with them.
func (r *replayer) expunges() error {
	byDest := map[string][]int{}
	for i, v := range r.lost {
		if !v.done {
			byDest[v.dest] = append(byDest[v.dest], i)
		}
	}
	for _, dest := range sortedKeys(byDest) {
		idx := byDest[dest]
		key := r.lost[idx[0]].key
		uv, err := r.selectDest(dest)
		if err != nil {
			return err
		}
		if uv != 0 && uv == r.cps[key].DestUIDValidity {
			var set imap.UIDSet
			for _, i := range idx {
				set.AddNum(r.lost[i].dst)
			}
			// Count only what is still there (an earlier attempt may have
			// removed some already).
			srch, err := r.d.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}}, nil).Wait()
			if err != nil {
				return classify(err, fmt.Sprintf("search destination %q", dest))
			}
			var there imap.UIDSet
			for _, u := range srch.AllUIDs() {
				there.AddNum(u)
			}
			if n := countUIDs(there); n > 0 {
				if !r.d.Caps().Has(imap.CapUIDPlus) && !r.d.Caps().Has(imap.CapIMAP4rev2) {
					r.res.Items = append(r.res.Items, Skip{Folder: key, Category: CatNotReplayed,
						Reason: fmt.Sprintf("%d message(s) removed on the source stay on the destination: it cannot expunge selectively (no UIDPLUS)", n)})
					continue
				}
				if err := r.d.Store(there, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
					return classify(err, fmt.Sprintf("flag removed messages in %q", dest))
				}
				if err := r.d.UIDExpunge(there).Close(); err != nil {
					return classify(err, fmt.Sprintf("expunge in %q", dest))
				}
				r.res.Expunged += n
			}
		}
		for _, i := range idx {
			if v := r.lost[i]; !v.stale {
				cp := r.cps[v.key]
				cp.Map = removeFromMap(cp.Map, uint32(v.src))
				r.cps[v.key] = cp
			}
		}
	}
	return nil
}

// insertMap records src -> dst in a map whose ranges stay sorted by
// source UID, whatever order the UIDs come in.
func insertMap(m []UIDMapRange, src, dst uint32) []UIDMapRange {
	if src == 0 || dst == 0 {
		return m
	}
	if lookupMap(m, src) != 0 {
		return replaceInMap(m, src, dst)
	}
	i := sort.Search(len(m), func(i int) bool { return m[i].Src > src })
	if i > 0 {
		if p := &m[i-1]; p.Src+p.N == src && p.Dst+p.N == dst {
			p.N++
			return m
		}
	}
	m = append(m, UIDMapRange{})
	copy(m[i+1:], m[i:])
	m[i] = UIDMapRange{Src: src, Dst: dst, N: 1}
	return m
}

// removeFromMap forgets src, splitting the range that held it.
func removeFromMap(m []UIDMapRange, src uint32) []UIDMapRange {
	out := m[:0:0]
	for _, r := range m {
		if src < r.Src || src >= r.Src+r.N {
			out = append(out, r)
			continue
		}
		if k := src - r.Src; k > 0 {
			out = append(out, UIDMapRange{Src: r.Src, Dst: r.Dst, N: k})
		}
		if rest := r.Src + r.N - src - 1; rest > 0 {
			out = append(out, UIDMapRange{Src: src + 1, Dst: r.Dst + (src - r.Src) + 1, N: rest})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Replay runs Replay.
func (Engine) Replay(ctx context.Context, src, dst Endpoint, opts Options) (*ReplayResult, error) {
	return Replay(ctx, src, dst, opts)
}
