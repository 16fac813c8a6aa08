package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/workflows"
)

// itemKey keys a reported message by folder and UID.
func itemKey(folder string, uid uint32) string {
	return fmt.Sprintf("%s\x00%d", folder, uid)
}

// itemHeaders joins the subjects and senders the directory holds to the
// accounts' reported messages, for the formats that list messages (items,
// json, html). Without a directory (none configured) the report lists
// them without.
func (e *Env) itemHeaders(ctx context.Context, lines []Line, format string) error {
	switch format {
	case "items", "json", "html":
	default:
		return nil
	}
	dir, err := e.directory(ctx)
	if err != nil {
		return err
	}
	for i := range lines {
		l := &lines[i]
		if dir != nil && l.Result != nil && len(l.Result.Skipped)+len(l.Result.Reported) > 0 {
			hs, err := dir.ReportItems(ctx, workflows.WorkflowID(l.Address))
			if err != nil {
				return err
			}
			l.headers = make(map[string]directory.ReportItem, len(hs))
			for _, h := range hs {
				l.headers[itemKey(h.Folder, h.UID)] = h
			}
		}
		if format == "json" {
			l.Items = items([]Line{*l})
		}
	}
	return nil
}

// cellText keeps a spreadsheet from reading a CSV cell from the outside
// world (a subject, a sender) as a formula.
func cellText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
