package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Sys is the system backend (sys/...): seal state, mounts, key rotation.
type Sys struct {
	c *Client
}

// Sys returns the client's system API.
func (c *Client) Sys() *Sys { return &Sys{c: c} }

// HealthResponse is the body of sys/health.
type HealthResponse struct {
	Initialized                bool   `json:"initialized"`
	Sealed                     bool   `json:"sealed"`
	Standby                    bool   `json:"standby"`
	PerformanceStandby         bool   `json:"performance_standby"`
	ReplicationPerformanceMode string `json:"replication_performance_mode"`
	ReplicationDRMode          string `json:"replication_dr_mode"`
	ServerTimeUTC              int64  `json:"server_time_utc"`
	Version                    string `json:"version"`
	ClusterName                string `json:"cluster_name,omitempty"`
	ClusterID                  string `json:"cluster_id,omitempty"`
}

// healthCodeParams are the sys/health status-code parameters; Health sets
// each to 299 so that every state answers with a 2xx body it can decode.
var healthCodeParams = []string{
	"activecode", "standbycode", "drsecondarycode", "performancestandbycode",
	"haunhealthycode", "removedcode", "sealedcode", "uninitcode",
}

// Health returns the server's health in any state (uninitialized, sealed,
// standby, active).
func (s *Sys) Health(ctx context.Context) (*HealthResponse, error) {
	q := url.Values{"standbyok": {"true"}, "perfstandbyok": {"true"}}
	for _, p := range healthCodeParams {
		q.Set(p, "299")
	}
	var out HealthResponse
	if err := s.getJSON(ctx, "sys/health", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SealStatusResponse is the body of sys/seal-status and sys/unseal.
type SealStatusResponse struct {
	Type         string `json:"type"`
	Initialized  bool   `json:"initialized"`
	Sealed       bool   `json:"sealed"`
	T            int    `json:"t"`
	N            int    `json:"n"`
	Progress     int    `json:"progress"`
	Nonce        string `json:"nonce"`
	Version      string `json:"version"`
	BuildDate    string `json:"build_date"`
	Migration    bool   `json:"migration"`
	ClusterName  string `json:"cluster_name,omitempty"`
	ClusterID    string `json:"cluster_id,omitempty"`
	RecoverySeal bool   `json:"recovery_seal"`
	// RecoverySealType is "shamir" when RecoverySeal: the server has an
	// auto seal, and T and N are its recovery key's threshold and shares.
	RecoverySealType string `json:"recovery_seal_type,omitempty"`
	StorageType      string `json:"storage_type,omitempty"`
}

// SealStatus returns the seal state (sys/seal-status).
func (s *Sys) SealStatus(ctx context.Context) (*SealStatusResponse, error) {
	var out SealStatusResponse
	if err := s.getJSON(ctx, "sys/seal-status", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// InitRequest is the body of sys/init. The Vault CLI sends every field, with
// zero recovery settings for Shamir seals; so does this client.
type InitRequest struct {
	SecretShares      int      `json:"secret_shares"`
	SecretThreshold   int      `json:"secret_threshold"`
	PGPKeys           []string `json:"pgp_keys"`
	RecoveryShares    int      `json:"recovery_shares"`
	RecoveryThreshold int      `json:"recovery_threshold"`
	RecoveryPGPKeys   []string `json:"recovery_pgp_keys"`
	RootTokenPGPKey   string   `json:"root_token_pgp_key"`
}

// InitResponse is the answer of sys/init: the unseal key shares (hex and
// base64), or with an auto seal the recovery key shares, and the initial
// root token. Handle it as secret material.
type InitResponse struct {
	Keys            []string `json:"keys"`
	KeysB64         []string `json:"keys_base64"`
	RecoveryKeys    []string `json:"recovery_keys,omitempty"`
	RecoveryKeysB64 []string `json:"recovery_keys_base64,omitempty"`
	RootToken       string   `json:"root_token"`
}

// InitStatus reports whether the server is initialized (GET sys/init).
func (s *Sys) InitStatus(ctx context.Context) (bool, error) {
	var out struct {
		Initialized bool `json:"initialized"`
	}
	if err := s.getJSON(ctx, "sys/init", nil, &out); err != nil {
		return false, err
	}
	return out.Initialized, nil
}

// Init initializes the server (PUT sys/init).
func (s *Sys) Init(ctx context.Context, req InitRequest) (*InitResponse, error) {
	if req.PGPKeys == nil {
		req.PGPKeys = []string{}
	}
	if req.RecoveryPGPKeys == nil {
		req.RecoveryPGPKeys = []string{}
	}
	resp, err := s.c.Do(ctx, http.MethodPut, "sys/init", nil, req)
	if err != nil {
		return nil, err
	}
	var out InitResponse
	if err := resp.DecodeJSON(&out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Unseal submits one unseal key share (hex or base64) and returns the new
// seal state.
func (s *Sys) Unseal(ctx context.Context, key string) (*SealStatusResponse, error) {
	return s.unseal(ctx, map[string]any{"key": key, "reset": false, "migrate": false})
}

// UnsealReset discards the key shares submitted so far.
func (s *Sys) UnsealReset(ctx context.Context) (*SealStatusResponse, error) {
	return s.unseal(ctx, map[string]any{"reset": true})
}

func (s *Sys) unseal(ctx context.Context, body map[string]any) (*SealStatusResponse, error) {
	resp, err := s.c.Do(ctx, http.MethodPut, "sys/unseal", nil, body)
	if err != nil {
		return nil, err
	}
	var out SealStatusResponse
	if err := resp.DecodeJSON(&out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Seal seals the server (PUT sys/seal; needs a root token).
func (s *Sys) Seal(ctx context.Context) error {
	_, err := s.c.Do(ctx, http.MethodPut, "sys/seal", nil, nil)
	return err
}

// StepDown makes the active server of an HA cluster hand over to a
// standby (PUT sys/step-down; needs sudo). Without HA it changes nothing.
func (s *Sys) StepDown(ctx context.Context) error {
	_, err := s.c.Do(ctx, http.MethodPut, "sys/step-down", nil, nil)
	return err
}

// LeaderResponse is the body of sys/leader.
type LeaderResponse struct {
	HAEnabled            bool      `json:"ha_enabled"`
	IsSelf               bool      `json:"is_self"`
	ActiveTime           time.Time `json:"active_time"`
	LeaderAddress        string    `json:"leader_address"`
	LeaderClusterAddress string    `json:"leader_cluster_address"`
	PerformanceStandby   bool      `json:"performance_standby"`
	RaftCommittedIndex   uint64    `json:"raft_committed_index,omitempty"`
	RaftAppliedIndex     uint64    `json:"raft_applied_index,omitempty"`
}

// Leader returns the HA leader state (sys/leader).
func (s *Sys) Leader(ctx context.Context) (*LeaderResponse, error) {
	var out LeaderResponse
	if err := s.getJSON(ctx, "sys/leader", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// MountOutput is one secrets engine as listed by sys/mounts.
type MountOutput struct {
	UUID                  string            `json:"uuid"`
	Type                  string            `json:"type"`
	Description           string            `json:"description"`
	Accessor              string            `json:"accessor"`
	Config                MountConfigOutput `json:"config"`
	Options               map[string]string `json:"options"`
	Local                 bool              `json:"local"`
	SealWrap              bool              `json:"seal_wrap"`
	ExternalEntropyAccess bool              `json:"external_entropy_access"`
	PluginVersion         string            `json:"plugin_version"`
	RunningVersion        string            `json:"running_plugin_version"`
	RunningSha256         string            `json:"running_sha256"`
	DeprecationStatus     string            `json:"deprecation_status,omitempty"`
}

// MountConfigOutput is a mount's configuration; TTLs are seconds, and 0
// means the system default in sys/mounts listings.
type MountConfigOutput struct {
	DefaultLeaseTTL           int               `json:"default_lease_ttl"`
	MaxLeaseTTL               int               `json:"max_lease_ttl"`
	ForceNoCache              bool              `json:"force_no_cache"`
	Description               string            `json:"description,omitempty"`
	Options                   map[string]string `json:"options,omitempty"`
	AuditNonHMACRequestKeys   []string          `json:"audit_non_hmac_request_keys,omitempty"`
	AuditNonHMACResponseKeys  []string          `json:"audit_non_hmac_response_keys,omitempty"`
	ListingVisibility         string            `json:"listing_visibility,omitempty"`
	PassthroughRequestHeaders []string          `json:"passthrough_request_headers,omitempty"`
	AllowedResponseHeaders    []string          `json:"allowed_response_headers,omitempty"`
	TokenType                 string            `json:"token_type,omitempty"` // auth methods only
}

// MountInput is the body that enables a secrets engine.
type MountInput struct {
	Type                  string            `json:"type"`
	Description           string            `json:"description"`
	Config                MountConfigInput  `json:"config"`
	Local                 bool              `json:"local"`
	SealWrap              bool              `json:"seal_wrap"`
	ExternalEntropyAccess bool              `json:"external_entropy_access"`
	Options               map[string]string `json:"options"`
	PluginName            string            `json:"plugin_name,omitempty"`
}

// MountConfigInput is a mount's settings, used when enabling (as
// MountInput.Config) and when tuning. TTLs are duration strings ("1h",
// "3600"); empty fields are not sent and so left unchanged by a tune.
type MountConfigInput struct {
	DefaultLeaseTTL           string            `json:"default_lease_ttl,omitempty"`
	MaxLeaseTTL               string            `json:"max_lease_ttl,omitempty"`
	ForceNoCache              bool              `json:"force_no_cache,omitempty"`
	Description               *string           `json:"description,omitempty"`
	Options                   map[string]string `json:"options,omitempty"`
	AuditNonHMACRequestKeys   []string          `json:"audit_non_hmac_request_keys,omitempty"`
	AuditNonHMACResponseKeys  []string          `json:"audit_non_hmac_response_keys,omitempty"`
	ListingVisibility         string            `json:"listing_visibility,omitempty"`
	PassthroughRequestHeaders []string          `json:"passthrough_request_headers,omitempty"`
	AllowedResponseHeaders    []string          `json:"allowed_response_headers,omitempty"`
	TokenType                 string            `json:"token_type,omitempty"` // auth methods only
}

// ListMounts returns the secrets engines keyed by path ("secret/").
func (s *Sys) ListMounts(ctx context.Context) (map[string]*MountOutput, error) {
	sec, err := s.readData(ctx, "sys/mounts")
	if err != nil {
		return nil, err
	}
	out := map[string]*MountOutput{}
	if err := decodeData(sec, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetMount returns one secrets engine (GET sys/mounts/<path>).
func (s *Sys) GetMount(ctx context.Context, path string) (*MountOutput, error) {
	sec, err := s.readData(ctx, "sys/mounts/"+cleanMount(path))
	if err != nil {
		return nil, err
	}
	var out MountOutput
	if err := decodeData(sec, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Mount enables a secrets engine at path.
func (s *Sys) Mount(ctx context.Context, path string, in MountInput) error {
	if in.Options == nil {
		in.Options = map[string]string{}
	}
	_, err := s.c.Do(ctx, http.MethodPost, "sys/mounts/"+cleanMount(path), nil, in)
	return err
}

// Unmount disables the secrets engine at path.
func (s *Sys) Unmount(ctx context.Context, path string) error {
	_, err := s.c.Do(ctx, http.MethodDelete, "sys/mounts/"+cleanMount(path), nil, nil)
	return err
}

// TuneMount changes a mount's settings (POST sys/mounts/<path>/tune).
func (s *Sys) TuneMount(ctx context.Context, path string, in MountConfigInput) error {
	_, err := s.c.Do(ctx, http.MethodPost, "sys/mounts/"+cleanMount(path)+"/tune", nil, in)
	return err
}

// MountConfig returns a mount's effective settings (GET
// sys/mounts/<path>/tune); TTLs have system defaults filled in.
func (s *Sys) MountConfig(ctx context.Context, path string) (*MountConfigOutput, error) {
	sec, err := s.readData(ctx, "sys/mounts/"+cleanMount(path)+"/tune")
	if err != nil {
		return nil, err
	}
	var out MountConfigOutput
	if err := decodeData(sec, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Remount starts moving the mount at from to to (POST sys/remount) and
// returns the migration id to poll with [Sys.RemountStatus].
func (s *Sys) Remount(ctx context.Context, from, to string) (string, error) {
	resp, err := s.c.Do(ctx, http.MethodPost, "sys/remount", nil, map[string]any{"from": from, "to": to})
	if err != nil {
		return "", err
	}
	sec, err := resp.Secret()
	if err != nil {
		return "", err
	}
	if sec == nil {
		return "", nil
	}
	id, _ := sec.Data["migration_id"].(string)
	return id, nil
}

// MountMigrationOutput is the status of a mount move.
type MountMigrationOutput struct {
	MigrationID   string             `json:"migration_id"`
	MigrationInfo MountMigrationInfo `json:"migration_info"`
}

// MountMigrationInfo describes a mount move; Status is "in-progress",
// "success" or "failure".
type MountMigrationInfo struct {
	SourceMount string `json:"source_mount"`
	TargetMount string `json:"target_mount"`
	Status      string `json:"status"`
}

// RemountStatus returns the state of a mount move.
func (s *Sys) RemountStatus(ctx context.Context, migrationID string) (*MountMigrationOutput, error) {
	sec, err := s.readData(ctx, "sys/remount/status/"+migrationID) // Do escapes the path
	if err != nil {
		return nil, err
	}
	var out MountMigrationOutput
	if err := decodeData(sec, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// KeyStatus is the barrier key state (sys/key-status).
type KeyStatus struct {
	Term        int       `json:"term"`
	InstallTime time.Time `json:"install_time"`
	Encryptions int64     `json:"encryptions"`
}

// KeyStatus returns the barrier key state.
func (s *Sys) KeyStatus(ctx context.Context) (*KeyStatus, error) {
	sec, err := s.readData(ctx, "sys/key-status")
	if err != nil {
		return nil, err
	}
	var out KeyStatus
	if err := decodeData(sec, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Rotate installs a new barrier encryption key term (PUT sys/rotate).
func (s *Sys) Rotate(ctx context.Context) error {
	_, err := s.c.Do(ctx, http.MethodPut, "sys/rotate", nil, nil)
	return err
}

// errNoData is returned when a sys endpoint answers without data.
var errNoData = errors.New("api: the server returned no data")

// readData GETs path and returns the envelope's data.
func (s *Sys) readData(ctx context.Context, path string) (map[string]any, error) {
	resp, err := s.c.Do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	sec, err := resp.Secret()
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("%w: GET %s", errNoData, path)
	}
	return sec.Data, nil
}

// getJSON GETs a path answering a bare JSON body (no envelope).
func (s *Sys) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := s.c.Do(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return err
	}
	return resp.DecodeJSON(v)
}

// cleanMount trims the slashes around a mount path.
func cleanMount(p string) string { return strings.Trim(p, "/") }
