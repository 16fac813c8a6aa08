package mailcopy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// batchHooks are what streamBatch reports besides APPENDs.
type batchHooks struct {
	onDone func(pendingAppend, imap.UID, error) error
	// skip decides a message from its body's size before it streams (over
	// the limit, empty): true means it was reported and is done.
	skip func(uid imap.UID, size int64, date time.Time) bool
	// dropped reports keywords left out of a message's APPEND.
	dropped func(uid imap.UID, size int64, date time.Time, kws []string)
}

// streamBatch FETCHes the bodies of batch with BODY.PEEK[] and streams each
// into an APPEND (a literal8 with binary). BODY[] is the message's bytes
// but for NUL bytes, served as 0x80: the few messages that held a 0x80
// byte are checked afterwards (restoreNULs), so the common path costs the
// source no BODYSTRUCTURE and BINARY.SIZE pass (about 0.13 ms a message
// on Dovecot, a quarter of the destination's cost of an APPEND).
func streamBatch(ctx context.Context, s *conn, batch imap.UIDSet, byUID map[imap.UID]meta, ap *appender, h batchHooks) error {
	return streamRun(ctx, s, batch, false, byUID, ap, h)
}

// streamRun FETCHes the bodies of uids, with BINARY.PEEK[] or BODY.PEEK[],
// and streams each into an APPEND.
func streamRun(ctx context.Context, s *conn, batch imap.UIDSet, binary bool, byUID map[imap.UID]meta, ap *appender, h batchHooks) error {
	fo := &imap.FetchOptions{UID: true, Flags: true, InternalDate: true}
	if binary {
		fo.BinarySection = []*imap.FetchItemBinarySection{{Peek: true}}
	} else {
		fo.BodySection = []*imap.FetchItemBodySection{{Peek: true}}
	}
	cmd := s.Fetch(batch, fo)
	// stop ends the FETCH early from this goroutine: the current body is
	// read to its end and the rest of the batch drained, so go-imap's reader
	// is never left waiting; a source that failed mid-body is closed instead.
	stop := func(lit imap.LiteralReader, err error) error {
		var ae *abortError
		if errors.As(err, &ae) && ae.sourceBroken {
			_ = s.Client.Close()
			return err
		}
		if lit != nil {
			_, _ = io.Copy(io.Discard, lit)
		}
		_ = cmd.Close()
		return err
	}
	stream := func(uid imap.UID, lit imap.LiteralReader, flags []imap.Flag, haveFlags bool, date time.Time) error {
		if lit == nil {
			return nil
		}
		mm, ok := byUID[uid]
		if !ok {
			// Servers send UID first; a body without a known UID is
			// not ours to copy.
			_, _ = io.Copy(io.Discard, lit)
			return nil
		}
		if err := ctx.Err(); err != nil {
			return stop(lit, err)
		}
		if !haveFlags {
			flags = mm.Flags
		}
		if date.IsZero() {
			date = mm.Date
		}
		if h.skip(uid, lit.Size(), date) {
			_, _ = io.Copy(io.Discard, lit)
			return nil
		}
		flags, dropped := appendable(flags)
		if len(dropped) > 0 {
			h.dropped(uid, lit.Size(), date, dropped)
		}
		if err := ap.append(uid, lit, flags, date, h.onDone); err != nil {
			return stop(lit, err)
		}
		return nil
	}
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var uid imap.UID
		var flags []imap.Flag
		var date time.Time
		haveFlags := false
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataFlags:
				flags, haveFlags = it.Flags, true
			case imapclient.FetchItemDataInternalDate:
				date = it.Time
			case imapclient.FetchItemDataBodySection:
				if err := stream(uid, it.Literal, flags, haveFlags, date); err != nil {
					return err
				}
			case imapclient.FetchItemDataBinarySection:
				if err := stream(uid, it.Literal, flags, haveFlags, date); err != nil {
					return err
				}
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return classify(err, "fetch bodies")
	}
	return nil
}

// abortError is a failed APPEND stream; sourceBroken says the source
// connection failed (its FETCH cannot be drained).
type abortError struct {
	sourceBroken bool
	err          error
}

func (e *abortError) Error() string { return e.err.Error() }
func (e *abortError) Unwrap() error { return e.err }

