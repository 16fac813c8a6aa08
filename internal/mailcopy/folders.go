package mailcopy

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Folder is a mailbox as listed by a server. Name is UTF-8 (go-imap decodes
// modified UTF-7).
type Folder struct {
	Name       string
	Delim      rune
	Attrs      []imap.MailboxAttr
	Subscribed bool
}

// NoSelect reports whether the folder holds no messages (a pure parent).
func (f Folder) NoSelect() bool {
	for _, a := range f.Attrs {
		if a == imap.MailboxAttrNoSelect || a == imap.MailboxAttrNonExistent {
			return true
		}
	}
	return false
}

// Mapping says where the messages of one source folder go.
type Mapping struct {
	Source string
	Dest   string
	// Path is the folder's logical path: its name without namespace prefix,
	// segments joined by "/". Include, exclude and rename patterns match it.
	Path       string
	Role       string
	NoSelect   bool
	Subscribed bool
	// Note explains a name change the mapping had to make.
	Note string
	// Renamed is set when the folder had to take another name than its
	// own (reported).
	Renamed bool
}

// MapOptions are an operator's choices about folders.
type MapOptions struct {
	// Include, when not empty, keeps only folders whose logical path matches
	// one of these globs (path.Match syntax; INBOX is always kept).
	Include []string
	// Exclude drops folders whose logical path matches one of these globs.
	Exclude []string
	// Rename maps a logical source path to a logical destination path.
	Rename map[string]string
}

// Validate checks the patterns.
func (o MapOptions) Validate() error {
	for _, p := range append(append([]string{}, o.Include...), o.Exclude...) {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("folder pattern %q: %w", p, err)
		}
	}
	for from, to := range o.Rename {
		if strings.TrimSpace(from) == "" || strings.TrimSpace(to) == "" {
			return fmt.Errorf("folder rename %q -> %q: both sides must be non-empty", from, to)
		}
	}
	return nil
}

// Special-use roles.
const (
	RoleSent    = "sent"
	RoleDrafts  = "drafts"
	RoleTrash   = "trash"
	RoleJunk    = "junk"
	RoleArchive = "archive"
)

var roleByAttr = map[imap.MailboxAttr]string{
	imap.MailboxAttrSent:    RoleSent,
	imap.MailboxAttrDrafts:  RoleDrafts,
	imap.MailboxAttrTrash:   RoleTrash,
	imap.MailboxAttrJunk:    RoleJunk,
	imap.MailboxAttrArchive: RoleArchive,
}

// wellKnown lists the names mail clients and control panels give special
// folders in English, French, German, Spanish and Italian, lower-cased.
var wellKnown = map[string]string{
	"sent": RoleSent, "sent items": RoleSent, "sent messages": RoleSent, "sent mail": RoleSent,
	"éléments envoyés": RoleSent, "messages envoyés": RoleSent, "envoyés": RoleSent,
	"gesendet": RoleSent, "gesendete objekte": RoleSent, "gesendete elemente": RoleSent,
	"enviados": RoleSent, "elementos enviados": RoleSent, "posta inviata": RoleSent, "inviati": RoleSent, "inviata": RoleSent,

	"drafts": RoleDrafts, "draft": RoleDrafts, "brouillons": RoleDrafts, "entwürfe": RoleDrafts,
	"borradores": RoleDrafts, "bozze": RoleDrafts,

	"trash": RoleTrash, "deleted items": RoleTrash, "deleted messages": RoleTrash, "bin": RoleTrash,
	"corbeille": RoleTrash, "éléments supprimés": RoleTrash, "papierkorb": RoleTrash,
	"gelöschte elemente": RoleTrash, "gelöschte objekte": RoleTrash, "papelera": RoleTrash,
	"elementos eliminados": RoleTrash, "cestino": RoleTrash, "posta eliminata": RoleTrash,

	"junk": RoleJunk, "spam": RoleJunk, "junk e-mail": RoleJunk, "junk email": RoleJunk,
	"courrier indésirable": RoleJunk, "indésirables": RoleJunk, "pourriel": RoleJunk,
	"junk-e-mail": RoleJunk, "correo no deseado": RoleJunk, "posta indesiderata": RoleJunk,

	"archive": RoleArchive, "archives": RoleArchive, "archiv": RoleArchive, "archivo": RoleArchive, "archivio": RoleArchive,
}

