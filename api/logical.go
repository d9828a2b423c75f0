package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// Logical reads and writes arbitrary paths (the "logical" API).
type Logical struct {
	c *Client
}

// Logical returns the client's logical API.
func (c *Client) Logical() *Logical { return &Logical{c: c} }

// Read reads path. A 404 without data or warnings gives (nil, nil).
func (l *Logical) Read(ctx context.Context, path string) (*Secret, error) {
	return l.ReadWithData(ctx, path, nil)
}

// ReadWithData reads path with query parameters (for example version=2).
// A 404 without data or warnings gives (nil, nil); a 404 with data (a KV v2
// deleted or destroyed version) gives the secret and no error.
func (l *Logical) ReadWithData(ctx context.Context, path string, query url.Values) (*Secret, error) {
	return l.do(ctx, http.MethodGet, path, query, nil)
}

// List lists the keys under path (data.keys). A 404 gives (nil, nil).
func (l *Logical) List(ctx context.Context, path string) (*Secret, error) {
	return l.do(ctx, "LIST", path, nil, nil)
}

// Write writes data to path with PUT. A 204 answer gives (nil, nil).
func (l *Logical) Write(ctx context.Context, path string, data map[string]any) (*Secret, error) {
	return l.do(ctx, http.MethodPut, path, nil, bodyOf(data))
}

// Patch sends data to path as a JSON merge patch (PATCH with Content-Type
// application/merge-patch+json). A 204 answer gives (nil, nil).
func (l *Logical) Patch(ctx context.Context, path string, data map[string]any) (*Secret, error) {
	return l.do(ctx, http.MethodPatch, path, nil, bodyOf(data))
}

// Delete deletes path. A 204 answer gives (nil, nil).
func (l *Logical) Delete(ctx context.Context, path string) (*Secret, error) {
	return l.DeleteWithData(ctx, path, nil)
}

// DeleteWithData deletes path with query parameters.
func (l *Logical) DeleteWithData(ctx context.Context, path string, query url.Values) (*Secret, error) {
	return l.do(ctx, http.MethodDelete, path, query, nil)
}

// bodyOf sends an empty object rather than "null" for a nil map.
func bodyOf(data map[string]any) any {
	if data == nil {
		return map[string]any{}
	}
	return data
}

func (l *Logical) do(ctx context.Context, method, path string, query url.Values, body any) (*Secret, error) {
	resp, err := l.c.Do(ctx, method, path, query, body)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		// A KV v2 deleted or destroyed version (data) or an invalid path
		// on a versioned mount (warnings) comes back as a secret.
		if s, perr := resp.Secret(); perr == nil && s != nil && (len(s.Data) > 0 || len(s.Warnings) > 0) {
			return s, nil
		}
		var re *ResponseError
		if (method == http.MethodGet || method == "LIST") && errors.As(err, &re) && len(re.Errors) == 0 {
			// Not found is not an error for reads and lists.
			return nil, nil
		}
		// An unknown path, an unmounted route, or a write to a missing
		// item: a real error.
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return resp.Secret()
}
