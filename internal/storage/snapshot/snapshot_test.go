package snapshot_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
	"github.com/vigil-secrets/vigil/internal/storage/snapshot"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var testMeta = snapshot.Meta{
	ClusterID:   "0f6b6d52-1c2e-4a3b-9d2e-6f1c2b3a4d5e",
	Created:     time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC),
	StorageType: "bolt",
}

// testEntries has an empty value, a binary one and nested keys.
func testEntries() []storage.Entry {
	return []storage.Entry{
		{Key: "core/cluster", Value: []byte{1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef}},
		{Key: "core/keyring", Value: []byte("ciphertext of the keyring")},
		{Key: "core/seal", Value: []byte(`{"type":"shamir"}`)},
		{Key: "empty", Value: []byte{}},
		{Key: "logical/6b1d/data/x", Value: bytes.Repeat([]byte{0, 0xff}, 40)},
	}
}

// encode writes a snapshot of es.
func encode(t testing.TB, m snapshot.Meta, es []storage.Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := snapshot.NewWriter(&buf, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := w.Add(e.Key, e.Value); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decode reads a whole snapshot; err is the error that ended it (nil when
// it ended with io.EOF).
func decode(data []byte) (snapshot.Meta, []storage.Entry, error) {
	r, err := snapshot.NewReader(bytes.NewReader(data))
	if err != nil {
		return snapshot.Meta{}, nil, err
	}
	var out []storage.Entry
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			if uint64(len(out)) != r.Count() {
				return r.Meta(), out, fmt.Errorf("Count() = %d after %d entries", r.Count(), len(out))
			}
			return r.Meta(), out, nil
		}
		if err != nil {
			return r.Meta(), out, err
		}
		out = append(out, e)
	}
}

func sameEntries(a, b []storage.Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

func TestRoundTrip(t *testing.T) {
	big := make([]byte, 3<<20+17) // crosses the reader's allocation chunks
	for i := range big {
		big[i] = byte(i * 31)
	}
	for _, es := range [][]storage.Entry{nil, testEntries(), append(testEntries(), storage.Entry{Key: "zz/big", Value: big})} {
		m, got, err := decode(encode(t, testMeta, es))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if m != testMeta {
			t.Fatalf("meta = %+v, want %+v", m, testMeta)
		}
		if !sameEntries(got, es) {
			t.Fatalf("decoded %d entries, want %d (or they differ)", len(got), len(es))
		}
	}
}

// The format is pinned: a change breaks the reading of existing
// snapshots and must come with a new version.
func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "v1.snap")
	data := encode(t, testMeta, testEntries())
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, want) {
		t.Fatalf("the writer's output differs from %s (run with -update only for a deliberate format change)", path)
	}
	m, es, err := decode(want)
	if err != nil || m != testMeta || !sameEntries(es, testEntries()) {
		t.Fatalf("decode golden: %+v %v", m, err)
	}
}

// Every prefix of a snapshot is refused with ErrInvalid: never a clean
// end, whatever entry boundary it falls on.
func TestEveryTruncationFails(t *testing.T) {
	data := encode(t, testMeta, testEntries())
	for n := range len(data) {
		_, _, err := decode(data[:n])
		if !errors.Is(err, snapshot.ErrInvalid) {
			t.Fatalf("truncated to %d of %d bytes: err = %v, want ErrInvalid", n, len(data), err)
		}
	}
}

// Every single flipped bit is refused with ErrInvalid.
func TestEveryBitFlipFails(t *testing.T) {
	data := encode(t, testMeta, testEntries())
	for i := range len(data) {
		for bit := range 8 {
			bad := bytes.Clone(data)
			bad[i] ^= 1 << bit
			if _, _, err := decode(bad); !errors.Is(err, snapshot.ErrInvalid) {
				t.Fatalf("bit %d of byte %d flipped: err = %v, want ErrInvalid", bit, i, err)
			}
		}
	}
}

