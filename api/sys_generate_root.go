package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
)

// GenerateRootStatusResponse is the body of sys/generate-root/attempt and
// sys/generate-root/update, as Vault sends it.
type GenerateRootStatusResponse struct {
	Nonce            string `json:"nonce"`
	Started          bool   `json:"started"`
	Progress         int    `json:"progress"`
	Required         int    `json:"required"`
	Complete         bool   `json:"complete"`
	EncodedToken     string `json:"encoded_token"`
	EncodedRootToken string `json:"encoded_root_token"`
	PGPFingerprint   string `json:"pgp_fingerprint"`
	// OTP is set once, in the answer to a start without an OTP: the
	// server generated it.
	OTP       string `json:"otp"`
	OTPLength int    `json:"otp_length"`
}

// GenerateRootStatus returns the state of the root token generation
// (GET sys/generate-root/attempt).
func (s *Sys) GenerateRootStatus(ctx context.Context) (*GenerateRootStatusResponse, error) {
	var out GenerateRootStatusResponse
	if err := s.getJSON(ctx, "sys/generate-root/attempt", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GenerateRootInit starts a root token generation that encodes the token
// with otp (PUT sys/generate-root/attempt). With otp "" the server makes
// one and returns it in OTP.
func (s *Sys) GenerateRootInit(ctx context.Context, otp, pgpKey string) (*GenerateRootStatusResponse, error) {
	return s.generateRoot(ctx, "sys/generate-root/attempt", map[string]any{"otp": otp, "pgp_key": pgpKey})
}

// GenerateRootUpdate submits one key share (an unseal key share, or a
// recovery key share with an auto seal) for the attempt nonce names. The
// answer to the last share carries the encoded token.
func (s *Sys) GenerateRootUpdate(ctx context.Context, key, nonce string) (*GenerateRootStatusResponse, error) {
	return s.generateRoot(ctx, "sys/generate-root/update", map[string]any{"key": key, "nonce": nonce})
}

// GenerateRootCancel discards the attempt and its shares (DELETE
// sys/generate-root/attempt).
func (s *Sys) GenerateRootCancel(ctx context.Context) error {
	_, err := s.c.Do(ctx, http.MethodDelete, "sys/generate-root/attempt", nil, nil)
	return err
}

func (s *Sys) generateRoot(ctx context.Context, path string, body map[string]any) (*GenerateRootStatusResponse, error) {
	resp, err := s.c.Do(ctx, http.MethodPut, path, nil, body)
	if err != nil {
		return nil, err
	}
	var out GenerateRootStatusResponse
	if err := resp.DecodeJSON(&out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EncodeRootToken encodes a generated root token with the attempt's
// one-time password as Vault does: the token XOR the OTP (of the same
// length), in base64 without padding.
func EncodeRootToken(token, otp string) (string, error) {
	b, err := xorSameLength([]byte(token), []byte(otp))
	if err != nil {
		return "", err
	}
	return base64.RawStdEncoding.EncodeToString(b), nil
}

// DecodeRootToken reverses EncodeRootToken: what `vault operator
// generate-root -decode=... -otp=...` prints.
func DecodeRootToken(encoded, otp string) (string, error) {
	b, err := base64.RawStdEncoding.DecodeString(encoded)
	if err != nil {
		return "", fmt.Errorf("api: the encoded token is not unpadded base64: %w", err)
	}
	b, err = xorSameLength(b, []byte(otp))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func xorSameLength(a, b []byte) ([]byte, error) {
	if len(a) == 0 {
		return nil, errors.New("api: no token to encode or decode")
	}
	if len(a) != len(b) {
		return nil, fmt.Errorf("api: the OTP is %d characters long, the token %d: they must be the same length", len(b), len(a))
	}
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out, nil
}
