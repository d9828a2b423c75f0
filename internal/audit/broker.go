package audit

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vigil-secrets/vigil/internal/auditlog"
)

// Broker fans entries out to the enabled devices.
type Broker struct {
	mu      sync.Mutex                // serializes Add and Remove
	devices atomic.Pointer[[]*Device] // sorted by path; replaced, never modified
}

// NewBroker returns a broker with no devices.
func NewBroker() *Broker {
	b := &Broker{}
	b.devices.Store(&[]*Device{})
	return b
}

// Enabled reports whether any device is enabled: from then on every
// request must be recorded.
func (b *Broker) Enabled() bool { return len(*b.devices.Load()) > 0 }

// Devices returns the enabled devices, sorted by path.
func (b *Broker) Devices() []*Device { return *b.devices.Load() }

// Device returns the device at path.
func (b *Broker) Device(path string) (*Device, bool) {
	for _, d := range *b.devices.Load() {
		if d.path == path {
			return d, true
		}
	}
	return nil, false
}

// Add enables d. A device at the same path is an error.
func (b *Broker) Add(d *Device) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := *b.devices.Load()
	for _, x := range cur {
		if x.path == d.path {
			return fmt.Errorf("audit: path %q already in use", d.path)
		}
	}
	next := append(slices.Clone(cur), d)
	slices.SortFunc(next, func(a, b *Device) int {
		switch {
		case a.path < b.path:
			return -1
		case a.path > b.path:
			return 1
		}
		return 0
	})
	b.devices.Store(&next)
	return nil
}

// Remove disables the device at path and returns it (the caller closes
// it), or nil when there is none.
func (b *Broker) Remove(path string) *Device {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := *b.devices.Load()
	i := slices.IndexFunc(cur, func(d *Device) bool { return d.path == path })
	if i < 0 {
		return nil
	}
	d := cur[i]
	next := slices.Delete(slices.Clone(cur), i, i+1)
	b.devices.Store(&next)
	return d
}

// Hash returns v as the device at path hashes it.
func (b *Broker) Hash(path, v string) (string, error) {
	d, ok := b.Device(path)
	if !ok {
		return "", ErrUnknownDevice
	}
	return d.Hash(v), nil
}

// LogRequest records a request before it is served. With no device it
// returns nil; otherwise nil only once a device has written the entry.
func (b *Broker) LogRequest(ctx context.Context, in *Input) error {
	return b.log(ctx, auditlog.TypeRequest, in)
}

// LogResponse records a served request (or its error), like LogRequest.
func (b *Broker) LogResponse(ctx context.Context, in *Input) error {
	return b.log(ctx, auditlog.TypeResponse, in)
}

// A Ticket is a request entry handed to a device by QueueRequest. The zero
// Ticket holds none.
type Ticket struct{ d *Device }

// Queued reports whether t holds a request entry.
func (t Ticket) Queued() bool { return t.d != nil }

// QueueRequest hands the request entry of a request that changes nothing
// (a read of a KV secret) to the device without waiting for its write:
// the request is served meanwhile, and the entry shares a write with its
// response entry, which LogResponseAfter waits for. A request that
// changes nothing has nothing to undo if its entry is never written: it
// fails then, and returns nothing, as one recorded with LogRequest would.
//
// With several devices nothing is queued (an entry must reach the others
// whatever one of them does): the zero Ticket, and the caller uses
// LogRequest. With none, the zero Ticket too, and LogRequest returns nil.
func (b *Broker) QueueRequest(in *Input) (Ticket, error) {
	devs := *b.devices.Load()
	if len(devs) != 1 {
		return Ticket{}, nil
	}
	d := devs[0]
	if _, _, err := d.enqueue(auditlog.TypeRequest, in, writeLater); err != nil {
		d.failures.Add(1)
		return Ticket{}, fmt.Errorf("%w: %s: %w", ErrNotRecorded, d.path, err)
	}
	return Ticket{d: d}, nil
}

// LogResponseAfter records the response to the request entry t holds: nil
// once the device has written both. It writes to t's device even if the
// device was removed since (and fails, if it is closed): a device enabled
// since has not seen the request.
func (b *Broker) LogResponseAfter(ctx context.Context, t Ticket, in *Input) error {
	// A device writes its entries in order and never writes past one it
	// could not write (see writeBatch): the response's batch written, the
	// request's is.
	return t.d.record(ctx, auditlog.TypeResponse, in)
}

func (b *Broker) log(ctx context.Context, typ string, in *Input) error {
	devs := *b.devices.Load()
	switch len(devs) {
	case 0:
		return nil
	case 1:
		return devs[0].record(ctx, typ, in)
	}
	return b.logMany(ctx, typ, in, devs)
}

// record writes an entry to d alone and waits for it.
func (d *Device) record(ctx context.Context, typ string, in *Input) error {
	bt, done, err := d.enqueue(typ, in, writeNow)
	if err == nil && bt != nil {
		err = d.wait(ctx, bt, done)
	}
	if err != nil {
		d.failures.Add(1)
		return fmt.Errorf("%w: %s: %w", ErrNotRecorded, d.path, err)
	}
	return nil
}

// logMany writes to several devices at once and returns when the first
// has written the entry: a slow device delays no request another device
// has recorded.
func (b *Broker) logMany(ctx context.Context, typ string, in *Input, devs []*Device) error {
	var errs []error
	// A batch's channel closes when it is written or when its device's
	// timeout has passed (outcome tells which).
	cases := make([]reflect.SelectCase, 0, len(devs)+1)
	owner := make([]int, 0, len(devs))
	batches := make([]*batch, len(devs))
	for i, d := range devs {
		bt, done, err := d.enqueue(typ, in, writeByGoroutine)
		if err != nil {
			d.failures.Add(1)
			errs = append(errs, fmt.Errorf("%s: %w", d.path, err))
			continue
		}
		batches[i] = bt
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(done)})
		owner = append(owner, i)
	}
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())})
	for pending := len(owner); pending > 0; pending-- {
		chosen, _, _ := reflect.Select(cases)
		if chosen == len(cases)-1 {
			return fmt.Errorf("%w: %w", ErrNotRecorded, ctx.Err())
		}
		// This device is decided: stop listening to it.
		cases[chosen].Chan = reflect.Value{}
		i := owner[chosen]
		d := devs[i]
		err := d.outcome(batches[i])
		if err == nil {
			return nil
		}
		d.failures.Add(1)
		errs = append(errs, fmt.Errorf("%s: %w", d.path, err))
	}
	return fmt.Errorf("%w: %w", ErrNotRecorded, errors.Join(errs...))
}

// Reopen reopens every device's output, returning the first error.
func (b *Broker) Reopen(ctx context.Context) error {
	var errs []error
	for _, d := range *b.devices.Load() {
		if err := d.Reopen(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.path, err))
		}
	}
	return errors.Join(errs...)
}