// appendable drops the flags no server takes in APPEND (\Recent) and
// keywords that arrived with 8-bit bytes (escaped by cleanConn: they would
// not be the owner's keyword), returning the keywords dropped.
func appendable(flags []imap.Flag) ([]imap.Flag, []string) {
	var dropped []string
	out := flags[:0:0]
	for _, f := range withoutRecent(flags) {
		if keywordHas8Bit(string(f)) {
			dropped = append(dropped, string(f))
			continue
		}
		out = append(out, f)
	}
	return out, dropped
}

// countingReader remembers whether reading the source failed, and hashes
// what it streams: the message's content hash costs no extra read.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
	h   hash.Hash
	// had80 is set when a 0x80 byte passed: where the source had a NUL
	// byte, BODY[] serves 0x80 (restoreNULs).
	had80 bool
	// norm, when set, hashes the normalized bytes too (Digests).
	norm *normWriter
}

func newCountingReader(r io.Reader, norm bool) *countingReader {
	c := &countingReader{r: r, h: sha256.New()}
	if norm {
		c.norm = &normWriter{h: sha256.New()}
	}
	return c
}

// sums puts the hashes of what was read into p.
func (c *countingReader) sums(p *pendingAppend) {
	c.h.Sum(p.sum[:0])
	if c.norm != nil {
		c.norm.h.Sum(p.norm[:0])
	}
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.h.Write(p[:n])
	if c.norm != nil {
		_, _ = c.norm.Write(p[:n])
	}
	if !c.had80 && bytes.IndexByte(p[:n], 0x80) >= 0 {
		c.had80 = true
	}
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// appender streams messages into APPENDs on one destination connection and
// keeps up to inflight of them waiting for their tagged response, so the
// next message's transfer overlaps the previous one's completion.
type appender struct {
	d        *conn
	raw      *rawConn // LITERAL+ pipeline, when the destination allows it
	dest     string
	inflight int
	// binary: bodies come from BINARY[] and go out as literal8 (raw
	// appender only).
	binary bool
	// norm: each message's normalized bytes are hashed too, for verify
	// (Options.Digests).
	norm    bool
	pending []pendingAppend
	// partial is set when a literal was cut short: the connection must
	// be dropped, never reused.
	partial bool
	// multi is how many messages one MULTIAPPEND (RFC 3502) carries on
	// the raw connection (0 or 1: an APPEND each); open is the one being
	// written. The destination stores a MULTIAPPEND in one transaction:
	// measured on the lab Dovecot, 200 messages of 30 KiB in batches of
	// 50 cost it a third of the CPU of 200 APPENDs, in half the time.
	multi int
	open  *multiBatch
	buf   []byte // the message being added to open
}

// Messages and bytes that close a MULTIAPPEND: past about 50 messages
// the destination saves nothing more (measured), and a batch the
// destination refuses is sent again message by message.
// A message goes into a batch only up to multiAppendRead bytes (it is read
// whole first: a worker holds at most that much of a message per
// connection pair); a larger one goes in an APPEND of its own, streamed.
const (
	multiAppendMessages = 50
	multiAppendBytes    = 4 << 20
	multiAppendRead     = 1 << 20
)

// multiBatch is a MULTIAPPEND being written, or waiting for its answer.
type multiBatch struct {
	ch     chan rawResult
	n      int
	bytes  int64
	closed bool
	// The answer, once read: one for every message of the batch.
	got  bool
	res  rawResult
	err  error
	uids []imap.UID
}

// settleWait bounds how long an aborting copy waits for the answers to
// APPENDs it already sent.
const settleWait = 30 * time.Second

// settle is the abort path: every APPEND already sent is answered (and
// checkpointed) before the copy gives up, so none can land on the
// destination after the next attempt has looked at it; a connection with a
// cut literal is then dropped, which makes the server discard that one.
func (a *appender) settle(onDone func(pendingAppend, imap.UID, error) error) {
	for len(a.pending) > 0 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = a.waitOne(onDone)
		}()
		select {
		case <-done:
		case <-time.After(settleWait):
			// The server does not answer: cut the connections; what it
			// did commit is found by fingerprint next time.
			a.dropConns()
			<-done
		}
	}
	if a.partial {
		a.dropConns()
	}
}

