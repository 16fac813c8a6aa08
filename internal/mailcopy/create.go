package mailcopy

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"

	"github.com/emersion/go-imap/v2"
)

// createFolders is createFoldersListed after listing the destination.
//
//lint:ignore U1000 the copy uses createFoldersListed; other passes create with this
func createFolders(d *conn, ms []Mapping) ([]Mapping, map[string]Skip, error) {
	existing, ns, err := listFolders(d)
	if err != nil {
		return nil, nil, err
	}
	return createFoldersListed(d, ms, destListing{folders: existing, ns: ns})
}

// createFoldersListed creates the missing destination folders, parents
// first, from a listing of the destination already read, and subscribes
// what the source had subscribed. A folder the destination refuses to
// create under its name is created under a safe name (control characters
// replaced, a leading "~" escaped) and reported; one that cannot be created
// at all is reported, and the others go on. A \Noselect source folder is
// never created as a folder of its own when its children bring it into
// being.
func createFoldersListed(d *conn, ms []Mapping, l destListing) ([]Mapping, map[string]Skip, error) {
	existing, ns := l.folders, l.ns
	have := map[string]bool{"INBOX": true}
	subscribed := map[string]bool{}
	for _, f := range existing {
		have[f.Name] = true
		subscribed[f.Name] = f.Subscribed
	}
	items := map[string]Skip{}
	renamed := map[string]string{} // refused name -> safe name
	out := make([]Mapping, 0, len(ms))
	for _, m := range ms {
		if r, ok := renamed[m.Dest]; ok {
			m.Dest = r
		}
		if m.Renamed {
			items[m.Source] = Skip{Folder: m.Source, Category: CatFolderRenamed, Reason: m.Note}
		}
		if m.NoSelect && hasChild(ms, m, ns.Delim) {
			// The children create it as a \Noselect parent.
			out = append(out, m)
			continue
		}
		if !have[m.Dest] {
			name := m.Dest
			if m.NoSelect && ns.Delim != 0 {
				// A trailing separator declares a parent-only name
				// (RFC 3501 6.3.3).
				name += string(ns.Delim)
			}
			err := d.Create(name, nil).Wait()
			switch {
			case err == nil || isAlreadyExists(err):
			case isNo(err):
				safe := safeFolderName(m.Dest, ns)
				if safe != m.Dest && (have[safe] || createOK(d, safe)) {
					items[m.Source] = Skip{Folder: m.Source, Category: CatFolderRenamed,
						Reason: fmt.Sprintf("the destination refused the name %q (%s): created as %q", m.Dest, errText(err), safe)}
					renamed[m.Dest] = safe
					m.Dest = safe
				} else {
					items[m.Source] = Skip{Folder: m.Source, Category: CatFolderUncreated,
						Reason: fmt.Sprintf("the destination refused to create %q: %s", m.Dest, errText(err))}
					out = append(out, m)
					continue
				}
			default:
				return nil, nil, classify(err, fmt.Sprintf("create %q", m.Dest))
			}
			have[m.Dest] = true
		}
		if m.Subscribed && !subscribed[m.Dest] {
			if err := d.Subscribe(m.Dest).Wait(); err != nil && !isNo(err) {
				return nil, nil, classify(err, fmt.Sprintf("subscribe %q", m.Dest))
			}
		}
		out = append(out, m)
	}
	// Children follow a renamed parent.
	for i := range out {
		for from, to := range renamed {
			if ns.Delim != 0 && strings.HasPrefix(out[i].Dest, from+string(ns.Delim)) {
				out[i].Dest = to + out[i].Dest[len(from):]
			}
		}
	}
	return out, items, nil
}

func createOK(d *conn, name string) bool {
	err := d.Create(name, nil).Wait()
	return err == nil || isAlreadyExists(err)
}

func hasChild(ms []Mapping, parent Mapping, delim rune) bool {
	if delim == 0 {
		return false
	}
	for _, m := range ms {
		if !m.NoSelect && strings.HasPrefix(m.Dest, parent.Dest+string(delim)) {
			return true
		}
	}
	return false
}

// safeFolderName replaces what servers refuse in a folder name: control
// characters become "_", a segment beginning with "~" gets a "_" before it,
// an empty segment becomes "_".
func safeFolderName(name string, ns Namespace) string {
	rest := strings.TrimPrefix(name, ns.Prefix)
	sep := "/"
	if ns.Delim != 0 {
		sep = string(ns.Delim)
	}
	segs := strings.Split(rest, sep)
	for i, s := range segs {
		s = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || r == unicode.ReplacementChar {
				return '_'
			}
			return r
		}, s)
		if strings.HasPrefix(s, "~") || s == "" {
			s = "_" + s
		}
		segs[i] = s
	}
	return name[:len(name)-len(rest)] + strings.Join(segs, sep)
}

// resolveDest finds where a mapping's messages are on the destination:
// its name, or the safe name createFolders gave it.
func resolveDest(m Mapping, have map[string]bool, ns Namespace) string {
	if have[m.Dest] {
		return m.Dest
	}
	if safe := safeFolderName(m.Dest, ns); have[safe] {
		return safe
	}
	return m.Dest
}

func isNo(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && (ie.Type == imap.StatusResponseTypeNo || ie.Type == imap.StatusResponseTypeBad)
}

func isAlreadyExists(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists
}

// errText is the server's words of an IMAP refusal, or the error.
func errText(err error) string {
	var ie *imap.Error
	if errors.As(err, &ie) {
		if ie.Code != "" {
			return fmt.Sprintf("[%s] %s", ie.Code, ie.Text)
		}
		return ie.Text
	}
	return err.Error()
}

// problemsNames name the folder for messages preserved wrapped, in the
// owner's language.
var problemsNames = map[string]string{
	"en": "Migration problems",
	"fr": "Problèmes de migration",
	"de": "Migrationsprobleme",
	"es": "Problemas de migración",
	"it": "Problemi di migrazione",
}

// problemsFolder is created on first use.
type problemsFolder struct {
	name    string
	mu      sync.Mutex
	created bool
}

// problemsFolderIn names the folder of preserved messages in the owner's
// language, as the destination's namespace spells it.
func problemsFolderIn(locale string, l destListing) *problemsFolder {
	lang := strings.ToLower(locale)
	if i := strings.IndexAny(lang, "-_"); i > 0 {
		lang = lang[:i]
	}
	name, ok := problemsNames[lang]
	if !ok {
		name = problemsNames["en"]
	}
	name, _ = serverName(name, l.ns)
	return &problemsFolder{name: name}
}

// ensure creates the folder once.
func (p *problemsFolder) ensure(d *conn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.created {
		return nil
	}
	if err := d.Create(p.name, nil).Wait(); err != nil && !isAlreadyExists(err) {
		return err
	}
	_ = d.Subscribe(p.name).Wait()
	p.created = true
	return nil
}
