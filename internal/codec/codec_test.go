package codec_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mailshift/mailshift/internal/codec"
	"github.com/mailshift/mailshift/internal/testenv"
)

func newCodec(t *testing.T) *codec.Codec {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cd, err := codec.ParseKeys("k1:" + base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	return cd
}

// TestServerToken checks that the codec server decodes only for the
// bearer token it was given, and that a server without a token decodes
// for no one.
func TestServerToken(t *testing.T) {
	cd := newCodec(t)
	p, err := cd.DataConverter().ToPayload("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	body, err := protojson.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	body = []byte(`{"payloads":[` + string(body) + `]}`)
	for _, tc := range []struct {
		name, token, header string
		want                int
	}{
		{"right token", "s3cret", "Bearer s3cret", http.StatusOK},
		{"wrong token", "s3cret", "Bearer s3creT", http.StatusUnauthorized},
		{"token as a prefix", "s3cret", "Bearer s3cre", http.StatusUnauthorized},
		{"token with more after it", "s3cret", "Bearer s3cretX", http.StatusUnauthorized},
		{"no scheme", "s3cret", "s3cret", http.StatusUnauthorized},
		{"no header", "s3cret", "", http.StatusUnauthorized},
		{"server without a token", "", "Bearer ", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(cd.Server(tc.token, "http://ui.test"))
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/decode", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var out bytes.Buffer
			_, _ = out.ReadFrom(res.Body)
			if res.StatusCode != tc.want {
				t.Fatalf("POST /decode with %q = %d %s, want %d", tc.header, res.StatusCode, out.String(), tc.want)
			}
			clear := base64.StdEncoding.EncodeToString([]byte(`"alice@example.com"`))
			if decoded := strings.Contains(out.String(), clear); decoded != (tc.want == http.StatusOK) {
				t.Fatalf("POST /decode with %q: decoded = %v, want %v (body %s)", tc.header, decoded, tc.want == http.StatusOK, out.String())
			}
		})
	}
}

// TestFailuresAreEncrypted runs an activity and a workflow that fail with
// known messages through a Temporal dev server, reads the raw history and
// looks for the messages. With Apply (payloads and failures encrypted) they
// are absent and decode back with the key; with the data converter alone,
// as before, they are in the clear, which shows the search finds them.
func TestFailuresAreEncrypted(t *testing.T) {
	_, raw := testenv.StartTemporal(t, "")
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		options func(cd *codec.Codec, o *client.Options)
		clear   bool
	}{
		{"Apply", func(cd *codec.Codec, o *client.Options) { cd.Apply(o) }, false},
		{"data converter only", func(cd *codec.Codec, o *client.Options) { o.DataConverter = cd.DataConverter() }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cd := newCodec(t)
			opts := client.Options{Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))}
			tc.options(cd, &opts)
			c, err := client.NewClientFromExisting(raw, opts)
			if err != nil {
				t.Fatal(err)
			}
			queue := "codec-" + strings.ReplaceAll(tc.name, " ", "-")
			actMsg := "log in to carol@mx.example: [AUTHENTICATIONFAILED] activity-marker-" + queue
			wfMsg := "copy stage of workflow-marker-" + queue
			w := worker.New(c, queue, worker.Options{})
			w.RegisterActivityWithOptions(func(context.Context) error {
				return temporal.NewApplicationError(actMsg, "AuthFailed")
			}, activity.RegisterOptions{Name: "Fail"})
			w.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
				ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second,
					RetryPolicy: &temporal.RetryPolicy{InitialInterval: 10 * time.Millisecond, MaximumAttempts: 2}})
				err := workflow.ExecuteActivity(ctx, "Fail").Get(ctx, nil)
				return temporal.NewNonRetryableApplicationError(wfMsg, "Failed", err)
			}, workflow.RegisterOptions{Name: "FailTwice"})
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			defer w.Stop()

			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			run, err := c.ExecuteWorkflow(wctx, client.StartWorkflowOptions{ID: queue, TaskQueue: queue}, "FailTwice")
			if err != nil {
				t.Fatal(err)
			}
			err = run.Get(wctx, nil)
			if err == nil || !strings.Contains(err.Error(), wfMsg) || !strings.Contains(err.Error(), actMsg) {
				t.Fatalf("Get() = %v, want the workflow's and the activity's messages", err)
			}

			var failures []*failurepb.Failure
			var history bytes.Buffer
			iter := raw.GetWorkflowHistory(wctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for iter.HasNext() {
				ev, err := iter.Next()
				if err != nil {
					t.Fatal(err)
				}
				b, _ := proto.Marshal(ev)
				history.Write(b)
				if a := ev.GetActivityTaskFailedEventAttributes(); a != nil {
					failures = append(failures, a.GetFailure())
				}
				if a := ev.GetWorkflowExecutionFailedEventAttributes(); a != nil {
					failures = append(failures, a.GetFailure())
				}
			}
			if len(failures) != 2 {
				t.Fatalf("history has %d failure events, want 2 (the activity's last attempt, the workflow's)", len(failures))
			}
			for _, m := range []string{actMsg, wfMsg, "marker-"} {
				if got := bytes.Contains(history.Bytes(), []byte(m)); got != tc.clear {
					t.Fatalf("raw history holds %q: %v, want %v", m, got, tc.clear)
				}
			}
			if tc.clear {
				return
			}

			// The key turns the stored failures back into the messages.
			fc := cd.FailureConverter()
			for i, want := range []string{actMsg, wfMsg} {
				f := proto.Clone(failures[i]).(*failurepb.Failure)
				if f.GetMessage() != "Encoded failure" || f.GetStackTrace() != "" {
					t.Fatalf("stored failure %d: message %q, stack %q; want both encoded", i, f.GetMessage(), f.GetStackTrace())
				}
				err := fc.FailureToError(f)
				var ae *temporal.ApplicationError
				if !errors.As(err, &ae) || ae.Message() != want {
					t.Fatalf("FailureToError(stored failure %d) = %v, want %q", i, err, want)
				}
			}
			// Without the key the message stays hidden.
			f := proto.Clone(failures[0]).(*failurepb.Failure)
			converter.DecodeCommonFailureAttributes(newCodec(t).DataConverter(), f)
			if strings.Contains(fmt.Sprint(f), "marker-") {
				t.Fatalf("another key decoded the failure: %v", f)
			}
		})
	}
}
