package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Vigil makes the few calls the benchmark needs to prepare a Vigil (or
// Vault) server over its HTTP API: initialize, unseal, mount, write, set
// up AppRole and JWT auth, create tokens and log in. It keeps the root
// token to itself: errors and String never show it, the unseal keys are
// forgotten once used, and neither the login credentials (AppRole IDs,
// JWTs) nor the tokens created appear in an error.
type Vigil struct {
	// Base is the server's address, like "http://127.0.0.1:8200".
	Base string
	// Client sends the requests; nil means a shared NewClient(64).
	Client *http.Client

	token string
}

// String describes v without its token.
func (v *Vigil) String() string { return "vigil at " + v.Base }

var defaultClient = sync.OnceValue(func() *http.Client { return NewClient(64) })

func (v *Vigil) client() *http.Client {
	if v.Client == nil {
		return defaultClient()
	}
	return v.Client
}

// Header is the header of authenticated JSON requests: X-Vault-Token and
// Content-Type. Each call returns a new map.
func (v *Vigil) Header() http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	if v.token != "" {
		h.Set("X-Vault-Token", v.token)
	}
	return h
}

// call sends one request to path (like "/v1/sys/health") and returns the
// status and the response body (at most 1 MiB). The error never contains the
// token or the request body.
func (v *Vigil) call(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, v.Base+path, r)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header = v.Header()
	resp, err := v.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // *url.Error repeats the URL; we name the path
		}
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	io.Copy(io.Discard, resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	return resp.StatusCode, b, nil
}

// expect is call that fails on a status other than 200 or 204, quoting the
// start of the response (an error response carries no secret).
func (v *Vigil) expect(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	status, b, err := v.call(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK && status != http.StatusNoContent {
		return nil, fmt.Errorf("%s %s: status %d: %s", method, path, status, printable(b[:min(len(b), 256)]))
	}
	return b, nil
}

// poll calls ok every interval until it returns true or an error, or until
// timeout, when it returns the last failure.
func poll(ctx context.Context, timeout, interval time.Duration, what string, ok func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		done, err := ok(ctx)
		if err != nil && (last == nil || ctx.Err() == nil) {
			last = err // not the deadline's error over a telling one
		} else if err == nil && done {
			return nil
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: timed out after %v: %w", what, timeout, last)
			}
			return fmt.Errorf("%s: timed out after %v", what, timeout)
		case <-time.After(interval):
		}
	}
}

// WaitHealthy waits until GET /v1/sys/health answers at all (any status:
// a sealed or uninitialized server answers 501 or 503).
func (v *Vigil) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, 20*time.Millisecond, "wait for "+v.Base, func(ctx context.Context) (bool, error) {
		_, _, err := v.call(ctx, http.MethodGet, "/v1/sys/health", nil)
		return err == nil, err
	})
}

