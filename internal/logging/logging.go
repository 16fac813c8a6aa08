// Package logging builds the zap logger and bridges it into the Temporal
// SDK's logger interface, so SDK and mailshift lines share one format.
package logging

import (
	"fmt"

	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a JSON (format "json") or console logger at level.
func New(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	var cfg zap.Config
	switch format {
	case "json", "":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
	default:
		return nil, fmt.Errorf("log format %q: want json or console", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.DisableStacktrace = true
	return cfg.Build()
}

// Temporal adapts a zap logger to the SDK's log.Logger.
type Temporal struct{ z *zap.Logger }

var _ log.Logger = Temporal{}
var _ log.WithLogger = Temporal{}

// NewTemporal wraps z.
func NewTemporal(z *zap.Logger) Temporal { return Temporal{z: z.WithOptions(zap.AddCallerSkip(1))} }

func fields(kv []interface{}) []zap.Field {
	out := make([]zap.Field, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			k = fmt.Sprint(kv[i])
		}
		out = append(out, zap.Any(k, kv[i+1]))
	}
	if len(kv)%2 == 1 {
		out = append(out, zap.Any("extra", kv[len(kv)-1]))
	}
	return out
}

// Debug logs at debug level.
func (t Temporal) Debug(msg string, kv ...interface{}) { t.z.Debug(msg, fields(kv)...) }

// Info logs at info level.
func (t Temporal) Info(msg string, kv ...interface{}) { t.z.Info(msg, fields(kv)...) }

// Warn logs at warn level.
func (t Temporal) Warn(msg string, kv ...interface{}) { t.z.Warn(msg, fields(kv)...) }

// Error logs at error level.
func (t Temporal) Error(msg string, kv ...interface{}) { t.z.Error(msg, fields(kv)...) }

// With returns a logger with fields added.
func (t Temporal) With(kv ...interface{}) log.Logger { return Temporal{z: t.z.With(fields(kv)...)} }
