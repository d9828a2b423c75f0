package httpapi

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/core"
)

// Vault's raft snapshot paths are served with Vault's container around
// Vigil's snapshot, because Vault's Go client (and so `vault operator raft
// snapshot save`) refuses a snapshot that is not a gzip-compressed tar
// archive ending in a non-empty SHA256SUMS.sealed. Tar needs each file's
// size before its content, so the snapshot goes into the archive in parts
// of archivePart bytes, each buffered only until it is full:
//
//	vigil.snap.000000, vigil.snap.000001, ...   the snapshot, in order
//	SHA256SUMS.sealed                            "<sha256 hex>  vigil.snap\n"
//
// (the checksum of the whole snapshot; it is not sealed, only named as
// Vault's client expects). A restore accepts either form on any of the
// snapshot paths: a body that starts as gzip does is taken for the
// archive, and its parts are read back in order.
const (
	archivePart     = 1 << 20
	archivePrefix   = "vigil.snap."
	archiveChecksum = "SHA256SUMS.sealed"
)

// archiveWriter writes a snapshot into Vault's container. Nothing reaches
// the underlying writer before the first part is full or Close.
type archiveWriter struct {
	gz   *gzip.Writer
	tw   *tar.Writer
	buf  []byte
	sum  hash.Hash
	part int
	mod  time.Time
}

func newArchiveWriter(w io.Writer, now time.Time) *archiveWriter {
	// Ciphertext does not compress: store, do not deflate.
	gz, _ := gzip.NewWriterLevel(w, gzip.NoCompression)
	return &archiveWriter{gz: gz, tw: tar.NewWriter(gz), buf: make([]byte, 0, archivePart), sum: sha256.New(), mod: now}
}

func (a *archiveWriter) Write(p []byte) (int, error) {
	n := len(p)
	a.sum.Write(p)
	for len(p) > 0 {
		k := min(len(p), archivePart-len(a.buf))
		a.buf = append(a.buf, p[:k]...)
		p = p[k:]
		if len(a.buf) == archivePart {
			if err := a.flushPart(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (a *archiveWriter) file(name string, body []byte) error {
	hdr := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), ModTime: a.mod, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := a.tw.Write(body)
	return err
}

func (a *archiveWriter) flushPart() error {
	if err := a.file(fmt.Sprintf("%s%06d", archivePrefix, a.part), a.buf); err != nil {
		return err
	}
	a.part++
	a.buf = a.buf[:0]
	return nil
}

// Close writes the last part and the checksum file, and ends the archive.
func (a *archiveWriter) Close() error {
	if len(a.buf) > 0 || a.part == 0 {
		if err := a.flushPart(); err != nil {
			return err
		}
	}
	sums := hex.EncodeToString(a.sum.Sum(nil)) + "  vigil.snap\n"
	if err := a.file(archiveChecksum, []byte(sums)); err != nil {
		return err
	}
	if err := a.tw.Close(); err != nil {
		return err
	}
	return a.gz.Close()
}

// snapshotBody returns the snapshot a restore's body holds: the body as
// it is, or the parts of Vault's container read back in order.
func snapshotBody(body io.Reader) (io.Reader, error) {
	br := bufio.NewReader(body)
	head, err := br.Peek(2)
	if err != nil || head[0] != 0x1f || head[1] != 0x8b {
		return br, nil // not gzip: the snapshot reader judges it
	}
	gz, err := gzip.NewReader(br)
	if err != nil {
		return nil, archiveError(err)
	}
	return &archiveReader{tr: tar.NewReader(gz)}, nil
}

// archiveReader reads the snapshot parts of Vault's container.
type archiveReader struct {
	tr   *tar.Reader
	part int
	in   bool // inside a part
	done bool
}

func (a *archiveReader) Read(p []byte) (int, error) {
	for {
		if a.done {
			return 0, io.EOF
		}
		if a.in {
			n, err := a.tr.Read(p)
			if errors.Is(err, io.EOF) {
				a.in = false
				if n > 0 {
					return n, nil
				}
				continue
			}
			if err != nil {
				return n, archiveError(err)
			}
			return n, nil
		}
		hdr, err := a.tr.Next()
		if errors.Is(err, io.EOF) {
			a.done = true
			continue
		}
		if err != nil {
			return 0, archiveError(err)
		}
		switch {
		case hdr.Name == archiveChecksum:
			// The snapshot's own trailer is its checksum.
			a.done = true
		case hdr.Name == fmt.Sprintf("%s%06d", archivePrefix, a.part):
			a.part++
			a.in = true
		case strings.HasPrefix(hdr.Name, archivePrefix):
			return 0, fmt.Errorf("%w: archive part %q out of order", core.ErrSnapshotInvalid, hdr.Name)
		default:
			// Another file (a Vault raft snapshot's state.bin): nothing
			// of Vigil's. The snapshot reader finds no header.
			a.done = true
		}
	}
}

// archiveError makes a damaged archive a bad snapshot (400), except for a
// body over the size limit (413).
func archiveError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return fmt.Errorf("%w: damaged archive: %v", core.ErrSnapshotInvalid, err)
}
