package framework

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
)

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything/at/all", true},
		{"eval", "eval", true},
		{"eval", "evals", false},
		{"train-*", "train-gpu", true},
		{"train-*", "train-", true},
		{"train-*", "trai", false},
		{"*-ro", "ml-ro", true},
		{"*-ro", "ml-rw", false},
		{"*-admin", "ops-admins", false},
		{"refs/heads/*", "refs/heads/feature/x", true},
		{"refs/heads/*", "refs/tags/v1", false},
		{"a*b*c", "a-x-b-y-c", true},
		{"a*b*c", "a-c-b", false},
		{"a*b*c", "axxbyy", false},
		{"a*a", "a", false},
		{"ab*ba", "aba", false},
		{"**", "x", true},
		{"[x]", "x", false},
	} {
		if got := GlobMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("GlobMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestListResponse(t *testing.T) {
	in := []string{"a", "dir/", "b"}
	resp, err := ListResponse(in)
	if err != nil || fmt.Sprint(resp.Data["keys"]) != "[a b]" {
		t.Errorf("ListResponse = %v, %v", resp, err)
	}
	if fmt.Sprint(in) != "[a dir/ b]" {
		t.Errorf("ListResponse changed its argument: %v", in)
	}
	if _, err := ListResponse([]string{"only/"}); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("a list of directories: %v, want ErrNotFound", err)
	}
}
