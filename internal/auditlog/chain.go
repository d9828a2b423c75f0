package auditlog

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
	"time"
)

// KeySize is the size of a chain key.
const KeySize = 32

// Checkpoint is a device's last written entry, kept by the server so that
// a log cut short is caught.
type Checkpoint struct {
	// Seq is the sequence number of the last entry written (0: none yet).
	Seq uint64 `json:"seq"`
	// Chain is that entry's chain value in hex ("" when Seq is 0).
	Chain string `json:"chain"`
	// Time is when the checkpoint was taken.
	Time time.Time `json:"time"`
}

// Head returns the chain value of the checkpoint as bytes (32 zero bytes
// at the start of a log).
func (c Checkpoint) Head() ([32]byte, error) {
	var h [32]byte
	if c.Seq == 0 {
		return h, nil
	}
	if len(c.Chain) != 2*len(h) {
		return h, errors.New("auditlog: malformed checkpoint chain")
	}
	if _, err := hex.Decode(h[:], []byte(c.Chain)); err != nil {
		return h, errors.New("auditlog: malformed checkpoint chain")
	}
	return h, nil
}

// Chain appends entries to a device's log, numbering and linking them.
// It is not safe for concurrent use: the device serializes it.
type Chain struct {
	mac  hash.Hash
	sum  []byte // scratch for mac.Sum, so that linking allocates nothing
	seq  uint64
	head [32]byte
}

// NewChain returns a chain that continues after the checkpoint cp.
func NewChain(key []byte, cp Checkpoint) (*Chain, error) {
	if len(key) != KeySize {
		return nil, errors.New("auditlog: chain key must be 32 bytes")
	}
	head, err := cp.Head()
	if err != nil {
		return nil, err
	}
	return &Chain{mac: hmac.New(sha256.New, key), sum: make([]byte, 0, sha256.Size), seq: cp.Seq, head: head}, nil
}

// Seq returns the sequence number of the last entry appended.
func (c *Chain) Seq() uint64 { return c.seq }

// Checkpoint returns the state after the last entry appended.
func (c *Chain) Checkpoint(now time.Time) Checkpoint {
	return NewCheckpoint(c.seq, c.head, now)
}

// State returns the sequence number and chain value of the last entry
// appended, without allocating.
func (c *Chain) State() (seq uint64, head [32]byte) { return c.seq, c.head }

// NewCheckpoint returns the checkpoint of the entry seq whose chain value
// is head, taken at now.
func NewCheckpoint(seq uint64, head [32]byte, now time.Time) Checkpoint {
	cp := Checkpoint{Seq: seq, Time: now.UTC()}
	if seq > 0 {
		cp.Chain = hex.EncodeToString(head[:])
	}
	return cp
}

// Append appends one line to dst: prefix, the JSON object obj (which must
// end in '}') with "seq" and "chain" added as its last members, and a
// newline.
func (c *Chain) Append(dst []byte, prefix string, obj []byte) []byte {
	if len(obj) < 2 || obj[len(obj)-1] != '}' {
		panic("auditlog: Append needs a JSON object")
	}
	c.seq++
	start := len(dst)
	dst = append(dst, prefix...)
	dst = append(dst, obj[:len(obj)-1]...)
	if len(obj) > 2 { // not "{}"
		dst = append(dst, ',')
	}
	dst = append(dst, `"seq":`...)
	dst = strconv.AppendUint(dst, c.seq, 10)
	c.head = c.link(dst[start:])
	dst = append(dst, `,"chain":"`...)
	dst = hex.AppendEncode(dst, c.head[:])
	return append(dst, "\"}\n"...)
}

// link computes the chain value of body, the line after c.head.
func (c *Chain) link(body []byte) [32]byte {
	c.sum = appendLink(c.mac, c.sum[:0], c.head[:], body)
	return [32]byte(c.sum)
}

// link computes the chain value of body after prev.
func link(mac hash.Hash, prev [32]byte, body []byte) [32]byte {
	return [32]byte(appendLink(mac, nil, prev[:], body))
}

