package load

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
)

// BareHandler is the baseline: the least a Go HTTP server can do for the
// same requests. GET (and HEAD) answers body with Content-Type
// application/json; POST and PUT read the request body and answer 204; any
// other method gets 405.
func BareHandler(body []byte) http.Handler {
	ct := []string{"application/json"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			w.Header()["Content-Type"] = ct
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body)
		case http.MethodPost, http.MethodPut:
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST, PUT")
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
}

// KVReadBody is a KV v2 read response with one field "value" of valueSize
// printable bytes, shaped and sized like the one Vigil sends, for the bare
// handler to serve.
func KVReadBody(valueSize int) []byte {
	type metadata struct {
		CreatedTime    string            `json:"created_time"`
		CustomMetadata map[string]string `json:"custom_metadata"`
		DeletionTime   string            `json:"deletion_time"`
		Destroyed      bool              `json:"destroyed"`
		Version        int               `json:"version"`
	}
	type data struct {
		Data     map[string]string `json:"data"`
		Metadata metadata          `json:"metadata"`
	}
	type envelope struct {
		RequestID     string   `json:"request_id"`
		LeaseID       string   `json:"lease_id"`
		Renewable     bool     `json:"renewable"`
		LeaseDuration int64    `json:"lease_duration"`
		Data          data     `json:"data"`
		WrapInfo      any      `json:"wrap_info"`
		Warnings      []string `json:"warnings"`
		Auth          any      `json:"auth"`
		MountType     string   `json:"mount_type"`
	}
	b, err := json.Marshal(envelope{
		RequestID: "6f1c2a9e-3b7d-4e55-8a10-2c4d9e7f0b31",
		Data: data{
			Data: map[string]string{"value": RandomPrintable(valueSize)},
			Metadata: metadata{
				CreatedTime: "2025-01-01T00:00:00.000000000Z",
				Version:     1,
			},
		},
		MountType: "kv",
	})
	if err != nil {
		panic(err) // fixed types: cannot happen
	}
	return b
}

// KVWriteBody is a KV v2 write request body {"data":{"value":value}}.
func KVWriteBody(value string) []byte {
	b, err := json.Marshal(map[string]map[string]string{"data": {"value": value}})
	if err != nil {
		panic(err) // fixed types: cannot happen
	}
	return b
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// RandomPrintable returns n random letters and digits (which JSON encodes
// as themselves). It is filler, not a secret.
func RandomPrintable(n int) string {
	b := make([]byte, max(n, 0))
	for i := range b {
		b[i] = alnum[rand.IntN(len(alnum))]
	}
	return string(b)
}
