package dnscheck

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/testenv"
)

// TestBINDPropagation updates a real BIND9 primary and watches the checker
// report the secondary behind, then caught up.
func TestBINDPropagation(t *testing.T) {
	b := testenv.StartBIND(t, "lab.test")
	ctx := context.Background()
	chk := &Checker{Resolver: b.PrimaryAddr(), Override: b.Override(), Timeout: 2 * time.Second}
	want, _ := Expected("lab.test", req)

	before, err := chk.Check(ctx, "lab.test", want)
	if err != nil {
		t.Fatal(err)
	}
	if before.OK {
		t.Fatalf("records OK before any update: %+v", before)
	}
	printDiag(t, "before the update", before)

	wrong := &Updater{Primary: b.PrimaryAddr(), Key: TSIGKey{Name: b.KeyName, Secret: secret}}
	if _, err := wrong.Apply(ctx, "lab.test", want); !errors.Is(err, ErrRefused) {
		t.Fatalf("update with a wrong key = %v, want ErrRefused", err)
	}
	u := &Updater{Primary: b.PrimaryAddr(), Key: TSIGKey{Name: b.KeyName, Secret: b.Secret}}
	serial0, _ := testenv.Serial(b.PrimaryAddr(), "lab.test")
	if changed, err := u.Apply(ctx, "lab.test", want); err != nil || !changed {
		t.Fatalf("Apply() = %v, %v", changed, err)
	}
	serial1, _ := testenv.Serial(b.PrimaryAddr(), "lab.test")
	if changed, err := u.Apply(ctx, "lab.test", want); err != nil || changed {
		t.Fatalf("second Apply() = %v, %v; want no change", changed, err)
	}
	serial2, _ := testenv.Serial(b.PrimaryAddr(), "lab.test")
	if serial1 == serial0 || serial2 != serial1 {
		t.Fatalf("serials %d -> %d -> %d; want one change only", serial0, serial1, serial2)
	}

	// The secondary has not transferred yet: not propagated, and the
	// diagnostic says which server lags.
	mid, err := chk.Check(ctx, "lab.test", want)
	if err != nil {
		t.Fatal(err)
	}
	printDiag(t, "primary updated, secondary behind", mid)
	if mid.OK || mid.Serials["ns1.lab.test"] == mid.Serials["ns2.lab.test"] {
		t.Fatalf("diagnostic while the secondary lags = %+v", mid)
	}
	for _, r := range mid.Records {
		if !r.Servers[0].OK || r.Servers[1].OK {
			t.Fatalf("record %v: servers %+v, want ns1 ok and ns2 not", r.Record, r.Servers)
		}
	}

	if err := b.Retransfer(ctx); err != nil {
		t.Fatal(err)
	}
	var after *Diagnostic
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if after, err = chk.Check(ctx, "lab.test", want); err == nil && after.OK {
			break
		}
	}
	if after == nil || !after.OK {
		t.Fatalf("not propagated after the transfer: %+v (%v)", after, err)
	}
	printDiag(t, "after the transfer", after)
}

func printDiag(t *testing.T, title string, d *Diagnostic) {
	var b strings.Builder
	b.WriteString(title + ": " + d.Summary() + "\n")
	for _, r := range d.Records {
		for _, s := range r.Servers {
			b.WriteString("  " + r.Record.Type + " " + r.Record.Value + " @" + s.Server + ": " + strings.Join(s.Values, " | "))
			if s.OK {
				b.WriteString("  ok\n")
			} else {
				b.WriteString("  NOT OK\n")
			}
		}
	}
	t.Log(b.String())
}
