package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Event is a change event as the server sends it: Vault's CloudEvents
// JSON (sys/events/subscribe with json=true). It describes what changed
// (paths, versions, the operation), never a value: a watcher reads the
// data again at [Event.DataPath].
type Event struct {
	// ID is unique to the event.
	ID string `json:"id"`
	// Source is the CloudEvents source ("https://vaultproject.io/").
	Source string `json:"source"`
	// SpecVersion is the CloudEvents version ("1.0").
	SpecVersion string `json:"specversion"`
	// Type is the CloudEvents type ("*"); the event type proper is
	// Data.EventType ([Event.EventType]).
	Type string `json:"type"`
	// Data is Vault's event record.
	Data EventData `json:"data"`
	// DataContentType is the "datacontentype" field, spelled as Vault's
	// servers spell it.
	DataContentType string `json:"datacontentype"`
	// Time is when the change was made.
	Time time.Time `json:"time"`
	// Raw is the message as received (one line of JSON).
	Raw json.RawMessage `json:"-"`
}

// EventData is an event's "data" object.
type EventData struct {
	Event      EventRecord     `json:"event"`
	EventType  string          `json:"event_type"`
	PluginInfo EventPluginInfo `json:"plugin_info"`
}

// EventRecord is the event proper: its id and metadata.
type EventRecord struct {
	ID string `json:"id"`
	// Metadata holds "path", "data_path", "operation", "modified" and the
	// type's own fields ("current_version"...), all strings.
	Metadata map[string]string `json:"metadata"`
}

// EventPluginInfo describes the mount an event comes from.
type EventPluginInfo struct {
	MountClass    string `json:"mount_class"`
	MountAccessor string `json:"mount_accessor"`
	MountPath     string `json:"mount_path"`
	Plugin        string `json:"plugin"`
}

// EventType returns the event's type ("kv-v2/data-write").
func (e *Event) EventType() string { return e.Data.EventType }

// Path returns the path of the request that made the change, mount
// included ("secret/data/app").
func (e *Event) Path() string { return e.Data.Event.Metadata["path"] }

// DataPath returns where the changed data is read ("secret/data/app"),
// "" when the event has none.
func (e *Event) DataPath() string { return e.Data.Event.Metadata["data_path"] }

// Operation returns the name of the change ("data-write").
func (e *Event) Operation() string { return e.Data.Event.Metadata["operation"] }

// SubscribeEventsOptions refines a subscription.
type SubscribeEventsOptions struct {
	// Filter selects events with a boolean expression over event_type,
	// operation, source_plugin_mount, data_path and namespace (Vault's
	// go-bexpr syntax; Vigil accepts "selector == value" and "!=" clauses
	// joined by "and", and refuses the rest with a 400).
	Filter string
}

// Errors of event streams.
var (
	// ErrEventsLost matches (errors.Is) the end of a stream whose
	// subscriber fell behind: the server dropped events it should have
	// received. Subscribe again and read again what you watch.
	ErrEventsLost = errors.New("api: events were lost")
)

// WebSocket close codes the server ends an event stream with.
const (
	// EventsClosedPermissionDenied: the token was revoked, expired or
	// lost read on the subscribe path.
	EventsClosedPermissionDenied = 1008
	// EventsClosedServerRestart: the server sealed or stopped being the
	// active server; subscribe again.
	EventsClosedServerRestart = 1012
	// EventsClosedLost: the subscriber fell behind and lost events
	// ([ErrEventsLost]).
	EventsClosedLost = 1013
)

// EventStreamClosedError is how the server ended an event stream: the
// WebSocket close code (see the EventsClosed constants) and reason.
type EventStreamClosedError struct {
	Code   int
	Reason string
}

func (e *EventStreamClosedError) Error() string {
	return fmt.Sprintf("api: the server ended the event stream (code %d): %s", e.Code, e.Reason)
}

// Is makes errors.Is(err, [ErrEventsLost]) true for the close code that
// means so.
func (e *EventStreamClosedError) Is(target error) bool {
	return target == ErrEventsLost && e.Code == EventsClosedLost
}

// eventsIdleTimeout ends a stream that hears nothing from the server,
// pings included (it pings every 30 seconds): the connection is broken.
const eventsIdleTimeout = 90 * time.Second

// EventStream is an open subscription to change events. Read it with
// [EventStream.Next], or receive from [EventStream.Events] and call
// [EventStream.Err] once that channel is closed. Close it when done.
//
// A stream ends when the server ends it (an [*EventStreamClosedError]),
// when the connection breaks or stays silent for 90 seconds, when the
// context given to [Sys.SubscribeEvents] ends, or at Close. It is never
// resumed: reconnecting, and reading again what changed meanwhile, is
// the caller's business (events published while no subscription is open
// are not kept).
type EventStream struct {
	conn   *wsConn
	cancel context.CancelFunc
	events chan *Event
	wg     sync.WaitGroup

	errMu sync.Mutex
	err   error

	closeOnce sync.Once
}

