package database

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// BenchmarkStaticRotate is one rotate-role on the real PostgreSQL: a new
// password set by ALTER ROLE and the role stored inside its transaction.
func BenchmarkStaticRotate(b *testing.B) {
	for _, strategy := range []string{strategyInPlace, strategyAlternating} {
		b.Run(strategy, func(b *testing.B) {
			e := newEngine(b)
			e.configure("ml", "")
			user, _ := e.db.CreateRole(b, "")
			e.db.DropRoleAtEnd(b, user+twinSuffix)
			e.staticRole("svc", user, fmt.Sprintf(`"rotation_period":"1h","rotation_strategy":%q`, strategy))
			for b.Loop() {
				e.must(logical.UpdateOperation, "rotate-role/svc", "")
			}
		})
	}
}

// BenchmarkAlterRoleBaseline is the same password change made directly on
// one connection (ALTER ROLE in a transaction), the floor under
// BenchmarkStaticRotate: PostgreSQL hashes the password (SCRAM) and
// commits.
func BenchmarkAlterRoleBaseline(b *testing.B) {
	db := pgtest.New(b)
	user, _ := db.CreateRole(b, "")
	conn, err := db.ConnectAs(b.Context(), db.User, db.Password)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	for b.Loop() {
		tx, err := conn.Begin(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(b.Context(), `ALTER ROLE "`+user+`" WITH PASSWORD '`+generatePassword().Reveal()+`'`); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPeriodicIdle is a periodic run over n static roles none of
// which is due: the cost of the safety-net runs (every ten minutes at
// most) and of the wake after each role write.
func BenchmarkPeriodicIdle(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			now := time.Now()
			lb, err := Factory(b.Context(), &logical.BackendConfig{Now: func() time.Time { return now }, System: &testSystem{}})
			if err != nil {
				b.Fatal(err)
			}
			be, s := lb.(*backend), logicaltest.New()
			for i := range n {
				r := &staticRole{DBName: "ml", Username: fmt.Sprintf("svc%d", i), Strategy: strategyInPlace, CreatedAt: now,
					CurrentUser: fmt.Sprintf("svc%d", i), Password: storedPassword{secret.NewString("Pw-0123456789abcdefg")}, LastRotation: now}
				if i%2 == 0 {
					r.RotationPeriod = time.Hour
				} else {
					r.RotationSchedule = "0 0 * * *"
				}
				if err := framework.PutJSON(b.Context(), s, staticRolePrefix+fmt.Sprintf("r%d", i), r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if next, err := be.Periodic(b.Context(), s); err != nil || next.IsZero() {
					b.Fatal(next, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/role")
		})
	}
}
