package api

import (
	"net/http"
	"strings"
	"testing"
)

// A root token encoded by Vault 1.10+ and its OTP, as published with a
// Terraform provider's decode function: the encoding is Vault's.
const (
	vaultEncodedToken = "PzVHSRMXERYIFCl9IhIMKwUoMz8OJBEgXAIIdQ"
	vaultOTP          = "WC4gXgKrEUZIRDxHRNTiiUIf9GO8"
	vaultDecodedToken = "hvs.KpZdMAs4pVtcWfgVgqXFeEGM"
)

func TestRootTokenEncodingIsVaults(t *testing.T) {
	t.Parallel()
	got, err := DecodeRootToken(vaultEncodedToken, vaultOTP)
	if err != nil || got != vaultDecodedToken {
		t.Fatalf("decode = %q, %v", got, err)
	}
	enc, err := EncodeRootToken(vaultDecodedToken, vaultOTP)
	if err != nil || enc != vaultEncodedToken {
		t.Fatalf("encode = %q, %v", enc, err)
	}
	for name, tc := range map[string][2]string{
		"short otp":   {vaultEncodedToken, vaultOTP[:27]},
		"padded":      {vaultEncodedToken + "==", vaultOTP},
		"not base64":  {"!!!", vaultOTP},
		"empty token": {"", ""},
	} {
		if _, err := DecodeRootToken(tc[0], tc[1]); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, err := EncodeRootToken(vaultDecodedToken, "short"); err == nil || !strings.Contains(err.Error(), "same length") {
		t.Errorf("encode with a short otp: %v", err)
	}
}

func TestSysGenerateRoot(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(r request) (int, string) {
		switch {
		case r.Path == "/v1/sys/generate-root/attempt" && r.Method == http.MethodDelete:
			return 204, ""
		case r.Path == "/v1/sys/generate-root/attempt":
			return 200, `{"nonce":"n1","started":true,"progress":0,"required":3,"otp":"","otp_length":28}`
		case r.Path == "/v1/sys/generate-root/update":
			return 200, `{"nonce":"n1","started":true,"progress":3,"required":3,"complete":true,"encoded_token":"e","encoded_root_token":"e"}`
		}
		return 404, `{"errors":[]}`
	})
	ctx := t.Context()
	st, err := c.Sys().GenerateRootInit(ctx, vaultOTP, "")
	if err != nil || !st.Started || st.Nonce != "n1" || st.Required != 3 || st.OTPLength != 28 {
		t.Fatalf("init = %+v, %v", st, err)
	}
	if st, err = c.Sys().GenerateRootStatus(ctx); err != nil || !st.Started {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if st, err = c.Sys().GenerateRootUpdate(ctx, "abcd", "n1"); err != nil || !st.Complete || st.EncodedToken != "e" {
		t.Fatalf("update = %+v, %v", st, err)
	}
	if err := c.Sys().GenerateRootCancel(ctx); err != nil {
		t.Fatal(err)
	}
	r := *seen
	if r[0].Method != http.MethodPut || r[0].Body["otp"] != vaultOTP || r[2].Body["key"] != "abcd" || r[2].Body["nonce"] != "n1" || r[3].Method != http.MethodDelete {
		t.Fatalf("requests %+v", r)
	}
}
