package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-secrets/vigil/internal/auditlog"
)

// Defaults of a device.
const (
	// DefaultWriteTimeout bounds how long a request waits for a device.
	DefaultWriteTimeout = 2 * time.Second
	// maxBacklog bounds what a device holds unwritten; past it, new
	// entries are refused at once rather than queued.
	maxBacklog = 8 << 20
	// tailSize is how much of a file a device reads back at start to
	// continue its chain.
	tailSize = 16 << 20
	minRetry = 50 * time.Millisecond
	maxRetry = time.Second
	// gatherEntries and defaultGatherWait: a busy device (its last batch
	// held the entries of more than one request) writes a batch once it
	// holds gatherEntries entries, or gatherWait after it began to
	// gather, rather than as soon as it is idle. A write call's cost in the
	// kernel is mostly per call and per page touched, not per byte:
	// under load, batches of about five entries instead of two and a
	// half halve the write calls, for a wait far shorter than a request.
	gatherEntries     = 8
	defaultGatherWait = 50 * time.Microsecond
)

var (
	// errBacklog: the device is too far behind to take more.
	errBacklog = errors.New("audit: device backlog full")
	// errTimeout: a batch was not written within the device's timeout.
	errTimeout = errors.New("audit: device timed out")
)

// DeviceConfig describes a device to open.
type DeviceConfig struct {
	// Path is where the device is mounted ("file/").
	Path string
	// Type is the device type ("file").
	Type string
	// Options are the device's options, common and sink-specific.
	Options map[string]string
	// Salt keys the HMAC of sensitive values; ChainKey keys the hash
	// chain (auditlog.KeySize bytes). Both stay behind the barrier.
	Salt     []byte
	ChainKey []byte
	// Checkpoint is the device's last recorded state.
	Checkpoint auditlog.Checkpoint
	Logger     *slog.Logger
	// Now tells the time of checkpoints.
	Now func() time.Time
	// Retry keeps a device whose output cannot open yet (a missing
	// directory, a socket peer down at unseal): it is opened again on
	// every write until it works, and requests fail closed meanwhile.
	// Without Retry, OpenDevice fails.
	Retry bool
}

// Stats count a device's writes.
type Stats struct {
	// Entries is the number of entries written; Failures the number of
	// entries a request gave up on (error or timeout).
	Entries, Failures uint64
}

// Device is one enabled audit device.
type Device struct {
	path    string
	fmt     *formatter
	sink    Sink
	inline  bool // requests may write (see Bounded)
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time

	// The writer role: whoever holds it (see role) alone uses chain, out
	// and sink.
	chain *auditlog.Chain
	out   []byte // chained lines not yet written: a failed write's, then a batch's

	mu      sync.Mutex
	pending *batch
	spare   []byte
	role    role
	carried atomic.Int64 // bytes chained and not yet written
	closed  bool
	// busy: the last batch held the entries of more than one request,
	// so the pending one gathers (see gathersLocked); gathering: its
	// timer is set.
	busy       bool
	gathering  bool
	gatherAt   *time.Timer
	gatherWait time.Duration // defaultGatherWait; tests set their own

	kick    chan struct{} // hands the writer role to the writer goroutine
	stop    chan struct{}
	exited  chan struct{}
	healthy atomic.Bool

	// wmu guards the chain state after the last successful write, kept
	// as is (a Checkpoint is built from it only when asked for).
	wmu   sync.Mutex
	wSeq  uint64
	wHead [32]byte
	wAt   time.Time
	saved atomic.Uint64 // seq of the last checkpoint stored

	entries, failures atomic.Uint64
}

// role says who holds a device's writer role.
type role int

const (
	idle      role = iota
	leader         // a request, writing its own batch
	goroutine      // the device's writer goroutine
	other          // Reopen or Close
)

// batch is the entries appended since the writer last took them. Its
// channel and timer are made only for a request that has to wait for it:
// most batches are written by the request that made them, and nobody
// waits.
type batch struct {
	buf  []byte // the entries' JSON objects, back to back
	ends []int  // where each entry ends in buf
	// written is set, under the device's mu, once err is final; done,
	// made under mu by the first request to wait, is closed then, or
	// when the device's timeout has passed since (by timer, which sets
	// expired under mu). One timer a batch, not one a waiting request: a
	// busy device has many requests waiting on each batch.
	written bool
	expired bool
	done    chan struct{}
	timer   *time.Timer
	err     error
}

