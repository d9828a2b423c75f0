package token

import (
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// benchStore opens a store over in-memory storage, without hooks, and
// returns it with its root token's entry.
func benchStore(b *testing.B) (*Store, *Entry) {
	b.Helper()
	st, err := Open(b.Context(), logicaltest.New(), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	_, root, err := st.CreateRoot(b.Context(), "")
	if err != nil {
		b.Fatal(err)
	}
	return st, root
}

// BenchmarkCreateService creates child service tokens of the root token:
// an entry and three index entries in one transaction.
func BenchmarkCreateService(b *testing.B) {
	st, root := benchStore(b)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e := &Entry{Policies: []string{"default", "dev"}, Path: "auth/token/create", Parent: root.HashedID, TTL: time.Hour, Renewable: true}
		if _, err := st.Create(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateBatch seals batch tokens: nothing is written.
func BenchmarkCreateBatch(b *testing.B) {
	st, _ := benchStore(b)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e := &Entry{Policies: []string{"default", "dev"}, Path: "auth/token/create", Type: TypeBatch, TTL: time.Hour}
		if _, err := st.create(ctx, "", e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookup looks up service tokens from many goroutines, as every
// authenticated request does (the cache is warm after the first lookup).
func BenchmarkLookup(b *testing.B) {
	st, _ := benchStore(b)
	ctx := b.Context()
	toks := make([]secret.String, 64)
	for i := range toks {
		v, err := st.Create(ctx, &Entry{Policies: []string{"default", "dev"}, Path: "auth/token/create", TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = v
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			e, err := st.Lookup(ctx, toks[i%len(toks)])
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := st.UseToken(ctx, e); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkLookupBatch opens batch tokens from many goroutines.
func BenchmarkLookupBatch(b *testing.B) {
	st, root := benchStore(b)
	ctx := b.Context()
	e := &Entry{Policies: []string{"default", "dev"}, Path: "auth/token/create", Type: TypeBatch, TTL: time.Hour, Parent: root.HashedID}
	v, err := st.create(ctx, "", e)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := st.Lookup(ctx, v); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEncodeEntry encodes a login's token entry, as every login does.
func BenchmarkEncodeEntry(b *testing.B) {
	st, _ := benchStore(b)
	k, err := st.storeKeys(b.Context(), true)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	e := &Entry{
		Accessor: "0123456789abcdefghijklmn", Policies: []string{"default", "dev"}, Path: "auth/approle/login",
		DisplayName: "approle-app", Meta: map[string]string{"role_name": "app"}, CreationTime: now, TTL: time.Hour,
		Type: TypeService, Renewable: true, ExpireTime: now.Add(time.Hour), MountPath: "auth/approle/",
		InternalData: map[string]any{"role_name": "app", "role_id": "f7c5e0a4-1b0e-4c47-9f1e-5c2f5d9b7a11", "secret_id_accessor": "a9b8"},
		Alias:        &logical.Alias{Name: "f7c5e0a4-1b0e-4c47-9f1e-5c2f5d9b7a11", Metadata: map[string]string{"role_name": "app"}},
	}
	d := st.hash("hvs.benchmark")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeEntry(k, d, e); err != nil {
			b.Fatal(err)
		}
	}
}
