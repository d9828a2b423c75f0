package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func ev(typ string) *Event {
	return &Event{ID: "id-" + typ, Type: typ, Time: time.Unix(1700000000, 5).UTC(),
		Plugin:   PluginInfo{MountClass: "secret", MountAccessor: "kv_1", MountPath: "secret/", Plugin: "kv"},
		Metadata: map[string]string{MetaPath: "secret/data/a", MetaDataPath: "secret/data/a", MetaOperation: "data-write", MetaModified: "true"}}
}

// next returns the next queued event, or fails if there is none.
func next(t *testing.T, s *Subscription) *Event {
	t.Helper()
	select {
	case e := <-s.Events():
		return e
	default:
		t.Fatal("no event queued")
		return nil
	}
}

func none(t *testing.T, s *Subscription) {
	t.Helper()
	select {
	case e := <-s.Events():
		t.Fatalf("unexpected event %s", e.Type)
	default:
	}
}

func TestPublishMatchesPatterns(t *testing.T) {
	t.Parallel()
	b := New(Config{})
	if b.Active() {
		t.Fatal("an empty bus is active")
	}
	b.Publish(ev("kv-v2/data-write")) // no one listens: dropped
	exact, _ := b.Subscribe("kv-v2/data-write")
	prefix, _ := b.Subscribe("kv-v2/*")
	all, _ := b.Subscribe("*")
	other, _ := b.Subscribe("database/rotate")
	defer func() {
		for _, s := range []*Subscription{exact, prefix, all, other} {
			s.Close()
		}
	}()
	if !b.Active() || b.Subscribers() != 4 {
		t.Fatalf("active %v, %d subscribers", b.Active(), b.Subscribers())
	}
	b.Publish(ev("kv-v2/data-write"))
	b.Publish(ev("kv-v2/metadata-delete"))
	b.Publish(ev("kv-v1/write"))

	if e := next(t, exact); e.Type != "kv-v2/data-write" {
		t.Fatalf("exact got %s", e.Type)
	}
	none(t, exact)
	for _, want := range []string{"kv-v2/data-write", "kv-v2/metadata-delete"} {
		if e := next(t, prefix); e.Type != want {
			t.Fatalf("prefix got %s, want %s", e.Type, want)
		}
	}
	none(t, prefix)
	for _, want := range []string{"kv-v2/data-write", "kv-v2/metadata-delete", "kv-v1/write"} {
		if e := next(t, all); e.Type != want {
			t.Fatalf("* got %s, want %s", e.Type, want)
		}
	}
	none(t, other)
}

// TestSlowSubscriberLosesEvents: a subscriber that does not read never
// slows the publisher; once its queue is full its subscription ends with
// ErrOverflow, and the others go on.
func TestSlowSubscriberLosesEvents(t *testing.T) {
	t.Parallel()
	b := New(Config{Buffer: 4})
	slow, _ := b.Subscribe("*")
	defer slow.Close()
	fast, _ := b.Subscribe("*")
	defer fast.Close()

	for i := range 100 {
		b.Publish(ev(fmt.Sprintf("kv-v2/e%d", i)))
		if i < 4 && slow.Err() != nil {
			t.Fatalf("slow ended after %d events: %v", i+1, slow.Err())
		}
		// The fast one reads each event as it comes.
		if e := next(t, fast); e.Type != fmt.Sprintf("kv-v2/e%d", i) {
			t.Fatalf("fast got %s at %d", e.Type, i)
		}
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("the slow subscription did not end")
	}
	if !errors.Is(slow.Err(), ErrOverflow) {
		t.Fatalf("slow ended with %v", slow.Err())
	}
	if fast.Err() != nil {
		t.Fatalf("fast: %v", fast.Err())
	}
	// An ended subscription is no longer fed, and its queue stays bounded.
	if n := len(slow.Events()); n != 4 {
		t.Fatalf("slow queue holds %d", n)
	}
}

func TestEndAllAndClose(t *testing.T) {
	t.Parallel()
	b := New(Config{MaxSubscribers: 2})
	s1, _ := b.Subscribe("*")
	s2, err := b.Subscribe("*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe("*"); !errors.Is(err, ErrTooManySubscribers) {
		t.Fatalf("third subscription: %v", err)
	}
	s2.Close()
	s2.Close()
	if !errors.Is(s2.Err(), ErrClosed) || b.Subscribers() != 1 {
		t.Fatalf("after close: %v, %d", s2.Err(), b.Subscribers())
	}
	s3, err := b.Subscribe("*")
	if err != nil {
		t.Fatal(err)
	}
	b.EndAll(nil)
	for _, s := range []*Subscription{s1, s3} {
		<-s.Done()
		if !errors.Is(s.Err(), ErrEnded) {
			t.Fatalf("ended with %v", s.Err())
		}
		s.Close() // after EndAll: harmless
	}
	if b.Active() {
		t.Fatal("bus still active")
	}
	s4, err := b.Subscribe("*")
	if err != nil {
		t.Fatal(err)
	}
	defer s4.Close()
	b.Publish(ev("x"))
	next(t, s4)
}

// TestConcurrent publishes, subscribes and closes at once (run with
// -race).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	b := New(Config{Buffer: 8})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				b.Publish(ev(fmt.Sprintf("t%d/%d", i, j)))
			}
		})
		wg.Go(func() {
			for range 50 {
				s, err := b.Subscribe("t*")
				if err != nil {
					continue
				}
				select {
				case e := <-s.Events():
					_ = e.JSON()
				case <-s.Done():
				default:
				}
				s.Close()
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			b.EndAll(nil)
		}
	})
	wg.Wait()
}

func TestEventJSON(t *testing.T) {
	t.Parallel()
	e := ev("kv-v2/data-write")
	e.Metadata["current_version"] = "3"
	got := string(e.JSON())
	want := `{"id":"id-kv-v2/data-write","source":"https://vaultproject.io/","specversion":"1.0","type":"*",` +
		`"data":{"event":{"id":"id-kv-v2/data-write","metadata":{"current_version":"3","data_path":"secret/data/a",` +
		`"modified":"true","operation":"data-write","path":"secret/data/a"}},"event_type":"kv-v2/data-write",` +
		`"plugin_info":{"mount_class":"secret","mount_accessor":"kv_1","mount_path":"secret/","plugin":"kv"}},` +
		`"datacontentype":"application/cloudevents","time":"2023-11-14T22:13:20.000000005Z"}` + "\n"
	if got != want {
		t.Fatalf("JSON:\n got %s\nwant %s", got, want)
	}
	if !json.Valid([]byte(got)) || strings.Count(got, "\n") != 1 {
		t.Fatal("not one line of JSON")
	}
	if &e.JSON()[0] != &e.JSON()[0] {
		t.Fatal("JSON is computed again")
	}
}
