package mailcopy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Folder changes of a replay: folders the owner renamed or deleted.

// renames finds source folders the owner renamed: a checkpointed folder
// gone from the source and a new one with its UIDVALIDITY (a RENAME keeps
// it) holding its messages. The destination folder is renamed too, and the
// checkpoint follows, so nothing is copied twice.
func (r *replayer) renames() (bool, error) {
	var gone []string
	for _, k := range sortedKeys(r.cps) {
		if !r.srcListed[k] && r.cps[k].UIDValidity != 0 {
			gone = append(gone, k)
		}
	}
	var fresh []string
	for _, k := range sortedKeys(r.maps) {
		if _, ok := r.cps[k]; !ok {
			fresh = append(fresh, k)
		}
	}
	if len(gone) == 0 || len(fresh) == 0 {
		return false, nil
	}
	uv := map[string]uint32{}
	for _, k := range fresh {
		st, err := r.s.Status(k, &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			if isNo(err) {
				continue
			}
			return false, classify(err, fmt.Sprintf("status of %q", k))
		}
		uv[k] = st.UIDValidity
	}
	// Parents first: renaming a parent renames its children with it.
	sort.SliceStable(gone, func(i, j int) bool { return len(gone[i]) < len(gone[j]) })
	used := map[string]bool{}
	renamed := false
	for _, k := range gone {
		cp := r.cps[k]
		for _, n := range fresh {
			if used[n] || uv[n] != cp.UIDValidity {
				continue
			}
			ok, err := r.sameFolder(k, n)
			if err != nil {
				return false, err
			}
			if !ok {
				continue
			}
			from, to := r.destOf(k), r.maps[n].Dest
			_, haveFrom := r.dstHave[from]
			_, haveTo := r.dstHave[to]
			switch {
			case from == to:
			case haveFrom && !haveTo:
				if err := r.d.Rename(from, to, nil).Wait(); err != nil {
					if !isNo(err) {
						return false, classify(err, fmt.Sprintf("rename %q", from))
					}
					r.res.Items = append(r.res.Items, Skip{Folder: n, Category: CatNotReplayed,
						Reason: fmt.Sprintf("renamed from %q on the source; the destination refused to rename %q to %q (%s): its messages are copied again", k, from, to, errText(err))})
					continue
				}
				r.res.Folders++
				if err := r.listDest(); err != nil {
					return false, err
				}
			case !haveFrom && haveTo:
				// Renamed by an earlier attempt, or with its parent.
			default:
				continue
			}
			used[n] = true
			renamed = true
			cp.Dest = to
			r.cps[n] = cp
			delete(r.cps, k)
			break
		}
	}
	return renamed, nil
}

// sameFolder says whether the new source folder n holds what the gone
// folder k held: some of k's copied messages, same content, under the
// same UIDs. A folder whose map is empty has nothing to lose either way.
func (r *replayer) sameFolder(k, n string) (bool, error) {
	cp := r.cps[k]
	if len(cp.Map) == 0 {
		return true, nil
	}
	sel, err := r.s.Select(n, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		if isNo(err) {
			return false, nil
		}
		return false, classify(err, fmt.Sprintf("select source %q", n))
	}
	if sel.NumMessages == 0 {
		return false, nil
	}
	srch, err := r.s.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil {
		return false, classify(err, fmt.Sprintf("search %q", n))
	}
	var sample []imap.UID
	for _, u := range srch.AllUIDs() {
		if lookupMap(cp.Map, uint32(u)) != 0 {
			sample = append(sample, u)
			if len(sample) == 3 {
				break
			}
		}
	}
	if len(sample) == 0 {
		return false, nil
	}
	var ss, ds imap.UIDSet
	for _, u := range sample {
		ss.AddNum(u)
		ds.AddNum(imap.UID(lookupMap(cp.Map, uint32(u))))
	}
	sh, err := hashBodies(r.s, ss, false)
	if err != nil {
		return false, classify(err, fmt.Sprintf("read source %q", n))
	}
	// The destination folder under its old name, or already renamed.
	name := r.destOf(k)
	if _, ok := r.dstHave[name]; !ok {
		name = r.maps[n].Dest
	}
	uv, err := r.selectDest(name)
	if err != nil || uv == 0 || uv != cp.DestUIDValidity {
		return false, err
	}
	dh, err := hashBodies(r.d, ds, false)
	if err != nil {
		return false, classify(err, fmt.Sprintf("read destination %q", name))
	}
	for _, u := range sample {
		a, ok1 := sh[u]
		b, ok2 := dh[imap.UID(lookupMap(cp.Map, uint32(u)))]
		if !ok1 || !ok2 || a.norm != b.norm {
			return false, nil
		}
	}
	return true, nil
}

// deletions deletes the destination folders of folders the owner deleted
// on the source, when they are left empty and are nobody else's: a folder
// holding mail the migration did not put there, with subfolders, or one
// of the destination's special folders is kept and reported.
func (r *replayer) deletions() error {
	gone := append([]string(nil), r.gone...)
	// Children first.
	sort.SliceStable(gone, func(i, j int) bool { return len(gone[i]) > len(gone[j]) })
	for _, key := range gone {
		dest := r.destOf(key)
		delete(r.cps, key)
		f, ok := r.dstHave[dest]
		if !ok || dest == "" {
			continue
		}
		var why []string
		if strings.EqualFold(dest, "INBOX") || hasRoleAttr(f) {
			why = append(why, "it is one of the destination's own special folders")
		}
		if r.dstDelim != 0 {
			for name := range r.dstHave {
				if strings.HasPrefix(name, dest+string(r.dstDelim)) {
					why = append(why, "it has subfolders there")
					break
				}
			}
		}
		if !f.NoSelect() {
			st, err := r.d.Status(dest, &imap.StatusOptions{NumMessages: true}).Wait()
			if err != nil && !isNo(err) {
				return classify(err, fmt.Sprintf("status of destination %q", dest))
			}
			if err == nil && st.NumMessages != nil && *st.NumMessages > 0 {
				why = append(why, fmt.Sprintf("it holds %d message(s) this migration did not put there", *st.NumMessages))
			}
		}
		if len(why) > 0 {
			r.res.Items = append(r.res.Items, Skip{Folder: key, Category: CatFolderKept,
				Reason: fmt.Sprintf("deleted on the source; %q is kept on the destination: %s", dest, strings.Join(why, ", "))})
			continue
		}
		if r.selected == dest {
			if err := r.d.Unselect().Wait(); err != nil && !isNo(err) {
				return classify(err, "unselect")
			}
			r.selected = ""
		}
		if err := r.d.Delete(dest).Wait(); err != nil {
			if !isNo(err) {
				return classify(err, fmt.Sprintf("delete destination %q", dest))
			}
			r.res.Items = append(r.res.Items, Skip{Folder: key, Category: CatFolderKept,
				Reason: fmt.Sprintf("deleted on the source; the destination refused to delete %q: %s", dest, errText(err))})
			continue
		}
		delete(r.dstHave, dest)
		r.res.Folders++
	}
	return nil
}
