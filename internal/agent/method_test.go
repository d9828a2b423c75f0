package agent

import (
	"reflect"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/agent/auth"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// TestMethodFromConfig: each auto_auth method block becomes the method
// Vault Agent's would be, with its defaults: a secret id or JWT file is
// removed once read unless told otherwise, a role id file never, a JWT
// file is polled for a new JWT, and the Kubernetes method reads the pod's
// service-account token.
func TestMethodFromConfig(t *testing.T) {
	login := func(typ, mount string, fields map[string]*auth.Credential) auth.Method {
		m, err := auth.NewLogin(typ, mount, fields)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, tc := range []struct {
		name, block string
		want        auth.Method
	}{
		{"approle", `method "approle" {
    mount_path = "auth/apps"
    config = { role_id_file_path = "/r", secret_id_file_path = "/s" }
  }`, login("approle", "auth/apps", map[string]*auth.Credential{
			"role_id": auth.FileCredential("/r"), "secret_id": {File: "/s", Remove: true}})},
		{"approle keeping its secret id", `method "approle" {
    config = { role_id_file_path = "/r", secret_id_file_path = "/s", remove_secret_id_file_after_reading = false }
  }`, login("approle", "", map[string]*auth.Credential{
			"role_id": auth.FileCredential("/r"), "secret_id": auth.FileCredential("/s")})},
		{"jwt", `method "jwt" {
    config = { path = "/j", role = "ci" }
  }`, login("jwt", "", map[string]*auth.Credential{
			"jwt": {File: "/j", Remove: true, Poll: 500 * time.Millisecond}, "role": auth.ValueCredential(secret.NewString("ci"))})},
		{"jwt kept, through a symlink", `method "jwt" {
    config = { path = "/j", role = "ci", remove_jwt_after_reading = false, remove_jwt_follows_symlinks = true, jwt_read_period = "10s" }
  }`, login("jwt", "", map[string]*auth.Credential{
			"jwt": {File: "/j", FollowSymlinks: true, Poll: 10 * time.Second}, "role": auth.ValueCredential(secret.NewString("ci"))})},
		{"kubernetes", `method "kubernetes" {
    config = { role = "app" }
  }`, login("kubernetes", "", map[string]*auth.Credential{
			"jwt": auth.FileCredential(config.DefaultKubernetesTokenPath), "role": auth.ValueCredential(secret.NewString("app"))})},
		{"token_file", `method "token_file" {
    config = { token_file_path = "/t" }
  }`, auth.NewToken(auth.FileCredential("/t"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := parse(t, "auto_auth {\n  "+tc.block+"\n  sink \"file\" { config = { path = \"/sink\" } }\n}\n")
			m, err := method(cfg.AutoAuth.Method)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tc.want) {
				t.Errorf("method = %#v, want %#v", m, tc.want)
			}
		})
	}
}
