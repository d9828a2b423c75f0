package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/events"
	"github.com/vigil-secrets/vigil/internal/glob"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
	"github.com/vigil-secrets/vigil/internal/policy"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/token"
)

// Change events: what the mounts change is published on a bus (package
// events), and clients subscribe to event types over a WebSocket
// (sys/events/subscribe/<event type>, served by the HTTP layer through
// SubscribeEvents).
//
// Publishing. A mount reports the changes a request made in its response
// (logical.Response.Events); the pipeline publishes them once the request
// has succeeded, after the mount returned and its leases were stored. A
// mount's periodic work reports through BackendConfig.SendEvent. The core
// stamps each event with an id, the time and its mount (path, accessor,
// type) and prefixes its paths with the mount's. Publishing never blocks
// a request (see package events). Only the active server publishes: it
// alone serves requests and runs the periodic work; a standby forwards its
// subscribers to the active server. When the server seals, steps down or
// loses the leader lock, every subscription ends (ErrEventsEnded) and its
// client reconnects.
//
// Who sees what: the Vault rules, as Vault 1.16 and later apply them.
//
//   - Subscribing is a read of the request path: the token needs read on
//     sys/events/subscribe/<event type>, where the event type is the
//     pattern as the client wrote it ("kv-v2/*"). Vault's HTTP handler
//     checks the token with the request's operation, a GET, so read
//     (hashicorp/vault http/events.go, handleEventsSubscribe's CheckToken;
//     the events documentation's policy section says read as well). It
//     does not check the subscribe capability there.
//   - Each event is then delivered only if the token's policies allow it
//     on the event's data_path (the mount-prefixed path where the changed
//     data is read, "secret/data/app"). Vault requires the subscribe
//     capability on that path and one of the rule's
//     subscribe_event_types patterns to match the event type
//     (eventSubscriber.allowMessage in http/events.go, through
//     ACL.CapabilitiesAndSubscribeEventTypes in vault/acl.go). An event
//     without a data_path is delivered to root tokens only.
//   - Vault re-checks the token's access to the subscribe path every five
//     minutes and ends the WebSocket when it fails; per-event decisions
//     are cached for five minutes.
//
// Vigil applies the same rules, with two differences. It also delivers an
// event to a token whose policies grant read on its data_path: such a
// token can poll that path and learn the same (the version, the change),
// so the event tells it nothing new, and agents need no second policy to
// be told what they already read. And the decision is made on each event
// against the token's current policies, with no cache: a policy change
// applies to the next event. The token itself (revoked, expired, no
// longer allowed to subscribe) is checked again every
// Config.EventRecheckInterval (one minute by default) and when it
// expires; the stream then ends with the check's error (403).
//
// Audit: a subscription is recorded like any request (the request entry,
// then a response entry once it is open); the events it delivers are not.
// A subscription counts one use of a token with a use limit.

// Errors a subscription ends with. The HTTP layer turns them into
// WebSocket close codes.
var (
	// ErrEventsLost: the subscriber fell behind and events were dropped.
	// It must reconnect, and read again what it watches.
	ErrEventsLost = events.ErrOverflow
	// ErrEventsEnded: the server sealed, stepped down or lost the leader
	// lock. The subscriber reconnects (a standby forwards it to the new
	// active server).
	ErrEventsEnded = events.ErrEnded
	// ErrTooManySubscribers: the server holds Config.MaxEventSubscribers
	// subscriptions already.
	ErrTooManySubscribers = events.ErrTooManySubscribers
)

// Defaults of the event settings of Config.
const (
	DefaultEventRecheckInterval = time.Minute
	// EventsSubscribePrefix is the path prefix of subscriptions.
	EventsSubscribePrefix = "sys/events/subscribe/"
)

// EventsRequest is a client's request to subscribe to events.
type EventsRequest struct {
	// ID is the request id, for the audit log.
	ID string
	// EventType is the event type pattern ('*' globs): "kv-v2/data-write",
	// "kv-v2/*", "*". The request path is EventsSubscribePrefix+EventType.
	EventType string
	// Filter is the filter expression ("" for none; see
	// events.ParseFilter).
	Filter string
	// Data are the request's query parameters (json, filter...), for the
	// ACL's parameter constraints and the audit log.
	Data       map[string]any
	Token      secret.String
	Connection *logical.Connection
	// Headers are the request's HTTP headers, for the audit log.
	Headers map[string][]string
}

