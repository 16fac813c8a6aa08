// Package cli implements the starter's commands on a Temporal client, so
// they can be tested against a real dev server.
package cli

import (
	"context"
	"fmt"
	"io"

	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/mailshift/mailshift/internal/app"
	"github.com/mailshift/mailshift/internal/directory"
	"github.com/mailshift/mailshift/internal/dnscheck"
)

// Env is what every command needs.
type Env struct {
	Out             io.Writer
	TemporalAddress string
	Namespace       string
	DirectoryDSN    string
	DevDir          string
	Args            []string
	Dial            func(addr, ns string) (client.Client, error)
	// Client, when set, is used instead of dialing (tests).
	Client client.Client
	// Converter decodes payloads and failures the workflows wrote (the
	// codec's, when payloads are encrypted; nil: the SDK's default).
	Converter converter.DataConverter
	// Checker, when set, is the DNS checker of the dns command.
	Checker *dnscheck.Checker
	dir     *directory.Store
	dev     *app.DevInfo
}

// Close releases what the commands opened.
func (e *Env) Close() {
	if e.dir != nil {
		e.dir.Close()
	}
	if e.Client != nil && e.Dial != nil {
		e.Client.Close()
	}
}

func (e *Env) client() (client.Client, error) {
	if e.Client != nil {
		return e.Client, nil
	}
	c, err := e.Dial(e.TemporalAddress, e.Namespace)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", e.TemporalAddress, err)
	}
	e.Client = c
	return c, nil
}

func (e *Env) devInfo() (*app.DevInfo, error) {
	if e.dev != nil || e.DevDir == "" {
		return e.dev, nil
	}
	info, err := app.ReadDevInfo(e.DevDir)
	if err != nil {
		return nil, err
	}
	e.dev = info
	return info, nil
}

// needDirectory is directory for commands that cannot work without it.
func (e *Env) needDirectory(ctx context.Context, command string) (*directory.Store, error) {
	dir, err := e.directory(ctx)
	if err == nil && dir == nil {
		err = fmt.Errorf("%s needs the directory (--directory or --dev-dir)", command)
	}
	return dir, err
}

// directory opens the directory if one is configured (nil otherwise).
func (e *Env) directory(ctx context.Context) (*directory.Store, error) {
	if e.dir != nil {
		return e.dir, nil
	}
	dsn := e.DirectoryDSN
	if dsn == "" {
		info, err := e.devInfo()
		if err != nil {
			return nil, err
		}
		if info != nil {
			dsn = info.Directory
		}
	}
	if dsn == "" {
		return nil, nil
	}
	d, err := directory.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	e.dir = d
	return d, nil
}

// QuietLogger silences the SDK client's logging in the CLI.
type QuietLogger struct{}

// Debug discards.
func (QuietLogger) Debug(string, ...interface{}) {}

// Info discards.
func (QuietLogger) Info(string, ...interface{}) {}

// Warn discards.
func (QuietLogger) Warn(string, ...interface{}) {}

// Error discards.
func (QuietLogger) Error(string, ...interface{}) {}

func (e *Env) converter() converter.DataConverter {
	if e.Converter != nil {
		return e.Converter
	}
	return converter.GetDefaultDataConverter()
}

// failureMessage is a failure's message, decoded when the codec encrypted
// it (the history then says only "Encoded failure").
func (e *Env) failureMessage(f *failurepb.Failure) string {
	g := proto.Clone(f).(*failurepb.Failure)
	converter.DecodeCommonFailureAttributes(e.converter(), g)
	return g.GetMessage()
}
