package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNotifyConfig(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "hook.key")
	if err := os.WriteFile(secret, []byte("k3y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "worker.json")
	body := `{"dev": true, "notify": {"webhookURL": "https://hooks.example.net/T0K3N", "webhookSecretFile": "` + secret + `",
		"smtpRelay": "relay.example.net:25", "from": "mailshift@example.net", "to": ["oncall@example.net"]}}`
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load([]string{"-config", file}, func(string) string { return "" })
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if !c.Notify.Enabled() || c.Notify.WebhookSecret != "k3y" || c.Notify.To[0] != "oncall@example.net" {
		t.Fatalf("notify = %+v", c.Notify)
	}
	env := map[string]string{"MAILSHIFT_NOTIFY_WEBHOOK_URL": "http://127.0.0.1:9/x", "MAILSHIFT_NOTIFY_WEBHOOK_SECRET": "from-env"}
	c, err = Load([]string{"-dev"}, func(k string) string { return env[k] })
	if err != nil || c.Notify.WebhookURL != "http://127.0.0.1:9/x" || c.Notify.WebhookSecret != "from-env" || c.Notify.SMTPRelay != "" {
		t.Fatalf("Load(env) = %+v, %v", c.Notify, err)
	}
	for _, tc := range []struct {
		n    Notify
		want string
	}{
		{Notify{WebhookURL: "ftp://hooks.example.net/T0K3N"}, "notify.webhookURL"},
		{Notify{WebhookURL: "https://h.example.net/x", WebhookAttempts: 50}, "webhookAttempts"},
		{Notify{WebhookURL: "https://h.example.net/x", WebhookTimeout: "soon"}, "webhookTimeout"},
		{Notify{SMTPRelay: "relay.example.net", From: "a@b.c", To: []string{"d@e.f"}}, "smtpRelay"},
		{Notify{SMTPRelay: "relay.example.net:25", From: "Mailshift <a@b.c>", To: []string{"d@e.f"}}, "notify.from"},
		{Notify{SMTPRelay: "relay.example.net:25", From: "a@b.c"}, "notify.to"},
		{Notify{SMTPRelay: "relay.example.net:25", From: "a@b.c", To: []string{"d@e.f"}, SMTPUser: "u"}, "smtpUser"},
		{Notify{From: "a@b.c"}, "need notify.smtpRelay"},
	} {
		errs := tc.n.validate()
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want) || strings.Contains(errs[0].Error(), "T0K3N") {
			t.Errorf("validate(%+v) = %v, want an error naming %s (never the URL's token)", tc.n, errs, tc.want)
		}
	}
}
