package mailcopy

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	// DestUIDValidity and Map record which destination message each copied
	// source message became (APPENDUID), as ranges.
	DestUIDValidity uint32        `json:"dv,omitempty"`
	Map             []UIDMapRange `json:"m,omitempty"`
	// Dest is the destination folder (a replay needs it once the source
	// folder is gone); ModSeq the source's HIGHESTMODSEQ as of which every
	// copied message's flags are on the destination (0: unknown), where
	// the source announces CONDSTORE (replay.go).
	Dest   string `json:"dn,omitempty"`
	ModSeq uint64 `json:"ms,omitempty"`
}

// clone returns cp with a map of its own.
func (cp Checkpoint) clone() Checkpoint {
	cp.Map = slices.Clone(cp.Map)
	return cp
}

// DefaultMessagesPerPair is how many messages to copy make one more
// connection pair worth its logins, unless Options say otherwise.
const DefaultMessagesPerPair = 1000

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
	// MessagesPerPair is how many messages to copy make one more
	// connection pair worth its logins (up to Connections): a small
	// mailbox or a delta with little new mail copies on one pair.
	MessagesPerPair int
	// NoPipelining turns LITERAL+ APPEND pipelining off (go-imap appends,
	// one round trip each).
	NoPipelining bool
	// NoMultiAppend sends every message in an APPEND of its own, also to
	// a destination that announces MULTIAPPEND.
	NoMultiAppend bool
	// OnProgress is called after every message with a snapshot, one call
	// at a time; it must be quick (the activity turns it into a heartbeat).
	OnProgress func(Progress)
	Logger     *zap.Logger
	// Locale is the owner's language (en, fr, de, es, it): it names the
	// folder where messages refused for their form are preserved.
	Locale string
	// Reported are the items an earlier copy reported (Verify accounts
	// for them instead of calling them missing).
	Reported []Skip
	// Exclude are source messages that stay on the source (exclude.go).
	Exclude []Exclude
	// Session, when set, lends its connection pair to this call and keeps
	// it for the next (session.go).
	Session *Session
	// Digests, when set, keeps the hashes of what a copy streams, and
	// spares a verify that has them reading those messages from the
	// source again (digests.go).
	Digests *Digests
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
	if o.MessagesPerPair <= 0 {
		o.MessagesPerPair = DefaultMessagesPerPair
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
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
	Rescanned bool `json:"rescanned,omitempty"`
	Copied    int  `json:"copied"`
	Present   int  `json:"present"`
	// Skipped are items not on the destination (too big, refused, the
	// folder unreadable or uncreatable).
	Skipped []Skip `json:"skipped,omitempty"`
	// Reported are items on the destination but not exactly as on the
	// source (preserved, altered, keyword dropped, folder renamed) or with
	// nothing to copy (empty).
	Reported []Skip `json:"reported,omitempty"`
	Bytes    int64  `json:"bytes"`
}

// Result is the outcome of a copy.
type Result struct {
	Folders     []FolderResult        `json:"folders"`
	Checkpoints map[string]Checkpoint `json:"checkpoints"`
	Copied      int                   `json:"copied"`
	Present     int                   `json:"present"`
	Skipped     int                   `json:"skipped"`
	// Reported counts the items on the destination that are reported.
	Reported int `json:"reported"`
	// ByReason counts skipped and reported items by category.
	ByReason map[string]int `json:"byReason,omitempty"`
	Bytes    int64          `json:"bytes"`
	Duration time.Duration  `json:"duration"`
}

