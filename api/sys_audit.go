package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The sys/audit endpoints manage audit devices: listing, enabling and
// disabling them (root), and hashing a value as a device writes it in its
// log (sys/audit-hash). sys/audit-chain is Vigil's own: it returns a
// device's chain key and checkpoint, with which its log can be verified
// (sudo). The key can also forge a chain, so handle it as a secret.

// Audit is an enabled audit device, as sys/audit lists it.
type Audit struct {
	Type        string            `json:"type"`
	Description string            `json:"description"`
	Options     map[string]string `json:"options"`
	Local       bool              `json:"local"`
	// Path is where the device is enabled, with a trailing slash ("file/").
	Path string `json:"path"`
}

// EnableAuditInput is the body that enables an audit device (PUT
// sys/audit/<path>).
type EnableAuditInput struct {
	Type        string `json:"type"`
	Description string `json:"description"`
	// Options are the device's options (file_path, prefix, hmac_accessor
	// ...); nil is sent as {}.
	Options map[string]string `json:"options"`
	Local   bool              `json:"local"`
}

// AuditChain is an audit device's chain key and the server's checkpoint of
// its log: the sequence number and chain value of the last entry written.
// Its JSON form is that of sys/audit-chain, the key in base64.
type AuditChain struct {
	// Path is the device's path ("file/").
	Path string `json:"path"`
	// Key is the chain key (32 bytes). It is secret.
	Key []byte `json:"key"`
	// Seq is the sequence number of the last entry written (0: none).
	Seq uint64 `json:"seq"`
	// Chain is that entry's chain value, in hex ("" when Seq is 0).
	Chain string `json:"chain"`
	// CheckpointTime is when the checkpoint was recorded.
	CheckpointTime time.Time `json:"checkpoint_time"`
}

// errEmptyAuditPath is returned for an empty audit device path, which
// would address sys/audit itself.
var errEmptyAuditPath = errors.New("api: empty audit device path")

// auditPath is the path of the audit device at path under the sys prefix
// ("sys/audit", "sys/audit-hash" or "sys/audit-chain").
func auditPath(prefix, path string) (string, error) {
	p := cleanMount(path)
	if p == "" {
		return "", errEmptyAuditPath
	}
	return prefix + "/" + p, nil
}

// ListAudit returns the enabled audit devices keyed by path ("file/"); it
// is empty, not nil, when none is enabled.
func (s *Sys) ListAudit(ctx context.Context) (map[string]*Audit, error) {
	data, err := s.readData(ctx, "sys/audit")
	if err != nil {
		return nil, err
	}
	out := map[string]*Audit{}
	if err := decodeData(data, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// EnableAudit enables an audit device of in.Type at path (PUT
// sys/audit/<path>).
func (s *Sys) EnableAudit(ctx context.Context, path string, in EnableAuditInput) error {
	p, err := auditPath("sys/audit", path)
	if err != nil {
		return err
	}
	if in.Options == nil {
		in.Options = map[string]string{}
	}
	_, err = s.c.Do(ctx, http.MethodPut, p, nil, in)
	return err
}

// DisableAudit disables the audit device at path (DELETE
// sys/audit/<path>). Disabling a path where no device is enabled is not an
// error.
func (s *Sys) DisableAudit(ctx context.Context, path string) error {
	p, err := auditPath("sys/audit", path)
	if err != nil {
		return err
	}
	_, err = s.c.Do(ctx, http.MethodDelete, p, nil, nil)
	return err
}

// AuditHash returns input as the audit device at path writes it in its
// log, "hmac-sha256:<hex>" (POST sys/audit-hash/<path>), so that a log can
// be searched for a value without the value being in it.
func (s *Sys) AuditHash(ctx context.Context, path, input string) (string, error) {
	p, err := auditPath("sys/audit-hash", path)
	if err != nil {
		return "", err
	}
	resp, err := s.c.Do(ctx, http.MethodPost, p, nil, map[string]string{"input": input})
	if err != nil {
		return "", err
	}
	sec, err := resp.Secret()
	if err != nil {
		return "", err
	}
	if sec == nil || sec.Data == nil {
		return "", fmt.Errorf("%w: POST %s", errNoData, p)
	}
	h, ok := sec.Data["hash"].(string)
	if !ok || h == "" {
		return "", fmt.Errorf("api: POST %s: no hash in the response", p)
	}
	return h, nil
}

// AuditChain returns the chain key and checkpoint of the audit device at
// path (GET sys/audit-chain/<path>; sudo).
func (s *Sys) AuditChain(ctx context.Context, path string) (*AuditChain, error) {
	p, err := auditPath("sys/audit-chain", path)
	if err != nil {
		return nil, err
	}
	data, err := s.readData(ctx, p)
	if err != nil {
		return nil, err
	}
	var out AuditChain
	// A malformed key fails here; the message says nothing of its value.
	if err := decodeData(data, &out); err != nil {
		return nil, err
	}
	if len(out.Key) == 0 {
		return nil, fmt.Errorf("api: GET %s: no chain key in the response", p)
	}
	return &out, nil
}
