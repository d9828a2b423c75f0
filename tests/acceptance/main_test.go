//go:build !e2e

package acceptance

import (
	"testing"

	"github.com/vigil-secrets/vigil/internal/pgtest"
)

// TestMain stops the PostgreSQL server the database tests share.
func TestMain(m *testing.M) { pgtest.Main(m) }
