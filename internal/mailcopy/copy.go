package mailcopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"go.uber.org/zap"
)

// Checkpoint is how far a folder has been copied: every source message with
// a UID up to LastUID under UIDValidity is on the destination (or reported
// as skipped).
type Checkpoint struct {
	UIDValidity uint32 `json:"v"`
	LastUID     uint32 `json:"u"`
}

// Options tune a copy.
type Options struct {
	// Connections is the number of source/destination connection pairs.
	// Folders are split across them, never one destination folder across
	// two (the destination would rescan it for each). Default 2: measured
	// best on 2 cores against Dovecot.
	Connections int
	Folders     MapOptions
	// MaxMessageBytes is the destination's size limit (0: the server's
	// APPENDLIMIT if it announces one, else none). Larger messages are
	// skipped and reported, never silently.
	MaxMessageBytes int64
	// Checkpoints by source folder name, from an earlier attempt or pass.
	Checkpoints map[string]Checkpoint
	// InFlight is how many APPENDs may wait for their completion at once
	// on one connection.
	InFlight int
	// BatchSize is the number of messages per source FETCH.
	BatchSize int
	// NoPipelining turns LITERAL+ APPEND pipelining off (go-imap appends,
	// one round trip each).
	NoPipelining bool
	// OnProgress is called after every message with a snapshot, one call
	// at a time; it must be quick (the activity turns it into a heartbeat).
	OnProgress func(Progress)
	Logger     *zap.Logger
}

func (o *Options) defaults() {
	if o.Connections <= 0 {
		o.Connections = 2
	}
	if o.InFlight <= 0 {
		o.InFlight = 32
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Skip is a message that was not copied, and why.
type Skip struct {
	Folder    string `json:"folder"`
	UID       uint32 `json:"uid"`
	Size      int64  `json:"size"`
	MessageID string `json:"messageId,omitempty"`
	Reason    string `json:"reason"`
}

// FolderResult is what happened to one folder.
type FolderResult struct {
	Source      string `json:"source"`
	Dest        string `json:"dest"`
	Role        string `json:"role,omitempty"`
	Note        string `json:"note,omitempty"`
	UIDValidity uint32 `json:"uidValidity"`
	// Rescanned is set when the source's UIDVALIDITY changed since the
	// checkpoint and the folder was matched by fingerprint.
	Rescanned bool   `json:"rescanned,omitempty"`
	Copied    int    `json:"copied"`
	Present   int    `json:"present"`
	Skipped   []Skip `json:"skipped,omitempty"`
	Bytes     int64  `json:"bytes"`
}

// Result is the outcome of a copy.
type Result struct {
	Folders     []FolderResult        `json:"folders"`
	Checkpoints map[string]Checkpoint `json:"checkpoints"`
	Copied      int                   `json:"copied"`
	Present     int                   `json:"present"`
	Skipped     int                   `json:"skipped"`
	Bytes       int64                 `json:"bytes"`
	Duration    time.Duration         `json:"duration"`
}

// Progress is a snapshot of a running copy.
type Progress struct {
	FoldersDone  int
	FoldersTotal int
	Copied       int
	Present      int
	Skipped      int
	Bytes        int64
	Checkpoints  map[string]Checkpoint
}

// Copy copies every selected folder and message of src to dst.
func Copy(ctx context.Context, src, dst Endpoint, opts Options) (*Result, error) {
	opts.defaults()
	start := time.Now()
	s, err := dial(ctx, src)
	if err != nil {
		return nil, err
	}
	d, err := dial(ctx, dst)
	if err != nil {
		s.close()
		return nil, err
	}
	mappings, err := planFolders(s, d, opts.Folders)
	if err != nil {
		s.close()
		d.close()
		return nil, err
	}
	if err := createFolders(d, mappings); err != nil {
		s.close()
		d.close()
		return nil, err
	}
	limit := opts.MaxMessageBytes
	if l, ok := d.Caps().AppendLimit(); ok && l != nil && (limit == 0 || int64(*l) < limit) {
		limit = int64(*l)
	}

	// Largest folders first: the biggest folder is the critical path.
	type job struct {
		m     Mapping
		count uint32
	}
	var jobs []job
	for _, m := range mappings {
		if m.NoSelect {
			continue
		}
		st, err := s.Status(m.Source, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			s.close()
			d.close()
			return nil, classify(err, fmt.Sprintf("status of %q", m.Source))
		}
		var n uint32
		if st.NumMessages != nil {
			n = *st.NumMessages
		}
		jobs = append(jobs, job{m, n})
	}
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].count > jobs[j].count })

	tr := &tracker{opts: opts, cps: map[string]Checkpoint{}, total: len(jobs)}
	for k, v := range opts.Checkpoints {
		tr.cps[k] = v
	}
	queue := make(chan job, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)

	// LITERAL+ lets APPENDs stream without waiting for the server's "+";
	// go-imap cannot, so a raw connection does the appending.
	useRaw := d.Caps().Has(imap.CapLiteralPlus) && !opts.NoPipelining && !dst.UseSASLAuthz
	workers := opts.Connections
	if workers > len(jobs) {
		workers = max(len(jobs), 1)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	results := make([]FolderResult, 0, len(jobs))
	var resMu sync.Mutex
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var sc, dc *conn
			if w == 0 {
				sc, dc = s, d
			} else {
				var err error
				if sc, err = dial(ctx, src); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				if dc, err = dial(ctx, dst); err != nil {
					sc.close()
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
			}
			defer sc.close()
			defer dc.close()
			var raw *rawConn
			defer func() {
				if raw != nil {
					raw.close()
				}
			}()
			for j := range queue {
				if ctx.Err() != nil {
					return
				}
				if raw == nil && useRaw {
					// One LITERAL+ connection per worker, made on first use
					// and again after a failure; without it, go-imap appends.
					if rc, err := dialRaw(dst); err == nil {
						raw = rc
					} else if _, perm := IsPermanent(err); perm {
						errOnce.Do(func() { firstErr = err; cancel() })
						return
					}
				}
				fr, err := copyFolder(ctx, sc, dc, raw, j.m, tr, limit)
				if err != nil {
					if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
						err = fmt.Errorf("%w (%v)", ctx.Err(), err)
					}
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				resMu.Lock()
				results = append(results, fr)
				resMu.Unlock()
				tr.folderDone()
			}
		}(w)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Dest < results[j].Dest })
	res := &Result{Folders: results, Checkpoints: tr.snapshot().Checkpoints, Duration: time.Since(start)}
	for _, f := range results {
		res.Copied += f.Copied
		res.Present += f.Present
		res.Skipped += len(f.Skipped)
		res.Bytes += f.Bytes
	}
	return res, nil
}