// OpenDevice checks the options, opens the sink with factory and starts
// the device's writer. skip_test aside, the sink is open when it returns.
func OpenDevice(ctx context.Context, conf DeviceConfig, factory Factory) (*Device, error) {
	opts := NewOptions(conf.Options)
	fo := formatOptions{prefix: opts.String("prefix", "")}
	var err error
	if fo.hmacAccessor, err = opts.Bool("hmac_accessor", true); err != nil {
		return nil, err
	}
	if fo.logRaw, err = opts.Bool("log_raw", false); err != nil {
		return nil, err
	}
	if fo.elideLists, err = opts.Bool("elide_list_responses", false); err != nil {
		return nil, err
	}
	if f := opts.String("format", "json"); f != "json" {
		return nil, fmt.Errorf("%w: format must be json, got %q", ErrBadOption, f)
	}
	timeout, err := opts.Duration("write_timeout", DefaultWriteTimeout)
	if err != nil {
		return nil, err
	}
	opts.String("skip_test", "") // accepted for Vault's CLI; the sink opens (and tests) its output anyway
	if conf.Logger == nil {
		conf.Logger = slog.New(slog.DiscardHandler)
	}
	if conf.Now == nil {
		conf.Now = time.Now
	}
	log := conf.Logger.With("audit_device", conf.Path)
	sink, err := factory(ctx, SinkConfig{Path: conf.Path, Options: opts, Logger: log})
	switch {
	case err == nil:
		if err := opts.checkUnused(conf.Type); err != nil {
			sink.Close()
			return nil, err
		}
	case conf.Retry && !errors.Is(err, ErrBadOption):
		log.Error("audit device cannot open its output; requests fail until it can", "error", err)
		sink = &retrySink{ctx: context.WithoutCancel(ctx), path: conf.Path, options: conf.Options, log: log, factory: factory}
	default:
		return nil, err
	}
	cp := conf.Checkpoint
	if t, ok := sink.(Tailer); ok {
		if tail, err := t.Tail(tailSize); err == nil {
			if got := auditlog.Resume(conf.ChainKey, cp, tail); got.Seq > cp.Seq {
				log.Info("audit chain continues past its checkpoint", "checkpoint_seq", cp.Seq, "seq", got.Seq)
				cp = got
			}
		}
	}
	chain, err := auditlog.NewChain(conf.ChainKey, cp)
	if err != nil {
		sink.Close()
		return nil, err
	}
	d := &Device{
		path:       conf.Path,
		fmt:        newFormatter(fo, conf.Salt),
		sink:       sink,
		inline:     isBounded(sink),
		timeout:    timeout,
		log:        log,
		gatherWait: defaultGatherWait,
		now:        conf.Now,
		chain:      chain,
		pending:    &batch{},
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		exited:     make(chan struct{}),
	}
	d.healthy.Store(true)
	d.wSeq, d.wHead = chain.State()
	d.wAt = cp.Time
	d.saved.Store(conf.Checkpoint.Seq)
	go d.run()
	return d, nil
}

// Path returns the device's path.
func (d *Device) Path() string { return d.path }

// Hash returns the HMAC of v as the device writes it.
func (d *Device) Hash(v string) string { return d.fmt.h.hash(v) }

// Stats returns the device's counters.
func (d *Device) Stats() Stats {
	return Stats{Entries: d.entries.Load(), Failures: d.failures.Load()}
}

// Healthy reports whether the device's last write succeeded.
func (d *Device) Healthy() bool { return d.healthy.Load() }

