package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/passwordpolicy"
)

// passwordPolicyView is where password policies live behind the barrier,
// one entry per name.
const passwordPolicyView = "sys/password_policy/"

// storedPasswordPolicy is a password policy as persisted: its text as
// written (base64 decoded), which reads return.
type storedPasswordPolicy struct {
	Name   string `json:"name"`
	Policy string `json:"policy"`
}

// passwordPolicies persists password policies (sys/policies/password).
// It caches nothing: a policy is read and parsed when a password is made
// from it, which costs little beside what the password is for (a
// database user), and a change made through another server is seen at
// once.
type passwordPolicies struct {
	view logical.Storage
}

// get returns the stored policy, or an error wrapping logical.ErrNotFound.
func (pp *passwordPolicies) get(ctx context.Context, name string) (*storedPasswordPolicy, error) {
	if name == "" || strings.Contains(name, "/") {
		// Names are single keys; the sys paths refuse others, and an
		// engine's setting may hold anything.
		return nil, logical.ErrNotFound
	}
	var sp storedPasswordPolicy
	if err := readJSON(ctx, pp.view, name, &sp); err != nil {
		return nil, err
	}
	return &sp, nil
}

// put checks text and stores it under name. A policy that does not parse
// is a 400 naming the problem.
func (pp *passwordPolicies) put(ctx context.Context, name, text string) error {
	if _, err := passwordpolicy.Parse(text); err != nil {
		return logical.BadRequest("%v", err)
	}
	raw, err := json.Marshal(storedPasswordPolicy{Name: name, Policy: text})
	if err != nil {
		return err
	}
	return pp.view.Put(ctx, name, raw)
}

// generate makes a password from the named policy.
func (pp *passwordPolicies) generate(ctx context.Context, name string) (string, error) {
	sp, err := pp.get(ctx, name)
	if err != nil {
		return "", err
	}
	p, err := passwordpolicy.Parse(sp.Policy)
	if err != nil {
		// It parsed when it was written: a bug or a tampered store.
		return "", fmt.Errorf("core: stored password policy %q does not parse: %w", name, err)
	}
	return p.Generate(), nil
}

// GeneratePasswordFromPolicy implements logical.SystemView.
func (s *systemView) GeneratePasswordFromPolicy(ctx context.Context, name string) (string, error) {
	pw, err := s.c.passwordPolicies.generate(ctx, name)
	if errors.Is(err, logical.ErrNotFound) {
		return "", fmt.Errorf("%w: %q", logical.ErrPasswordPolicyNotFound, name)
	}
	return pw, err
}

// passwordPolicyPaths serves sys/policies/password. The paths are not
// root-protected, as in Vault: ACL policies grant them like any other.
func (s *systemBackend) passwordPolicyPaths() []*framework.Path {
	name := &framework.FieldSchema{Type: framework.TypeNameString, Description: "The password policy's name."}
	return []*framework.Path{
		{
			Pattern: "policies/password/?",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: {Handler: s.listPasswordPolicies, Summary: "List the password policies."},
			},
			HelpSynopsis: "List the password policies.",
		},
		{
			Pattern: "policies/password/(?P<name>[^/]+)",
			Fields: map[string]*framework.FieldSchema{
				"name": name,
				"policy": {Type: framework.TypeString,
					Description: "The policy: length and charset rules, HCL or JSON (base64 accepted)."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   {Handler: s.readPasswordPolicy, Summary: "Read a password policy as written."},
				logical.UpdateOperation: {Handler: s.writePasswordPolicy, Summary: "Create or replace a password policy."},
				logical.DeleteOperation: {Handler: s.deletePasswordPolicy, Summary: "Delete a password policy."},
			},
			HelpSynopsis: "Read, write or delete a password policy.",
			HelpDescription: "A password policy says how engines make passwords: a length and charset rules, each " +
				"with the fewest characters a password takes from it. Engines name it (the database engine's " +
				"password_policy); deleting one an engine names makes that engine's password requests fail.",
		},
		{
			Pattern: "policies/password/(?P<name>[^/]+)/generate",
			Fields:  map[string]*framework.FieldSchema{"name": name},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: {Handler: s.generatePassword, Summary: "Generate a password from a password policy."},
			},
			HelpSynopsis: "Generate a password from a password policy.",
		},
	}
}

func (s *systemBackend) listPasswordPolicies(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := s.c.passwordPolicies.view.List(ctx, "")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return framework.ListResponse(names)
}

func (s *systemBackend) readPasswordPolicy(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	sp, err := s.c.passwordPolicies.get(ctx, d.String("name"))
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"policy": sp.Policy}}, nil
}

func (s *systemBackend) writePasswordPolicy(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	text := d.String("policy")
	if text == "" {
		return nil, logical.BadRequest("missing policy")
	}
	return nil, s.c.passwordPolicies.put(ctx, d.String("name"), decodePolicyText(text))
}

func (s *systemBackend) deletePasswordPolicy(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, s.c.passwordPolicies.view.Delete(ctx, d.String("name"))
}

func (s *systemBackend) generatePassword(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	pw, err := s.c.passwordPolicies.generate(ctx, d.String("name"))
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"password": pw}}, nil
}
