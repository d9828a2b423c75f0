package core

import (
	"context"
	"encoding/base64"
	"time"
	"unicode/utf8"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/policy"
)

// policyPaths serves ACL policies: sys/policies/acl (the API of current
// clients) and sys/policy (the legacy one, whose answers differ in shape).
func (s *systemBackend) policyPaths() []*framework.Path {
	name := &framework.FieldSchema{Type: framework.TypeString, Description: "policy name"}
	text := &framework.FieldSchema{Type: framework.TypeString, Description: "policy document, HCL or JSON (base64 accepted)"}
	ops := func(m map[logical.Operation]framework.OperationFunc) map[logical.Operation]framework.OperationHandler {
		out := make(map[logical.Operation]framework.OperationHandler, len(m))
		for op, f := range m {
			out[op] = framework.OperationHandler{Handler: f}
		}
		return out
	}
	return []*framework.Path{
		{
			Pattern:      "policies/acl/?",
			Operations:   ops(map[logical.Operation]framework.OperationFunc{logical.ListOperation: s.listPolicies}),
			HelpSynopsis: "List ACL policies.",
		},
		{
			Pattern: "policies/acl/(?P<name>.+)",
			Fields:  map[string]*framework.FieldSchema{"name": name, "policy": text},
			Operations: ops(map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   s.readPolicy(false),
				logical.UpdateOperation: s.writePolicy(false),
				logical.DeleteOperation: s.deletePolicy,
			}),
			HelpSynopsis: "Read, write or delete an ACL policy.",
		},
		{
			Pattern: "policy/?",
			Operations: ops(map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation: s.legacyListPolicies,
				logical.ListOperation: s.legacyListPolicies,
			}),
			HelpSynopsis: "List ACL policies (legacy API).",
		},
		{
			Pattern: "policy/(?P<name>.+)",
			Fields:  map[string]*framework.FieldSchema{"name": name, "policy": text, "rules": text},
			Operations: ops(map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   s.readPolicy(true),
				logical.UpdateOperation: s.writePolicy(true),
				logical.DeleteOperation: s.deletePolicy,
			}),
			HelpSynopsis: "Read, write or delete an ACL policy (legacy API).",
		},
	}
}

func (s *systemBackend) listPolicies(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := s.c.policies.list(ctx)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"keys": names}}, nil
}

func (s *systemBackend) legacyListPolicies(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := s.c.policies.list(ctx)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"keys": names, "policies": names}}, nil
}

// readPolicy answers a policy's text: as "policy" (with name and version)
// on the current API, as "rules" on the legacy one.
func (s *systemBackend) readPolicy(legacy bool) framework.OperationFunc {
	return func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		name, err := policyName(d.String("name"))
		if err != nil {
			return nil, err
		}
		if name == policy.RootName {
			// The root policy is implicit: it has no text to show.
			return nil, logical.ErrNotFound
		}
		sp, err := s.c.policies.get(ctx, name)
		if err != nil {
			return nil, err
		}
		if legacy {
			return &logical.Response{Data: map[string]any{"name": sp.Name, "rules": sp.Text}}, nil
		}
		return &logical.Response{Data: map[string]any{
			"name":     sp.Name,
			"policy":   sp.Text,
			"version":  sp.Version,
			"modified": sp.Modified.UTC().Format(time.RFC3339Nano),
		}}, nil
	}
}

// writePolicy stores a policy's text, from "policy" (or, on the legacy
// API, "rules").
func (s *systemBackend) writePolicy(legacy bool) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		text := d.String("policy")
		if text == "" && legacy {
			text = d.String("rules")
		}
		return s.storePolicy(ctx, d.String("name"), text)
	}
}

func (s *systemBackend) storePolicy(ctx context.Context, rawName, text string) (*logical.Response, error) {
	if text == "" {
		return nil, logical.BadRequest("missing policy")
	}
	name, err := policyName(rawName)
	if err != nil {
		return nil, err
	}
	return nil, s.c.policies.put(ctx, name, decodePolicyText(text))
}

func (s *systemBackend) deletePolicy(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, err := policyName(d.String("name"))
	if err != nil {
		return nil, err
	}
	return nil, s.c.policies.delete(ctx, name)
}

// decodePolicyText accepts a base64-encoded policy, as Vault does: text
// that decodes to UTF-8 is taken decoded. A policy document never is
// valid base64 of itself, since HCL and JSON need braces and quotes.
func decodePolicyText(text string) string {
	if raw, err := base64.StdEncoding.DecodeString(text); err == nil && utf8.Valid(raw) {
		return string(raw)
	}
	return text
}