// tracker aggregates progress across workers.
type tracker struct {
	mu    sync.Mutex
	cbMu  sync.Mutex // serializes OnProgress calls
	opts  Options
	cps   map[string]Checkpoint
	total int
	done  int
	p     Progress
}

func (t *tracker) checkpoint(folder string) (Checkpoint, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cp, ok := t.cps[folder]
	return cp, ok
}

func (t *tracker) update(folder string, cp Checkpoint, f func(p *Progress)) {
	t.mu.Lock()
	t.cps[folder] = cp
	if f != nil {
		f(&t.p)
	}
	snap := t.snapshotLocked()
	t.mu.Unlock()
	t.report(snap)
}

func (t *tracker) folderDone() {
	t.mu.Lock()
	t.done++
	snap := t.snapshotLocked()
	t.mu.Unlock()
	t.report(snap)
}

func (t *tracker) report(p Progress) {
	if t.opts.OnProgress == nil {
		return
	}
	t.cbMu.Lock()
	defer t.cbMu.Unlock()
	t.opts.OnProgress(p)
}

func (t *tracker) snapshot() Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.snapshotLocked()
}

func (t *tracker) snapshotLocked() Progress {
	p := t.p
	p.FoldersDone, p.FoldersTotal = t.done, t.total
	p.Checkpoints = make(map[string]Checkpoint, len(t.cps))
	for k, v := range t.cps {
		p.Checkpoints[k] = v
	}
	return p
}

