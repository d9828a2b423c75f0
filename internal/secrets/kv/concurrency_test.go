package kv

import (
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// TestConcurrentWriters checks that concurrent writes to one key get
// distinct, contiguous versions and that no version is lost.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	const writers, each = 8, 25
	h := newHarness(t, "2")
	h.ok(logical.UpdateOperation, "config", body(t, `{"max_versions":1000}`))

	var mu sync.Mutex
	got := map[int64]string{} // version -> the value its writer stored
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				val := fmt.Sprintf("w%d-%d", w, i)
				resp, err := h.do(logical.UpdateOperation, "data/shared", map[string]any{"data": map[string]any{"v": val}})
				if err != nil {
					t.Errorf("write %s: %v", val, err)
					return
				}
				v := resp.Data["version"].(int64)
				mu.Lock()
				if prev, dup := got[v]; dup {
					t.Errorf("version %d given to both %s and %s", v, prev, val)
				}
				got[v] = val
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	versions := make([]int64, 0, len(got))
	for v := range got {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	if len(versions) != writers*each || versions[0] != 1 || versions[len(versions)-1] != writers*each {
		t.Fatalf("versions not contiguous 1..%d: %d versions from %v to %v", writers*each, len(versions), versions[0], versions[len(versions)-1])
	}
	if cur := h.metadata("shared")["current_version"]; cur != int64(writers*each) {
		t.Fatalf("current_version = %v", cur)
	}
	for v, val := range got {
		resp := h.ok(logical.ReadOperation, "data/shared", map[string]any{"version": strconv.FormatInt(v, 10)})
		if resp.Data["data"].(map[string]any)["v"] != val {
			t.Errorf("version %d holds %v, its writer stored %s", v, resp.Data["data"], val)
		}
	}
}

// TestConcurrentCAS checks that exactly one of many cas=0 writes wins.
func TestConcurrentCAS(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "2")
	var wins, mismatches atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, msg, _ := h.status(logical.UpdateOperation, "data/once", body(t, `{"data":{"a":"b"},"options":{"cas":0}}`))
			switch {
			case st == 200:
				wins.Add(1)
			case st == 400 && msg == "check-and-set parameter did not match the current version":
				mismatches.Add(1)
			default:
				t.Errorf("cas write: %d %q", st, msg)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || mismatches.Load() != 15 {
		t.Errorf("wins = %d, mismatches = %d", wins.Load(), mismatches.Load())
	}
}

// TestReadsDuringPruning checks that lock-free reads never fail while
// writers prune the versions they are reading.
func TestReadsDuringPruning(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"transactional", "plain"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var h *harness
			if name == "plain" {
				h = newHarnessOn(t, "2", newPlainStorage())
			} else {
				h = newHarness(t, "2")
			}
			h.ok(logical.UpdateOperation, "metadata/k", body(t, `{"max_versions":1}`))
			h.put("k", `{"v":"0"}`)
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for r := 0; r < 4; r++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						st, msg, _ := h.status(logical.ReadOperation, "data/k", nil)
						if st != 200 {
							t.Errorf("read during pruning: %d %q", st, msg)
							return
						}
					}
				}()
			}
			for i := 0; i < 300; i++ {
				h.put("k", fmt.Sprintf(`{"v":"%d"}`, i))
			}
			close(stop)
			wg.Wait()
		})
	}
}
