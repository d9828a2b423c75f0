// Package snapshot is the file format of Vigil's storage snapshots: what
// GET sys/storage/snapshot streams and `vigil operator snapshot save`
// writes, and what a restore reads back. It holds the physical entries of
// a store as they are stored: keys are storage paths and values are
// barrier ciphertext, so a snapshot is as confidential as the storage it
// came from (no key that opens it is in it) and is restored only to a
// server that has, or is unsealed with, that cluster's keys.
//
// The format is a stream, written and read entry by entry, never held
// whole in memory:
//
//	file    = header entry* trailer
//	header  = magic "VGLSNAP\n" (8 bytes) | version (uint16) |
//	          created (int64, Unix nanoseconds) |
//	          cluster ID (uint16 length | bytes) |
//	          storage type (uint16 length | bytes)
//	entry   = 0x01 | key length (uint32) | key | value length (uint32) | value
//	trailer = 0x02 | entry count (uint64) | SHA-256 of every byte before it
//
// Integers are big endian. Keys are valid storage keys, in strictly
// increasing order (as [storage.Snapshotter.Snapshot] yields them), of at
// most [MaxKeyLen] bytes; values are at most [MaxValueLen] bytes. The
// trailer ends the file: nothing may follow it.
//
// A [Reader] returns io.EOF only once the trailer's count and checksum
// match and the input has ended. Anything else the file is to blame for
// (not a snapshot, another version, a bad length, keys out of order, a
// missing trailer, a checksum that does not match, bytes after the
// trailer) is an error wrapping [ErrInvalid], so that a restore fed by
// [Reader.Next] rolls back. The checksum detects damage, not tampering:
// the ciphertext's own authentication (AES-GCM, bound to its path) stops
// a forged value from ever being read.
package snapshot

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// Format constants.
const (
	// Version is the format version this package writes and reads.
	Version = 1
	// MaxKeyLen bounds a key (bbolt's own limit is 32 KiB).
	MaxKeyLen = 64 << 10
	// MaxValueLen bounds a value.
	MaxValueLen = 1 << 30
	// maxMetaLen bounds the header's strings.
	maxMetaLen = 1024

	magic      = "VGLSNAP\n"
	tagEntry   = 0x01
	tagTrailer = 0x02
	// readChunk is the most a reader allocates ahead of the bytes it has
	// actually read, so that a corrupt length cannot make it allocate a
	// gigabyte.
	readChunk = 1 << 20
	bufSize   = 64 << 10
)

// Errors callers branch on. Every error about the file's content wraps
// ErrInvalid; errors of the underlying reader or writer are wrapped as
// they are.
var (
	// ErrInvalid: the input is not an intact snapshot this version reads.
	ErrInvalid = errors.New("invalid snapshot")
	// ErrNotSnapshot: the input does not start like a snapshot.
	ErrNotSnapshot = fmt.Errorf("%w: not a Vigil storage snapshot", ErrInvalid)
	// ErrVersion: a snapshot of another format version.
	ErrVersion = fmt.Errorf("%w: unsupported format version", ErrInvalid)
	// ErrTruncated: the input ends before the trailer.
	ErrTruncated = fmt.Errorf("%w: truncated", ErrInvalid)
	// ErrChecksum: the trailer's count or checksum does not match.
	ErrChecksum = fmt.Errorf("%w: checksum mismatch", ErrInvalid)
	// ErrCorrupt: a malformed record (bad tag, length or key, keys out of
	// order, data after the trailer).
	ErrCorrupt = fmt.Errorf("%w: corrupt", ErrInvalid)
)

// Meta describes a snapshot: it is the header.
type Meta struct {
	// ClusterID is the ID of the cluster whose storage it is.
	ClusterID string
	// Created is when the snapshot was taken (kept to the nanosecond).
	Created time.Time
	// StorageType is the type of the store it was taken from ("bolt").
	StorageType string
}

// Writer writes a snapshot. Create it with [NewWriter], add the entries in
// key order with Add, and end it with Close; a snapshot not closed has no
// trailer, and every reader refuses it.
type Writer struct {
	w     *bufio.Writer
	h     hash.Hash
	count uint64
	last  string
	err   error // sticky
	buf   [32]byte
}

