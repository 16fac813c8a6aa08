package mailcopy

import (
	"fmt"
	"sort"

	"github.com/emersion/go-imap/v2"
)

// Moves of a replay: copied messages the owner moved to another folder
// are moved on the destination, never copied again.

// listFresh lists the messages of a source folder with no checkpoint (a
// folder the owner created): all of them are new.
func (r *replayer) listFresh(key string) error {
	if r.scanned[key] {
		return nil
	}
	r.scanned[key] = true
	sel, err := r.s.Select(key, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		if isNo(err) {
			return nil
		}
		return classify(err, fmt.Sprintf("select source %q", key))
	}
	r.srcUV[key] = sel.UIDValidity
	if sel.NumMessages == 0 {
		return nil
	}
	srch, err := r.s.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		return classify(err, fmt.Sprintf("search %q", key))
	}
	r.fresh[key] = append(r.fresh[key], srch.AllUIDs()...)
	return nil
}

// candidate is a new source message that may be a moved copied one.
type candidate struct {
	key string
	uid imap.UID
	m   meta
	d   digest
}

// moves recognises new source messages that are copied messages the
// owner moved: same fingerprint, then same content. Their destination
// copies are moved the same way (UID MOVE), never copied again.
func (r *replayer) moves() error {
	if len(r.lost) == 0 {
		return nil
	}
	for _, k := range sortedKeys(r.maps) {
		if err := r.listFresh(k); err != nil {
			return err
		}
	}
	if len(r.fresh) == 0 {
		return nil
	}
	lostMeta, err := r.lostFingerprints()
	if err != nil || len(lostMeta) == 0 {
		return err
	}
	byKey := map[string][]int{}
	for _, i := range sortedInts(lostMeta) {
		byKey[lostMeta[i].key()] = append(byKey[lostMeta[i].key()], i)
	}
	cands, err := r.candidates(byKey)
	if err != nil || len(cands) == 0 {
		return err
	}
	lostDigest, err := r.lostDigests(cands, byKey)
	if err != nil {
		return err
	}
	// Pair each candidate with a lost message of the same content; group
	// the pairs by source and target destination folder.
	groups := map[[2]string][]movePair{}
	used := map[int]bool{}
	for _, c := range cands {
		for _, i := range byKey[c.m.key()] {
			d, ok := lostDigest[i]
			if !ok || used[i] || d.norm != c.d.norm {
				continue
			}
			used[i] = true
			g := [2]string{r.lost[i].dest, r.targetOf(c.key)}
			groups[g] = append(groups[g], movePair{c: c, i: i, was: lostMeta[i].Flags})
			break
		}
	}
	gkeys := make([][2]string, 0, len(groups))
	for g := range groups {
		gkeys = append(gkeys, g)
	}
	sort.Slice(gkeys, func(i, j int) bool {
		return gkeys[i][0] < gkeys[j][0] || gkeys[i][0] == gkeys[j][0] && gkeys[i][1] < gkeys[j][1]
	})
	for _, g := range gkeys {
		if err := r.applyMoves(g[0], g[1], groups[g]); err != nil {
			return err
		}
	}
	return nil
}

// movePair is a new source message (c) found to be the lost copied
// message r.lost[i], whose destination copy had the flags was.
type movePair struct {
	c   candidate
	i   int
	was []imap.Flag
}

// lostFingerprints reads the fingerprints of the lost messages on the
// destination; those no longer there are marked done.
func (r *replayer) lostFingerprints() (map[int]meta, error) {
	byDest := map[string][]int{}
	for i, v := range r.lost {
		byDest[v.dest] = append(byDest[v.dest], i)
	}
	out := map[int]meta{}
	for _, dest := range sortedKeys(byDest) {
		idx := byDest[dest]
		uv, err := r.selectDest(dest)
		if err != nil {
			return nil, err
		}
		if uv == 0 || uv != r.cps[r.lost[idx[0]].key].DestUIDValidity {
			continue
		}
		var set imap.UIDSet
		for _, i := range idx {
			set.AddNum(r.lost[i].dst)
		}
		ms, err := scanMeta(r.d, set)
		if err != nil {
			return nil, classify(err, fmt.Sprintf("scan destination %q", dest))
		}
		at := map[imap.UID]meta{}
		for _, m := range ms {
			at[m.UID] = m
		}
		for _, i := range idx {
			if m, ok := at[r.lost[i].dst]; ok {
				out[i] = m
			} else {
				r.lost[i].done = true // already gone from the destination
			}
		}
	}
	return out, nil
}

// candidates are the new source messages sharing a fingerprint with a
// lost message, with the digest of their content.
func (r *replayer) candidates(byKey map[string][]int) ([]candidate, error) {
	var cands []candidate
	for _, k := range sortedKeys(r.fresh) {
		if _, err := r.s.Select(k, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			if isNo(err) {
				continue
			}
			return nil, classify(err, fmt.Sprintf("select source %q", k))
		}
		var set imap.UIDSet
		for _, u := range r.fresh[k] {
			set.AddNum(u)
		}
		ms, err := scanMeta(r.s, set)
		if err != nil {
			return nil, classify(err, fmt.Sprintf("scan source %q", k))
		}
		var hset imap.UIDSet
		var these []candidate
		for _, m := range ms {
			if len(byKey[m.key()]) > 0 {
				hset.AddNum(m.UID)
				these = append(these, candidate{key: k, uid: m.UID, m: m})
			}
		}
		if len(these) == 0 {
			continue
		}
		hs, err := hashBodies(r.s, hset, false)
		if err != nil {
			return nil, classify(err, fmt.Sprintf("read source %q", k))
		}
		for _, c := range these {
			if d, ok := hs[c.uid]; ok {
				c.d = d
				cands = append(cands, c)
			}
		}
	}
	return cands, nil
}