// listFolders lists a server's folders with attributes and subscriptions,
// and its personal namespace.
func listFolders(c *conn) ([]Folder, Namespace, error) {
	ns := Namespace{}
	if c.Caps().Has(imap.CapNamespace) {
		nd, err := c.Namespace().Wait()
		if err != nil {
			return nil, ns, classify(err, "namespace")
		}
		if len(nd.Personal) > 0 {
			ns = Namespace{Prefix: nd.Personal[0].Prefix, Delim: nd.Personal[0].Delim}
		}
	}
	opts := &imap.ListOptions{}
	if c.Caps().Has(imap.CapSpecialUse) {
		opts.ReturnSpecialUse = true
	}
	list, err := c.List("", "*", opts).Collect()
	if err != nil {
		return nil, ns, classify(err, "list folders")
	}
	subs, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil {
		// LIST-EXTENDED is optional; without it subscriptions are not kept.
		subs = nil
	}
	subscribed := map[string]bool{}
	for _, l := range subs {
		subscribed[l.Mailbox] = true
	}
	var out []Folder
	for _, l := range list {
		out = append(out, Folder{Name: l.Mailbox, Delim: l.Delim, Attrs: l.Attrs, Subscribed: subscribed[l.Mailbox]})
		if ns.Delim == 0 && l.Delim != 0 {
			ns.Delim = l.Delim
		}
	}
	return out, ns, nil
}

func planFolders(s, d *conn, mo MapOptions) ([]Mapping, error) {
	sf, sns, err := listFolders(s)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	df, dns, err := listFolders(d)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	m, err := MapFolders(sf, sns, df, dns, mo)
	if err != nil {
		return nil, &PermanentError{Kind: KindBadConfig, Err: err}
	}
	return m, nil
}

// createFolders creates the missing destination folders, parents first,
// and subscribes what the source had subscribed.
func createFolders(d *conn, ms []Mapping) error {
	existing, _, err := listFolders(d)
	if err != nil {
		return err
	}
	have := map[string]bool{"INBOX": true}
	subscribed := map[string]bool{}
	for _, f := range existing {
		have[f.Name] = true
		subscribed[f.Name] = f.Subscribed
	}
	for _, m := range ms {
		if !have[m.Dest] {
			if err := d.Create(m.Dest, nil).Wait(); err != nil {
				var ie *imap.Error
				if !(errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists) {
					return classify(err, fmt.Sprintf("create %q", m.Dest))
				}
			}
			have[m.Dest] = true
		}
		if m.Subscribed && !subscribed[m.Dest] {
			if err := d.Subscribe(m.Dest).Wait(); err != nil {
				return classify(err, fmt.Sprintf("subscribe %q", m.Dest))
			}
		}
	}
	return nil
}

