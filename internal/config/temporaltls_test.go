package config_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailshift/mailshift/internal/cluster"
	"github.com/mailshift/mailshift/internal/config"
)

func TestTemporalTLSValidate(t *testing.T) {
	dir := t.TempDir()
	certs, err := cluster.WriteCerts(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		tls     config.TemporalTLS
		on      bool
		wantErr string
	}{
		{"off", config.TemporalTLS{}, false, ""},
		{"server TLS only", config.TemporalTLS{Enabled: true}, true, ""},
		{"mTLS", config.TemporalTLS{CertFile: certs.ClientCert, KeyFile: certs.ClientKey, CAFile: certs.CA}, true, ""},
		{"cert without key", config.TemporalTLS{CertFile: certs.ClientCert}, true, "go together"},
		{"key of another certificate", config.TemporalTLS{CertFile: certs.ClientCert, KeyFile: certs.ServerKey}, true, "client certificate"},
		{"missing CA file", config.TemporalTLS{CAFile: filepath.Join(dir, "nope.pem")}, true, "caFile"},
		{"CA file without PEM", config.TemporalTLS{CAFile: notPEM}, true, "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.tls.Config()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Config() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Config() error = %v", err)
			}
			if (cfg != nil) != tc.on {
				t.Fatalf("Config() = %v, want TLS on = %v", cfg, tc.on)
			}
		})
	}
}

// A worker configuration names the files in temporalTLS, the environment
// can override them, and a broken pair stops Load.
func TestLoadTemporalTLS(t *testing.T) {
	dir := t.TempDir()
	certs, err := cluster.WriteCerts(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "worker.json")
	body := `{"directory": "x.db", "masterUser": "m", "temporalTLS": {"certFile": "` + certs.ClientCert + `", "keyFile": "` + certs.ClientKey + `", "caFile": "` + certs.CA + `", "serverName": "localhost"}}`
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MAILSHIFT_MASTER_PASSWORD": "pw"}
	c, err := config.Load([]string{"--config", file}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	if c.TemporalTLS.CertFile != certs.ClientCert || c.TemporalTLS.ServerName != "localhost" {
		t.Fatalf("Load().TemporalTLS = %+v", c.TemporalTLS)
	}
	env["MAILSHIFT_TEMPORAL_TLS_KEY"] = certs.ServerKey
	if _, err := config.Load([]string{"--config", file}, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Fatalf("Load() with a key that does not match = %v, want a client certificate error", err)
	}
	if err := os.WriteFile(file, []byte(`{"temporalTLS": {"cert": "x"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load([]string{"--config", file}, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), `unknown field "cert"`) {
		t.Fatalf("Load() with an unknown TLS field = %v, want it refused by name", err)
	}
}

// The client configuration passes a server that requires a certificate from
// the CA; without the client certificate the same server refuses it.
func TestTemporalTLSHandshake(t *testing.T) {
	dir := t.TempDir()
	certs, err := cluster.WriteCerts(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := tls.LoadX509KeyPair(certs.ServerCert, certs.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(certs.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err == nil {
					_, _ = c.Write([]byte("ok"))
				}
			}()
		}
	}()
	dial := func(tt config.TemporalTLS) error {
		cfg, err := tt.Config()
		if err != nil {
			return err
		}
		c, err := tls.DialWithDialer(&net.Dialer{}, "tcp", l.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		if string(b) != "ok" {
			return io.ErrUnexpectedEOF
		}
		return nil
	}
	if err := dial(config.TemporalTLS{CertFile: certs.ClientCert, KeyFile: certs.ClientKey, CAFile: certs.CA}); err != nil {
		t.Fatalf("mTLS handshake: %v", err)
	}
	if err := dial(config.TemporalTLS{CAFile: certs.CA}); err == nil {
		t.Fatal("a handshake without the client certificate passed, want it refused")
	}
	if err := dial(config.TemporalTLS{CertFile: certs.ClientCert, KeyFile: certs.ClientKey}); err == nil {
		t.Fatal("a handshake that does not trust the lab CA passed, want a certificate error")
	}
}
