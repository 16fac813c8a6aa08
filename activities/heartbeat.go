package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.uber.org/zap"

	"github.com/mailshift/mailshift/internal/mailcopy"
)

// heartbeatEvery is how often a long activity tells the server it is alive;
// the workflow's heartbeat timeout (30 s) detects a dead worker within it.
const heartbeatEvery = 10 * time.Second

// keepAlive heartbeats until the returned stop is called, with the details
// last handed to set (nil: none). Engines that run long without progress
// events (measuring, verifying, clearing, one huge message) stay alive, and
// a killed worker is noticed within the heartbeat timeout.
func keepAlive(ctx context.Context) (set func(any), stop func()) {
	var mu sync.Mutex
	var details any
	done := make(chan struct{})
	beat := func() {
		mu.Lock()
		d := details
		mu.Unlock()
		if d != nil {
			activity.RecordHeartbeat(ctx, d)
		} else {
			activity.RecordHeartbeat(ctx)
		}
	}
	go func() {
		every := heartbeatEvery
		if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 && hb/3 < every {
			every = hb / 3
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				beat()
			}
		}
	}()
	var once sync.Once
	return func(d any) {
			mu.Lock()
			details = d
			mu.Unlock()
			beat()
		}, func() {
			once.Do(func() { close(done) })
		}
}

// reconnectTries is how many times in a row an activity reconnects after a
// transient error (connection cut, server busy) without progress before it
// lets the attempt fail to Temporal's retry policy. A try that made
// progress resets the count, so a long copy over a flaky network keeps
// going, as imapsync's reconnect does, instead of burning the stage's
// attempts.
const reconnectTries = 3

// reconnectWait is the first pause before a reconnect; it doubles.
var reconnectWait = time.Second

func reconnecting(ctx context.Context, log *zap.Logger, what string, try func() (progressed bool, err error)) error {
	wait := reconnectWait
	for fails := 0; ; {
		progressed, err := try()
		if err == nil {
			return nil
		}
		if _, perm := mailcopy.IsPermanent(err); perm || ctx.Err() != nil {
			return err
		}
		if progressed {
			fails, wait = 0, reconnectWait
		}
		if fails++; fails >= reconnectTries {
			return err
		}
		log.Warn("reconnecting", zap.String("what", what), zap.Duration("after", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}