// NewWriter writes the header of a snapshot described by m to w. Writes
// to w are buffered; Close flushes them.
func NewWriter(w io.Writer, m Meta) (*Writer, error) {
	if len(m.ClusterID) > maxMetaLen || len(m.StorageType) > maxMetaLen {
		return nil, errors.New("snapshot: cluster ID or storage type too long")
	}
	sw := &Writer{w: bufio.NewWriterSize(w, bufSize), h: sha256.New()}
	hdr := make([]byte, 0, len(magic)+2+8+2+len(m.ClusterID)+2+len(m.StorageType))
	hdr = append(hdr, magic...)
	hdr = binary.BigEndian.AppendUint16(hdr, Version)
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(m.Created.UnixNano()))
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(m.ClusterID)))
	hdr = append(hdr, m.ClusterID...)
	hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(m.StorageType)))
	hdr = append(hdr, m.StorageType...)
	if err := sw.write(hdr); err != nil {
		return nil, err
	}
	return sw, nil
}

// write hashes p and writes it.
func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	w.h.Write(p)
	if _, err := w.w.Write(p); err != nil {
		w.err = fmt.Errorf("snapshot: write: %w", err)
	}
	return w.err
}

// Add writes one entry. Keys must be valid storage keys, each greater
// than the one before; value is not kept.
func (w *Writer) Add(key string, value []byte) error {
	if w.err != nil {
		return w.err
	}
	switch {
	case storage.ValidateKey(key) != nil || len(key) > MaxKeyLen:
		return fmt.Errorf("snapshot: invalid key %q", key)
	case w.count > 0 && key <= w.last:
		return fmt.Errorf("snapshot: key %q does not follow %q", key, w.last)
	case len(value) > MaxValueLen:
		return fmt.Errorf("snapshot: value of %q is too large (%d bytes)", key, len(value))
	}
	w.buf[0] = tagEntry
	binary.BigEndian.PutUint32(w.buf[1:5], uint32(len(key)))
	if err := w.write(w.buf[:5]); err != nil {
		return err
	}
	if err := w.write([]byte(key)); err != nil {
		return err
	}
	binary.BigEndian.PutUint32(w.buf[:4], uint32(len(value)))
	if err := w.write(w.buf[:4]); err != nil {
		return err
	}
	if err := w.write(value); err != nil {
		return err
	}
	w.count++
	w.last = key
	return nil
}

// Count is the number of entries added so far.
func (w *Writer) Count() uint64 { return w.count }

// Close writes the trailer and flushes. It does not close the underlying
// writer.
func (w *Writer) Close() error {
	w.buf[0] = tagTrailer
	binary.BigEndian.PutUint64(w.buf[1:9], w.count)
	if err := w.write(w.buf[:9]); err != nil {
		return err
	}
	if _, err := w.w.Write(w.h.Sum(nil)); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("snapshot: write: %w", err)
	}
	w.err = errors.New("snapshot: writer closed")
	return nil
}

// Reader reads a snapshot entry by entry. Create it with [NewReader].
type Reader struct {
	r     *bufio.Reader
	h     hash.Hash
	meta  Meta
	count uint64
	last  string
	err   error // sticky: once the end or an error is reached
	buf   [32]byte
}

// NewReader reads and checks the header. Its errors wrap [ErrInvalid]
// when the input is not a snapshot of this version.
func NewReader(r io.Reader) (*Reader, error) {
	sr := &Reader{r: bufio.NewReaderSize(r, bufSize), h: sha256.New()}
	head := sr.buf[:len(magic)+2+8]
	if err := sr.readFull(head); err != nil {
		if errors.Is(err, ErrTruncated) {
			return nil, ErrNotSnapshot
		}
		return nil, err
	}
	if string(head[:len(magic)]) != magic {
		return nil, ErrNotSnapshot
	}
	if v := binary.BigEndian.Uint16(head[len(magic):]); v != Version {
		return nil, fmt.Errorf("%w %d (this server reads version %d)", ErrVersion, v, Version)
	}
	sr.meta.Created = time.Unix(0, int64(binary.BigEndian.Uint64(head[len(magic)+2:]))).UTC()
	var err error
	if sr.meta.ClusterID, err = sr.readString(); err != nil {
		return nil, err
	}
	if sr.meta.StorageType, err = sr.readString(); err != nil {
		return nil, err
	}
	return sr, nil
}

