package activities

import (
	"context"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

// MeasureInput names an account to measure for a dry run, and the copy's
// folder globs.
type MeasureInput struct {
	Address        string
	To             string
	IncludeFolders []string `json:",omitempty"`
	ExcludeFolders []string `json:",omitempty"`
}

// MeasureResult is an account's mailbox as a dry run shows it: sizes only,
// never content.
type MeasureResult struct {
	Address  string `json:"address"`
	Folders  int    `json:"folders"`
	Messages int    `json:"messages"`
	Bytes    int64  `json:"bytes"`
	// Largest is the largest message the copy would take, in
	// LargestFolder; OverLimit counts the messages over MaxMessageBytes,
	// the destination's limit (0: none).
	Largest         int64  `json:"largest"`
	LargestFolder   string `json:"largestFolder,omitempty"`
	MaxMessageBytes int64  `json:"maxMessageBytes,omitempty"`
	OverLimit       int    `json:"overLimit,omitempty"`
	// Excluded counts the folders the include/exclude globs leave out.
	Excluded int `json:"excluded,omitempty"`
	// Error says why the account could not be measured.
	Error string `json:"error,omitempty"`
}

// MeasureMailbox measures, read-only, the source mailbox of an account for
// a dry run: folders, messages, bytes and the largest message against the
// destination's size limit. An account or service it cannot find, or a
// server that refuses, is an answer (Error), not a failure: a dry run
// reports every row.
func (a *Activities) MeasureMailbox(ctx context.Context, in MeasureInput) (*MeasureResult, error) {
	out := &MeasureResult{Address: in.Address}
	if err := checkAddress(in.Address); err != nil {
		out.Error = err.Error()
		return out, nil
	}
	acct, err := a.Dir.SourceAccount(ctx, in.Address)
	if err != nil {
		out.Error = err.Error()
		return out, nil
	}
	src, err := a.Dir.Service(ctx, acct.ServiceID)
	if err != nil {
		out.Error = err.Error()
		return out, nil
	}
	if dst, err := a.Dir.Service(ctx, in.To); err == nil {
		out.MaxMessageBytes = dst.MaxMessageBytes
	}
	ep, err := a.endpoint(src, in.Address)
	if err != nil {
		out.Error = err.Error()
		return out, nil
	}
	_, stop := keepAlive(ctx)
	tot, err := a.Mail.MeasureFolders(ctx, ep, mailcopy.MapOptions{Include: in.IncludeFolders, Exclude: in.ExcludeFolders}, out.MaxMessageBytes)
	stop()
	if err != nil {
		if _, perm := mailcopy.IsPermanent(err); !perm {
			return nil, fromEngine(err)
		}
		out.Error = fromEngine(err).Error()
		return out, nil
	}
	out.Folders, out.Messages, out.Bytes = tot.Totals.Folders, tot.Messages, tot.Bytes
	out.Largest, out.LargestFolder, out.OverLimit = tot.Largest, tot.LargestFolder, tot.OverLimit
	for _, f := range tot.Folders {
		if f.Excluded != "" {
			out.Excluded++
		}
	}
	return out, nil
}