// appendLink appends to sum the chain value of body after prev.
func appendLink(mac hash.Hash, sum, prev, body []byte) []byte {
	mac.Reset()
	mac.Write(prev)
	mac.Write(body)
	return mac.Sum(sum)
}

// Line is a parsed chained line.
type Line struct {
	// Body is the line up to the chain member: what the MAC covers.
	Body []byte
	// Seq is the entry's sequence number.
	Seq uint64
	// Chain is the entry's chain value.
	Chain [32]byte
	// JSON is the entry object, without any prefix.
	JSON []byte
}

var (
	chainMember = []byte(`,"chain":"`)
	seqMember   = []byte(`"seq":`)
)

// ErrNotChained marks a line without a valid seq and chain.
var ErrNotChained = errors.New("auditlog: line carries no seq and chain")

// ParseLine splits a line (without its newline) into what the chain covers
// and the chain itself. It does not check the MAC.
func ParseLine(line []byte) (Line, error) {
	i := bytes.LastIndex(line, chainMember)
	if i < 0 || !bytes.HasSuffix(line, []byte(`"}`)) {
		return Line{}, ErrNotChained
	}
	var l Line
	hexChain := line[i+len(chainMember) : len(line)-2]
	if len(hexChain) != 2*len(l.Chain) {
		return Line{}, ErrNotChained
	}
	if !lowerHex(hexChain) {
		return Line{}, ErrNotChained
	}
	hex.Decode(l.Chain[:], hexChain)
	l.Body = line[:i]
	j := bytes.LastIndex(l.Body, seqMember)
	if j < 0 {
		return Line{}, ErrNotChained
	}
	seq, err := strconv.ParseUint(string(l.Body[j+len(seqMember):]), 10, 64)
	if err != nil || seq == 0 {
		return Line{}, ErrNotChained
	}
	l.Seq = seq
	if k := bytes.IndexByte(line, '{'); k >= 0 {
		l.JSON = line[k:]
	}
	return l, nil
}

// lowerHex reports whether b is lower-case hex, the only form written: an
// upper-cased digit is an edit too.
func lowerHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Resume finds where a log continues past the checkpoint cp: tail is the
// end of the log as written (whole lines, possibly starting mid-line),
// and Resume returns the checkpoint of its last entry that chains,
// link by link, to cp. It returns cp when nothing in tail follows it (a
// fresh file after a rotation, or entries that do not chain).
//
// A device uses it when it starts, so that entries written after the last
// checkpoint, before a crash, are continued rather than numbered again.
func Resume(key []byte, cp Checkpoint, tail []byte) Checkpoint {
	head, err := cp.Head()
	if err != nil || len(key) != KeySize {
		return cp
	}
	mac := hmac.New(sha256.New, key)
	lines := bytes.Split(tail, []byte("\n"))
	// Find the checkpoint's own entry (or, for an empty checkpoint, the
	// first entry of the log), then follow the chain.
	start := -1
	for i, raw := range lines {
		l, err := ParseLine(raw)
		if err != nil {
			continue
		}
		if (cp.Seq == 0 && l.Seq == 1 && link(mac, head, l.Body) == l.Chain) ||
			(cp.Seq > 0 && l.Seq == cp.Seq && l.Chain == head) {
			start = i
			if cp.Seq == 0 {
				head, cp = l.Chain, Checkpoint{Seq: 1, Chain: hex.EncodeToString(l.Chain[:]), Time: cp.Time}
			}
			break
		}
	}
	if start < 0 {
		return cp
	}
	for _, raw := range lines[start+1:] {
		l, err := ParseLine(raw)
		if err != nil || l.Seq != cp.Seq+1 || link(mac, head, l.Body) != l.Chain {
			break
		}
		head = l.Chain
		cp = Checkpoint{Seq: l.Seq, Chain: hex.EncodeToString(l.Chain[:]), Time: cp.Time}
	}
	return cp
}
