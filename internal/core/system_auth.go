package core

import (
	"context"
	"strings"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
)

// authPaths serve sys/auth: the table of auth methods, mounted under
// auth/. Enabling, disabling and tuning are root-protected (sudo: see
// sysRootPaths); listing is not.
func (s *systemBackend) authPaths(mountFields, tuneFields map[string]*framework.FieldSchema) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "auth/?",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: sysOp(s.listAuth, "List the enabled auth methods."),
			},
			HelpSynopsis: "List the enabled auth methods.",
		},
		{
			Pattern: "auth/(?P<path>.+?)/tune/?",
			Fields:  tuneFields,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: sysOp(func(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
					return s.readTunePath(authPrefix + d.String("path"))
				}, "Read an auth method's effective configuration."),
				logical.UpdateOperation: sysOp(func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
					return s.tunePath(ctx, authPrefix+d.String("path"), d)
				}, "Tune an auth method."),
			},
			HelpSynopsis: "Tune an auth method mount.",
		},
		{
			Pattern: "auth/(?P<path>.+)",
			Fields:  mountFields,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   sysOp(s.readAuth, "Read an auth method's mount."),
				logical.UpdateOperation: sysOp(s.enableAuth, "Enable an auth method."),
				logical.DeleteOperation: sysOp(s.disableAuth, "Disable an auth method and delete its data."),
			},
			HelpSynopsis: "Enable, read or disable an auth method.",
		},
	}
}

// authName is how sys/auth names a mount: its path without "auth/".
func authName(e *mount.Entry) string { return strings.TrimPrefix(e.Path, authPrefix) }

// tokenTypeOf is an auth mount's token_type, "default-service" unless
// tuned.
func tokenTypeOf(e *mount.Entry) string {
	if e.Config.TokenType == "" {
		return "default-service"
	}
	return e.Config.TokenType
}

func (s *systemBackend) listAuth(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	data := map[string]any{}
	for _, e := range s.c.AuthMounts() {
		data[authName(e)] = mountInfo(e)
	}
	return &logical.Response{Data: data}, nil
}

func (s *systemBackend) readAuth(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	e, ok := s.c.Mount(authPrefix + strings.TrimPrefix(d.String("path"), authPrefix))
	if !ok {
		return nil, logical.BadRequest("no auth method at %s", d.String("path"))
	}
	return &logical.Response{Data: mountInfo(e)}, nil
}

func (s *systemBackend) enableAuth(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	in, err := mountInput(d)
	if err != nil {
		return nil, err
	}
	return nil, s.c.EnableAuth(ctx, d.String("path"), in)
}

func (s *systemBackend) disableAuth(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, s.c.DisableAuth(ctx, d.String("path"))
}