// SubscribeEvents opens a subscription for the caller: its token needs
// read on sys/events/subscribe/<event type> (see the rules above). The
// request is recorded in the audit log, and the subscription is open (no
// event published from now on is missed) when it returns. The caller reads
// it with Next and must Close it.
func (c *Core) SubscribeEvents(ctx context.Context, req EventsRequest) (*EventStream, error) {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	switch {
	case c.sealed.Load():
		return nil, ErrSealed
	case c.standby.Load():
		return nil, ErrStandby
	}
	dr := directRequest{ID: req.ID, Path: EventsSubscribePrefix + req.EventType, Data: req.Data, Token: req.Token, Connection: req.Connection, Headers: req.Headers}
	rec, te, done, err := c.authorizeDirect(ctx, dr, logical.ReadOperation, false)
	if err != nil {
		return nil, err
	}
	defer done()
	filter, err := events.ParseFilter(req.Filter)
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %w", logical.ErrInvalidRequest, err)
	case req.EventType == "":
		err = fmt.Errorf("%w: no event type to subscribe to", logical.ErrInvalidRequest)
	}
	if err != nil {
		return nil, c.directOutcome(ctx, rec, nil, err)
	}
	sub, err := c.events.Subscribe(req.EventType)
	if err != nil {
		return nil, c.directOutcome(ctx, rec, nil, err)
	}
	if err := c.directOutcome(ctx, rec, nil, nil); err != nil {
		sub.Close()
		return nil, err
	}
	every := c.cfg.EventRecheckInterval
	if every <= 0 {
		every = DefaultEventRecheckInterval
	}
	s := &EventStream{c: c, sub: sub, filter: filter, req: dr, every: every, te: te, due: make(chan struct{}, 1)}
	s.schedule(te)
	c.log.Debug("event subscription opened", "request_id", req.ID, "event_type", req.EventType, "accessor", te.Accessor)
	return s, nil
}

// EventStream is an open subscription: the events of its type that its
// token may see. Next is called by one goroutine at a time.
type EventStream struct {
	c      *Core
	sub    *events.Subscription
	filter *events.Filter
	req    directRequest
	every  time.Duration

	// te is the token's entry as last checked (Next's goroutine only).
	te *token.Entry
	// due is signalled when the token is to be checked again.
	due chan struct{}

	mu     sync.Mutex // guards timer and closed
	timer  clock.Timer
	closed bool
}

// Next returns the next event the subscriber may see, as the message to
// send it (Vault's CloudEvents JSON, one line; shared: do not modify). It
// fails with ErrEventsLost, ErrEventsEnded, the error of a failed check
// of the token (logical.ErrPermissionDenied when it was revoked, expired
// or lost read on the subscribe path), or ctx's error.
func (s *EventStream) Next(ctx context.Context) ([]byte, error) {
	for {
		select {
		case <-s.sub.Done():
			return nil, s.sub.Err()
		default:
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.sub.Done():
			return nil, s.sub.Err()
		case <-s.due:
			if err := s.recheck(ctx); err != nil {
				return nil, err
			}
		case ev := <-s.sub.Events():
			ok, err := s.visible(ctx, ev)
			if err != nil {
				return nil, err
			}
			if ok {
				return ev.JSON(), nil
			}
		}
	}
}

// Close ends the subscription. It is safe to call more than once.
func (s *EventStream) Close() {
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	s.sub.Close()
}

