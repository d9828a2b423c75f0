package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Secret is the Vault response envelope. Numbers inside Data are
// json.Number values.
type Secret struct {
	RequestID     string          `json:"request_id"`
	LeaseID       string          `json:"lease_id"`
	LeaseDuration int             `json:"lease_duration"`
	Renewable     bool            `json:"renewable"`
	Data          map[string]any  `json:"data"`
	Warnings      []string        `json:"warnings"`
	Auth          *SecretAuth     `json:"auth,omitempty"`
	WrapInfo      *SecretWrapInfo `json:"wrap_info,omitempty"`
	MountType     string          `json:"mount_type,omitempty"`
}

// SecretAuth is the "auth" object of logins and token creation.
type SecretAuth struct {
	ClientToken      string            `json:"client_token"`
	Accessor         string            `json:"accessor"`
	Policies         []string          `json:"policies"`
	TokenPolicies    []string          `json:"token_policies"`
	IdentityPolicies []string          `json:"identity_policies"`
	Metadata         map[string]string `json:"metadata"`
	Orphan           bool              `json:"orphan"`
	EntityID         string            `json:"entity_id"`
	LeaseDuration    int               `json:"lease_duration"`
	Renewable        bool              `json:"renewable"`
	TokenType        string            `json:"token_type,omitempty"`
}

// SecretWrapInfo is the "wrap_info" object of a wrapped response.
type SecretWrapInfo struct {
	Token           string    `json:"token"`
	Accessor        string    `json:"accessor"`
	TTL             int       `json:"ttl"`
	CreationTime    time.Time `json:"creation_time"`
	CreationPath    string    `json:"creation_path"`
	WrappedAccessor string    `json:"wrapped_accessor"`
}

// envelopeKeys are the fields that mark a body as an envelope rather than
// raw data.
var envelopeKeys = []string{"request_id", "lease_id", "lease_duration", "renewable", "data", "warnings", "auth", "wrap_info"}

// ParseSecret decodes a response body. An empty body gives (nil, nil). A
// body with none of the envelope fields (request_id, data, auth...) is
// treated as raw data and returned in Data, unless it holds only an
// "errors" list, which gives (nil, nil).
func ParseSecret(r io.Reader) (*Secret, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("api: read secret: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	var raw map[string]any
	if err := decodeNumbers(body, &raw); err != nil {
		return nil, fmt.Errorf("api: decode secret: %w", err)
	}
	envelope := false
	for _, k := range envelopeKeys {
		if _, ok := raw[k]; ok {
			envelope = true
			break
		}
	}
	if !envelope {
		if _, ok := raw["errors"]; ok && len(raw) == 1 {
			return nil, nil
		}
		return &Secret{Data: raw}, nil
	}
	var s Secret
	if err := decodeNumbers(body, &s); err != nil {
		return nil, fmt.Errorf("api: decode secret: %w", err)
	}
	return &s, nil
}

func decodeNumbers(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return dec.Decode(v)
}

// decodeData converts loosely typed data (a secret's Data) into v through
// JSON.
func decodeData(data any, v any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("api: re-encode data: %w", err)
	}
	if err := decodeNumbers(b, v); err != nil {
		return fmt.Errorf("api: decode data: %w", err)
	}
	return nil
}
