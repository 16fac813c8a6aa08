package mailcopy

import (
	"context"
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
)

// FolderTotals measure one source folder.
type FolderTotals struct {
	// Name is the folder's name on the source; Path its logical path
	// (what include and exclude patterns match).
	Name     string `json:"name"`
	Path     string `json:"path,omitempty"`
	Messages int    `json:"messages"`
	Bytes    int64  `json:"bytes"`
	// Largest is the size of the folder's largest message; OverLimit
	// counts its messages over the limit the measure was given.
	Largest   int64 `json:"largest,omitempty"`
	OverLimit int   `json:"overLimit,omitempty"`
	// Excluded names the rule that leaves the folder out of the copy
	// (`exclude "Junk*"`, `not in include "Work/*"`); its messages are
	// still counted.
	Excluded string `json:"excluded,omitempty"`
	// Unreadable is the server's answer when the folder is listed but
	// cannot be opened.
	Unreadable string `json:"unreadable,omitempty"`
}

// MailboxTotals measure a mailbox folder by folder.
type MailboxTotals struct {
	Totals
	// Largest is the largest message of the folders the copy would take,
	// and LargestFolder where it is.
	Largest       int64  `json:"largest"`
	LargestFolder string `json:"largestFolder,omitempty"`
	// OverLimit counts the messages of those folders over the limit.
	OverLimit int            `json:"overLimit,omitempty"`
	Folders   []FolderTotals `json:"folderTotals"`
}

// ExcludedBy names the rule of opts that leaves out the folder at logical
// path p, or "" when the copy takes it (INBOX always is).
func ExcludedBy(p string, opts MapOptions) string {
	if p == "INBOX" {
		return ""
	}
	if len(opts.Include) > 0 {
		in := false
		for _, g := range opts.Include {
			if m, _ := path.Match(g, p); m {
				in = true
				break
			}
		}
		if !in {
			return fmt.Sprintf("not in include %q", strings.Join(opts.Include, ", "))
		}
	}
	for _, g := range opts.Exclude {
		if m, _ := path.Match(g, p); m {
			return fmt.Sprintf("exclude %q", g)
		}
	}
	return ""
}

// MeasureFolders counts each folder's messages and bytes, its largest
// message and the messages over limit (0: none), and says which folders
// opts leaves out and why. Totals cover the folders the copy takes. A
// folder that cannot be opened is measured as empty and says why; it never
// fails the measure.
func MeasureFolders(ctx context.Context, ep Endpoint, opts MapOptions, limit int64) (*MailboxTotals, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c, err := dial(ctx, ep)
	if err != nil {
		return nil, err
	}
	defer c.close()
	folders, ns, err := listFolders(c)
	if err != nil {
		return nil, err
	}
	t := &MailboxTotals{}
	for _, f := range folders {
		if f.NoSelect() {
			continue
		}
		ft := FolderTotals{Name: f.Name, Path: logicalPath(f.Name, ns, f.Delim)}
		ft.Excluded = ExcludedBy(ft.Path, opts)
		sel, err := c.Select(f.Name, &imap.SelectOptions{ReadOnly: true}).Wait()
		switch {
		case err != nil && isNo(err):
			ft.Unreadable = errText(err)
		case err != nil:
			return nil, classify(err, fmt.Sprintf("select %q", f.Name))
		case sel.NumMessages > 0:
			msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{RFC822Size: true}).Collect()
			if err != nil {
				return nil, classify(err, fmt.Sprintf("sizes in %q", f.Name))
			}
			for _, m := range msgs {
				ft.Messages++
				ft.Bytes += m.RFC822Size
				ft.Largest = max(ft.Largest, m.RFC822Size)
				if limit > 0 && m.RFC822Size > limit {
					ft.OverLimit++
				}
			}
		}
		t.Folders = append(t.Folders, ft)
		if ft.Excluded != "" {
			continue
		}
		t.Totals.Folders++
		t.Messages += ft.Messages
		t.Bytes += ft.Bytes
		t.OverLimit += ft.OverLimit
		if ft.Largest > t.Largest {
			t.Largest, t.LargestFolder = ft.Largest, ft.Name
		}
	}
	return t, nil
}

