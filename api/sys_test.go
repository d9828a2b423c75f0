package api

import (
	"net/http"
	"net/url"
	"testing"
)

func TestSysHealthAcceptsEveryState(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(request) (int, string) {
		return 299, `{"initialized":true,"sealed":true,"standby":false,"version":"0.1.0","server_time_utc":1700000000}`
	})
	h, err := c.Sys().Health(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !h.Sealed || !h.Initialized || h.ServerTimeUTC != 1700000000 {
		t.Errorf("health = %+v", h)
	}
	q, _ := url.ParseQuery((*seen)[0].RawQuery)
	for _, p := range []string{"sealedcode", "uninitcode", "standbycode", "activecode"} {
		if q.Get(p) != "299" {
			t.Errorf("%s = %q", p, q.Get(p))
		}
	}
}

func TestSysInitUnsealSeal(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(r request) (int, string) {
		switch r.Path {
		case "/v1/sys/init":
			if r.Method == http.MethodGet {
				return 200, `{"initialized":false}`
			}
			return 200, `{"keys":["aa","bb"],"keys_base64":["qg==","uw=="],"root_token":"root"}`
		case "/v1/sys/unseal":
			return 200, `{"type":"shamir","initialized":true,"sealed":true,"t":2,"n":3,"progress":1,"nonce":"n1"}`
		case "/v1/sys/seal", "/v1/sys/step-down":
			return 204, ""
		}
		return 404, `{"errors":[]}`
	})
	ctx := t.Context()
	if ok, err := c.Sys().InitStatus(ctx); err != nil || ok {
		t.Fatalf("InitStatus = %v, %v", ok, err)
	}
	ir, err := c.Sys().Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	if ir.RootToken != "root" || len(ir.KeysB64) != 2 || ir.Keys[1] != "bb" {
		t.Errorf("init = %+v", ir)
	}
	body := (*seen)[1].Body
	for _, k := range []string{"secret_shares", "secret_threshold", "pgp_keys", "recovery_shares", "recovery_threshold", "recovery_pgp_keys", "root_token_pgp_key"} {
		if _, ok := body[k]; !ok {
			t.Errorf("init body lacks %s: %v", k, body)
		}
	}
	st, err := c.Sys().Unseal(ctx, "qg==")
	if err != nil || st.Progress != 1 || st.T != 2 || st.Nonce != "n1" {
		t.Fatalf("unseal = %+v, %v", st, err)
	}
	if b := (*seen)[2].Body; b["key"] != "qg==" || b["reset"] != false || b["migrate"] != false {
		t.Errorf("unseal body = %v", b)
	}
	if _, err := c.Sys().UnsealReset(ctx); err != nil {
		t.Fatal(err)
	}
	if b := (*seen)[3].Body; b["reset"] != true || b["key"] != nil {
		t.Errorf("reset body = %v", b)
	}
	if err := c.Sys().Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if r := (*seen)[4]; r.Method != http.MethodPut {
		t.Errorf("seal sent as %s", r.Method)
	}
	if err := c.Sys().StepDown(ctx); err != nil {
		t.Fatal(err)
	}
	if r := (*seen)[5]; r.Method != http.MethodPut || r.Path != "/v1/sys/step-down" {
		t.Errorf("step-down sent as %s %s", r.Method, r.Path)
	}
}

func TestSysMounts(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(r request) (int, string) {
		switch {
		case r.Path == "/v1/sys/mounts" && r.Method == http.MethodGet:
			return 200, `{"secret/":{"type":"kv"},"data":{"secret/":{"type":"kv","accessor":"kv_1","options":{"version":"2"},"config":{"default_lease_ttl":0,"max_lease_ttl":60}},
				"sys/":{"type":"system","options":null}}}`
		case r.Path == "/v1/sys/mounts/kv/tune" && r.Method == http.MethodGet:
			return 200, `{"data":{"default_lease_ttl":2764800,"max_lease_ttl":2764800,"options":{"version":"1"}}}`
		case r.Path == "/v1/sys/remount":
			return 200, `{"data":{"migration_id":"m-1"},"migration_id":"m-1"}`
		case r.Path == "/v1/sys/remount/status/m-1":
			return 200, `{"data":{"migration_id":"m-1","migration_info":{"source_mount":"a/","target_mount":"b/","status":"success"}}}`
		case r.Path == "/v1/sys/key-status":
			return 200, `{"data":{"term":2,"install_time":"2024-05-01T10:00:00Z","encryptions":7}}`
		}
		return 204, ""
	})
	ctx := t.Context()
	ms, err := c.Sys().ListMounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := ms["secret/"]; m == nil || m.Options["version"] != "2" || m.Accessor != "kv_1" || m.Config.MaxLeaseTTL != 60 {
		t.Errorf("mounts = %+v", ms)
	}
	if err := c.Sys().Mount(ctx, "/kv/", MountInput{Type: "kv", Config: MountConfigInput{DefaultLeaseTTL: "0s", MaxLeaseTTL: "1h"}, Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	mr := (*seen)[1]
	cfg := mr.Body["config"].(map[string]any)
	if mr.Method != http.MethodPost || mr.Path != "/v1/sys/mounts/kv" || mr.Body["type"] != "kv" || cfg["max_lease_ttl"] != "1h" {
		t.Errorf("mount request = %+v", mr)
	}
	desc := "new"
	if err := c.Sys().TuneMount(ctx, "kv", MountConfigInput{Description: &desc}); err != nil {
		t.Fatal(err)
	}
	if tr := (*seen)[2]; tr.Path != "/v1/sys/mounts/kv/tune" || tr.Body["description"] != "new" || len(tr.Body) != 1 {
		t.Errorf("tune request = %+v", tr)
	}
	mc, err := c.Sys().MountConfig(ctx, "kv")
	if err != nil || mc.DefaultLeaseTTL != 2764800 || mc.Options["version"] != "1" {
		t.Errorf("mount config = %+v, %v", mc, err)
	}
	if err := c.Sys().Unmount(ctx, "kv"); err != nil {
		t.Fatal(err)
	}
	id, err := c.Sys().Remount(ctx, "a", "b")
	if err != nil || id != "m-1" {
		t.Fatalf("remount = %q, %v", id, err)
	}
	ms2, err := c.Sys().RemountStatus(ctx, id)
	if err != nil || ms2.MigrationInfo.Status != "success" {
		t.Errorf("remount status = %+v, %v", ms2, err)
	}
	ks, err := c.Sys().KeyStatus(ctx)
	if err != nil || ks.Term != 2 || ks.Encryptions != 7 || ks.InstallTime.Year() != 2024 {
		t.Errorf("key status = %+v, %v", ks, err)
	}
	if err := c.Sys().Rotate(ctx); err != nil {
		t.Fatal(err)
	}
}
