package framework

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// Intent records: a write-ahead log of side effects outside Vigil
//
// A mount that creates something outside Vigil (a database user) records
// its intent first, with what it needs to undo the thing, and deletes the
// record once the thing is accounted for: its lease is stored (see
// [logical.LeaseConfirmer]), or it was undone. A record that outlives its
// request therefore marks something that may exist with nothing in Vigil
// to undo it (the server crashed, or the lease could not be stored). The
// mount's periodic work lists the records older than any request lasts
// and undoes what they describe, then deletes them: the undo must be
// idempotent, since the thing may never have been created.
//
// The records live under [IntentPrefix] of the mount's own storage,
// behind the barrier like everything else the mount stores: a mount must
// not use that prefix for anything else. Each is JSON:
//
//	{"v":1, "kind":"<kind>", "created":"<RFC 3339>", "data":<the mount's JSON>}
//
// The helpers keep no state: the records are the mount's.

// IntentPrefix is the prefix of a mount's storage under which intent
// records live.
const IntentPrefix = "wal/"

// intentVersion is the format version of an intent record.
const intentVersion = 1

// Intent is an intent record, as [ListIntents] returns it.
type Intent struct {
	// ID names the record (its key under IntentPrefix).
	ID string
	// Kind says what the mount meant to do, in its own words.
	Kind string
	// Created is when the intent was recorded, by the mount's clock.
	Created time.Time
	// Data is what the mount recorded, as JSON: decode it with
	// [Intent.Decode].
	Data json.RawMessage
}

// intentRecord is an intent as stored.
type intentRecord struct {
	V       int             `json:"v"`
	Kind    string          `json:"kind"`
	Created time.Time       `json:"created"`
	Data    json.RawMessage `json:"data"`
}

// Decode decodes the intent's data into v.
func (in *Intent) Decode(v any) error {
	if err := json.Unmarshal(in.Data, v); err != nil {
		return fmt.Errorf("framework: decode intent %q (%s): %w", in.ID, in.Kind, err)
	}
	return nil
}

// PutIntent records, at now (the mount's clock), the intent of the given
// kind with data (JSON-encoded: it must hold no secret the undo does not
// need) and returns its id, which [DeleteIntent] takes. Call it before
// creating the thing it describes, and do not create the thing if it
// fails.
func PutIntent(ctx context.Context, s logical.Storage, now time.Time, kind string, data any) (string, error) {
	if kind == "" {
		return "", errors.New("framework: an intent needs a kind")
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("framework: encode intent (%s): %w", kind, err)
	}
	rec, err := json.Marshal(intentRecord{V: intentVersion, Kind: kind, Created: now.UTC(), Data: raw})
	if err != nil {
		return "", fmt.Errorf("framework: encode intent (%s): %w", kind, err)
	}
	id := strings.ToLower(rand.Text())
	if err := s.Put(ctx, IntentPrefix+id, rec); err != nil {
		return "", fmt.Errorf("framework: record intent (%s): %w", kind, err)
	}
	return id, nil
}

// DeleteIntent deletes the intent record id. A record already gone is not
// an error.
func DeleteIntent(ctx context.Context, s logical.Storage, id string) error {
	if id == "" || strings.Contains(id, "/") {
		return fmt.Errorf("framework: invalid intent id %q", id)
	}
	if err := s.Delete(ctx, IntentPrefix+id); err != nil {
		return fmt.Errorf("framework: delete intent %q: %w", id, err)
	}
	return nil
}

// ListIntents returns the intents recorded before olderThan (all of them
// when olderThan is zero), oldest first. A record deleted while it lists
// is left out. It returns the intents it could read, with an error for
// those it could not (a caller acts on the former and reports the
// latter); an error listing the prefix returns nothing else.
func ListIntents(ctx context.Context, s logical.Storage, olderThan time.Time) ([]Intent, error) {
	names, err := s.List(ctx, IntentPrefix)
	if err != nil {
		return nil, fmt.Errorf("framework: list intents: %w", err)
	}
	var out []Intent
	var errs []error
	for _, name := range names {
		if strings.HasSuffix(name, "/") {
			continue // not ours
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		raw, err := s.Get(ctx, IntentPrefix+name)
		if errors.Is(err, logical.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("framework: read intent %q: %w", name, err))
			continue
		}
		var rec intentRecord
		if err := json.Unmarshal(raw, &rec); err != nil || rec.V != intentVersion || rec.Kind == "" {
			errs = append(errs, fmt.Errorf("framework: intent %q is not an intent record of version %d (%v)", name, intentVersion, err))
			continue
		}
		if !olderThan.IsZero() && !rec.Created.Before(olderThan) {
			continue
		}
		out = append(out, Intent{ID: name, Kind: rec.Kind, Created: rec.Created, Data: rec.Data})
	}
	slices.SortStableFunc(out, func(a, b Intent) int { return a.Created.Compare(b.Created) })
	return out, errors.Join(errs...)
}
