package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/cluster"
)

// A broken Temporal TLS setting is refused before anything is dialled; a
// flag wins over the environment field by field.
func TestTemporalTLSRefusedBeforeConnecting(t *testing.T) {
	certs, err := cluster.WriteCerts(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"MAILSHIFT_TEMPORAL_TLS_CERT": certs.ClientCert}, nil, "go together"},
		{nil, []string{"--temporal-tls-cert", certs.ClientCert, "--temporal-tls-key", certs.ServerKey}, "client certificate"},
		{map[string]string{"MAILSHIFT_TEMPORAL_TLS_CERT": certs.ClientCert, "MAILSHIFT_TEMPORAL_TLS_KEY": certs.ClientKey},
			[]string{"--temporal-tls-key", certs.ServerKey}, "client certificate"},
		{nil, []string{"--temporal-tls-ca", filepath.Join(t.TempDir(), "missing.pem")}, "caFile"},
	} {
		args := append(append([]string{"--temporal", "127.0.0.1:1"}, tc.args...), "status", "--plan", "wave-1")
		err := run(args, &bytes.Buffer{}, func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("starter %q with %v = %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}
}
