package framework

import (
	"slices"
	"strings"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// ListResponse answers a LIST with the leaf names of a storage List
// (names ending in '/' are directories and are left out), or
// [logical.ErrNotFound] when there is none: an empty list is a 404, as
// Vault answers it.
func ListResponse(names []string) (*logical.Response, error) {
	keys := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return strings.HasSuffix(n, "/") })
	if len(keys) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}