// copyFolder copies the messages of one folder past its checkpoint.
func copyFolder(ctx context.Context, s, d *conn, raw *rawConn, m Mapping, tr *tracker, limit int64) (FolderResult, error) {
	fr := FolderResult{Source: m.Source, Dest: m.Dest, Role: m.Role, Note: m.Note}
	sel, err := s.Select(m.Source, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fr, classify(err, fmt.Sprintf("select source %q", m.Source))
	}
	fr.UIDValidity = sel.UIDValidity
	cp, had := tr.checkpoint(m.Source)
	if had && cp.UIDValidity != sel.UIDValidity {
		// The source renumbered the folder: the checkpoint means nothing
		// now; fingerprints decide what is already there.
		fr.Rescanned = true
		cp = Checkpoint{UIDValidity: sel.UIDValidity}
	}
	cp.UIDValidity = sel.UIDValidity
	if sel.NumMessages == 0 {
		tr.update(m.Source, cp, nil)
		return fr, nil
	}
	// Only UIDs past the checkpoint are candidates. "n:*" always matches the
	// highest UID, so filter.
	srch, err := s.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: imap.UID(cp.LastUID + 1), Stop: 0}}}}, nil).Wait()
	if err != nil {
		return fr, classify(err, fmt.Sprintf("search %q", m.Source))
	}
	var uids imap.UIDSet
	for _, u := range srch.AllUIDs() {
		if uint32(u) > cp.LastUID {
			uids.AddNum(u)
		}
	}
	if len(uids) == 0 {
		tr.update(m.Source, cp, nil)
		return fr, nil
	}
	dsel, err := d.Select(m.Dest, nil).Wait()
	if err != nil {
		return fr, classify(err, fmt.Sprintf("select destination %q", m.Dest))
	}
	// Messages already on the destination (an earlier attempt that died
	// between APPEND and checkpoint, a rescan, a re-run) are matched by
	// fingerprint and not copied again. Into an empty folder nothing can be
	// a duplicate, so the source's metadata pass is skipped: the bodies'
	// own sizes decide the size limit.
	present := multiset{}
	var srcMeta []meta
	if dsel.NumMessages > 0 {
		dm, err := scanMeta(d, imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}})
		if err != nil {
			return fr, classify(err, fmt.Sprintf("scan destination %q", m.Dest))
		}
		present = fingerprints(dm)
		if srcMeta, err = scanMeta(s, uids); err != nil {
			return fr, classify(err, fmt.Sprintf("scan %q", m.Source))
		}
	} else {
		all, _ := uids.Nums()
		for _, u := range all {
			srcMeta = append(srcMeta, meta{UID: u})
		}
	}
	sort.Slice(srcMeta, func(i, j int) bool { return srcMeta[i].UID < srcMeta[j].UID })

	var todo []meta
	var todoSet imap.UIDSet
	for _, mm := range srcMeta {
		switch {
		case len(present) > 0 && present.take(mm.Fingerprint()):
			fr.Present++
		case limit > 0 && mm.Size > limit:
			fr.Skipped = append(fr.Skipped, Skip{Folder: m.Source, UID: uint32(mm.UID), Size: mm.Size, MessageID: mm.MessageID,
				Reason: fmt.Sprintf("%d bytes is over the destination's limit of %d bytes", mm.Size, limit)})
		default:
			todo = append(todo, mm)
			todoSet.AddNum(mm.UID)
		}
	}
	tr.update(m.Source, cp, func(p *Progress) { p.Present += fr.Present; p.Skipped += len(fr.Skipped) })
	if len(todo) == 0 {
		cp.LastUID = uint32(srcMeta[len(srcMeta)-1].UID)
		tr.update(m.Source, cp, nil)
		return fr, nil
	}
	byUID := make(map[imap.UID]meta, len(todo))
	for _, mm := range todo {
		byUID[mm.UID] = mm
	}
	// The checkpoint may only pass a UID once every lower candidate is done;
	// skipped and present ones count as done.
	order := make([]imap.UID, 0, len(srcMeta))
	for _, mm := range srcMeta {
		order = append(order, mm.UID)
	}
	ap := &appender{d: d, dest: m.Dest, inflight: tr.opts.InFlight}
	if raw != nil {
		if err := raw.selectFolder(m.Dest); err != nil {
			return fr, fmt.Errorf("select destination %q: %w", m.Dest, err)
		}
		ap.raw = raw
	}
	next := 0 // index in order of the lowest UID not yet confirmed
	confirmed := map[imap.UID]bool{}
	advance := func() {
		for next < len(order) {
			u := order[next]
			if _, pending := byUID[u]; pending && !confirmed[u] {
				break
			}
			cp.LastUID = uint32(u)
			next++
		}
	}
	onDone := func(u imap.UID, size int64, err error) error {
		if err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) && (ie.Code == imap.ResponseCodeLimit || ie.Code == imap.ResponseCodeTooBig) {
				mm := byUID[u]
				fr.Skipped = append(fr.Skipped, Skip{Folder: m.Source, UID: uint32(u), Size: mm.Size, MessageID: mm.MessageID,
					Reason: "refused by the destination: " + ie.Text})
				confirmed[u] = true
				advance()
				tr.update(m.Source, cp, func(p *Progress) { p.Skipped++ })
				return nil
			}
			return classify(err, fmt.Sprintf("append to %q", m.Dest))
		}
		confirmed[u] = true
		fr.Copied++
		fr.Bytes += size
		advance()
		tr.update(m.Source, cp, func(p *Progress) { p.Copied++; p.Bytes += size })
		return nil
	}

	// tooBig skips a message the destination cannot take, found from its
	// body's size when no metadata pass ran.
	tooBig := func(u imap.UID, size int64) bool {
		if limit <= 0 || size <= limit {
			return false
		}
		fr.Skipped = append(fr.Skipped, Skip{Folder: m.Source, UID: uint32(u), Size: size, MessageID: byUID[u].MessageID,
			Reason: fmt.Sprintf("%d bytes is over the destination's limit of %d bytes", size, limit)})
		confirmed[u] = true
		advance()
		tr.update(m.Source, cp, func(p *Progress) { p.Skipped++ })
		return true
	}

	// Fetch bodies in batches so one FETCH never spans the whole folder.
	for i := 0; i < len(todo); i += tr.opts.BatchSize {
		end := min(i+tr.opts.BatchSize, len(todo))
		var batch imap.UIDSet
		for _, mm := range todo[i:end] {
			batch.AddNum(mm.UID)
		}
		if err := streamBatch(ctx, s, batch, byUID, ap, onDone, tooBig); err != nil {
			ap.settle(func(u imap.UID, size int64, err error) error {
				if err == nil {
					return onDone(u, size, nil)
				}
				return nil
			})
			return fr, err
		}
	}
	if err := ap.drain(onDone); err != nil {
		ap.settle(func(imap.UID, int64, error) error { return nil })
		return fr, err
	}
	advance()
	tr.update(m.Source, cp, nil)
	return fr, nil
}

