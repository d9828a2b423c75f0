package kv

import (
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	const (
		read   = logical.ReadOperation
		update = logical.UpdateOperation
	)
	steps := func(t *testing.T) []step {
		return []step{
			{op: read, path: "config", status: 200, check: func(t *testing.T, resp *logical.Response) {
				wantData("max_versions", 0)(t, resp)
				wantData("cas_required", false)(t, resp)
				wantData("delete_version_after", "0s")(t, resp)
			}},
			{op: update, path: "config", data: body(t, `{}`), status: 204},
			{op: update, path: "config", data: body(t, `{"max_versions":"4","delete_version_after":"3h25m19s"}`), status: 204},
			{op: update, path: "config", data: body(t, `{"cas_required":true}`), status: 204},
			{op: read, path: "config", status: 200, check: func(t *testing.T, resp *logical.Response) {
				wantData("max_versions", 4)(t, resp)
				wantData("cas_required", true)(t, resp)
				wantData("delete_version_after", "3h25m19s")(t, resp)
			}},
			{op: update, path: "config", data: body(t, `{"delete_version_after":"-5m"}`), status: 204},
			{op: read, path: "config", status: 200, check: wantData("delete_version_after", "-1s")},
			{op: update, path: "config", data: body(t, `{"delete_version_after":"0s","max_versions":0}`), status: 204},
			{op: read, path: "config", status: 200, check: func(t *testing.T, resp *logical.Response) {
				wantData("max_versions", 0)(t, resp)
				wantData("delete_version_after", "0s")(t, resp)
			}},
			{op: update, path: "config", data: body(t, `{"max_versions":-2}`), status: 400, msg: "max_versions must not be negative"},
			{op: update, path: "config", data: body(t, `{"max_versions":"ten"}`), status: 400,
				msg: `invalid value for "max_versions": expected an integer, got "ten"`},
			{op: update, path: "config", data: body(t, `{"delete_version_after":"1d"}`), status: 400,
				msg: `invalid value for "delete_version_after": expected a duration in seconds or a Go duration string ("1h"), got "1d"`},
			{op: update, path: "config", data: body(t, `{"other":1}`), status: 200,
				check: wantWarnings("Endpoint ignored these unrecognized parameters: [other]")},
		}
	}
	runSteps(t, newHarness(t, "2"), steps(t))
}