// enqueue formats an entry into the pending batch and sees it written. It
// returns the batch to wait for, or none when the request wrote the batch
// itself: its error is then the write's.
//
// Writing is group commit by a leader: the request that finds no write in
// progress writes the pending batch itself, with no goroutine switch;
// requests arriving meanwhile join the next batch and wait (at most the
// device's timeout). When its write is done the leader hands whatever
// has piled up to the device's writer goroutine, which also retries
// failed writes with backoff. A sink that hangs holds one request (its
// leader); every other request gives up on the device after its timeout.
// With writeByGoroutine (several devices), the writer goroutine writes: a
// request must not wait on one device before it reaches the others. With
// writeLater, nobody is started: the caller's next entry will be, and
// both share one write. On a busy device (its last batch held the entries
// of more than one request) the pending batch first gathers: nobody
// starts its write until it holds gatherEntries entries, and the writer
// goroutine writes it gatherWait after it began to gather (or, if a write
// is under way then, once that write is done).
// Under load a write call then carries about twice as many entries.
func (d *Device) enqueue(typ string, in *Input, mode writeMode) (*batch, <-chan struct{}, error) {
	bp := d.fmt.bufs.Get().(*[]byte)
	obj := d.fmt.appendEntry((*bp)[:0], typ, in)
	defer func() {
		// With log_raw the entry held values in clear.
		clear(obj)
		if cap(obj) <= 64<<10 {
			*bp = obj[:0]
			d.fmt.bufs.Put(bp)
		}
	}()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, nil, fmt.Errorf("audit: device %s is closed", d.path)
	}
	if len(d.pending.buf)+int(d.carried.Load()) > maxBacklog {
		d.mu.Unlock()
		return nil, nil, errBacklog
	}
	b := d.pending
	b.buf = append(b.buf, obj...)
	b.ends = append(b.ends, len(b.buf))
	inline := mode == writeNow && d.inline
	start := d.role == idle && mode != writeLater && !d.gathersLocked()
	var done <-chan struct{}
	switch {
	case start && inline:
		d.role = leader
	case start:
		d.role = goroutine
	}
	if mode != writeLater && !(start && inline) {
		done = d.doneLocked(b)
	}
	d.mu.Unlock()
	switch {
	case start && inline:
		// b is still the pending batch (only the writer role's holder
		// takes it): the write's outcome is b's, with nothing to wait for.
		err := d.writeBatch()
		d.release()
		return nil, nil, err
	case start:
		d.kick <- struct{}{}
	}
	return b, done, nil
}

// writeMode says who writes an entry's batch when the device is idle.
type writeMode int

const (
	// writeNow: the request itself, where the sink's writes are bounded
	// (see Bounded), else the writer goroutine.
	writeNow writeMode = iota
	// writeByGoroutine: the writer goroutine.
	writeByGoroutine
	// writeLater: nobody yet; the request's next entry starts the write.
	writeLater
)

// wait waits for b's write, done being its channel (see doneLocked), at
// most the device's timeout. The request's context is listened to only
// when it ends before the device's timeout would: listening costs a timer
// of its own.
func (d *Device) wait(ctx context.Context, b *batch, done <-chan struct{}) error {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d.timeout {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	} else {
		<-done
	}
	return d.outcome(b)
}

// outcome is the error of a batch whose channel is closed: nil once
// written, or why not.
func (d *Device) outcome(b *batch) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !b.written {
		return fmt.Errorf("%w (%s)", errTimeout, d.path)
	}
	return b.err
}

// doneLocked returns a channel closed once b, the pending batch, is
// written or the device's timeout has passed; outcome tells which. The
// caller holds mu.
func (d *Device) doneLocked(b *batch) <-chan struct{} {
	if b.done == nil || b.expired {
		// The first waiter, or the first since the timeout woke the
		// others (a request joined a batch still pending behind a
		// hung write): its own channel and timeout.
		b.done, b.expired = make(chan struct{}), false
		b.timer = time.AfterFunc(d.timeout, func() { d.expire(b) })
	}
	return b.done
}

// expire wakes the waiters of b, not written within the device's timeout.
func (d *Device) expire(b *batch) {
	d.mu.Lock()
	if b.written || b.expired {
		d.mu.Unlock()
		return
	}
	b.expired = true
	done := b.done
	d.mu.Unlock()
	close(done)
}

