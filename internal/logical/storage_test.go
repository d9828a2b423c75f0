package logical

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// plainStorage is a Storage without transactions, failing on one key.
type plainStorage struct {
	m    map[string][]byte
	fail string
}

func (p *plainStorage) Get(_ context.Context, k string) ([]byte, error) { return p.m[k], nil }
func (p *plainStorage) Put(_ context.Context, k string, v []byte) error {
	if k == p.fail {
		return errors.New("disk full")
	}
	p.m[k] = v
	return nil
}
func (p *plainStorage) Delete(_ context.Context, k string) error       { delete(p.m, k); return nil }
func (p *plainStorage) List(context.Context, string) ([]string, error) { return nil, nil }

func TestApplyOpsInOrder(t *testing.T) {
	s := &plainStorage{m: map[string][]byte{"old": []byte("x")}, fail: "c"}
	ops := []StorageOp{{Key: "a", Value: []byte("1")}, {Key: "old", Delete: true}, {Key: "c", Value: []byte("3")}, {Key: "d", Value: []byte("4")}}
	err := ApplyOps(context.Background(), s, ops)
	if err == nil || !strings.Contains(err.Error(), "write 3 of 4") {
		t.Fatalf("err = %v", err)
	}
	// The ops before the failure are applied, those after it are not.
	if string(s.m["a"]) != "1" || s.m["old"] != nil || s.m["d"] != nil {
		t.Fatalf("storage = %v", s.m)
	}
	if err := ApplyOps(context.Background(), s, nil); err != nil {
		t.Fatal(err)
	}
}