func TestReaderErrors(t *testing.T) {
	good := encode(t, testMeta, testEntries())
	v2 := bytes.Clone(good)
	v2[9] = 2
	// A valid file whose entries are out of order: the checksum matches,
	// the order does not.
	var unordered bytes.Buffer
	{
		w, _ := snapshot.NewWriter(&unordered, testMeta)
		_ = w.Add("a", []byte("1"))
		_ = w.Add("c", []byte("3"))
		_ = w.Close()
	}
	swapped := bytes.Replace(unordered.Bytes(), []byte("\x01\x00\x00\x00\x01c"), []byte("\x01\x00\x00\x00\x01A"), 1)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, snapshot.ErrNotSnapshot},
		{"json", []byte(`{"errors":["permission denied"]}`), snapshot.ErrNotSnapshot},
		{"version 2", v2, snapshot.ErrVersion},
		{"data after the trailer", append(bytes.Clone(good), 0), snapshot.ErrCorrupt},
		{"two snapshots", append(bytes.Clone(good), good...), snapshot.ErrCorrupt},
		{"no trailer", good[:len(good)-41], snapshot.ErrTruncated},
		{"keys out of order", swapped, snapshot.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := decode(tt.data); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// A length from a corrupt (or hostile) file makes the reader allocate no
// more than the data that actually arrives, give or take a chunk.
func TestHugeLengthAllocatesLittle(t *testing.T) {
	data := encode(t, testMeta, nil)
	data = data[:len(data)-41] // drop the trailer
	data = append(data, 0x01, 0, 0, 0, 1, 'k', 0x3f, 0xff, 0xff, 0xff)
	data = append(data, make([]byte, 100)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := decode(data)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, snapshot.ErrTruncated) {
		t.Fatalf("err = %v, want ErrTruncated", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
		t.Fatalf("reading a 1 GiB length with 100 bytes behind it allocated %d bytes", n)
	}
}

func TestWriterRefuses(t *testing.T) {
	w, err := snapshot.NewWriter(io.Discard, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add("b", nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"b", "a", "", "/abs", strings.Repeat("k", snapshot.MaxKeyLen+1)} {
		if err := w.Add(k, nil); err == nil {
			t.Errorf("Add(%.20q) after \"b\" was accepted", k)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Add("c", nil); err == nil {
		t.Error("Add after Close was accepted")
	}
	if _, err := snapshot.NewWriter(io.Discard, snapshot.Meta{ClusterID: strings.Repeat("x", 2000)}); err == nil {
		t.Error("a 2000-byte cluster ID was accepted")
	}
}

// errWriter fails after n bytes.
type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 0
		return n, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriterReportsWriteErrors(t *testing.T) {
	w, err := snapshot.NewWriter(&errWriter{n: 100}, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 200<<10) // more than the writer buffers
	err = w.Add("a", big)
	if err == nil {
		err = w.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("write error = %v", err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed write succeeded")
	}
}

// Restore fed by a reader rolls back when the file turns out bad only at
// its end: the backend keeps its old content.
func TestRestoreRollsBackOnBadSnapshot(t *testing.T) {
	ctx := t.Context()
	b := inmem.New()
	if err := b.Put(ctx, "old", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	good := encode(t, testMeta, testEntries())
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1 // the checksum's last byte
	for _, data := range [][]byte{bad, good[:len(good)-1], good[:len(good)-41]} {
		r, err := snapshot.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Restore(ctx, r.Next); !errors.Is(err, snapshot.ErrInvalid) {
			t.Fatalf("Restore of a bad snapshot = %v, want ErrInvalid", err)
		}
		if v, err := b.Get(ctx, "old"); err != nil || string(v) != "kept" {
			t.Fatalf("old content after a failed restore: %q, %v", v, err)
		}
	}
	r, err := snapshot.NewReader(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(ctx, r.Next); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "old"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("old key after restore: %v", err)
	}
}

// FuzzReader: no input makes the reader panic, and every input it accepts
// is exactly what the writer makes of its header and entries (so there
// is one encoding of each snapshot and nothing is ignored).
func FuzzReader(f *testing.F) {
	f.Add(encode(f, testMeta, testEntries()))
	f.Add(encode(f, snapshot.Meta{}, nil))
	f.Add(encode(f, testMeta, []storage.Entry{{Key: "a", Value: nil}}))
	if golden, err := os.ReadFile(filepath.Join("testdata", "v1.snap")); err == nil {
		f.Add(golden)
	}
	f.Add([]byte("VGLSNAP\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, es, err := decode(data)
		if err != nil {
			if !errors.Is(err, snapshot.ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		if again := encode(t, m, es); !bytes.Equal(again, data) {
			t.Fatalf("accepted input is not the writer's encoding of its content")
		}
	})
}