// Items lists every skipped and reported item, by folder and UID.
func (r *Result) Items() []Skip {
	var out []Skip
	for _, f := range r.Folders {
		out = append(out, f.Skipped...)
		out = append(out, f.Reported...)
	}
	SortItems(out)
	return out
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
func Copy(ctx context.Context, src, dst Endpoint, opts Options) (_ *Result, err error) {
	opts.defaults()
	start := time.Now()
	s, d, err := opts.Session.pair(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	defer func() { opts.Session.failed(err) }()
	mappings, listed, err := planFoldersListed(s, d, opts.Folders)
	if err != nil {
		s.close()
		d.close()
		return nil, err
	}
	// A source folder that is listed but cannot be opened (an on-disk name
	// that is not valid modified UTF-7, a name beginning with "~") is
	// reported, and nothing is created for it on the destination: an
	// empty folder there, perhaps under a safe name, would only puzzle
	// the owner. It still exists as a parent when it has children.
	counts := map[string]uint32{}
	statuses := map[string]*imap.StatusData{}
	unreadable := map[string]Skip{}
	var dropped []Mapping // unreadable, not created
	readable := mappings[:0:0]
	// Every STATUS is sent before the first answer is read: one round
	// trip for all folders. UIDNEXT and UIDVALIDITY come in the same
	// answer: they tell a folder with nothing past its checkpoint without
	// a SELECT.
	statusCmds := make([]*imapclient.StatusCommand, len(mappings))
	for i, m := range mappings {
		if !m.NoSelect {
			statusCmds[i] = s.Status(m.Source, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true})
		}
	}
	for i, m := range mappings {
		if m.NoSelect {
			readable = append(readable, m)
			continue
		}
		st, err := statusCmds[i].Wait()
		if err != nil {
			if !isNo(err) {
				s.close()
				d.close()
				return nil, classify(err, fmt.Sprintf("status of %q", m.Source))
			}
			unreadable[m.Source] = Skip{Folder: m.Source, Category: CatFolderUnreadable,
				Reason: "the source folder cannot be opened: " + errText(err)}
			if !hasPathChild(mappings, m) {
				m.Note = strings.TrimSpace(m.Note + " not created: the source folder cannot be opened")
				dropped = append(dropped, m)
				continue
			}
			m.NoSelect = true
		} else {
			statuses[m.Source] = st
			if st.NumMessages != nil {
				counts[m.Source] = *st.NumMessages
			}
		}
		readable = append(readable, m)
	}
	mappings, folderItems, err := createFoldersListed(d, readable, listed)
	if err != nil {
		s.close()
		d.close()
		return nil, err
	}
	limit := opts.MaxMessageBytes
	if l, ok := d.Caps().AppendLimit(); ok && l != nil && (limit == 0 || int64(*l) < limit) {
		limit = int64(*l)
	}
	// Results of folders that are not copied (unreadable, uncreatable),
	// and items about folders that are (renamed).
	var results []FolderResult
	addFolderItem := func(m Mapping, sk Skip) {
		for i := range results {
			if results[i].Source == m.Source {
				results[i].Skipped = append(results[i].Skipped, sk)
				return
			}
		}
		results = append(results, FolderResult{Source: m.Source, Dest: m.Dest, Role: m.Role, Note: m.Note, Skipped: []Skip{sk}})
	}

	// Largest folders first: the biggest folder is the critical path.
	type job struct {
		m     Mapping
		count uint32
	}
	var jobs []job
	// unchanged are folders with nothing past their checkpoint: a delta
	// pass leaves them alone, without a SELECT on either side.
	var unchanged []FolderResult
	pending := 0 // messages to look at, an upper bound
	for _, m := range mappings {
		if sk, ok := unreadable[m.Source]; ok {
			addFolderItem(m, sk)
			continue
		}
		if sk, ok := folderItems[m.Source]; ok && sk.NotCopied() {
			addFolderItem(m, sk)
			continue
		}
		if m.NoSelect {
			continue
		}
		if n, ok := pastCheckpoint(statuses[m.Source], opts.Checkpoints, m.Source); ok {
			if n == 0 {
				unchanged = append(unchanged, FolderResult{Source: m.Source, Dest: m.Dest, Role: m.Role, Note: m.Note,
					UIDValidity: opts.Checkpoints[m.Source].UIDValidity})
				continue
			}
			pending += int(min(n, counts[m.Source]))
		} else {
			pending += int(counts[m.Source])
		}
		jobs = append(jobs, job{m, counts[m.Source]})
	}
	results = append(results, unchanged...)
	for _, m := range dropped {
		addFolderItem(m, unreadable[m.Source])
	}
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].count > jobs[j].count })

	binary := d.Caps().Has(imap.CapBinary) && s.Caps().Has(imap.CapBinary)
	tr := &tracker{opts: opts, cps: map[string]Checkpoint{}, total: len(jobs) + len(unchanged), done: len(unchanged), dst: dst, binary: binary,
		folderItems: folderItems, problems: problemsFolderIn(opts.Locale, listed)}
	for k, v := range opts.Checkpoints {
		tr.cps[k] = v.clone()
	}
	// Only a folder to copy can meet a message preserved earlier, and only
	// a problems folder that exists holds one.
	origins := map[string][]string{}
	if len(jobs) > 0 && listed.has(tr.problems.name) {
		if origins, err = preservedOrigins(d, tr.problems.name); err != nil {
			s.close()
			d.close()
			return nil, classify(err, "read the problems folder")
		}
	}
	tr.preserved = make(map[string]bool, len(origins))
	for k := range origins {
		tr.preserved[k] = true
	}
	queue := make(chan job, len(jobs))
	for _, j := range jobs {
		queue <- j
	}
	close(queue)

	// LITERAL+ lets APPENDs stream without waiting for the server's "+";
	// go-imap cannot, so a raw connection does the appending. It is also
	// the only one that can send literal8, so BINARY needs it.
	useRaw := d.Caps().Has(imap.CapLiteralPlus) && !opts.NoPipelining && !dst.UseSASLAuthz
	tr.useRaw = useRaw
	tr.binary = binary && useRaw
	if useRaw && d.Caps().Has(imap.CapMultiAppend) && !opts.NoMultiAppend {
		tr.multi = multiAppendMessages
	}
	// Every pair costs logins on both servers (and a LITERAL+ connection):
	// a mailbox gets one more pair per MessagesPerPair messages to copy,
	// never more pairs than folders to copy.
	workers := min(opts.Connections, (pending+opts.MessagesPerPair-1)/opts.MessagesPerPair)
	workers = max(min(workers, len(jobs)), 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
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
				if errors.Is(err, errFolderUnreadable) {
					fr.Skipped = append(fr.Skipped, Skip{Folder: j.m.Source, Category: CatFolderUnreadable,
						Reason: "the source folder cannot be opened: " + errText(err)})
					err = nil
				}
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
	for i := range results {
		f := &results[i]
		if sk, ok := folderItems[f.Source]; ok && !sk.NotCopied() {
			f.Reported = append(f.Reported, sk)
		}
		SortItems(f.Skipped)
		SortItems(f.Reported)
		res.Copied += f.Copied
		res.Present += f.Present
		res.Skipped += len(f.Skipped)
		res.Reported += len(f.Reported)
		res.Bytes += f.Bytes
	}
	res.ByReason = CountByCategory(res.Items())
	return res, nil
}