// roleOf returns a top-level folder's special-use role: by attribute first,
// then by well-known name.
func roleOf(f Folder, logical string) string {
	for _, a := range f.Attrs {
		if r, ok := roleByAttr[a]; ok {
			return r
		}
	}
	if strings.Contains(logical, "/") {
		return ""
	}
	return wellKnown[strings.ToLower(logical)]
}

// Namespace is a server's personal namespace: the prefix every folder but
// INBOX carries, and its hierarchy separator.
type Namespace struct {
	Prefix string
	Delim  rune
}

// logicalPath strips the namespace prefix and turns the server's separator
// into "/". A "/" inside a segment (possible when the server's separator is
// not "/") is kept as U+2215 so the path stays unambiguous.
func logicalPath(name string, ns Namespace, delim rune) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if ns.Prefix != "" && strings.HasPrefix(name, ns.Prefix) {
		name = name[len(ns.Prefix):]
	}
	if delim == 0 {
		return strings.ReplaceAll(name, "/", "∕")
	}
	segs := strings.Split(name, string(delim))
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(s, "/", "∕")
	}
	return strings.Join(segs, "/")
}

// serverName turns a logical path into a name on a server with namespace ns.
// A segment that contains the server's separator gets it replaced by "_",
// and the change is reported.
func serverName(logical string, ns Namespace) (string, string) {
	if logical == "INBOX" {
		return "INBOX", ""
	}
	segs := strings.Split(logical, "/")
	note := ""
	for i, s := range segs {
		s = strings.ReplaceAll(s, "∕", "/")
		if ns.Delim != 0 && strings.ContainsRune(s, ns.Delim) {
			s = strings.ReplaceAll(s, string(ns.Delim), "_")
			note = fmt.Sprintf("separator %q inside a folder name replaced by \"_\"", ns.Delim)
		}
		segs[i] = s
	}
	sep := "/"
	if ns.Delim != 0 {
		sep = string(ns.Delim)
	}
	return ns.Prefix + strings.Join(segs, sep), note
}

// MapFolders decides the destination of every source folder.
func MapFolders(src []Folder, srcNS Namespace, dst []Folder, dstNS Namespace, opts MapOptions) ([]Mapping, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	// Destination folders that already play a role.
	dstRole := map[string]string{}
	for _, f := range dst {
		lp := logicalPath(f.Name, dstNS, f.Delim)
		if r := roleOf(f, lp); r != "" {
			if _, seen := dstRole[r]; !seen || hasRoleAttr(f) {
				dstRole[r] = f.Name
			}
		}
	}
	var out []Mapping
	taken := map[string]string{}
	roleUsed := map[string]bool{}
	for _, f := range src {
		lp := logicalPath(f.Name, srcNS, f.Delim)
		if !selected(lp, opts) {
			continue
		}
		m := Mapping{Source: f.Name, Path: lp, NoSelect: f.NoSelect(), Subscribed: f.Subscribed}
		if to, ok := opts.Rename[lp]; ok {
			m.Dest, m.Note = serverName(to, dstNS)
		} else if r := roleOf(f, lp); r != "" && !roleUsed[r] {
			// The first source folder of a role takes the destination's
			// folder of that role; a second one keeps its own name.
			roleUsed[r] = true
			m.Role = r
			if d, ok := dstRole[r]; ok {
				m.Dest = d
			} else {
				m.Dest, m.Note = serverName(lp, dstNS)
			}
		} else {
			m.Dest, m.Note = serverName(lp, dstNS)
		}
		if prev, dup := taken[m.Dest]; dup {
			// Two source folders for one name (a special-use collision, or
			// names equal once translated): the second keeps its own, made
			// unique, and the report says so. Never an abort.
			base := m.Dest
			for i := 2; ; i++ {
				cand := fmt.Sprintf("%s (%d)", base, i)
				if _, t := taken[cand]; !t {
					m.Dest = cand
					break
				}
			}
			m.Note = fmt.Sprintf("%q already goes to %q: kept as %q", prev, base, m.Dest)
			m.Renamed = true
		}
		taken[m.Dest] = f.Name
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Dest < out[j].Dest })
	return out, nil
}

func hasRoleAttr(f Folder) bool {
	for _, a := range f.Attrs {
		if _, ok := roleByAttr[a]; ok {
			return true
		}
	}
	return false
}

func selected(logical string, opts MapOptions) bool {
	if logical == "INBOX" {
		return true
	}
	if len(opts.Include) > 0 {
		ok := false
		for _, p := range opts.Include {
			if m, _ := path.Match(p, logical); m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, p := range opts.Exclude {
		if m, _ := path.Match(p, logical); m {
			return false
		}
	}
	return true
}
