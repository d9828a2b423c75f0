package api

import (
	"context"
	"errors"
	"net/http"
)

// The sys/auth endpoints manage auth methods. An auth method enabled at
// path "approle" is served under auth/approle/; the methods here take the
// path without the "auth/" prefix, as sys/auth does. An auth mount is
// described by the same [MountOutput] and [MountConfigInput] as a secrets
// engine, with the token type in its config. Enabling, disabling and
// tuning need a root (sudo) token.

// EnableAuthInput is the body that enables an auth method (POST
// sys/auth/<path>).
type EnableAuthInput struct {
	Type        string           `json:"type"`
	Description string           `json:"description"`
	Config      MountConfigInput `json:"config"`
	Local       bool             `json:"local"`
	SealWrap    bool             `json:"seal_wrap"`
	// Options are the method's options; nil is sent as {}.
	Options map[string]string `json:"options"`
}

// errEmptyAuthPath is returned for an empty auth method path, which would
// address sys/auth itself.
var errEmptyAuthPath = errors.New("api: empty auth method path")

// authPath is the sys/auth path of the auth method at path.
func authPath(path string) (string, error) {
	p := cleanMount(path)
	if p == "" {
		return "", errEmptyAuthPath
	}
	return "sys/auth/" + p, nil
}

// ListAuth returns the enabled auth methods keyed by path ("approle/").
func (s *Sys) ListAuth(ctx context.Context) (map[string]*MountOutput, error) {
	data, err := s.readData(ctx, "sys/auth")
	if err != nil {
		return nil, err
	}
	out := map[string]*MountOutput{}
	if err := decodeData(data, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetAuth returns the auth method at path (GET sys/auth/<path>).
func (s *Sys) GetAuth(ctx context.Context, path string) (*MountOutput, error) {
	p, err := authPath(path)
	if err != nil {
		return nil, err
	}
	data, err := s.readData(ctx, p)
	if err != nil {
		return nil, err
	}
	var out MountOutput
	if err := decodeData(data, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EnableAuth enables an auth method of in.Type at path (POST
// sys/auth/<path>).
func (s *Sys) EnableAuth(ctx context.Context, path string, in EnableAuthInput) error {
	p, err := authPath(path)
	if err != nil {
		return err
	}
	if in.Options == nil {
		in.Options = map[string]string{}
	}
	_, err = s.c.Do(ctx, http.MethodPost, p, nil, in)
	return err
}

// DisableAuth disables the auth method at path and revokes the tokens it
// issued (DELETE sys/auth/<path>). Disabling a path where no method is
// enabled is not an error.
func (s *Sys) DisableAuth(ctx context.Context, path string) error {
	p, err := authPath(path)
	if err != nil {
		return err
	}
	_, err = s.c.Do(ctx, http.MethodDelete, p, nil, nil)
	return err
}

// authTunePath is where an auth method's settings are read and tuned:
// sys/mounts/auth/<path>/tune, as the Vault CLI does, which unlike
// sys/auth/<path>/tune does not need sudo.
func authTunePath(path string) (string, error) {
	p := cleanMount(path)
	if p == "" {
		return "", errEmptyAuthPath
	}
	return "sys/mounts/auth/" + p + "/tune", nil
}

// TuneAuth changes the settings of the auth method at path (POST
// sys/mounts/auth/<path>/tune); empty fields of in are not sent and so
// left unchanged.
func (s *Sys) TuneAuth(ctx context.Context, path string, in MountConfigInput) error {
	p, err := authTunePath(path)
	if err != nil {
		return err
	}
	_, err = s.c.Do(ctx, http.MethodPost, p, nil, in)
	return err
}

// AuthConfig returns the effective settings of the auth method at path
// (GET sys/mounts/auth/<path>/tune): TTLs have the system defaults filled
// in and TokenType is set.
func (s *Sys) AuthConfig(ctx context.Context, path string) (*MountConfigOutput, error) {
	p, err := authTunePath(path)
	if err != nil {
		return nil, err
	}
	data, err := s.readData(ctx, p)
	if err != nil {
		return nil, err
	}
	var out MountConfigOutput
	if err := decodeData(data, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