// lostDigests hashes the destination copies of the lost messages that a
// candidate nominates.
func (r *replayer) lostDigests(cands []candidate, byKey map[string][]int) (map[int]digest, error) {
	need := map[int]bool{}
	for _, c := range cands {
		for _, i := range byKey[c.m.key()] {
			need[i] = true
		}
	}
	byDest := map[string][]int{}
	for _, i := range sortedInts(need) {
		byDest[r.lost[i].dest] = append(byDest[r.lost[i].dest], i)
	}
	out := map[int]digest{}
	for _, dest := range sortedKeys(byDest) {
		var set imap.UIDSet
		for _, i := range byDest[dest] {
			set.AddNum(r.lost[i].dst)
		}
		if _, err := r.selectDest(dest); err != nil {
			return nil, err
		}
		dh, err := hashBodies(r.d, set, false)
		if err != nil {
			return nil, classify(err, fmt.Sprintf("read destination %q", dest))
		}
		for _, i := range byDest[dest] {
			if d, ok := dh[r.lost[i].dst]; ok {
				out[i] = d
			}
		}
	}
	return out, nil
}

// applyMoves moves the destination copies of ps from one destination
// folder to another, and makes the maps follow: the lost source UID is
// forgotten, the new one maps to the moved copy (COPYUID; without it the
// copy finds it by content). Flags the owner changed go with it.
func (r *replayer) applyMoves(from, to string, ps []movePair) error {
	newUID := map[imap.UID]imap.UID{} // old destination UID -> new
	var destUV uint32
	if from == to {
		// Out and back into the same folder, or a renumbered folder: the
		// destination already holds it where it belongs; only the map
		// changes.
		for _, p := range ps {
			newUID[r.lost[p.i].dst] = r.lost[p.i].dst
		}
		destUV = r.cps[r.lost[ps[0].i].key].DestUIDValidity
	} else {
		if _, err := r.selectDest(from); err != nil {
			return err
		}
		var set imap.UIDSet
		for _, p := range ps {
			set.AddNum(r.lost[p.i].dst)
		}
		md, err := r.d.Move(set, to).Wait()
		if err != nil {
			if !isNo(err) {
				return classify(err, fmt.Sprintf("move from %q to %q", from, to))
			}
			// Left lost: removed, and the copy brings the new one.
			r.res.Items = append(r.res.Items, Skip{Folder: ps[0].c.key, Category: CatNotReplayed,
				Reason: fmt.Sprintf("the destination refused to move %d message(s) from %q to %q (%s): copied again instead", len(ps), from, to, errText(err))})
			return nil
		}
		if md != nil {
			su, ok1 := md.SourceUIDs.(imap.UIDSet)
			du, ok2 := md.DestUIDs.(imap.UIDSet)
			if ok1 && ok2 {
				a, _ := su.Nums()
				b, _ := du.Nums()
				if len(a) == len(b) {
					for j := range a {
						newUID[a[j]] = b[j]
					}
				}
			}
			destUV = md.UIDValidity
		}
		r.res.Moved += len(ps)
	}
	type restoreFlags struct {
		uid   imap.UID
		flags []imap.Flag
	}
	var restore []restoreFlags
	for _, p := range ps {
		v := &r.lost[p.i]
		v.done = true
		if !v.stale {
			cp := r.cps[v.key]
			cp.Map = removeFromMap(cp.Map, uint32(v.src))
			r.cps[v.key] = cp
		}
		nu, ok := newUID[v.dst]
		if !ok || destUV == 0 {
			continue // no COPYUID: the copy finds it by content
		}
		tc, had := r.cps[p.c.key]
		if !had {
			tc = Checkpoint{UIDValidity: r.srcUV[p.c.key], DestUIDValidity: destUV, Dest: to}
		}
		if tc.DestUIDValidity == 0 {
			tc.DestUIDValidity = destUV
		}
		if tc.DestUIDValidity != destUV || tc.UIDValidity != r.srcUV[p.c.key] {
			continue
		}
		tc.Map = insertMap(tc.Map, uint32(p.c.uid), uint32(nu))
		r.cps[p.c.key] = tc
		if !sameFlags(p.c.m.Flags, p.was) {
			restore = append(restore, restoreFlags{nu, p.c.m.Flags})
		}
	}
	if len(restore) == 0 {
		return nil
	}
	if _, err := r.selectDest(to); err != nil {
		return err
	}
	for _, p := range restore {
		fl, _ := appendable(p.flags)
		err := r.d.Store(imap.UIDSetNum(p.uid), &imap.StoreFlags{Op: imap.StoreFlagsSet, Silent: true, Flags: withoutRecent(fl)}, nil).Close()
		switch {
		case err == nil:
			r.res.Flags++
		case !isNo(err):
			return classify(err, fmt.Sprintf("store flags in %q", to))
		default:
			r.res.Items = append(r.res.Items, Skip{Folder: to, Category: CatNotReplayed,
				Reason: fmt.Sprintf("the destination refused the flags of a moved message: %s", errText(err))})
		}
	}
	return nil
}

// targetOf is where the messages of a source folder go: its mapping for
// a selected folder, else its checkpoint.
func (r *replayer) targetOf(key string) string {
	if m, ok := r.maps[key]; ok {
		return m.Dest
	}
	return r.destOf(key)
}

// sortedInts is the keys of m in order.
func sortedInts[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
