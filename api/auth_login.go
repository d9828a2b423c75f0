package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrNoAuth is returned by [Client.Login] when the server answered a login
// without a client token.
var ErrNoAuth = errors.New("api: the login returned no token")

// LoginPath returns the login path of the auth method mounted at mount:
// "approle", "/approle/" and "auth/approle" all give "auth/approle/login".
func LoginPath(mount string) string {
	mount = strings.Trim(mount, "/")
	mount = strings.TrimPrefix(mount, "auth/")
	return "auth/" + strings.Trim(mount, "/") + "/login"
}

// Login sends a login to path (usually [LoginPath]; methods that take the
// user name in the path add "/<name>") with data and without a token, and
// returns the answer, whose Auth holds the new token. An answer without a
// client token is [ErrNoAuth]. The client's own token is neither sent nor
// changed.
func (c *Client) Login(ctx context.Context, path string, data map[string]any) (*Secret, error) {
	s, err := c.WithToken("").Logical().Write(ctx, path, data)
	if err != nil {
		return nil, err
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, fmt.Errorf("%w: %s", ErrNoAuth, path)
	}
	return s, nil
}
