package mailcopy

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Engine is the copy engine behind an interface-friendly value.
type Engine struct{}

// Copy runs Copy.
func (Engine) Copy(ctx context.Context, src, dst Endpoint, opts Options) (*Result, error) {
	return Copy(ctx, src, dst, opts)
}

// Verify runs Verify.
func (Engine) Verify(ctx context.Context, src, dst Endpoint, opts Options) (*VerifyResult, error) {
	return Verify(ctx, src, dst, opts)
}

// VerifySource runs VerifySource.
func (Engine) VerifySource(ctx context.Context, src, dst Endpoint, opts Options) (*SourceSnapshot, error) {
	return VerifySource(ctx, src, dst, opts)
}

// VerifyAgainst runs VerifyAgainst.
func (Engine) VerifyAgainst(ctx context.Context, dst Endpoint, snap *SourceSnapshot) (*VerifyResult, error) {
	return VerifyAgainst(ctx, dst, snap)
}

// Measure runs Measure.
func (Engine) Measure(ctx context.Context, ep Endpoint) (*Totals, error) { return Measure(ctx, ep) }

// Clear runs Clear.
func (Engine) Clear(ctx context.Context, ep Endpoint) error { return Clear(ctx, ep) }

// AppendOnce runs AppendOnce.
func (Engine) AppendOnce(ctx context.Context, ep Endpoint, folder, messageID string, msg []byte) (bool, error) {
	return AppendOnce(ctx, ep, folder, messageID, msg)
}

// Totals measure a mailbox.
type Totals struct {
	Folders  int   `json:"folders"`
	Messages int   `json:"messages"`
	Bytes    int64 `json:"bytes"`
}

// Measure counts the folders, messages and bytes of a mailbox.
func Measure(ctx context.Context, ep Endpoint) (*Totals, error) {
	c, err := dial(ctx, ep)
	if err != nil {
		return nil, err
	}
	defer c.close()
	folders, _, err := listFolders(c)
	if err != nil {
		return nil, err
	}
	if c.Caps().Has(imap.CapStatusSize) {
		if t, ok := measureByStatus(c, folders); ok {
			return t, nil
		}
	}
	t := &Totals{}
	for _, f := range folders {
		if f.NoSelect() {
			continue
		}
		t.Folders++
		sel, err := c.Select(f.Name, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return nil, classify(err, fmt.Sprintf("select %q", f.Name))
		}
		if sel.NumMessages == 0 {
			continue
		}
		msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{RFC822Size: true}).Collect()
		if err != nil {
			return nil, classify(err, fmt.Sprintf("sizes in %q", f.Name))
		}
		for _, m := range msgs {
			t.Messages++
			t.Bytes += m.RFC822Size
		}
	}
	return t, nil
}

// measureByStatus counts with STATUS (MESSAGES SIZE) for every folder,
// all sent before the first answer is read: one round trip instead of a
// SELECT and a FETCH of every size per folder. ok is false when a folder's
// answer lacks a count (the caller measures the slow way).
func measureByStatus(c *conn, folders []Folder) (*Totals, bool) {
	cmds := make([]*imapclient.StatusCommand, 0, len(folders))
	for _, f := range folders {
		if !f.NoSelect() {
			cmds = append(cmds, c.Status(f.Name, &imap.StatusOptions{NumMessages: true, Size: true}))
		}
	}
	t := &Totals{}
	ok := true
	for _, cmd := range cmds {
		st, err := cmd.Wait()
		if err != nil || st.NumMessages == nil || st.Size == nil {
			ok = false
			continue
		}
		t.Folders++
		t.Messages += int(*st.NumMessages)
		t.Bytes += *st.Size
	}
	return t, ok
}

// Clear empties a mailbox: every message is expunged and every folder but
// INBOX deleted. Rollback uses it on the destination before the slot is
// released, so a released slot carries nothing of the old owner.
func Clear(ctx context.Context, ep Endpoint) error {
	c, err := dial(ctx, ep)
	if err != nil {
		return err
	}
	defer c.close()
	folders, _, err := listFolders(c)
	if err != nil {
		return err
	}
	// Children before parents.
	for i := len(folders) - 1; i >= 0; i-- {
		f := folders[i]
		if !f.NoSelect() {
			sel, err := c.Select(f.Name, nil).Wait()
			if err != nil {
				return classify(err, fmt.Sprintf("select %q", f.Name))
			}
			if sel.NumMessages > 0 {
				all := imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}
				if err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
					return classify(err, fmt.Sprintf("flag %q", f.Name))
				}
				if err := c.Expunge().Close(); err != nil {
					return classify(err, fmt.Sprintf("expunge %q", f.Name))
				}
			}
			if err := c.Unselect().Wait(); err != nil {
				return classify(err, "unselect")
			}
		}
		if f.Name != "INBOX" {
			if err := c.Delete(f.Name).Wait(); err != nil {
				return classify(err, fmt.Sprintf("delete %q", f.Name))
			}
		}
	}
	return nil
}

// AppendOnce appends msg to folder unless a message with that Message-ID is
// already there; it reports whether it appended.
func AppendOnce(ctx context.Context, ep Endpoint, folder, messageID string, msg []byte) (bool, error) {
	c, err := dial(ctx, ep)
	if err != nil {
		return false, err
	}
	defer c.close()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		return false, classify(err, fmt.Sprintf("select %q", folder))
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: messageID}}}, nil).Wait()
	if err != nil {
		return false, classify(err, "search notice")
	}
	if len(found.AllUIDs()) > 0 {
		return false, nil
	}
	cmd := c.Append(folder, int64(len(msg)), &imap.AppendOptions{Time: time.Now()})
	if _, err := bytes.NewReader(msg).WriteTo(cmd); err != nil {
		return false, err
	}
	if err := cmd.Close(); err != nil {
		return false, err
	}
	if _, err := cmd.Wait(); err != nil {
		return false, classify(err, fmt.Sprintf("append to %q", folder))
	}
	return true, nil
}
