package mailcopy_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/mailshift/mailshift/internal/mailcopy"
	"github.com/mailshift/mailshift/internal/mailgen"
)

// TestProgressSnapshotsStayAsHandedOut copies a many-folder mailbox over
// three connections while the progress callback keeps every snapshot and
// another goroutine encodes the latest one (as the copy activity's
// heartbeat does). A snapshot is the caller's: the engine must never write
// into it afterwards. Each kept snapshot is encoded when handed out and
// again at the end; the two must agree (and -race must stay quiet).
func TestProgressSnapshotsStayAsHandedOut(t *testing.T) {
	src, dst := startMem(t, "a@x.test"), startMem(t, "a@x.test")
	n := src.seed(t, mailgen.Spec{Seed: 7, Messages: 600, MeanSize: 2 << 10})

	type kept struct {
		p    mailcopy.Progress
		when []byte
	}
	var mu sync.Mutex
	var snaps []kept
	latest := make(chan mailcopy.Progress, 1)
	stop := make(chan struct{})
	readerDone := make(chan int)
	go func() {
		// The heartbeat goroutine: encodes whatever snapshot is newest,
		// while the folders' goroutines go on copying.
		encoded := 0
		for {
			select {
			case p := <-latest:
				if _, err := json.Marshal(p.Checkpoints); err == nil {
					encoded++
				}
			case <-stop:
				readerDone <- encoded
				return
			}
		}
	}()
	res, err := mailcopy.Copy(context.Background(), ep(src.addr, "a@x.test"), ep(dst.addr, "a@x.test"), mailcopy.Options{Connections: 3,
		OnProgress: func(p mailcopy.Progress) {
			b, err := json.Marshal(p.Checkpoints)
			if err != nil {
				t.Errorf("encode a snapshot: %v", err)
			}
			mu.Lock()
			snaps = append(snaps, kept{p, b})
			mu.Unlock()
			select {
			case <-latest:
			default:
			}
			latest <- p
		}})
	close(stop)
	encoded := <-readerDone
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != n {
		t.Fatalf("Copy() copied %d, want %d", res.Copied, n)
	}
	if len(res.Checkpoints) < 3 {
		t.Fatalf("Copy() checkpointed %d folders, want a many-folder mailbox", len(res.Checkpoints))
	}
	withMap := 0
	for _, cp := range res.Checkpoints {
		if len(cp.Map) > 0 {
			withMap++
		}
	}
	if withMap == 0 {
		t.Fatalf("no checkpoint carries a UID map: the test would not exercise the maps")
	}
	if len(snaps) < n || encoded == 0 {
		t.Fatalf("%d snapshots handed out, %d encoded meanwhile; want at least one per message (%d) and some", len(snaps), encoded, n)
	}
	changed := 0
	first := ""
	for i, k := range snaps {
		now, err := json.Marshal(k.p.Checkpoints)
		if err != nil {
			t.Fatal(err)
		}
		if string(now) != string(k.when) {
			if changed == 0 {
				first = string(k.when) + "\n became \n" + string(now)
				_ = i
			}
			changed++
		}
	}
	if changed > 0 {
		t.Fatalf("%d of %d progress snapshots changed after they were handed out; first:\n%s", changed, len(snaps), first)
	}
}