// ItemHeader is the subject and sender of a reported message, for the
// report only: message content, never put in a workflow's history.
type ItemHeader struct {
	Folder  string `json:"folder"`
	UID     uint32 `json:"uid"`
	Subject string `json:"subject"`
	From    string `json:"from"`
}

// Bounds of a header kept for the report, in runes.
const (
	maxSubjectRunes = 200
	maxFromRunes    = 200
)

// ItemHeaders reads, read-only, the subject and sender (ENVELOPE, RFC 2047
// decoded) of the reported messages of items (folder items, UID 0, have
// none). A folder or message that is gone yields no header; it is not an
// error.
func ItemHeaders(ctx context.Context, ep Endpoint, items []Skip) ([]ItemHeader, error) {
	byFolder := map[string][]imap.UID{}
	var order []string
	for _, it := range items {
		if it.UID == 0 {
			continue
		}
		if _, ok := byFolder[it.Folder]; !ok {
			order = append(order, it.Folder)
		}
		byFolder[it.Folder] = append(byFolder[it.Folder], imap.UID(it.UID))
	}
	if len(order) == 0 {
		return nil, nil
	}
	c, err := dial(ctx, ep)
	if err != nil {
		return nil, err
	}
	defer c.close()
	var out []ItemHeader
	for _, folder := range order {
		if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			if isNo(err) {
				continue
			}
			return nil, classify(err, fmt.Sprintf("select %q", folder))
		}
		msgs, err := c.Fetch(imap.UIDSetNum(byFolder[folder]...), &imap.FetchOptions{UID: true, Envelope: true}).Collect()
		if err != nil {
			return nil, classify(err, fmt.Sprintf("envelopes in %q", folder))
		}
		for _, m := range msgs {
			h := ItemHeader{Folder: folder, UID: uint32(m.UID)}
			if e := m.Envelope; e != nil {
				h.Subject = CleanHeader(e.Subject, maxSubjectRunes)
				if len(e.From) > 0 {
					h.From = CleanHeader(formatAddress(e.From[0]), maxFromRunes)
				}
			}
			out = append(out, h)
		}
	}
	return out, nil
}

func formatAddress(a imap.Address) string {
	addr := a.Addr()
	switch {
	case a.Name != "" && addr != "":
		return a.Name + " <" + addr + ">"
	case addr != "":
		return addr
	}
	return a.Name
}

// CleanHeader makes a decoded header safe to show: invalid UTF-8 and
// control characters (line breaks, escapes, bidi overrides) become spaces,
// runs of spaces one, and it is cut to at most n runes (an ellipsis marks
// the cut).
func CleanHeader(s string, n int) string {
	var b strings.Builder
	runes, space := 0, true
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || unicode.IsSpace(r) {
			if space {
				continue
			}
			r, space = ' ', true
		} else {
			space = false
		}
		if runes == n {
			return strings.TrimRight(b.String(), " ") + "…"
		}
		b.WriteRune(r)
		runes++
	}
	out := strings.TrimRight(b.String(), " ")
	if !utf8.ValidString(out) {
		return ""
	}
	return out
}

// MeasureFolders runs MeasureFolders.
func (Engine) MeasureFolders(ctx context.Context, ep Endpoint, opts MapOptions, limit int64) (*MailboxTotals, error) {
	return MeasureFolders(ctx, ep, opts, limit)
}

// ItemHeaders runs ItemHeaders.
func (Engine) ItemHeaders(ctx context.Context, ep Endpoint, items []Skip) ([]ItemHeader, error) {
	return ItemHeaders(ctx, ep, items)
}
