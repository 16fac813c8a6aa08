package mailcopy

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Exclude names one source message the copy must leave where it is: a
// message mailshift itself put on the source (the owner's advance notice)
// belongs to the old mailbox only. It is recognised by its place (folder,
// UIDVALIDITY, UID: what APPENDUID answered) and, wherever the copy reads
// headers anyway, by its Message-ID marker, so a renumbered folder still
// keeps it out.
type Exclude struct {
	Folder      string `json:"folder"`
	UIDValidity uint32 `json:"uidValidity,omitempty"`
	UID         uint32 `json:"uid,omitempty"`
	MessageID   string `json:"messageId,omitempty"`
}

// excludedUID reports whether uid of folder (at uidValidity) is excluded.
// It is the one hook the copy, every delta pass and verify consult.
func (o *Options) excludedUID(folder string, uidValidity uint32, uid imap.UID) bool {
	for _, e := range o.Exclude {
		if e.Folder == folder && e.UID != 0 && e.UID == uint32(uid) && e.UIDValidity == uidValidity {
			return true
		}
	}
	return false
}

// excludedID reports whether a message with this Message-ID is excluded,
// in any folder: the marker is mailshift's own, and an owner who filed the
// notice elsewhere has not made it mail to move.
func (o *Options) excludedID(_, messageID string) bool {
	if messageID == "" {
		return false
	}
	for _, e := range o.Exclude {
		if e.MessageID != "" && strings.EqualFold(strings.Trim(e.MessageID, "<>"), strings.Trim(messageID, "<>")) {
			return true
		}
	}
	return false
}

// withoutExcluded drops the excluded UIDs of folder from uids.
func (o *Options) withoutExcluded(folder string, uidValidity uint32, uids []imap.UID) []imap.UID {
	if len(o.Exclude) == 0 {
		return uids
	}
	out := uids[:0:0]
	for _, u := range uids {
		if !o.excludedUID(folder, uidValidity, u) {
			out = append(out, u)
		}
	}
	return out
}

// Placed is where a marked message is in a folder.
type Placed struct {
	Folder      string `json:"folder"`
	UIDValidity uint32 `json:"uidValidity"`
	UID         uint32 `json:"uid"`
	// Added is false when the message was already there (an earlier
	// attempt appended it).
	Added bool `json:"added"`
}

// AppendMarked appends msg to folder unless a message with the Message-ID
// messageID is already there, and says where the message is (APPENDUID, or
// a search by the marker on a server without UIDPLUS). Idempotent: a retry
// after a lost answer finds the first copy by its marker.
func AppendMarked(ctx context.Context, ep Endpoint, folder, messageID string, msg []byte) (Placed, error) {
	p := Placed{Folder: folder}
	if messageID == "" || len(msg) == 0 {
		return p, fmt.Errorf("append to %q: a marked message needs a Message-ID and a body", folder)
	}
	c, err := dial(ctx, ep)
	if err != nil {
		return p, err
	}
	defer c.close()
	find := func() (bool, error) {
		sel, err := c.Select(folder, nil).Wait()
		if err != nil {
			return false, classify(err, fmt.Sprintf("select %q", folder))
		}
		p.UIDValidity = sel.UIDValidity
		found, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: messageID}}}, nil).Wait()
		if err != nil {
			return false, classify(err, fmt.Sprintf("search %q for the marker", folder))
		}
		uids := found.AllUIDs()
		if len(uids) == 0 {
			return false, nil
		}
		p.UID = uint32(uids[0])
		return true, nil
	}
	if ok, err := find(); err != nil || ok {
		return p, err
	}
	cmd := c.Append(folder, int64(len(msg)), &imap.AppendOptions{Time: time.Now()})
	if _, err := bytes.NewReader(msg).WriteTo(cmd); err != nil {
		return p, err
	}
	if err := cmd.Close(); err != nil {
		return p, err
	}
	ad, err := cmd.Wait()
	if err != nil {
		return p, classify(err, fmt.Sprintf("append to %q", folder))
	}
	p.Added = true
	if ad != nil && ad.UID != 0 && ad.UIDValidity != 0 {
		p.UID, p.UIDValidity = uint32(ad.UID), ad.UIDValidity
		return p, nil
	}
	// No UIDPLUS: the marker says where it went.
	if ok, err := find(); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("append to %q: the message is not found by its marker after the APPEND", folder)
		}
		return p, err
	}
	return p, nil
}

// AppendMarked is AppendMarked.
func (Engine) AppendMarked(ctx context.Context, ep Endpoint, folder, messageID string, msg []byte) (Placed, error) {
	return AppendMarked(ctx, ep, folder, messageID, msg)
}
