package lease

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
	"github.com/vigil-secrets/vigil/internal/secret"
)

func BenchmarkRegister(b *testing.B) {
	f := newFixture(b, nil)
	ctx := b.Context()
	req := RegisterRequest{Kind: KindSecret, Path: "database/creds/ro", TTL: time.Hour, Renewable: true, TokenKey: "tok",
		InternalData: map[string]any{"username": "v-ro-abc"}, Data: map[string]any{"username": "v-ro-abc", "password": "x"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.m.Register(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRegisterParallel(b *testing.B) {
	f := newFixture(b, nil)
	ctx := b.Context()
	req := RegisterRequest{Kind: KindSecret, Path: "database/creds/ro", TTL: time.Hour, TokenKey: "tok"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.m.Register(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// fillStorage writes n lease records (as Register would, with their token
// index) spread over a few mounts, all expiring within a day.
func fillStorage(tb testing.TB, st logical.Storage, n int) {
	tb.Helper()
	ctx := context.Background()
	m := &Manager{st: st}
	for i := range n {
		l := &Lease{
			ID:           fmt.Sprintf("database/creds/role%d/%s", i%10, secret.RandomBase62(idSuffixLen)),
			Path:         fmt.Sprintf("database/creds/role%d", i%10),
			Kind:         KindSecret,
			IssueTime:    epoch,
			ExpireTime:   epoch.Add(time.Hour + time.Duration(i)*time.Second),
			Renewable:    true,
			TokenKey:     fmt.Sprintf("tok%d", i%1000),
			InternalData: map[string]any{"username": fmt.Sprintf("v-role-%d", i)},
			Data:         map[string]any{"username": fmt.Sprintf("v-role-%d", i), "password": "p"},
		}
		if err := m.create(ctx, l); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkRestore100k measures Start to fully loaded for 100,000 leases
// (ns/lease is the figure to watch), with in-memory storage.
func BenchmarkRestore100k(b *testing.B) {
	const n = 100_000
	st := logicaltest.New()
	fillStorage(b, st, n)
	clk := clock.NewFake(epoch)
	cfg := Config{Storage: st, Clock: clk, Revoker: newFakeRevoker(clk)}
	ctx := b.Context()
	b.ResetTimer()
	for b.Loop() {
		m, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Start(ctx); err != nil {
			b.Fatal(err)
		}
		<-m.Restored()
		if s := m.Stats(); s.Scheduled != n {
			b.Fatalf("restored %+v, want %d scheduled", s, n)
		}
		if err := m.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/lease")
}

// BenchmarkLookupDuringRestore measures Lookup while a 100,000-lease
// restore runs (and after it, once it is done: the figure must not move
// much, since Lookup never waits for the restore).
func BenchmarkLookupDuringRestore(b *testing.B) {
	const n = 100_000
	st := logicaltest.New()
	fillStorage(b, st, n)
	clk := clock.NewFake(epoch)
	m, err := New(Config{Storage: st, Clock: clk, Revoker: newFakeRevoker(clk)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	names, err := st.List(ctx, "id/database/creds/role3/")
	if err != nil || len(names) == 0 {
		b.Fatal(names, err)
	}
	id := "database/creds/role3/" + names[0]
	if err := m.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Stop(context.Background()) })
	lookups := 0
	for b.Loop() {
		if _, err := m.Lookup(ctx, id); err != nil {
			b.Fatal(err)
		}
		select {
		case <-m.Restored():
		default:
			lookups++
		}
	}
	b.ReportMetric(float64(lookups), "lookups-during-restore")
}
