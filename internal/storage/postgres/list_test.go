package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/storage"
)

// TestListUsesIndex fills a directory with 20,000 keys, nearly all deep in
// subdirectories, and checks List's plan on real statistics: no
// sequential scan, and index scans that return about one row per child,
// not one per descendant. Both the custom plan (parameters known) and the
// generic plan (what a prepared statement switches to) are checked.
func TestListUsesIndex(t *testing.T) {
	db := pgtest.New(t)
	b := open(t, db.AdminURL(), Options{})
	ctx := t.Context()
	const dirs, perDir, leaves = 40, 500, 10
	var ops []storage.Op
	flush := func() {
		if err := b.Transaction(ctx, ops); err != nil {
			t.Fatal(err)
		}
		ops = ops[:0]
	}
	var want []string
	for d := range dirs {
		for i := range perDir {
			// Half one level down, half two.
			k := fmt.Sprintf("big/d%02d/k%04d", d, i)
			if i%2 == 1 {
				k = fmt.Sprintf("big/d%02d/sub%02d/k%04d", d, i%7, i)
			}
			ops = append(ops, storage.Op{Key: k, Value: []byte("x")})
			if len(ops) == 1000 {
				flush()
			}
		}
		want = append(want, fmt.Sprintf("d%02d/", d))
	}
	for i := range leaves {
		ops = append(ops, storage.Op{Key: fmt.Sprintf("big/leaf%02d", i), Value: []byte("x")})
		want = append(want, fmt.Sprintf("leaf%02d", i))
	}
	// Neighbours on both sides of the prefix.
	ops = append(ops, storage.Op{Key: "bif", Value: []byte("x")}, storage.Op{Key: "bih/z", Value: []byte("x")})
	flush()
	slices.Sort(want)

	conn, err := pgx.Connect(ctx, db.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "ANALYZE vigil_kv_store"); err != nil {
		t.Fatal(err)
	}
	children := len(want)
	check := func(name string, plan []byte) {
		t.Helper()
		var doc []struct{ Plan planNode }
		if err := json.Unmarshal(plan, &doc); err != nil || len(doc) != 1 {
			t.Fatalf("%s: bad EXPLAIN output: %v", name, err)
		}
		var seq, indexScans int
		var rows float64
		doc[0].Plan.walk(func(n *planNode) {
			switch n.NodeType {
			case "Seq Scan":
				seq++
			case "Index Scan", "Index Only Scan":
				if n.RelationName == "vigil_kv_store" {
					indexScans++
					rows += n.ActualRows * n.ActualLoops
				}
			}
		})
		if seq > 0 || indexScans == 0 {
			t.Fatalf("%s: %d sequential scans, %d index scans of the table; plan:\n%s", name, seq, indexScans, plan)
		}
		// One row per child, plus the key that ends the walk.
		if rows > float64(children+1) {
			t.Fatalf("%s: the index scans returned %v rows for %d children; plan:\n%s", name, rows, children, plan)
		}
		t.Logf("%s: %v rows read from the index for %d children among %d keys", name, rows, children, dirs*perDir+leaves+2)
	}

	var plan []byte
	if err := conn.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+b.q.list, []byte("big/"), 4).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	check("custom plan", plan)

	for _, s := range []string{
		"SET plan_cache_mode = force_generic_plan",
		"PREPARE list_generic(bytea, int) AS " + b.q.list,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := conn.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE list_generic('\x6269672f'::bytea, 4)`).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	check("generic plan", plan)

	got, err := b.List(ctx, "big/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List(big/) = %d entries, want %d: %s", len(got), len(want), firstDiff(got, want))
	}
	if got, err := b.List(ctx, ""); err != nil || !slices.Equal(got, []string{"bif", "big/", "bih/"}) {
		t.Fatalf("List() = %q, %v", got, err)
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d %q, want %q", i, got[i], want[i])
		}
	}
	return "one is a prefix of the other"
}

// planNode is the part of EXPLAIN's JSON that the test reads.
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	ActualRows   float64    `json:"Actual Rows"`
	ActualLoops  float64    `json:"Actual Loops"`
	Plans        []planNode `json:"Plans"`
}

func (n *planNode) walk(fn func(*planNode)) {
	fn(n)
	for i := range n.Plans {
		n.Plans[i].walk(fn)
	}
}
