package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// snapshotCore is what the snapshot endpoints need of the core. It is
// kept apart from Core: a core without it answers those paths 404.
type snapshotCore interface {
	SnapshotSave(ctx context.Context, req core.SnapshotRequest, w io.Writer) (core.SnapshotInfo, error)
	SnapshotRestore(ctx context.Context, req core.SnapshotRequest, r io.Reader, force bool) (core.SnapshotInfo, error)
}

// DefaultMaxSnapshotSize bounds the body of a restore, in place of the
// listener's max_request_size (a snapshot is the whole storage). The body
// is read only once the token is authorized (sudo).
const DefaultMaxSnapshotSize = 64 << 30

// isSnapshotPath reports the snapshot endpoints: Vigil's and Vault's raft
// paths, which are the same endpoints.
func isSnapshotPath(p string) bool {
	switch p {
	case "sys/storage/snapshot", "sys/storage/snapshot-force",
		"sys/storage/raft/snapshot", "sys/storage/raft/snapshot-force":
		return true
	}
	return false
}

// handleSnapshot serves the snapshot endpoints:
//
//	GET  sys/storage/snapshot             the snapshot (application/octet-stream)
//	POST sys/storage/snapshot             restore a snapshot of this cluster
//	POST sys/storage/snapshot-force       restore a snapshot of any cluster
//
// and the same under sys/storage/raft/, where the snapshot is wrapped in
// the archive Vault's client expects (see snapshot_archive.go). PUT is
// taken for POST. A restore answers 204, or 200 with a warning when it
// left the server sealed.
func (h *Handler) handleSnapshot(ctx context.Context, w http.ResponseWriter, r *http.Request, path string) {
	sc, ok := h.core.(snapshotCore)
	if !ok {
		writeErrors(w, http.StatusNotFound, noRouteMessage(path))
		return
	}
	force := strings.HasSuffix(path, "-force")
	reqID := secret.UUID()
	req := core.SnapshotRequest{ID: reqID, Path: path, Token: requestToken(r), Connection: h.connection(r), Headers: r.Header}
	switch r.Method {
	case http.MethodGet:
		if force {
			writeErrors(w, http.StatusMethodNotAllowed)
			return
		}
		h.saveSnapshot(ctx, w, sc, req, strings.HasPrefix(path, "sys/storage/raft/"))
	case http.MethodPost, http.MethodPut:
		h.restoreSnapshot(ctx, w, r, sc, req, force)
	default:
		writeErrors(w, http.StatusMethodNotAllowed)
	}
}

// streamWriter sends the response header on the first write, so that an
// error before any byte of the snapshot is still an ordinary error
// answer.
type streamWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *streamWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.started = true
		hdr := s.w.Header()
		hdr["Content-Type"] = []string{"application/octet-stream"}
		s.w.WriteHeader(http.StatusOK)
	}
	return s.w.Write(p)
}

func (h *Handler) saveSnapshot(ctx context.Context, w http.ResponseWriter, sc snapshotCore, req core.SnapshotRequest, archive bool) {
	sw := &streamWriter{w: w}
	var out io.Writer = sw
	var aw *archiveWriter
	if archive {
		aw = newArchiveWriter(sw, h.now())
		out = aw
	}
	_, err := sc.SnapshotSave(ctx, req, out)
	if err == nil && aw != nil {
		err = aw.Close()
	}
	if err == nil {
		return
	}
	if !sw.started {
		h.respondError(w, req.ID, req.Path, err)
		return
	}
	// Part of the snapshot is sent: break the connection so that the
	// client sees a failed transfer, not a short file.
	h.log.Error("snapshot transfer failed", "request_id", req.ID, "path", req.Path, "error", err)
	panic(http.ErrAbortHandler)
}

func (h *Handler) restoreSnapshot(ctx context.Context, w http.ResponseWriter, r *http.Request, sc snapshotCore, req core.SnapshotRequest, force bool) {
	limit := h.maxSnapshot
	if r.ContentLength > limit {
		writeErrors(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	body, err := snapshotBody(http.MaxBytesReader(w, r.Body, limit))
	var info core.SnapshotInfo
	if err == nil {
		info, err = sc.SnapshotRestore(ctx, req, body, force)
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeErrors(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	case err != nil:
		h.respondError(w, req.ID, req.Path, err)
		return
	case info.Sealed:
		writeJSON(w, http.StatusOK, envelope{
			RequestID: req.ID,
			Data:      map[string]any{"sealed": true, "entries": info.Entries},
			Warnings:  []string{"the snapshot was restored and the server is sealed: " + info.SealedReason},
		})
		return
	}
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusNoContent)
}
