package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/mailshift/mailshift/internal/codec"
	"github.com/mailshift/mailshift/internal/devstack"
	"github.com/mailshift/mailshift/internal/testenv"
	"github.com/mailshift/mailshift/workflows"
)

// payloads collects every Payload anywhere in a proto message, except
// search attributes: the server indexes those, so they stay readable and
// hold only the plan, the domain and the stage.
func payloads(m protoreflect.Message, out *[]*commonpb.Payload) {
	switch v := m.Interface().(type) {
	case *commonpb.Payload:
		*out = append(*out, v)
		return
	case *commonpb.SearchAttributes:
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			for i := 0; i < v.List().Len(); i++ {
				payloads(v.List().Get(i).Message(), out)
			}
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				payloads(mv.Message(), out)
				return true
			})
		case fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap():
			payloads(v.Message(), out)
		}
		return true
	})
}

// TestHistoryHoldsNoSecrets runs a migration with payload encryption on,
// then reads the raw history: every payload is encrypted, and once
// decrypted none holds a password, a key or message content.
func TestHistoryHoldsNoSecrets(t *testing.T) {
	_, raw := testenv.StartTemporal(t, "")
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cd, err := codec.ParseKeys("k2026:" + base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	// The worker's and the starter's client options: payloads and failure
	// messages encrypted.
	opts := client.Options{}
	cd.Apply(&opts)
	c, err := client.NewClientFromExisting(raw, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, _, _ := devPlatform(t, c, 2, 40)
	addr := "bob@example.com"
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WorkflowID(addr), TaskQueue: workflows.TaskQueue},
		workflows.WorkflowName, workflows.Input{Address: addr, To: devstack.EmailProService, AutoConfirm: true, DNSInterval: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var res workflows.Result
	if err := run.Get(wctx, &res); err != nil || res.Outcome != workflows.StageDone {
		t.Fatalf("migration: %s, %v", res.Outcome, err)
	}

	// Secrets and content that must never reach history.
	mb, err := testenv.Read(st.Source.Addr, addr+"*"+st.MasterUser, st.MasterPassword)
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{st.MasterPassword, devstack.DemoPassword, st.TSIG.Secret, "X-Gen: ", "sender1@partner.example", "{SSHA256}"}
	if mb.Count() == 0 {
		t.Fatal("nothing to compare against")
	}

	iter := raw.GetWorkflowHistory(ctx, workflows.WorkflowID(addr), "", false, 0)
	var all []*commonpb.Payload
	events := 0
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		events++
		payloads(ev.ProtoReflect(), &all)
		b, _ := proto.Marshal(ev)
		for _, f := range forbidden {
			if strings.Contains(string(b), f) {
				t.Fatalf("event %d (%s) holds %q in the clear", ev.EventId, ev.EventType, f)
			}
		}
	}
	if len(all) < 10 {
		t.Fatalf("only %d payloads in %d events; the walk missed them", len(all), events)
	}
	for _, p := range all {
		if string(p.Metadata["encoding"]) != codec.Encoding {
			t.Fatalf("payload with encoding %q is not encrypted", p.Metadata["encoding"])
		}
		if strings.Contains(string(p.Data), addr) {
			t.Fatalf("encrypted payload shows the address")
		}
	}
	dec, err := cd.Decode(all)
	if err != nil {
		t.Fatalf("decode with the key: %v", err)
	}
	seenAddr := false
	for _, p := range dec {
		s := string(p.Data)
		seenAddr = seenAddr || strings.Contains(s, addr)
		for _, f := range forbidden {
			if strings.Contains(s, f) {
				t.Fatalf("decrypted payload holds %q: %.200s", f, s)
			}
		}
	}
	if !seenAddr {
		t.Fatalf("decrypted payloads never mention the account; decoding proves nothing")
	}
	other, _ := codec.ParseKeys("k2026:" + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if _, err := other.Decode(all[:1]); err == nil {
		t.Fatalf("a wrong key decrypted a payload")
	}
	t.Logf("%d events, %d payloads, all encrypted, none holds a secret or message content", events, len(all))
}