// pastCheckpoint says how many UIDs a folder may hold past its checkpoint,
// from its STATUS: ok is false when that cannot be known (no checkpoint, no
// UIDNEXT, a new UIDVALIDITY). UIDNEXT is above every UID in the folder, so
// UIDNEXT-1 <= LastUID means nothing new.
func pastCheckpoint(st *imap.StatusData, cps map[string]Checkpoint, folder string) (uint32, bool) {
	cp, had := cps[folder]
	if st == nil || !had || st.UIDNext == 0 || st.UIDValidity == 0 || st.UIDValidity != cp.UIDValidity {
		return 0, false
	}
	if uint32(st.UIDNext) <= cp.LastUID+1 {
		return 0, true
	}
	return uint32(st.UIDNext) - 1 - cp.LastUID, true
}

// hasPathChild reports whether a folder has subfolders to copy.
func hasPathChild(ms []Mapping, parent Mapping) bool {
	for _, m := range ms {
		if strings.HasPrefix(m.Path, parent.Path+"/") {
			return true
		}
	}
	return false
}

// tracker aggregates progress across workers.
type tracker struct {
	// What every folder's copy shares.
	dst         Endpoint
	binary      bool // FETCH BINARY[] and APPEND literal8
	useRaw      bool
	multi       int // messages per MULTIAPPEND (appender.multi)
	folderItems map[string]Skip
	problems    *problemsFolder
	// preserved are the origins ("folder\x00uidvalidity\x00uid", the
	// folder in modified UTF-7) of messages already kept in the problems
	// folder by an earlier run.
	preserved map[string]bool

	mu    sync.Mutex
	cbMu  sync.Mutex // serializes OnProgress calls
	opts  Options
	cps   map[string]Checkpoint
	total int
	done  int
	p     Progress
}

// The tracker owns its checkpoints: it stores a copy of what a folder's
// goroutine hands it and gives out copies, because that goroutine goes on
// growing its map in place (addToMap) while snapshots taken from the
// tracker are encoded by another goroutine (the activity's heartbeat) or
// kept by the caller. A stored map is never written again, so snapshots
// may share it.

func (t *tracker) checkpoint(folder string) (Checkpoint, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cp, ok := t.cps[folder]
	return cp.clone(), ok
}

func (t *tracker) update(folder string, cp Checkpoint, f func(p *Progress)) {
	cp = cp.clone() // outside the lock: only this folder's goroutine writes cp
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

// planFolders maps the folders of both servers (planFoldersListed without
// the listing).
//
//lint:ignore U1000 the copy and verify use planFoldersListed; other passes list with this
func planFolders(s, d *conn, mo MapOptions) ([]Mapping, error) {
	m, _, err := planFoldersListed(s, d, mo)
	return m, err
}

// destListing is the destination's folders and personal namespace, listed
// once per connection setup and handed to what needs them (folder
// creation, the problems folder, verify) instead of listing again.
type destListing struct {
	folders []Folder
	ns      Namespace
}

func (l destListing) has(name string) bool {
	if strings.EqualFold(name, "INBOX") {
		return true
	}
	for _, f := range l.folders {
		if f.Name == name {
			return true
		}
	}
	return false
}

// planFoldersListed maps the folders and returns the destination's listing
// it read.
func planFoldersListed(s, d *conn, mo MapOptions) ([]Mapping, destListing, error) {
	// Both servers list at once.
	var df []Folder
	var dns Namespace
	var derr error
	wait := meanwhile(func() { df, dns, derr = listFolders(d) })
	sf, sns, err := listFolders(s)
	wait()
	if err != nil {
		return nil, destListing{}, fmt.Errorf("source: %w", err)
	}
	if err := derr; err != nil {
		return nil, destListing{}, fmt.Errorf("destination: %w", err)
	}
	m, err := MapFolders(sf, sns, df, dns, mo)
	if err != nil {
		return nil, destListing{}, &PermanentError{Kind: KindBadConfig, Err: err}
	}
	return m, destListing{folders: df, ns: dns}, nil
}
