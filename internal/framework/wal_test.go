package framework

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

type userIntent struct {
	Username string `json:"username"`
}

// TestIntents records intents, lists them by age, decodes and deletes
// them.
func TestIntents(t *testing.T) {
	ctx := t.Context()
	s := logicaltest.New()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ids := make([]string, 3)
	for i, user := range []string{"u0", "u1", "u2"} {
		id, err := PutIntent(ctx, s, t0.Add(time.Duration(2-i)*time.Minute), "user", userIntent{user})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	if ids[0] == ids[1] || strings.Contains(ids[0], "/") {
		t.Fatalf("ids %q", ids)
	}
	if keys, _ := s.List(ctx, IntentPrefix); len(keys) != 3 {
		t.Fatalf("records under %s: %q", IntentPrefix, keys)
	}
	// The mount's own entries beside them are left alone.
	if err := s.Put(ctx, IntentPrefix+"sub/x", []byte("not an intent")); err != nil {
		t.Fatal(err)
	}

	all, err := ListIntents(ctx, s, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, in := range all {
		var u userIntent
		if err := in.Decode(&u); err != nil {
			t.Fatal(err)
		}
		if in.Kind != "user" {
			t.Errorf("kind %q", in.Kind)
		}
		users = append(users, u.Username)
	}
	if !slices.Equal(users, []string{"u2", "u1", "u0"}) {
		t.Errorf("all intents, oldest first: %q", users)
	}
	// Before t0+1m: only the one recorded at t0 (strictly before).
	old, err := ListIntents(ctx, s, t0.Add(time.Minute))
	if err != nil || len(old) != 1 || old[0].ID != ids[2] || !old[0].Created.Equal(t0) {
		t.Fatalf("intents older than t0+1m: %+v, %v", old, err)
	}

	if err := DeleteIntent(ctx, s, ids[2]); err != nil {
		t.Fatal(err)
	}
	if err := DeleteIntent(ctx, s, ids[2]); err != nil {
		t.Fatalf("deleting a deleted intent: %v", err)
	}
	if err := DeleteIntent(ctx, s, "../config/x"); err == nil {
		t.Fatal("an id with a '/' was accepted")
	}
	if old, err := ListIntents(ctx, s, t0.Add(time.Minute)); err != nil || len(old) != 0 {
		t.Fatalf("after delete: %+v, %v", old, err)
	}
	if _, err := PutIntent(ctx, s, t0, "", nil); err == nil {
		t.Fatal("an intent without a kind was recorded")
	}
}

// TestIntentsUnreadable lists the readable intents beside an error for a
// record that is not one, and fails when the storage does.
func TestIntentsUnreadable(t *testing.T) {
	ctx := t.Context()
	s := logicaltest.New()
	if _, err := PutIntent(ctx, s, time.Now(), "user", userIntent{"u"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, IntentPrefix+"garbage", []byte("{")); err != nil {
		t.Fatal(err)
	}
	got, err := ListIntents(ctx, s, time.Time{})
	if len(got) != 1 || err == nil || !strings.Contains(err.Error(), `"garbage"`) {
		t.Fatalf("got %+v, %v; want the readable intent and an error naming the other", got, err)
	}
	if _, err := ListIntents(ctx, failingList{s}, time.Time{}); !errors.Is(err, errListDown) {
		t.Fatalf("list failure: %v", err)
	}
	if _, err := PutIntent(ctx, s, time.Now(), "user", func() {}); err == nil {
		t.Fatal("data that does not encode was recorded")
	}
}

var errListDown = errors.New("list down")

type failingList struct{ *logicaltest.Storage }

func (failingList) List(context.Context, string) ([]string, error) { return nil, errListDown }

// TestSecretRegistered forwards the pipeline's confirmation to the
// secret kind's Registered func, and ignores kinds without one.
func TestSecretRegistered(t *testing.T) {
	var got []string
	creds := &SecretType{Type: "creds", Revoke: func(context.Context, *logical.Request) (*logical.Response, error) { return nil, nil },
		Registered: func(_ context.Context, req *logical.Request, s *logical.Secret) error {
			got = append(got, req.Path+" "+s.LeaseID)
			if s.LeaseID == "fail" {
				return errors.New("no")
			}
			return nil
		}}
	plain := &SecretType{Type: "plain", Revoke: creds.Revoke}
	b, err := NewBackend("test", nil, WithSecrets(creds, plain))
	if err != nil {
		t.Fatal(err)
	}
	req := &logical.Request{Path: "creds/x"}
	secret := func(kind, lease string) *logical.Secret {
		return &logical.Secret{LeaseID: lease, InternalData: map[string]any{SecretTypeKey: kind}}
	}
	if err := b.SecretRegistered(t.Context(), req, secret("creds", "l1")); err != nil {
		t.Fatal(err)
	}
	if err := b.SecretRegistered(t.Context(), req, secret("creds", "fail")); err == nil {
		t.Fatal("the Registered func's error was lost")
	}
	for _, kind := range []string{"plain", "nosuch", ""} {
		if err := b.SecretRegistered(t.Context(), req, secret(kind, "l2")); err != nil {
			t.Fatalf("kind %q: %v", kind, err)
		}
	}
	if !slices.Equal(got, []string{"creds/x l1", "creds/x fail"}) {
		t.Fatalf("Registered calls: %q", got)
	}
}