func (a *appender) dropConns() {
	if a.raw != nil {
		_ = a.raw.c.Close()
	} else {
		_ = a.d.Client.Close()
	}
}

type pendingAppend struct {
	uid   imap.UID
	size  int64
	date  time.Time
	flags []imap.Flag
	sum   [32]byte // SHA-256 of the bytes sent
	// norm is the SHA-256 of their normalized form (with appender.norm).
	norm  [32]byte
	had80 bool // a 0x80 byte was sent (perhaps a NUL served as 0x80)
	cmd   *imapclient.AppendCommand
	rawCh chan rawResult
	// batch is the MULTIAPPEND the message went in (nil: its own
	// APPEND), index its place there.
	batch *multiBatch
	index int
}

// batched tells whether the message went with others in one MULTIAPPEND:
// a refusal of the batch then says nothing about this message.
func (p pendingAppend) batched() bool { return p.batch != nil && p.batch.n > 1 }

func (a *appender) append(uid imap.UID, body imap.LiteralReader, flags []imap.Flag, date time.Time, onDone func(pendingAppend, imap.UID, error) error) error {
	size := body.Size()
	if a.raw != nil && a.multi > 1 && size <= multiAppendRead {
		return a.appendBatched(uid, body, flags, date, onDone)
	}
	if a.raw != nil {
		// Alone (no MULTIAPPEND, or too large to read first): after the
		// MULTIAPPEND being written, if any.
		if err := a.closeOpen(); err != nil {
			return fmt.Errorf("stream message %d into %q: %w", uid, a.dest, err)
		}
		src := newCountingReader(io.LimitReader(body, size), a.norm)
		ch, err := a.raw.start(appendCmd(a.dest, flags, date, size, a.binary), src)
		short := err == nil && src.n != size
		if short {
			err = fmt.Errorf("source sent %d of %d bytes", src.n, size)
		}
		if err != nil {
			// The literal is cut short; settle closes the connection once
			// the APPENDs before it are answered, and the server discards
			// this one.
			a.partial = true
			return &abortError{sourceBroken: short || src.err != nil, err: fmt.Errorf("stream message %d into %q: %w", uid, a.dest, err)}
		}
		p := pendingAppend{uid: uid, size: size, date: date, flags: flags, rawCh: ch, had80: src.had80}
		src.sums(&p)
		a.pending = append(a.pending, p)
		return a.waitUpTo(onDone)
	}
	cmd := a.d.Append(a.dest, size, &imap.AppendOptions{Flags: flags, Time: date})
	src := newCountingReader(body, a.norm)
	n, err := io.Copy(cmd, src)
	short := err == nil && n != size
	if short {
		err = fmt.Errorf("source sent %d of %d bytes", n, size)
	}
	if err != nil {
		// Never finish a short literal: the server would store a truncated
		// message. settle drops the connection mid-literal once the APPENDs
		// before it are answered, so the server discards this one; the
		// retry resumes from the checkpoint.
		a.partial = true
		return &abortError{sourceBroken: short || src.err != nil, err: fmt.Errorf("stream message %d into %q: %w", uid, a.dest, err)}
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("stream message %d into %q: %w", uid, a.dest, err)
	}
	p := pendingAppend{uid: uid, size: size, date: date, flags: flags, cmd: cmd, had80: src.had80}
	src.sums(&p)
	a.pending = append(a.pending, p)
	for len(a.pending) > a.inflight {
		if err := a.waitOne(onDone); err != nil {
			return err
		}
	}
	return nil
}

