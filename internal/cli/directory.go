package cli

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/mailshift/mailshift/internal/directory"
)

// Import loads a directory import file (services, slots, accounts,
// redirections) and prints what it did.
func (e *Env) Import(ctx context.Context, path string) error {
	dir, err := e.needDirectory(ctx, "import")
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := dir.Import(ctx, f)
	if rep != nil {
		fmt.Fprintf(e.Out, "imported %d services, %d slots, %d accounts, %d redirections; %d already there\n",
			rep.Services, rep.Slots, rep.Accounts, rep.Redirections, len(rep.Skipped))
	}
	if err != nil {
		return fmt.Errorf("%s: %w (rows before it were imported; fix it and run the import again)", path, err)
	}
	return nil
}

// Slots prints the free slots of each destination service.
func (e *Env) Slots(ctx context.Context, service string) error {
	dir, err := e.needDirectory(ctx, "slots")
	if err != nil {
		return err
	}
	svs, err := dir.Services(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tKIND\tFREE SLOTS\tLARGEST QUOTA")
	for _, sv := range svs {
		if (service != "" && sv.ID != service) || sv.Kind == directory.KindMXPlan {
			continue
		}
		free, err := dir.FreeSlots(ctx, sv.ID, 0)
		if err != nil {
			return err
		}
		var largest int64
		for _, s := range free {
			largest = max(largest, s.QuotaBytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", sv.ID, sv.Kind, len(free), human(largest))
	}
	return tw.Flush()
}
