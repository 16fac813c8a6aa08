package mailcopy

import (
	"sort"
	"time"
)

// Skip is a reported item: a message (or, with UID 0, a folder) that is not
// on the destination exactly as on the source, and why. It never carries
// message content.
type Skip struct {
	Folder    string    `json:"folder"`
	UID       uint32    `json:"uid"`
	Size      int64     `json:"size"`
	Date      time.Time `json:"date,omitzero"`
	MessageID string    `json:"messageId,omitempty"`
	// Category is the reason's class (Cat* constants), for counts.
	Category string `json:"category,omitempty"`
	Reason   string `json:"reason"`
}

// Reason categories of reported items.
const (
	// Not on the destination (an operator approves or fixes these).
	CatTooBig           = "too-big"           // over the destination's size limit
	CatRefused          = "refused"           // refused twice by the destination
	CatFolderUnreadable = "folder-unreadable" // a source folder that cannot be opened
	CatFolderUncreated  = "folder-uncreated"  // a destination folder that cannot be created
	// On the destination, reported.
	CatEmpty          = "empty"                  // a zero-byte source message: nothing to copy
	CatPreserved      = "preserved"              // refused for its form, kept as an attachment
	CatKeywordDropped = "keyword-dropped"        // copied without keywords the destination refused
	CatAltered        = "altered-by-destination" // stored differently by the destination
	CatFolderRenamed  = "folder-renamed"         // created under a safe or unique name
)

// NotCopied reports whether the item's message is missing on the
// destination (as opposed to on it, altered or preserved, or empty).
func (s Skip) NotCopied() bool {
	switch s.Category {
	case CatTooBig, CatRefused, CatFolderUnreadable, CatFolderUncreated, "":
		return true
	}
	return false
}

// CountByCategory counts items by category.
func CountByCategory(items ...[]Skip) map[string]int {
	out := map[string]int{}
	for _, l := range items {
		for _, s := range l {
			out[s.Category]++
		}
	}
	return out
}

// SortItems orders items by folder and UID, for stable reports.
func SortItems(items []Skip) {
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].Folder != items[j].Folder {
			return items[i].Folder < items[j].Folder
		}
		return items[i].UID < items[j].UID
	})
}