// appendBatched adds a message to the MULTIAPPEND being written (starting
// one if none is). The message is read whole first: a source that breaks
// in the middle of it then breaks before any of it went out, and the
// MULTIAPPEND ends cleanly without it, so the messages before it are
// stored and checkpointed and a retry goes on from there (a MULTIAPPEND
// cut short would be discarded whole, and a source that keeps breaking
// would never see a batch through).
func (a *appender) appendBatched(uid imap.UID, body imap.LiteralReader, flags []imap.Flag, date time.Time, onDone func(pendingAppend, imap.UID, error) error) error {
	size := body.Size()
	src := newCountingReader(io.LimitReader(body, size), a.norm)
	buf := bytes.NewBuffer(a.buf[:0])
	_, err := buf.ReadFrom(src)
	a.buf = buf.Bytes()
	if err == nil && int64(buf.Len()) != size {
		err = fmt.Errorf("source sent %d of %d bytes", buf.Len(), size)
	}
	if err != nil {
		if cerr := a.closeOpen(); cerr != nil {
			a.partial = true
		}
		return &abortError{sourceBroken: true, err: fmt.Errorf("read message %d for %q: %w", uid, a.dest, err)}
	}
	if a.open == nil {
		ch, err := a.raw.begin("APPEND " + literal(utf7Encode(a.dest)))
		if err != nil {
			return fmt.Errorf("stream message %d into %q: %w", uid, a.dest, err)
		}
		a.open = &multiBatch{ch: ch}
	}
	b := a.open
	if err := a.raw.part(appendItem(flags, date, size, a.binary), bytes.NewReader(buf.Bytes())); err != nil {
		// The destination's connection failed mid-literal: the server
		// stores none of the batch.
		a.partial = true
		a.dropOpen()
		return &abortError{err: fmt.Errorf("stream message %d into %q: %w", uid, a.dest, err)}
	}
	p := pendingAppend{uid: uid, size: size, date: date, flags: flags, rawCh: b.ch, had80: src.had80, batch: b, index: b.n}
	src.sums(&p)
	b.n++
	b.bytes += size
	a.pending = append(a.pending, p)
	if b.n >= a.multi || b.bytes >= multiAppendBytes {
		if err := a.closeOpen(); err != nil {
			return fmt.Errorf("stream message %d into %q: %w", uid, a.dest, err)
		}
	}
	return a.waitUpTo(onDone)
}

// waitUpTo waits for answers until at most inflight messages wait for
// theirs (two MULTIAPPENDs' worth when batching).
func (a *appender) waitUpTo(onDone func(pendingAppend, imap.UID, error) error) error {
	for len(a.pending) > max(a.inflight, 2*a.multi) {
		if err := a.waitOne(onDone); err != nil {
			return err
		}
	}
	return nil
}

// closeOpen ends the MULTIAPPEND being written: the server stores its
// messages when it reads the end.
func (a *appender) closeOpen() error {
	b := a.open
	if b == nil {
		return nil
	}
	a.open = nil
	b.closed = true
	return a.raw.end()
}

// dropOpen forgets the MULTIAPPEND being written when its stream broke:
// the connection is dropped, and the server stores none of it.
func (a *appender) dropOpen() {
	b := a.open
	if b == nil {
		return
	}
	a.open = nil
	a.pending = slices.DeleteFunc(a.pending, func(p pendingAppend) bool { return p.batch == b })
}

func (a *appender) waitOne(onDone func(pendingAppend, imap.UID, error) error) error {
	p := a.pending[0]
	a.pending = a.pending[1:]
	if b := p.batch; b != nil {
		if !b.got {
			if !b.closed {
				if err := a.closeOpen(); err != nil {
					return onDone(p, 0, err)
				}
			}
			if err := a.raw.flush(); err != nil {
				return onDone(p, 0, err)
			}
			b.res, b.err = a.raw.wait(b.ch)
			b.got = true
			if b.err == nil && b.res.ok {
				b.uids = b.res.appendUIDs(b.n)
			}
			if b.err == nil && !b.res.ok && b.n > 1 {
				// Refused as a whole: its messages go again one by one
				// (copyFolder), and the folder's next ones in APPENDs
				// of their own.
				a.multi = 1
			}
		}
		err := b.err
		if err == nil {
			err = b.res.err()
		}
		var uid imap.UID
		if b.uids != nil {
			uid = b.uids[p.index]
		}
		return onDone(p, uid, err)
	}
	if p.rawCh != nil {
		if err := a.raw.flush(); err != nil {
			return onDone(p, 0, err)
		}
		res, err := a.raw.wait(p.rawCh)
		if err == nil {
			err = res.err()
		}
		return onDone(p, res.appendUID(), err)
	}
	data, err := p.cmd.Wait()
	var uid imap.UID
	if data != nil {
		uid = data.UID
	}
	return onDone(p, uid, err)
}

func (a *appender) drain(onDone func(pendingAppend, imap.UID, error) error) error {
	for len(a.pending) > 0 {
		if err := a.waitOne(onDone); err != nil {
			return err
		}
	}
	return nil
}
