package activities

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/internal/directory"
)

// TestPlainIMAPNamesTheRealSetting checks that the error for a plaintext
// service names the worker's setting as its configuration file spells it,
// and that this setting, set as named, lets the endpoint through.
func TestPlainIMAPNamesTheRealSetting(t *testing.T) {
	sv := directory.Service{ID: "mxplan-1", Kind: directory.KindMXPlan, IMAPAddr: "127.0.0.1:143", IMAPSecurity: "plain"}
	_, err := (&Activities{}).endpoint(sv, "a@example.com")
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != ErrTypeConfig || !ae.NonRetryable() {
		t.Fatalf("endpoint() = %v, want a non-retryable %s", err, ErrTypeConfig)
	}
	m := regexp.MustCompile(`"(\w+)": true`).FindStringSubmatch(ae.Message())
	if m == nil {
		t.Fatalf("endpoint() = %q, want it to name a setting as `\"name\": true`", ae.Message())
	}

	// The named setting is a key the worker's configuration accepts.
	file := filepath.Join(t.TempDir(), "worker.json")
	if err := os.WriteFile(file, []byte(`{"`+m[1]+`": true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"-config", file, "-dev"}, func(string) string { return "" })
	if err != nil {
		t.Fatalf("config.Load() with %q = %v", m[1], err)
	}
	if !cfg.IMAPPlain {
		t.Fatalf("config.Load() with %q: IMAPPlain = false, want true", m[1])
	}
	a := &Activities{Master: Master{Plain: cfg.IMAPPlain}}
	if _, err := a.endpoint(sv, "a@example.com"); err != nil {
		t.Fatalf("endpoint() with %q set = %v, want nil", m[1], err)
	}
}

// A service definition edited by hand past the import's checks is refused
// where it is used, for good, naming the service and the field.
func TestEndpointChecksTheService(t *testing.T) {
	sv := directory.Service{ID: "emailpro-9", Kind: directory.KindEmailPro, IMAPAddr: "imap.example.com", IMAPSecurity: "tls"}
	_, err := (&Activities{}).endpoint(sv, "a@example.com")
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != ErrTypeConfig || !ae.NonRetryable() || !strings.Contains(ae.Message(), "emailpro-9") {
		t.Fatalf("endpoint() = %v, want a permanent %s naming the service", err, ErrTypeConfig)
	}
}
