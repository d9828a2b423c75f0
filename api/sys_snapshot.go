package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Storage snapshots (sys/storage/snapshot): the server's whole storage as
// one file, taken and restored online. The body is opaque to the client.
// A snapshot can be far larger than any other answer, so these calls
// stream it, and have no whole-request timeout of their own (Config's
// Timeout does not apply): ctx bounds them.

// SnapshotRestoreResult is what a restore answered.
type SnapshotRestoreResult struct {
	// Sealed reports that the restore left the server sealed (a forced
	// restore of another cluster's snapshot); Warnings say what to do.
	Sealed   bool
	Warnings []string
}

// SnapshotSave writes a snapshot of the server's storage to w (GET
// sys/storage/snapshot; needs read and sudo on that path) and returns the
// number of bytes written. It fails, having written part of one, when the
// server breaks the transfer off.
func (s *Sys) SnapshotSave(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := s.c.stream(ctx, http.MethodGet, "sys/storage/snapshot", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("api: snapshot transfer: %w", err)
	}
	return n, nil
}

// SnapshotRestore sends the snapshot r holds for the server to restore
// (POST sys/storage/snapshot, or sys/storage/snapshot-force with force;
// needs update and sudo on that path). Without force the snapshot must be
// of the server's own cluster.
func (s *Sys) SnapshotRestore(ctx context.Context, r io.Reader, force bool) (*SnapshotRestoreResult, error) {
	path := "sys/storage/snapshot"
	if force {
		path += "-force"
	}
	resp, err := s.c.stream(ctx, http.MethodPost, path, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &SnapshotRestoreResult{}
	if resp.StatusCode == http.StatusNoContent {
		return out, nil
	}
	var body struct {
		Data struct {
			Sealed bool `json:"sealed"`
		} `json:"data"`
		Warnings []string `json:"warnings"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(&body); err != nil {
		return nil, fmt.Errorf("api: decode restore response: %w", err)
	}
	out.Sealed, out.Warnings = body.Data.Sealed, body.Warnings
	return out, nil
}

// stream sends one request with body (nil for none) streamed as it is
// read, and returns the answer with its body unread (the caller closes
// it), or a *ResponseError for a status of 400 or more. No whole-request
// timeout applies: ctx bounds the call.
func (c *Client) stream(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	u := c.url(path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("api: build request: %w", err)
	}
	req.Header.Set("X-Vault-Request", "true")
	if tok := c.Token(); tok != "" {
		req.Header.Set("X-Vault-Token", tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	hc := *c.http
	hc.Timeout = 0
	hr, err := hc.Do(req)
	if err != nil {
		return nil, err // *url.Error: names the method and URL, wraps the cause
	}
	if hr.StatusCode >= 400 {
		defer hr.Body.Close()
		data, err := io.ReadAll(io.LimitReader(hr.Body, maxResponseBytes))
		if err != nil {
			return nil, fmt.Errorf("api: read response of %s %s: %w", method, u.Redacted(), err)
		}
		resp := &Response{StatusCode: hr.StatusCode, Header: hr.Header, Body: data}
		return nil, newResponseError(method, strings.TrimPrefix(u.Path, c.addr.Path+"/v1/"), u.Redacted(), resp)
	}
	return hr, nil
}
