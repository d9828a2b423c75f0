package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// policyPath is the logical path of one ACL policy. [Client.Do] escapes
// the characters of a path that need it (spaces, '%', '?', '#'...), so the
// name is passed as is rather than through url.PathEscape, which would
// escape it twice. What Do cannot keep inside one segment is refused: a
// '/' (it would address another path, and Vigil rejects such names)
// and the dot segments "." and "..".
func policyPath(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("api: empty policy name")
	case strings.Contains(name, "/"):
		return "", fmt.Errorf("api: invalid policy name %q: contains '/'", name)
	case name == "." || name == "..":
		return "", fmt.Errorf("api: invalid policy name %q", name)
	}
	return "sys/policies/acl/" + name, nil
}

// ListPolicies returns the names of the ACL policies (LIST
// sys/policies/acl). The server always lists "default" and "root".
func (s *Sys) ListPolicies(ctx context.Context) ([]string, error) {
	data, err := s.listData(ctx, "sys/policies/acl")
	if err != nil {
		return nil, err
	}
	var out struct {
		Keys []string `json:"keys"`
	}
	if err := decodeData(data, &out); err != nil {
		return nil, err
	}
	if out.Keys == nil {
		out.Keys = []string{}
	}
	return out.Keys, nil
}

// GetPolicy returns the text of the named ACL policy as it was written
// (GET sys/policies/acl/<name>). A policy that does not exist gives "" and
// a nil error, as Vault's client does.
func (s *Sys) GetPolicy(ctx context.Context, name string) (string, error) {
	p, err := policyPath(name)
	if err != nil {
		return "", err
	}
	resp, err := s.c.Do(ctx, http.MethodGet, p, nil, nil)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	sec, err := resp.Secret()
	if err != nil {
		return "", err
	}
	if sec == nil || sec.Data == nil {
		return "", fmt.Errorf("%w: GET %s", errNoData, p)
	}
	text, ok := sec.Data["policy"].(string)
	if !ok {
		return "", fmt.Errorf("api: GET %s: no policy text in the response", p)
	}
	return text, nil
}

// PutPolicy creates or replaces the named ACL policy with text, HCL or
// JSON (PUT sys/policies/acl/<name>). The server lowercases the name and
// rejects text that does not parse.
func (s *Sys) PutPolicy(ctx context.Context, name, text string) error {
	p, err := policyPath(name)
	if err != nil {
		return err
	}
	_, err = s.c.Do(ctx, http.MethodPut, p, nil, map[string]string{"policy": text})
	return err
}

// DeletePolicy deletes the named ACL policy (DELETE
// sys/policies/acl/<name>). Deleting a policy that does not exist is not
// an error; "default" and "root" cannot be deleted.
func (s *Sys) DeletePolicy(ctx context.Context, name string) error {
	p, err := policyPath(name)
	if err != nil {
		return err
	}
	_, err = s.c.Do(ctx, http.MethodDelete, p, nil, nil)
	return err
}

// listData LISTs path and returns the envelope's data.
func (s *Sys) listData(ctx context.Context, path string) (map[string]any, error) {
	resp, err := s.c.Do(ctx, "LIST", path, nil, nil)
	if err != nil {
		return nil, err
	}
	sec, err := resp.Secret()
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("%w: LIST %s", errNoData, path)
	}
	return sec.Data, nil
}