// InitUnseal initializes the server with one key share, unseals it and
// keeps the root token for the following calls.
func (v *Vigil) InitUnseal(ctx context.Context) error {
	b, err := v.expect(ctx, http.MethodPut, "/v1/sys/init", []byte(`{"secret_shares":1,"secret_threshold":1}`))
	if err != nil {
		return err
	}
	var init struct {
		Keys      []string `json:"keys"`
		RootToken string   `json:"root_token"`
	}
	if err := json.Unmarshal(b, &init); err != nil {
		return errors.New("PUT /v1/sys/init: the response is not the expected JSON object")
	}
	clear(b) // holds the key and the token
	if len(init.Keys) == 0 || init.RootToken == "" {
		return errors.New("PUT /v1/sys/init: the response has no keys or no root token")
	}
	for i, key := range init.Keys {
		body, _ := json.Marshal(map[string]string{"key": key})
		b, err := v.expect(ctx, http.MethodPut, "/v1/sys/unseal", body)
		if err != nil {
			return fmt.Errorf("unseal with key %d: %w", i+1, err)
		}
		var st struct {
			Sealed bool `json:"sealed"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return errors.New("PUT /v1/sys/unseal: the response is not the expected JSON object")
		}
		if !st.Sealed {
			v.token = init.RootToken
			return nil
		}
	}
	return errors.New("the server is still sealed after every unseal key")
}

// MountKV2 mounts a KV version 2 engine at path (without slashes) and
// waits until it serves GET <path>/config, since a new v2 mount may take an
// instant to set itself up.
func (v *Vigil) MountKV2(ctx context.Context, path string, timeout time.Duration) error {
	if _, err := v.expect(ctx, http.MethodPost, "/v1/sys/mounts/"+path, []byte(`{"type":"kv","options":{"version":"2"}}`)); err != nil {
		return err
	}
	return poll(ctx, timeout, 10*time.Millisecond, "wait for the kv v2 mount "+path, func(ctx context.Context) (bool, error) {
		status, b, err := v.call(ctx, http.MethodGet, "/v1/"+path+"/config", nil)
		if err != nil {
			return false, err
		}
		if status != http.StatusOK {
			return false, fmt.Errorf("GET /v1/%s/config: status %d: %s", path, status, printable(b[:min(len(b), 256)]))
		}
		return true, nil
	})
}

// Write POSTs body to path (like "/v1/kvbench/data/k1") with the token.
func (v *Vigil) Write(ctx context.Context, path string, body []byte) error {
	_, err := v.expect(ctx, http.MethodPost, path, body)
	return err
}

// Read GETs path with the token and returns the response body.
func (v *Vigil) Read(ctx context.Context, path string) ([]byte, error) {
	return v.expect(ctx, http.MethodGet, path, nil)
}

// EnableAuth enables an auth method of type typ (like "approle") at path
// (without slashes): POST /v1/sys/auth/<path>.
func (v *Vigil) EnableAuth(ctx context.Context, path, typ string) error {
	body, _ := json.Marshal(map[string]string{"type": typ})
	_, err := v.expect(ctx, http.MethodPost, "/v1/sys/auth/"+path, body)
	return err
}

// SetupAppRole creates role in the AppRole method enabled at mount, with
// the default policy and tokens of an hour, reads its role_id, creates one
// secret ID (unlimited uses, no expiry: the role's defaults) and returns
// the body of a login with them, {"role_id":…,"secret_id":…}. Neither
// appears in an error.
func (v *Vigil) SetupAppRole(ctx context.Context, mount, role string) ([]byte, error) {
	rolePath := "/v1/auth/" + mount + "/role/" + role
	if _, err := v.expect(ctx, http.MethodPost, rolePath, []byte(`{"token_policies":"default","token_ttl":"1h"}`)); err != nil {
		return nil, err
	}
	var rid, sid struct {
		Data struct {
			RoleID   string `json:"role_id"`
			SecretID string `json:"secret_id"`
		} `json:"data"`
	}
	b, err := v.expect(ctx, http.MethodGet, rolePath+"/role-id", nil)
	if err != nil {
		return nil, err
	}
	if json.Unmarshal(b, &rid) != nil || rid.Data.RoleID == "" {
		return nil, fmt.Errorf("GET %s/role-id: the response has no data.role_id", rolePath)
	}
	if b, err = v.expect(ctx, http.MethodPost, rolePath+"/secret-id", []byte(`{}`)); err != nil {
		return nil, err
	}
	err = json.Unmarshal(b, &sid)
	clear(b) // holds the secret ID
	if err != nil || sid.Data.SecretID == "" {
		return nil, fmt.Errorf("POST %s/secret-id: the response has no data.secret_id", rolePath)
	}
	login, _ := json.Marshal(map[string]string{"role_id": rid.Data.RoleID, "secret_id": sid.Data.SecretID})
	return login, nil
}

// SetupJWT configures the JWT auth method enabled at mount to verify the
// JWTs of is, with its public key in jwt_validation_pubkeys and
// JWTIssuerURL as bound_issuer, and creates role with JWTRoleBody.
func (v *Vigil) SetupJWT(ctx context.Context, mount, role string, is *JWTIssuer) error {
	cfg, _ := json.Marshal(map[string]any{
		"jwt_validation_pubkeys": []string{is.PublicKeyPEM()},
		"bound_issuer":           JWTIssuerURL,
	})
	if _, err := v.expect(ctx, http.MethodPost, "/v1/auth/"+mount+"/config", cfg); err != nil {
		return err
	}
	_, err := v.expect(ctx, http.MethodPost, "/v1/auth/"+mount+"/role/"+role, []byte(JWTRoleBody))
	return err
}

// TokenInfo describes the token of an auth response, without the token.
type TokenInfo struct {
	// Type is "service" or "batch".
	Type string
	// LeaseDuration is the token's TTL in seconds; a service token with
	// one has a lease.
	LeaseDuration int64
	Policies      []string
	// Accessor reports whether the token has an accessor, which only a
	// stored token has.
	Accessor bool
}

// CreateToken POSTs body (like ServiceTokenBody) to /v1/auth/token/create
// with the root token and describes the token created.
func (v *Vigil) CreateToken(ctx context.Context, body []byte) (TokenInfo, error) {
	return v.auth(ctx, "/v1/auth/token/create", body)
}

// Login POSTs body (like what SetupAppRole or JWTIssuer.LoginBodies
// returns) to the login path of the auth method at mount, without a token,
// and describes the token it returns.
func (v *Vigil) Login(ctx context.Context, mount string, body []byte) (TokenInfo, error) {
	anon := &Vigil{Base: v.Base, Client: v.Client}
	return anon.auth(ctx, "/v1/auth/"+mount+"/login", body)
}

// auth POSTs body to path and describes the token of the response's auth
// object, forgetting the token itself.
func (v *Vigil) auth(ctx context.Context, path string, body []byte) (TokenInfo, error) {
	b, err := v.expect(ctx, http.MethodPost, path, body)
	if err != nil {
		return TokenInfo{}, err
	}
	var resp struct {
		Auth *struct {
			ClientToken   string   `json:"client_token"`
			Accessor      string   `json:"accessor"`
			TokenType     string   `json:"token_type"`
			LeaseDuration int64    `json:"lease_duration"`
			Policies      []string `json:"policies"`
		} `json:"auth"`
	}
	err = json.Unmarshal(b, &resp)
	clear(b) // holds the token
	if err != nil || resp.Auth == nil || resp.Auth.ClientToken == "" {
		return TokenInfo{}, fmt.Errorf("POST %s: the response has no auth.client_token", path)
	}
	a := resp.Auth
	return TokenInfo{Type: a.TokenType, LeaseDuration: a.LeaseDuration, Policies: a.Policies, Accessor: a.Accessor != ""}, nil
}

// ForEach calls fn for i = 0 … n-1 from concurrency goroutines and returns
// the first error, after which it starts no more calls (fn's context is
// cancelled).
func ForEach(ctx context.Context, n, concurrency int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(concurrency, 1) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}
