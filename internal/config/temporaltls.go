package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TemporalTLS is how the worker and the starter reach a Temporal frontend
// that speaks TLS, usually with client certificates (mTLS). The files are
// paths (mounted secrets in production), never the keys themselves.
type TemporalTLS struct {
	// CertFile and KeyFile are the client certificate and its key (PEM);
	// both or neither.
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	// CAFile holds the authorities (PEM) that signed the frontend's
	// certificate; empty: the system's.
	CAFile string `json:"caFile"`
	// ServerName is the name checked in the frontend's certificate when it
	// differs from the host of temporalAddress.
	ServerName string `json:"serverName"`
	// Enabled turns TLS on without a client certificate or CA (a frontend
	// with a public certificate). Any file above turns it on too.
	Enabled bool `json:"enabled"`
}

// FromEnv overrides the fields with MAILSHIFT_TEMPORAL_TLS_CERT, _KEY, _CA
// and _SERVER_NAME where they are set.
func (t TemporalTLS) FromEnv(getenv func(string) string) TemporalTLS {
	for name, dst := range map[string]*string{
		"MAILSHIFT_TEMPORAL_TLS_CERT": &t.CertFile, "MAILSHIFT_TEMPORAL_TLS_KEY": &t.KeyFile,
		"MAILSHIFT_TEMPORAL_TLS_CA": &t.CAFile, "MAILSHIFT_TEMPORAL_TLS_SERVER_NAME": &t.ServerName,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	return t
}

// On tells whether the connection uses TLS.
func (t TemporalTLS) On() bool {
	return t.Enabled || t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" || t.ServerName != ""
}

// Validate loads what the fields name, so that a missing file, a key that
// does not match its certificate or a CA file without a certificate in it
// stops the process at start instead of at its first connection.
func (t TemporalTLS) Validate() error {
	_, err := t.Config()
	return err
}

// Config builds the client's tls.Config, or nil when TLS is off. The
// client certificate is read again at each handshake, so a renewed
// certificate (a rotated Kubernetes secret) is used from the next
// connection without a restart.
func (t TemporalTLS) Config() (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	var errs []error
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, fmt.Errorf("temporalTLS: certFile %q and keyFile %q go together", t.CertFile, t.KeyFile))
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CertFile != "" && t.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			errs = append(errs, fmt.Errorf("temporalTLS client certificate: %w", err))
		}
		certFile, keyFile := t.CertFile, t.KeyFile
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("temporalTLS client certificate: %w", err)
			}
			return &c, nil
		}
	}
	if t.CAFile != "" {
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("temporalTLS caFile: %w", err))
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				errs = append(errs, fmt.Errorf("temporalTLS caFile %s: no PEM certificate in it", t.CAFile))
			}
			cfg.RootCAs = pool
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}
