package bolt

import (
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// pendingEntryOverhead is about the memory a pendingSet spends on one key
// beside its bytes: the map slot, the op and the key's two places in the
// key lists.
const pendingEntryOverhead = 128

// pendingSet holds logged writes that are not yet in bbolt: the last op on
// each key, in a map for Get, and the keys in the order they came. The key
// order that List and the checkpoint need is made only when they ask for
// it, and kept: the writer, which adds keys, does not sort them. Only the
// writer changes a set, under Backend.pmu; readers hold pmu for reading.
type pendingSet struct {
	ops map[string]storage.Op
	// keys are the keys of ops, in the order of their first put.
	keys []string
	// mem estimates the memory the set holds: its keys and values and
	// pendingEntryOverhead per key.
	mem int

	// sortMu guards sorted, keys[:len(sorted)] in key order. A sorted
	// slice is never modified once made, only replaced, so a reader may
	// use the one it got after it lets sortMu go.
	sortMu sync.Mutex
	sorted []string
}

func newPendingSet() *pendingSet {
	return &pendingSet{ops: make(map[string]storage.Op)}
}

// put records op as the last op on its key. The caller holds Backend.pmu.
func (p *pendingSet) put(op storage.Op) {
	if old, ok := p.ops[op.Key]; ok {
		p.mem -= len(old.Value)
	} else {
		p.keys = append(p.keys, op.Key)
		p.mem += len(op.Key) + pendingEntryOverhead
	}
	p.ops[op.Key] = op
	p.mem += len(op.Value)
}

// get returns the last op on key. A nil set holds nothing.
func (p *pendingSet) get(key string) (storage.Op, bool) {
	if p == nil {
		return storage.Op{}, false
	}
	op, ok := p.ops[key]
	return op, ok
}

// len is the number of keys in the set; a nil set has none.
func (p *pendingSet) len() int {
	if p == nil {
		return 0
	}
	return len(p.ops)
}

// ascend calls fn with the ops on the keys that start with prefix, in key
// order, until fn returns false. The caller holds Backend.pmu for reading
// (or the set is frozen). A nil set holds nothing.
func (p *pendingSet) ascend(prefix string, fn func(storage.Op) bool) {
	if p == nil {
		return
	}
	sorted := p.ordered()
	for _, k := range sorted[sort.SearchStrings(sorted, prefix):] {
		if !strings.HasPrefix(k, prefix) || !fn(p.ops[k]) {
			return
		}
	}
}

// ordered returns the set's keys in order. It sorts only the keys added
// since the last call and merges them into the keys it sorted before.
func (p *pendingSet) ordered() []string {
	p.sortMu.Lock()
	defer p.sortMu.Unlock()
	if len(p.sorted) == len(p.keys) {
		return p.sorted
	}
	added := slices.Clone(p.keys[len(p.sorted):])
	slices.Sort(added)
	if len(p.sorted) == 0 {
		p.sorted = added
		return added
	}
	// Each added key finds its place by binary search, so a few keys
	// added to many cost a copy, not a comparison with every key.
	merged := make([]string, 0, len(p.keys))
	old := p.sorted
	for _, k := range added {
		i, _ := slices.BinarySearch(old, k)
		merged = append(merged, old[:i]...)
		merged = append(merged, k)
		old = old[i:]
	}
	p.sorted = append(merged, old...)
	return p.sorted
}