// SubscribeEvents subscribes to the events whose type matches eventType,
// where '*' stands for any run of characters ("kv-v2/data-write",
// "kv-v2/*", "*"): a WebSocket to sys/events/subscribe/<eventType> with
// json=true and the token in X-Vault-Token, as Vault's CLI opens it. The
// token needs read on that path, and sees only the events its policies
// allow on their data paths (read there, or Vault's subscribe capability
// with subscribe_event_types). A refusal is a [*ResponseError] (403, 400).
//
// The stream lives until ctx ends or it is closed: the client's Timeout
// bounds the handshake only.
func (s *Sys) SubscribeEvents(ctx context.Context, eventType string, opts SubscribeEventsOptions) (*EventStream, error) {
	if strings.TrimSpace(eventType) == "" {
		return nil, errors.New("api: no event type to subscribe to")
	}
	logical := "sys/events/subscribe/" + strings.TrimPrefix(eventType, "/")
	u := s.c.url(logical)
	q := url.Values{"json": {"true"}}
	if opts.Filter != "" {
		q.Set("filter", opts.Filter)
	}
	u.RawQuery = q.Encode()
	hdr := http.Header{}
	hdr.Set("X-Vault-Request", "true")
	if tok := s.c.Token(); tok != "" {
		hdr.Set("X-Vault-Token", tok)
	}

	// The whole-request timeout would cut the stream: bound the handshake
	// with it instead.
	hc := *s.c.http
	handshake := hc.Timeout
	if handshake <= 0 {
		handshake = DefaultTimeout
	}
	hc.Timeout = 0
	sctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(handshake, cancel)
	conn, err := wsDial(sctx, &hc, u.String(), logical, hdr)
	if !timer.Stop() && ctx.Err() == nil {
		if conn != nil {
			conn.rw.Close()
		}
		err = fmt.Errorf("api: subscribe to %s: no answer within %s: %w", eventType, handshake, context.DeadlineExceeded)
	}
	if err != nil {
		cancel()
		return nil, err
	}

	st := &EventStream{conn: conn, cancel: cancel, events: make(chan *Event)}
	idle := time.AfterFunc(eventsIdleTimeout, func() {
		st.setErr(fmt.Errorf("api: the event stream heard nothing from the server in %s", eventsIdleTimeout))
		conn.rw.Close()
	})
	conn.onFrame = func() { idle.Reset(eventsIdleTimeout) }
	stop := context.AfterFunc(sctx, func() { conn.close(wsCloseNormal, "") })
	st.wg.Go(func() {
		defer idle.Stop()
		defer stop()
		defer close(st.events)
		st.read(sctx)
	})
	return st, nil
}

// read delivers the stream's messages until it ends.
func (st *EventStream) read(ctx context.Context) {
	for {
		msg, err := st.conn.readMessage()
		if err != nil {
			var ce *wsCloseError
			switch {
			case ctx.Err() != nil:
				// Closed by the caller: the server's answer to the close
				// frame, or a broken read, is no news.
				st.setErr(ctx.Err())
			case errors.As(err, &ce):
				st.setErr(&EventStreamClosedError{Code: ce.code, Reason: ce.reason})
			default:
				st.setErr(fmt.Errorf("api: event stream: %w", err))
			}
			return
		}
		ev := &Event{Raw: json.RawMessage(bytes.TrimSpace(msg))}
		if err := json.Unmarshal(msg, ev); err != nil {
			st.conn.close(wsCloseProtocol, "not an event")
			st.setErr(fmt.Errorf("api: the server sent something that is not an event: %w", err))
			return
		}
		select {
		case st.events <- ev:
		case <-ctx.Done():
			st.setErr(ctx.Err())
			return
		}
	}
}

// setErr records why the stream ended; the first reason wins.
func (st *EventStream) setErr(err error) {
	st.errMu.Lock()
	defer st.errMu.Unlock()
	if st.err == nil {
		st.err = err
	}
}

// Events returns the stream's events. The channel is closed when the
// stream ends; [EventStream.Err] then says why.
func (st *EventStream) Events() <-chan *Event { return st.events }

// Err returns why the stream ended: nil while it is open, and
// context.Canceled once it is closed (unless it had ended before).
func (st *EventStream) Err() error {
	st.errMu.Lock()
	defer st.errMu.Unlock()
	return st.err
}

// Next waits for the next event. When the stream has ended it returns the
// reason ([EventStream.Err]); when ctx ends first, ctx's error (the
// stream stays open).
func (st *EventStream) Next(ctx context.Context) (*Event, error) {
	select {
	case ev, ok := <-st.events:
		if !ok {
			return nil, st.Err()
		}
		return ev, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close ends the stream (a normal close for the server) and waits for its
// reader to stop. It is safe to call more than once.
func (st *EventStream) Close() error {
	st.closeOnce.Do(func() {
		st.setErr(context.Canceled)
		st.cancel()
		st.wg.Wait()
	})
	return nil
}