// schedule arms the next check of the token: after the recheck interval,
// or when the token expires if that comes first.
func (s *EventStream) schedule(te *token.Entry) {
	d := s.every
	if !te.ExpireTime.IsZero() {
		d = min(d, max(te.ExpireTime.Sub(s.c.clk.Now()), 0))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.timer = s.c.clk.AfterFunc(d, func() {
		select {
		case s.due <- struct{}{}:
		default:
		}
	})
}

// recheck checks the token again as a new subscription would be checked:
// valid (not revoked, not expired), from an allowed address, with read on
// the subscribe path.
func (s *EventStream) recheck(ctx context.Context) error {
	c := s.c
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	if c.sealed.Load() || c.standby.Load() {
		return ErrEventsEnded
	}
	te, err := c.lookupToken(ctx, s.req.Token)
	if err != nil {
		return err
	}
	if err := checkCIDR(te, s.req.Connection); err != nil {
		return err
	}
	if _, err := c.checkACL(ctx, te, s.req.Path, nil, "", &logical.Request{Operation: logical.ReadOperation, Data: s.req.Data}, 0); err != nil {
		return err
	}
	s.te = te
	s.schedule(te)
	return nil
}

// visible reports whether the subscriber may receive ev: its filter
// passes it, and its token's current ACL allows it (eventAllowed).
func (s *EventStream) visible(ctx context.Context, ev *events.Event) (bool, error) {
	if !s.filter.Match(ev) {
		return false, nil
	}
	c := s.c
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	if c.sealed.Load() || c.standby.Load() {
		return false, ErrEventsEnded
	}
	acl, err := c.tokenACL(ctx, s.te)
	if errors.Is(err, logical.ErrPermissionDenied) {
		return false, err
	}
	if err != nil {
		return false, c.storageError(err)
	}
	return eventAllowed(acl, ev), nil
}

// eventAllowed decides whether a token with the given ACL may receive ev:
// root always; otherwise only an event with a data path, on which the
// governing rule grants read (Vigil's addition, see above), or grants
// subscribe and lists a subscribe_event_types pattern that matches the
// event's type (Vault's rule). A deny rule grants neither.
func eventAllowed(acl *policy.ACL, ev *events.Event) bool {
	if acl.IsRoot() {
		return true
	}
	dp := ev.DataPath()
	if dp == "" {
		return false
	}
	caps, types := acl.EventAccess(dp)
	switch {
	case caps.Has(policy.Read):
		return true
	case caps.Has(policy.Subscribe):
		return glob.MatchAny(types, ev.Type)
	}
	return false
}

// EventSubscribers returns the number of event subscriptions open on
// this server (for metrics and tests).
func (c *Core) EventSubscribers() int { return c.events.Subscribers() }

// stopEvents ends every subscription: the server seals, steps down or
// lost the leader lock.
func (c *Core) stopEvents(context.Context) { c.events.EndAll(ErrEventsEnded) }

// publishEvents publishes the events a request to the mount e made. The
// caller serves the request (this server is active).
func (c *Core) publishEvents(e *mount.Entry, evs []logical.Event) {
	if !c.events.Active() {
		return
	}
	for _, le := range evs {
		c.events.Publish(c.newEvent(e, le))
	}
}

// publishMountEvent is a mount's BackendConfig.SendEvent: it publishes an
// event of the mount with the given UUID, found among the current routes
// (a mount that is gone publishes nothing), while this server is active.
// It takes no lock: the mount's periodic work calls it, and sealing waits
// for that work with the state lock held.
func (c *Core) publishMountEvent(uuid string, le logical.Event) {
	if !c.events.Active() || c.sealed.Load() || c.standby.Load() {
		return
	}
	for _, rt := range c.router.Routes() {
		if rt.Entry.UUID == uuid {
			c.events.Publish(c.newEvent(rt.Entry, le))
			return
		}
	}
}

// newEvent stamps a mount's event: an id, the time, the mount, and its
// paths prefixed with the mount's, as Vault prefixes them.
func (c *Core) newEvent(e *mount.Entry, le logical.Event) *events.Event {
	md := make(map[string]string, len(le.Metadata)+4)
	for k, v := range le.Metadata {
		md[k] = v
	}
	md[events.MetaPath] = e.Path + le.Path
	if le.DataPath != "" {
		md[events.MetaDataPath] = e.Path + le.DataPath
	} else {
		delete(md, events.MetaDataPath)
	}
	md[events.MetaOperation] = le.Operation
	md[events.MetaModified] = "true"
	class := "secret"
	if isAuthPath(e.Path) {
		class = "auth"
	}
	return &events.Event{
		ID:       secret.UUID(),
		Type:     le.Type,
		Time:     c.clk.Now(),
		Plugin:   events.PluginInfo{MountClass: class, MountAccessor: e.Accessor, MountPath: e.Path, Plugin: e.Type},
		Metadata: md,
	}
}
