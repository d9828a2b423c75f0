package approle

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// FuzzLogin sends arbitrary login bodies. Whatever the input, the answer
// is a login for exactly the right credentials, or a 400 with one of the
// three login messages; never a panic, a 500 or another message.
func FuzzLogin(f *testing.F) {
	h := newHarness(f)
	id := h.createRole("app", `{}`)
	sid, _ := h.newSecretID("app", ``)
	for _, seed := range []string{
		`{}`,
		`{"role_id":"` + id + `","secret_id":"` + sid + `"}`,
		`{"role_id":"` + id + `"}`,
		`{"role_id":" ` + id + ` ","secret_id":"` + sid + `\n"}`,
		`{"role_id":"` + id + `","secret_id":"` + strings.ToUpper(sid) + `"}`,
		`{"role_id":1,"secret_id":true}`,
		`{"role_id":["a"],"secret_id":{"a":1}}`,
		`{"role_id":null,"secret_id":null}`,
		`{"role_id":"` + sid + `","secret_id":"` + id + `"}`,
		`{"role_id":"\u0000","secret_id":"\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var data map[string]any
		if err := dec.Decode(&data); err != nil {
			t.Skip()
		}
		resp, err := h.b.HandleRequest(t.Context(), &logical.Request{
			Operation: logical.UpdateOperation, Path: "login", Storage: h.s, Data: data, Connection: from("127.0.0.1"),
		})
		if err == nil {
			gotID, _ := data["role_id"].(string)
			gotSID, _ := data["secret_id"].(string)
			if resp.Auth == nil || strings.TrimSpace(gotID) != id || strings.TrimSpace(gotSID) != sid {
				t.Fatalf("login succeeded for %q", raw)
			}
			return
		}
		status, msg, _ := httpStatus(resp, err)
		if status != 400 {
			t.Fatalf("status %d %q for %q", status, msg, raw)
		}
		switch {
		case msg == msgInvalidCredentials, msg == msgMissingRoleID, msg == msgMissingSecretID:
		case strings.HasPrefix(msg, `invalid value for "role_id"`), strings.HasPrefix(msg, `invalid value for "secret_id"`):
			// The framework's shape check; secrets stay out of it.
			if strings.Contains(msg, sid) || strings.Contains(msg, "got") {
				t.Fatalf("shape error echoes the value: %q", msg)
			}
		default:
			t.Fatalf("unexpected message %q for %q", msg, raw)
		}
	})
}
