package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// The write-ahead log. Each group commit appends one record and fsyncs the
// log once; the record holds every op of the batch, so a batch (and each
// transaction in it) is applied whole or not at all on replay.
//
//	record  = length (uint32 LE) | crc32c(payload) (uint32 LE) | payload
//	payload = sequence (uvarint) | count (uvarint) | op...
//	op      = kind (1 byte: 0 put, 1 delete) | key length (uvarint) | key
//	          [| value length (uvarint) | value]   (puts only)
//
// The log is two files, segments. Records are appended to one; when it is
// full, a checkpoint applies its writes to bbolt in the background while
// records go to the other, written again from its start over the records
// of its previous round (the checkpoint before made those redundant).
// Sequence numbers rise by one from record to record, across segments, and
// never restart; a checkpoint stores the last one it applied in bbolt.
//
// A record that is cut short or fails its checksum ends a segment: it is
// the tail of a write that was never acknowledged, or what is left of an
// older round's record that a newer one partly overwrote. Replay skips
// what bbolt already holds, follows the sequence from one segment into the
// other, and stops at the first record that does not follow its
// predecessor, so the leftovers of an older round (and the zeros the files
// are filled with) are never replayed over newer data.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	walHeaderSize = 8
	opPut         = 0
	opDelete      = 1
	// maxRecord bounds a record's declared length, so a corrupt length
	// cannot make replay allocate gigabytes.
	maxRecord = 1 << 30
)

var errCorruptRecord = errors.New("corrupt log record")

// appendRecord encodes the ops of batch as record seq.
func appendRecord(buf []byte, seq uint64, batch []*writeReq) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, walHeaderSize)...)
	buf = binary.AppendUvarint(buf, seq)
	n := 0
	for _, r := range batch {
		n += len(r.ops)
	}
	buf = binary.AppendUvarint(buf, uint64(n))
	for _, r := range batch {
		for _, op := range r.ops {
			if op.Delete {
				buf = append(buf, opDelete)
			} else {
				buf = append(buf, opPut)
			}
			buf = binary.AppendUvarint(buf, uint64(len(op.Key)))
			buf = append(buf, op.Key...)
			if !op.Delete {
				buf = binary.AppendUvarint(buf, uint64(len(op.Value)))
				buf = append(buf, op.Value...)
			}
		}
	}
	payload := buf[start+walHeaderSize:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(payload, castagnoli))
	return buf
}

// decodePayload parses the sequence number and ops of one record.
func decodePayload(p []byte) (uint64, []storage.Op, error) {
	seq, k := binary.Uvarint(p)
	if k <= 0 {
		return 0, nil, errCorruptRecord
	}
	p = p[k:]
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)) {
		return 0, nil, errCorruptRecord
	}
	p = p[k:]
	ops := make([]storage.Op, 0, n)
	readBytes := func() ([]byte, bool) {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) {
			return nil, false
		}
		b := p[k : k+int(l)]
		p = p[k+int(l):]
		return b, true
	}
	for range n {
		if len(p) == 0 {
			return 0, nil, errCorruptRecord
		}
		kind := p[0]
		p = p[1:]
		key, ok := readBytes()
		if !ok || (kind != opPut && kind != opDelete) {
			return 0, nil, errCorruptRecord
		}
		op := storage.Op{Key: string(key), Delete: kind == opDelete}
		if !op.Delete {
			v, ok := readBytes()
			if !ok {
				return 0, nil, errCorruptRecord
			}
			op.Value = append([]byte{}, v...)
		}
		ops = append(ops, op)
	}
	if len(p) != 0 {
		return 0, nil, errCorruptRecord
	}
	return seq, ops, nil
}

// readLog returns, in order, the ops of the intact records of the log that
// follow applied (records up to applied are already in bbolt) and the last
// sequence number in effect. torn reports that the log ends in a record
// cut short or damaged, rather than in zeros or in an older round's
// records: what a crash during a write leaves.
func readLog(data []byte, applied uint64) (ops []storage.Op, last uint64, torn bool) {
	last = applied
	var prev uint64
	for len(data) >= walHeaderSize {
		n := binary.LittleEndian.Uint32(data)
		sum := binary.LittleEndian.Uint32(data[4:])
		if n == 0 && sum == 0 {
			break // the zero fill beyond the last record
		}
		if n > maxRecord || int64(n) > int64(len(data)-walHeaderSize) {
			return ops, last, true
		}
		payload := data[walHeaderSize : walHeaderSize+int(n)]
		if crc32.Checksum(payload, castagnoli) != sum {
			return ops, last, true
		}
		seq, rec, err := decodePayload(payload)
		if err != nil {
			return ops, last, true
		}
		if seq <= prev {
			break // an older round's leftovers
		}
		if seq > applied {
			if seq != last+1 {
				// A gap: nothing after it can be trusted.
				return ops, last, true
			}
			ops = append(ops, rec...)
			last = seq
		}
		// seq <= applied: a checkpoint already put it in bbolt.
		prev = seq
		data = data[walHeaderSize+int(n):]
	}
	if len(data) > 0 && len(data) < walHeaderSize && !allZero(data) {
		torn = true
	}
	return ops, last, torn
}

func allZero(p []byte) bool {
	for _, c := range p {
		if c != 0 {
			return false
		}
	}
	return true
}

// syncDir makes a new directory entry (the log file's) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// segmentPath names log segment i of the data file at dbPath:
// "vigil.db-wal.0" and "vigil.db-wal.1" beside "vigil.db".
func segmentPath(dbPath string, i int) string {
	return filepath.Join(filepath.Dir(dbPath), fmt.Sprintf("%s-wal.%d", filepath.Base(dbPath), i))
}

// replayLog returns, in order, the ops of the two log segments that follow
// applied, the last sequence number in effect, and whether a segment ended
// in a damaged record (see readLog). The records after applied are in one
// segment, or begin in one and go on in the other: a checkpoint that did
// not finish leaves its records in one segment and the later ones in the
// other.
func replayLog(segs [2][]byte, applied uint64) (ops []storage.Op, last uint64, torn bool) {
	for i := range segs {
		first, last, torn := readLog(segs[i], applied)
		if last == applied {
			continue // this segment does not go on from applied
		}
		then, end, tornThen := readLog(segs[1-i], last)
		return append(first, then...), end, torn || tornThen
	}
	_, _, torn0 := readLog(segs[0], applied)
	_, _, torn1 := readLog(segs[1], applied)
	return nil, applied, torn0 || torn1
}
