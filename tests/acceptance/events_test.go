//go:build !e2e

package acceptance

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// apiClient is Vigil's own Go client for url with token.
func apiClient(t *testing.T, url, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: url, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nextEvent waits for the stream's next event within a generous bound.
func nextEvent(t *testing.T, s *api.EventStream) (*api.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return s.Next(ctx)
}

func mustNextEvent(t *testing.T, s *api.EventStream) *api.Event {
	t.Helper()
	ev, err := nextEvent(t, s)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestEventsAPIClient drives the api client's subscriptions against a
// real server: a write's event arrives with its paths and version and not
// the value; the token's policies and the filter select what arrives; a
// token that may not subscribe is refused with a 403; the stream ends
// with code 1012 when the server seals, and Close ends it for the
// client.
func TestEventsAPIClient(t *testing.T) {
	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	ctx := t.Context()
	root := apiClient(t, s.URL, s.RootToken)
	vc := vaultClientAt(t, s.URL, s.RootToken)
	if err := vc.Sys().PutPolicy("a-watcher", `
path "sys/events/subscribe/*" { capabilities = ["read"] }
path "secret/data/a/*"        { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := vc.Sys().PutPolicy("no-events", `path "secret/data/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	token := func(policy string) string {
		sec, err := vc.Logical().Write("auth/token/create", map[string]any{"policies": []string{policy}})
		if err != nil {
			t.Fatal(err)
		}
		return sec.Auth.ClientToken
	}

	all, err := root.Sys().SubscribeEvents(ctx, "kv-v2/*", api.SubscribeEventsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	onlyB, err := root.Sys().SubscribeEvents(ctx, "*", api.SubscribeEventsOptions{Filter: `data_path == "secret/data/b/x" and operation == data-write`})
	if err != nil {
		t.Fatal(err)
	}
	defer onlyB.Close()
	watcher, err := apiClient(t, s.URL, token("a-watcher")).Sys().SubscribeEvents(ctx, "kv-v2/data-*", api.SubscribeEventsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	_, err = apiClient(t, s.URL, token("no-events")).Sys().SubscribeEvents(ctx, "kv-v2/data-write", api.SubscribeEventsOptions{})
	if api.StatusCode(err) != 403 {
		t.Fatalf("subscription without read on the path: %v", err)
	}
	if _, err := root.Sys().SubscribeEvents(ctx, "*", api.SubscribeEventsOptions{Filter: "a or b"}); api.StatusCode(err) != 400 {
		t.Fatalf("unsupported filter: %v", err)
	}

	const value = "do-not-leak-this"
	for _, p := range []string{"secret/data/b/x", "secret/data/a/x"} {
		if _, err := vc.Logical().Write(p, map[string]any{"data": map[string]any{"v": value}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := vc.Logical().Delete("secret/data/a/x"); err != nil {
		t.Fatal(err)
	}

	ev := mustNextEvent(t, all)
	if ev.EventType() != "kv-v2/data-write" || ev.Path() != "secret/data/b/x" || ev.DataPath() != "secret/data/b/x" ||
		ev.Operation() != "data-write" || ev.Data.Event.Metadata["current_version"] != "1" || ev.Data.PluginInfo.MountPath != "secret/" ||
		ev.ID == "" || ev.Time.IsZero() {
		t.Fatalf("first event: %+v", ev)
	}
	if strings.Contains(string(ev.Raw), value) || strings.Contains(string(ev.Raw), s.RootToken) {
		t.Fatalf("the event carries the value or the token: %s", ev.Raw)
	}
	for _, want := range []string{"kv-v2/data-write secret/data/a/x", "kv-v2/data-delete secret/data/a/x"} {
		if ev := mustNextEvent(t, all); ev.EventType()+" "+ev.Path() != want {
			t.Fatalf("all: %s %s, want %s", ev.EventType(), ev.Path(), want)
		}
		if ev := mustNextEvent(t, watcher); ev.EventType()+" "+ev.Path() != want {
			t.Fatalf("watcher: %s %s, want %s", ev.EventType(), ev.Path(), want)
		}
	}
	if ev := mustNextEvent(t, onlyB); ev.Path() != "secret/data/b/x" {
		t.Fatalf("filtered: %+v", ev)
	}

	// Sealing ends every stream with 1012; the client's Close ends its
	// own.
	onlyB.Close()
	if _, err := onlyB.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("after Close: %v", err)
	}
	if err := vc.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	_, err = nextEvent(t, all)
	var ce *api.EventStreamClosedError
	if !errors.As(err, &ce) || ce.Code != api.EventsClosedServerRestart || errors.Is(err, api.ErrEventsLost) {
		t.Fatalf("after the seal: %v", err)
	}
	if _, ok := <-all.Events(); ok || all.Err() == nil {
		t.Fatal("the events channel is open after the stream ended")
	}
}

// TestEventsDatabaseRotation: a static role's rotation, asked for or on
// its schedule, is a database/rotate event whose data_path is where the
// new password is read; it names the role, not the user or the password.
func TestEventsDatabaseRotation(t *testing.T) {
	clk := clock.NewFake(time.Now())
	s := testcluster.New(t, testcluster.Options{InMemory: true, Clock: clk})
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	db, user, _, _ := setupStatic(t, root)
	if _, err := root.Logical().Write("database/static-roles/svc-web", map[string]any{"db_name": "ml", "username": user, "rotation_period": "1h"}); err != nil {
		t.Fatal(err)
	}
	_, pw1, _ := staticCreds(t, root, "svc-web")

	stream, err := apiClient(t, s.URL, s.RootToken).Sys().SubscribeEvents(t.Context(), "database/*", api.SubscribeEventsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()

	if _, err := root.Logical().Write("database/rotate-role/svc-web", nil); err != nil {
		t.Fatal(err)
	}
	ev := mustNextEvent(t, stream)
	if ev.EventType() != "database/rotate" || ev.Path() != "database/rotate-role/svc-web" || ev.DataPath() != "database/static-creds/svc-web" ||
		ev.Data.Event.Metadata["name"] != "svc-web" || ev.Data.PluginInfo.Plugin != "database" {
		t.Fatalf("rotate-role: %+v", ev)
	}
	_, pw2, _ := staticCreds(t, root, "svc-web")

	// An hour later the schedule rotates it: the event comes from the
	// server's background job.
	clk.Advance(time.Hour)
	ev = mustNextEvent(t, stream)
	if ev.EventType() != "database/rotate" || ev.Path() != "database/static-creds/svc-web" || ev.DataPath() != "database/static-creds/svc-web" {
		t.Fatalf("scheduled rotation: %+v", ev)
	}
	_, pw3, _ := staticCreds(t, root, "svc-web")
	if pw3 == pw2 {
		t.Fatal("the event came before the new password")
	}
	logsIn(t, db, user, pw3)
	for _, secret := range []string{pw1, pw2, pw3, user} {
		if strings.Contains(string(ev.Raw), secret) {
			t.Fatalf("the event names the user or a password: %s", ev.Raw)
		}
	}
}