// finish records b's outcome and wakes its waiters, unless the device's
// timeout woke them already.
func (d *Device) finish(b *batch, err error) {
	d.mu.Lock()
	b.err, b.written = err, true
	done, timer := b.done, b.timer
	if b.expired {
		done = nil // closed by expire
	}
	d.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	if done != nil {
		close(done)
	}
}

// writeBatch numbers, chains and writes the pending batch, after the
// lines of a failed write, and wakes its waiters. The caller holds the
// writer role. A failed write's lines are kept, to be written again in
// order before anything newer, so that the chain has no hole.
func (d *Device) writeBatch() error {
	b := d.take()
	d.out = d.chainBatch(d.out, b)
	if len(d.out) == 0 {
		d.finish(b, nil)
		return nil
	}
	err := d.sink.Write(d.out)
	if err != nil {
		d.finish(b, err)
		if d.healthy.Swap(false) {
			d.log.Error("audit device cannot write", "error", err)
		}
		d.carried.Store(int64(len(d.out)))
		return err
	}
	// The chain state moves before the waiters wake: a request that saw
	// its entry written finds it in the next checkpoint.
	seq, head := d.chain.State()
	now := d.now()
	d.wmu.Lock()
	d.entries.Add(seq - d.wSeq)
	d.wSeq, d.wHead, d.wAt = seq, head, now
	d.wmu.Unlock()
	d.finish(b, nil)
	if !d.healthy.Load() && !d.healthy.Swap(true) {
		d.log.Info("audit device writes again")
	}
	d.carried.Store(0)
	// With log_raw the lines held values in clear.
	clear(d.out)
	d.out = d.out[:0]
	if cap(d.out) > 1<<20 {
		d.out = nil
	}
	return nil
}

// gathersLocked reports whether the pending batch waits for more entries
// before anyone writes it: the device is busy, and the batch holds some
// entries but fewer than gatherEntries (and no failed write waits to be
// retried). Then the batch is handed to the writer goroutine gatherWait
// after it began to gather, or when the writer role is next given up if
// it is held then. The caller holds mu.
func (d *Device) gathersLocked() bool {
	n := len(d.pending.ends)
	if !d.busy || n == 0 || n >= gatherEntries || len(d.out) > 0 {
		return false
	}
	if !d.gathering {
		d.gathering = true
		if d.gatherAt == nil {
			d.gatherAt = time.AfterFunc(d.gatherWait, d.gathered)
		} else {
			d.gatherAt.Reset(d.gatherWait)
		}
	}
	return true
}

// gathered ends a gathering: the writer goroutine writes the pending
// batch, unless someone holds the writer role (who gathers again, or
// writes it, when done) or the device is closed (Close writes it).
func (d *Device) gathered() {
	d.mu.Lock()
	d.gathering = false
	if d.role != idle || len(d.pending.ends) == 0 || d.closed {
		d.mu.Unlock()
		return
	}
	d.role = goroutine
	d.mu.Unlock()
	d.kick <- struct{}{} // never blocks: only a role holder sends
}

// release gives up the writer role: to nobody when nothing is left to
// write or the pending batch gathers, else to the writer goroutine.
func (d *Device) release() {
	d.mu.Lock()
	if (len(d.pending.ends) == 0 && len(d.out) == 0) || d.gathersLocked() {
		d.role = idle
		d.mu.Unlock()
		return
	}
	d.role = goroutine
	d.mu.Unlock()
	d.kick <- struct{}{} // never blocks: only a role holder sends
}