// Meta returns the header.
func (r *Reader) Meta() Meta { return r.meta }

// Count is the number of entries read so far.
func (r *Reader) Count() uint64 { return r.count }

// readFull reads and hashes len(p) bytes; the input ending first is
// ErrTruncated.
func (r *Reader) readFull(p []byte) error {
	if _, err := io.ReadFull(r.r, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrTruncated
		}
		return fmt.Errorf("snapshot: read: %w", err)
	}
	r.h.Write(p)
	return nil
}

// readBytes reads n bytes, allocating as the data arrives rather than
// trusting n.
func (r *Reader) readBytes(n int) ([]byte, error) {
	out := make([]byte, 0, min(n, readChunk))
	for len(out) < n {
		m := min(n-len(out), readChunk)
		out = slices.Grow(out, m)
		if err := r.readFull(out[len(out) : len(out)+m]); err != nil {
			return nil, err
		}
		out = out[:len(out)+m]
	}
	return out, nil
}

func (r *Reader) readString() (string, error) {
	if err := r.readFull(r.buf[:2]); err != nil {
		return "", err
	}
	n := int(binary.BigEndian.Uint16(r.buf[:2]))
	if n > maxMetaLen {
		return "", fmt.Errorf("%w: header string of %d bytes", ErrCorrupt, n)
	}
	b, err := r.readBytes(n)
	return string(b), err
}

// Next returns the next entry. After the last one it checks the trailer
// and the end of the input and returns io.EOF; when they do not check out
// it returns an error wrapping [ErrInvalid] instead. The entry's value is
// the caller's.
func (r *Reader) Next() (storage.Entry, error) {
	if r.err != nil {
		return storage.Entry{}, r.err
	}
	e, err := r.next()
	if err != nil {
		r.err = err
	}
	return e, err
}

func (r *Reader) next() (storage.Entry, error) {
	if err := r.readFull(r.buf[:1]); err != nil {
		return storage.Entry{}, err
	}
	switch r.buf[0] {
	case tagEntry:
	case tagTrailer:
		return storage.Entry{}, r.trailer()
	default:
		return storage.Entry{}, fmt.Errorf("%w: unknown record type %#x after entry %d", ErrCorrupt, r.buf[0], r.count)
	}
	if err := r.readFull(r.buf[:4]); err != nil {
		return storage.Entry{}, err
	}
	klen := binary.BigEndian.Uint32(r.buf[:4])
	if klen > MaxKeyLen {
		return storage.Entry{}, fmt.Errorf("%w: key of %d bytes", ErrCorrupt, klen)
	}
	key, err := r.readBytes(int(klen))
	if err != nil {
		return storage.Entry{}, err
	}
	k := string(key)
	if storage.ValidateKey(k) != nil || (r.count > 0 && k <= r.last) {
		return storage.Entry{}, fmt.Errorf("%w: entry %d: invalid key or keys out of order", ErrCorrupt, r.count+1)
	}
	if err := r.readFull(r.buf[:4]); err != nil {
		return storage.Entry{}, err
	}
	vlen := binary.BigEndian.Uint32(r.buf[:4])
	if vlen > MaxValueLen {
		return storage.Entry{}, fmt.Errorf("%w: value of %d bytes", ErrCorrupt, vlen)
	}
	value, err := r.readBytes(int(vlen))
	if err != nil {
		return storage.Entry{}, err
	}
	r.count++
	r.last = k
	return storage.Entry{Key: k, Value: value}, nil
}

// trailer checks the count, the checksum and the end of the input, and
// returns io.EOF when they check out.
func (r *Reader) trailer() error {
	if err := r.readFull(r.buf[:8]); err != nil {
		return err
	}
	count := binary.BigEndian.Uint64(r.buf[:8])
	want := r.h.Sum(nil)
	var sum [sha256.Size]byte
	if _, err := io.ReadFull(r.r, sum[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrTruncated
		}
		return fmt.Errorf("snapshot: read: %w", err)
	}
	if count != r.count || !bytes.Equal(sum[:], want) {
		return ErrChecksum
	}
	switch _, err := r.r.ReadByte(); {
	case errors.Is(err, io.EOF):
		return io.EOF
	case err != nil:
		return fmt.Errorf("snapshot: read: %w", err)
	}
	return fmt.Errorf("%w: data after the trailer", ErrCorrupt)
}
