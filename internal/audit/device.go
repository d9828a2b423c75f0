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
)

// errBacklog: the device is too far behind to take more.
var errBacklog = errors.New("audit: device backlog full")

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
	path, typ string
	options   map[string]string
	fmt       formatter
	sink      Sink
	timeout   time.Duration
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	chain   *auditlog.Chain
	pending *batch
	spare   []byte
	carried atomic.Int64 // bytes taken by the writer and not yet written
	closed  bool

	kick    chan struct{}
	reopen  chan chan error
	stop    chan struct{}
	exited  chan struct{}
	healthy atomic.Bool

	written atomic.Pointer[auditlog.Checkpoint] // after the last write
	saved   atomic.Uint64                       // seq of the last checkpoint stored

	entries, failures atomic.Uint64
}

// batch is the entries appended since the writer last took them; every
// request waiting on one of them waits on done.
type batch struct {
	buf  []byte
	n    int
	done chan struct{}
	err  error
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
		path: conf.Path, typ: conf.Type, options: conf.Options,
		fmt:     formatter{opts: fo, h: newHasher(conf.Salt)},
		sink:    sink,
		timeout: timeout,
		log:     log,
		now:     conf.Now,
		chain:   chain,
		pending: &batch{done: make(chan struct{})},
		kick:    make(chan struct{}, 1),
		reopen:  make(chan chan error),
		stop:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	d.healthy.Store(true)
	d.written.Store(&cp)
	d.saved.Store(conf.Checkpoint.Seq)
	go d.run()
	return d, nil
}

// Path returns the device's path.
func (d *Device) Path() string { return d.path }

// Type returns the device's type.
func (d *Device) Type() string { return d.typ }

// Options returns the options the device was enabled with.
func (d *Device) Options() map[string]string { return d.options }

// Hash returns the HMAC of v as the device writes it.
func (d *Device) Hash(v string) string { return d.fmt.h.hash(v) }

// Stats returns the device's counters.
func (d *Device) Stats() Stats {
	return Stats{Entries: d.entries.Load(), Failures: d.failures.Load()}
}

// Healthy reports whether the device's last write succeeded.
func (d *Device) Healthy() bool { return d.healthy.Load() }

// enqueue formats and chains an entry into the pending batch.
func (d *Device) enqueue(typ string, in *Input) (*batch, error) {
	obj, err := d.fmt.format(typ, in)
	if err != nil {
		return nil, fmt.Errorf("audit: format entry: %w", err)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, fmt.Errorf("audit: device %s is closed", d.path)
	}
	if len(d.pending.buf)+int(d.carried.Load()) > maxBacklog {
		d.mu.Unlock()
		return nil, errBacklog
	}
	b := d.pending
	b.buf = d.chain.Append(b.buf, d.fmt.opts.prefix, obj)
	b.n++
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	return b, nil
}

// wait waits for b's write, at most the device's timeout.
func (d *Device) wait(ctx context.Context, b *batch, timer *time.Timer) error {
	select {
	case <-b.done:
		return b.err
	default:
	}
	select {
	case <-b.done:
		return b.err
	case <-timer.C:
		return fmt.Errorf("audit: device %s timed out", d.path)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the device's writer: it takes the pending batch, writes it in
// one call, and wakes its waiters. A failed write is kept and written
// again, in order, before anything newer, so that the chain has no hole.
func (d *Device) run() {
	defer close(d.exited)
	var carry []byte // entries taken but not written
	retry := minRetry
	var retryC <-chan time.Time
	for {
		select {
		case <-d.kick:
		case <-retryC:
			retryC = nil
		case ack := <-d.reopen:
			err := d.sink.Reopen()
			if err == nil {
				d.healthy.Store(true)
			}
			ack <- err
			continue
		case <-d.stop:
			d.flush(carry)
			return
		}
		if retryC != nil {
			// Backing off: new entries wait for the retry.
			continue
		}
		b, cp := d.take()
		buf := b.buf
		if len(carry) > 0 {
			buf = append(carry, b.buf...)
		}
		if len(buf) == 0 {
			d.recycle(b)
			continue
		}
		err := d.sink.Write(buf)
		b.err = err
		close(b.done)
		if err != nil {
			if d.healthy.Swap(false) {
				d.log.Error("audit device cannot write", "error", err)
			}
			if len(carry) == 0 {
				carry = append([]byte(nil), buf...)
			} else {
				carry = buf
			}
			d.carried.Store(int64(len(carry)))
			d.recycle(b)
			retryC = time.After(retry)
			retry = min(2*retry, maxRetry)
			continue
		}
		if !d.healthy.Swap(true) {
			d.log.Info("audit device writes again")
		}
		d.entries.Add(uint64(b.n))
		d.written.Store(&cp)
		carry, retry = nil, minRetry
		d.carried.Store(0)
		d.recycle(b)
	}
}

// take swaps the pending batch for an empty one and returns it with the
// chain's state after it.
func (d *Device) take() (*batch, auditlog.Checkpoint) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.pending
	d.pending = &batch{buf: d.spare, done: make(chan struct{})}
	d.spare = nil
	return b, d.chain.Checkpoint(d.now())
}

// recycle keeps a written batch's buffer for a later batch, cleared (with
// log_raw it held values in clear).
func (d *Device) recycle(b *batch) {
	if cap(b.buf) > 1<<20 {
		return
	}
	clear(b.buf)
	d.mu.Lock()
	if d.spare == nil {
		d.spare = b.buf[:0]
	}
	d.mu.Unlock()
	b.buf = nil
}

// flush writes what is left when the device stops.
func (d *Device) flush(carry []byte) {
	b, cp := d.take()
	buf := append(carry, b.buf...)
	if len(buf) > 0 {
		b.err = d.sink.Write(buf)
		if b.err == nil {
			d.entries.Add(uint64(b.n))
			d.written.Store(&cp)
		} else {
			d.log.Error("audit device lost entries at close", "error", b.err)
		}
	}
	close(b.done)
}

// Reopen reopens the device's output (SIGHUP, after log rotation).
func (d *Device) Reopen(ctx context.Context) error {
	ack := make(chan error, 1)
	select {
	case d.reopen <- ack:
	case <-d.exited:
		return fmt.Errorf("audit: device %s is closed", d.path)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ack:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Checkpoint returns the device's state after its last successful write,
// and whether it moved since the last call to Saved.
func (d *Device) Checkpoint() (auditlog.Checkpoint, bool) {
	cp := *d.written.Load()
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
	return d.sink.Close()
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