// acquire takes the writer role for Reopen or Close, waiting for a
// write in progress.
func (d *Device) acquire(ctx context.Context) error {
	for {
		d.mu.Lock()
		if d.role == idle {
			d.role = other
			d.mu.Unlock()
			return nil
		}
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// run is the device's writer goroutine: it writes what a leader handed
// over, and retries failed writes with backoff.
func (d *Device) run() {
	defer close(d.exited)
	retry := minRetry
	for {
		select {
		case <-d.kick:
		case <-d.stop:
			// A hand-over may have raced the stop: give the role back
			// for Close.
			d.mu.Lock()
			if d.role == goroutine {
				d.role = idle
			}
			d.mu.Unlock()
			return
		}
		for {
			if len(d.out) > 0 { // the lines of a failed write
				select {
				case <-time.After(retry):
				case <-d.stop:
					d.mu.Lock()
					d.role = idle // for Close
					d.mu.Unlock()
					return
				}
				retry = min(2*retry, maxRetry)
			}
			if d.writeBatch() == nil {
				retry = minRetry
			}
			d.mu.Lock()
			if (len(d.pending.ends) == 0 && len(d.out) == 0) || d.gathersLocked() {
				d.role = idle
				d.mu.Unlock()
				break
			}
			d.mu.Unlock()
		}
	}
}

// chainBatch appends b's entries to out as numbered, chained lines and
// gives b's buffer back for a later batch.
func (d *Device) chainBatch(out []byte, b *batch) []byte {
	start := 0
	for _, end := range b.ends {
		out = d.chain.Append(out, d.fmt.opts.prefix, b.buf[start:end])
		start = end
	}
	d.recycle(b)
	return out
}

// take swaps the pending batch for an empty one, and notes whether the
// device is busy: b holds the entries of more than one request (a KV
// read's two entries come as a pair).
func (d *Device) take() *batch {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.pending
	d.busy = len(b.ends) > 2
	// The next batch gathers for a time of its own. A timer that has
	// already fired clears gathering itself, when its func runs.
	if d.gathering && d.gatherAt.Stop() {
		d.gathering = false
	}
	d.pending = &batch{buf: d.spare}
	d.spare = nil
	return b
}

// recycle keeps a taken batch's buffer for a later batch, cleared (with
// log_raw it held values in clear).
func (d *Device) recycle(b *batch) {
	buf := b.buf
	b.buf, b.ends = nil, nil
	if cap(buf) > 1<<20 {
		return
	}
	clear(buf)
	d.mu.Lock()
	if d.spare == nil {
		d.spare = buf[:0]
	}
	d.mu.Unlock()
}

// Reopen reopens the device's output (SIGHUP, after log rotation).
func (d *Device) Reopen(ctx context.Context) error {
	if err := d.acquire(ctx); err != nil {
		return err
	}
	err := d.sink.Reopen()
	if err == nil && len(d.out) == 0 {
		d.healthy.Store(true)
	}
	d.release()
	return err
}

// Checkpoint returns the device's state after its last successful write,
// and whether it moved since the last call to Saved.
func (d *Device) Checkpoint() (auditlog.Checkpoint, bool) {
	d.wmu.Lock()
	cp := auditlog.NewCheckpoint(d.wSeq, d.wHead, d.wAt)
	d.wmu.Unlock()
	return cp, cp.Seq != d.saved.Load()
}

// Saved records that cp was stored.
func (d *Device) Saved(cp auditlog.Checkpoint) { d.saved.Store(cp.Seq) }

// Close writes what is queued, stops the writer and closes the sink.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.stop)
	<-d.exited
	d.acquire(context.Background())
	if err := d.writeBatch(); err != nil {
		d.log.Error("audit device lost entries at close", "error", err)
	}
	return d.sink.Close()
}

func isBounded(s Sink) bool {
	b, ok := s.(Bounded)
	return ok && b.WritesBounded()
}

// retrySink opens its sink on first use, and again after each failure to.
type retrySink struct {
	ctx     context.Context
	path    string
	options map[string]string
	log     *slog.Logger
	factory Factory
	s       Sink
}

func (r *retrySink) open() error {
	if r.s != nil {
		return nil
	}
	s, err := r.factory(r.ctx, SinkConfig{Path: r.path, Options: NewOptions(r.options), Logger: r.log})
	if err != nil {
		return err
	}
	r.s = s
	return nil
}

func (r *retrySink) Write(p []byte) error {
	if err := r.open(); err != nil {
		return err
	}
	return r.s.Write(p)
}

func (r *retrySink) Reopen() error {
	if r.s == nil {
		return r.open()
	}
	return r.s.Reopen()
}

func (r *retrySink) Close() error {
	if r.s == nil {
		return nil
	}
	return r.s.Close()
}
