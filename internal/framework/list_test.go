package framework

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
)

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
