package audit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// maxCallers bounds a device's memo of callers' hashes: past it the memo
// starts afresh.
const maxCallers = 4096

// callers remembers, for one device, how it logs the token and accessor
// of recent callers. A workload sends the same token request after
// request; hashing it and its accessor again for each of them is most of
// the SHA-256 an entry needs after its chain.
//
// The memo holds no token: an entry is found by the accessor the token
// store gave the token, and kept only for the token whose fingerprint
// (maphash, with a seed of this memo's own) it records. Hashes and
// accessors are written to the log anyway.
type callers struct {
	seed maphash.Seed
	m    sync.Map // accessor → *callerHashes
	n    atomic.Int32
}

type callerHashes struct {
	token           uint64 // fingerprint of the token
	hashed, hashAcc loggedValue
}

func newCallers() *callers { return &callers{seed: maphash.MakeSeed()} }

// lookup sets token and accessor to how tok and acc are logged, if they
// are remembered.
func (c *callers) lookup(tok, acc string, token, accessor *loggedValue) bool {
	v, ok := c.m.Load(acc)
	if !ok {
		return false
	}
	e := v.(*callerHashes)
	if e.token != maphash.String(c.seed, tok) {
		return false
	}
	*token, *accessor = e.hashed, e.hashAcc
	return true
}

// remember keeps how tok and acc are logged.
func (c *callers) remember(tok, acc string, token, accessor *loggedValue) {
	if c.n.Add(1) > maxCallers {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(acc, &callerHashes{token: maphash.String(c.seed, tok), hashed: *token, hashAcc: *accessor})
}
