package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/auth"
	"github.com/vigil-secrets/vigil/internal/agent/template"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// method builds auto_auth's method. Every credential file is read again
// at each login: platforms rotate service-account tokens and secret ids
// in place.
func method(m config.AuthMethod) (auth.Method, error) {
	switch {
	case m.AppRole != nil:
		fields := map[string]*auth.Credential{"role_id": auth.FileCredential(m.AppRole.RoleIDFilePath)}
		if m.AppRole.SecretIDFilePath != "" {
			fields["secret_id"] = &auth.Credential{File: m.AppRole.SecretIDFilePath, Remove: m.AppRole.RemoveSecretIDFileAfterReading,
				UnwrapPath: m.AppRole.SecretIDResponseWrappingPath}
		}
		return auth.NewLogin("approle", m.MountPath, fields)
	case m.JWT != nil:
		return auth.NewLogin("jwt", m.MountPath, map[string]*auth.Credential{
			"role": auth.ValueCredential(secret.NewString(m.JWT.Role)),
			"jwt": {File: m.JWT.Path, Remove: m.JWT.RemoveJWTAfterReading, FollowSymlinks: m.JWT.RemoveJWTFollowsSymlinks,
				Poll: m.JWT.JWTReadPeriod},
		})
	case m.Kubernetes != nil:
		path := m.Kubernetes.TokenPath
		if path == "" {
			path = config.DefaultKubernetesTokenPath
		}
		return auth.NewLogin("kubernetes", m.MountPath, map[string]*auth.Credential{
			"role": auth.ValueCredential(secret.NewString(m.Kubernetes.Role)),
			"jwt":  auth.FileCredential(path),
		})
	case m.TokenFile != nil:
		return auth.NewToken(auth.FileCredential(m.TokenFile.TokenFilePath)), nil
	}
	return nil, fmt.Errorf("auto_auth method %q has no config", m.Type)
}

// sinks write each new auto-auth token to the sink files, atomically and
// with their mode and owner, for processes that read the token from a
// file. A sink with wrap_ttl gets a wrapping token instead (client wraps
// it, with the token itself, through sys/wrapping/wrap): the JSON of its
// wrap_info, as Vault Agent writes it; unwrapping it gives {"token": ...}.
// With wrap_ttl on the method, the one sink gets the login's own wrap_info;
// unwrapping it gives the login response.
type sinks struct {
	list   []config.Sink
	client *api.Client

	mu sync.Mutex // one write of all the sinks at a time
}

// sinkWrapTimeout bounds the request that wraps the token for a sink.
const sinkWrapTimeout = 30 * time.Second

// wrapped returns what a sink with wrap_ttl ttl holds for t.
func (s *sinks) wrapped(t auth.Token, ttl time.Duration) ([]byte, error) {
	if s.client == nil {
		return nil, errors.New("no client to wrap the token with")
	}
	ctx, cancel := context.WithTimeout(context.Background(), sinkWrapTimeout)
	defer cancel()
	cl := s.client.WithToken(t.Value.Reveal()).WithWrapTTL(ttl)
	w, err := cl.Logical().Write(ctx, "sys/wrapping/wrap", map[string]any{"token": t.Value.Reveal()})
	if err != nil {
		return nil, fmt.Errorf("wrap the token: %w", err)
	}
	if w == nil || w.WrapInfo == nil || w.WrapInfo.Token == "" {
		return nil, errors.New("wrap the token: the server returned no wrapping token")
	}
	return json.Marshal(w.WrapInfo)
}

// write writes t to every sink and returns the errors, one per sink that
// failed (naming the file, never the token).
func (s *sinks) write(t auth.Token) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, sk := range s.list {
		opts := template.WriteOptions{Perms: sk.Mode, CreateDestDirs: false}
		if sk.Owner >= 0 {
			uid := sk.Owner
			opts.UID = &uid
		}
		if sk.Group >= 0 {
			gid := sk.Group
			opts.GID = &gid
		}
		if err := os.MkdirAll(filepath.Dir(sk.Path), 0o700); err != nil {
			errs = append(errs, fmt.Errorf("sink %s: %w", sk.Path, err))
			continue
		}
		var tok []byte
		var err error
		switch {
		case t.Wrapped != nil:
			// The login was wrapped (wrap_ttl on the method).
			tok, err = json.Marshal(t.Wrapped)
		case sk.WrapTTL > 0:
			tok, err = s.wrapped(t, sk.WrapTTL)
		default:
			tok = []byte(t.Value.Reveal())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sink %s: %w", sk.Path, err))
			continue
		}
		_, err = template.WriteFile(sk.Path, tok, opts)
		clear(tok)
		if err != nil {
			errs = append(errs, fmt.Errorf("sink %s: %w", sk.Path, err))
		}
	}
	return errs
}