// streamBatch FETCHes the bodies of batch and streams each into an APPEND.
func streamBatch(ctx context.Context, s *conn, batch imap.UIDSet, byUID map[imap.UID]meta, ap *appender, onDone func(imap.UID, int64, error) error, tooBig func(imap.UID, int64) bool) error {
	cmd := s.Fetch(batch, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
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
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		var uid imap.UID
		var flags []imap.Flag
		var date time.Time
		haveFlags := false
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataFlags:
				flags, haveFlags = it.Flags, true
			case imapclient.FetchItemDataInternalDate:
				date = it.Time
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil {
					continue
				}
				mm, ok := byUID[uid]
				if !ok {
					// Servers send UID first; a body without a known UID is
					// not ours to copy.
					_, _ = io.Copy(io.Discard, it.Literal)
					continue
				}
				if err := ctx.Err(); err != nil {
					return stop(it.Literal, err)
				}
				if tooBig(uid, it.Literal.Size()) {
					_, _ = io.Copy(io.Discard, it.Literal)
					continue
				}
				if !haveFlags {
					flags = mm.Flags
				}
				if date.IsZero() {
					date = mm.Date
				}
				if err := ap.append(uid, it.Literal, withoutRecent(flags), date, onDone); err != nil {
					return stop(it.Literal, err)
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

// countingReader remembers whether reading the source failed.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
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
	pending  []pendingAppend
	// partial is set when a literal was cut short: the connection must
	// be dropped, never reused.
	partial bool
}

// settleWait bounds how long an aborting copy waits for the answers to
// APPENDs it already sent.
const settleWait = 30 * time.Second

// settle is the abort path: every APPEND already sent is answered (and
// checkpointed) before the copy gives up, so none can land on the
// destination after the next attempt has looked at it; a connection with a
// cut literal is then dropped, which makes the server discard that one.
func (a *appender) settle(onDone func(imap.UID, int64, error) error) {
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
	cmd   *imapclient.AppendCommand
	rawCh chan rawResult
}

func (a *appender) append(uid imap.UID, body imap.LiteralReader, flags []imap.Flag, date time.Time, onDone func(imap.UID, int64, error) error) error {
	size := body.Size()
	if a.raw != nil {
		src := &countingReader{r: io.LimitReader(body, size)}
		ch, err := a.raw.start(appendCmd(a.dest, flags, date, size), src)
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
		a.pending = append(a.pending, pendingAppend{uid: uid, size: size, rawCh: ch})
		for len(a.pending) > a.inflight {
			if err := a.waitOne(onDone); err != nil {
				return err
			}
		}
		return nil
	}
	cmd := a.d.Append(a.dest, size, &imap.AppendOptions{Flags: flags, Time: date})
	src := &countingReader{r: body}
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
	a.pending = append(a.pending, pendingAppend{uid: uid, size: size, cmd: cmd})
	for len(a.pending) > a.inflight {
		if err := a.waitOne(onDone); err != nil {
			return err
		}
	}
	return nil
}

func (a *appender) waitOne(onDone func(imap.UID, int64, error) error) error {
	p := a.pending[0]
	a.pending = a.pending[1:]
	if p.rawCh != nil {
		if err := a.raw.flush(); err != nil {
			return onDone(p.uid, p.size, err)
		}
		res, err := a.raw.wait(p.rawCh)
		if err == nil && !res.ok {
			err = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCode(res.code), Text: res.text}
		}
		return onDone(p.uid, p.size, err)
	}
	_, err := p.cmd.Wait()
	return onDone(p.uid, p.size, err)
}

func (a *appender) drain(onDone func(imap.UID, int64, error) error) error {
	for len(a.pending) > 0 {
		if err := a.waitOne(onDone); err != nil {
			return err
		}
	}
	return nil
}

// FolderVerify is the verification of one folder.
type FolderVerify struct {
	Source      string `json:"source"`
	Dest        string `json:"dest"`
	SourceCount int    `json:"sourceCount"`
	DestCount   int    `json:"destCount"`
	// Missing lists source messages without a fingerprint match on the
	// destination that were not reported as skipped for their size.
	Missing []Skip `json:"missing,omitempty"`
	// OverLimit lists source messages the destination cannot take.
	OverLimit []Skip `json:"overLimit,omitempty"`
}

// VerifyResult is the outcome of a verification.
type VerifyResult struct {
	Folders []FolderVerify `json:"folders"`
	Missing int            `json:"missing"`
	Checked int            `json:"checked"`
}

// OK reports whether every source message is on the destination, except
// those over the destination's size limit, which are listed.
func (v *VerifyResult) OK() bool { return v.Missing == 0 }

// Verify checks that every message of every selected source folder has a
// fingerprint match in its destination folder.
func Verify(ctx context.Context, src, dst Endpoint, opts Options) (*VerifyResult, error) {
	opts.defaults()
	s, err := dial(ctx, src)
	if err != nil {
		return nil, err
	}
	defer s.close()
	d, err := dial(ctx, dst)
	if err != nil {
		return nil, err
	}
	defer d.close()
	mappings, err := planFolders(s, d, opts.Folders)
	if err != nil {
		return nil, err
	}
	limit := opts.MaxMessageBytes
	if l, ok := d.Caps().AppendLimit(); ok && l != nil && (limit == 0 || int64(*l) < limit) {
		limit = int64(*l)
	}
	res := &VerifyResult{}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	for _, m := range mappings {
		if m.NoSelect {
			continue
		}
		fv := FolderVerify{Source: m.Source, Dest: m.Dest}
		sel, err := s.Select(m.Source, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return nil, classify(err, fmt.Sprintf("select source %q", m.Source))
		}
		var sm []meta
		if sel.NumMessages > 0 {
			if sm, err = scanMeta(s, all); err != nil {
				return nil, classify(err, fmt.Sprintf("scan %q", m.Source))
			}
		}
		dsel, err := d.Select(m.Dest, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo && len(sm) > 0 {
				// The folder is not there at all: everything is missing.
				dsel = &imap.SelectData{}
			} else if len(sm) > 0 {
				return nil, classify(err, fmt.Sprintf("select destination %q", m.Dest))
			} else {
				dsel = &imap.SelectData{}
			}
		}
		have := multiset{}
		if dsel.NumMessages > 0 {
			dm, err := scanMeta(d, all)
			if err != nil {
				return nil, classify(err, fmt.Sprintf("scan destination %q", m.Dest))
			}
			have = fingerprints(dm)
			fv.DestCount = len(dm)
		}
		fv.SourceCount = len(sm)
		for _, mm := range sm {
			if have.take(mm.Fingerprint()) {
				continue
			}
			sk := Skip{Folder: m.Source, UID: uint32(mm.UID), Size: mm.Size, MessageID: mm.MessageID}
			if limit > 0 && mm.Size > limit {
				sk.Reason = fmt.Sprintf("%d bytes is over the destination's limit of %d bytes", mm.Size, limit)
				fv.OverLimit = append(fv.OverLimit, sk)
				continue
			}
			sk.Reason = "no message with the same fingerprint on the destination"
			fv.Missing = append(fv.Missing, sk)
		}
		res.Checked += len(sm)
		res.Missing += len(fv.Missing)
		res.Folders = append(res.Folders, fv)
	}
	return res, nil
}

// MissingSummary names the first few missing messages, for an operator.
func (v *VerifyResult) MissingSummary() string {
	var parts []string
	for _, f := range v.Folders {
		if len(f.Missing) > 0 {
			parts = append(parts, fmt.Sprintf("%q: %d missing (first UID %d)", f.Source, len(f.Missing), f.Missing[0].UID))
		}
	}
	return strings.Join(parts, "; ")
}
