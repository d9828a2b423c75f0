package core

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/audit"
	auditfile "github.com/vigil-secrets/vigil/internal/audit/file"
	"github.com/vigil-secrets/vigil/internal/auditlog"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/token"
)

// readEntries parses an audit log.
func readEntries(t *testing.T, path string) []auditlog.Entry {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditlog.Entry
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e auditlog.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func chainOf(t *testing.T, f *fixture, device string) auditlog.VerifyOptions {
	t.Helper()
	resp, err := f.do(t, logical.ReadOperation, "sys/audit-chain/"+device, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(resp.Data["key"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return auditlog.VerifyOptions{Key: key}
}

func verifyFile(t *testing.T, opts auditlog.VerifyOptions, path string) *auditlog.Report {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	rep, err := auditlog.Verify(opts, auditlog.Source{Name: path, R: fh})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestAuditLogsEveryAccess is issue 4's "done when" at the core: a file
// device, a secret written and read, an AppRole login, a denied request;
// no secret, token or password in clear, the hash of the value found, the
// chain intact and continued across a seal.
func TestAuditLogsEveryAccess(t *testing.T) {
	f := initCore(t)
	logPath := filepath.Join(t.TempDir(), "audit", "vigil.log")
	must := func(resp *logical.Response, err error) *logical.Response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	must(f.do(t, logical.UpdateOperation, "sys/audit/file", map[string]any{"type": "file", "options": map[string]any{"file_path": logPath}}))
	list := must(f.do(t, logical.ReadOperation, "sys/audit", nil)).Data
	if dev, ok := list["file/"].(map[string]any); !ok || dev["type"] != "file" || dev["path"] != "file/" {
		t.Fatalf("sys/audit = %v", list)
	}
	if _, err := f.do(t, logical.UpdateOperation, "sys/audit/file", map[string]any{"type": "file", "options": map[string]any{"file_path": logPath}}); err == nil {
		t.Fatal("path enabled twice")
	}

	const apiKey = "sk-live-0123456789abcdef"
	must(f.do(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}}))
	must(f.do(t, logical.UpdateOperation, "secret/data/ml/openai", map[string]any{"data": map[string]any{"api_key": apiKey}}))
	must(f.do(t, logical.UpdateOperation, "sys/policies/acl/ml", map[string]any{"policy": mlTraining}))
	must(f.do(t, logical.UpdateOperation, "sys/auth/approle", map[string]any{"type": "approle"}))
	must(f.do(t, logical.UpdateOperation, "auth/approle/role/trainer", map[string]any{"token_policies": "ml"}))
	roleID := must(f.do(t, logical.ReadOperation, "auth/approle/role/trainer/role-id", nil)).Data["role_id"].(string)
	secretID := must(f.do(t, logical.UpdateOperation, "auth/approle/role/trainer/secret-id", nil)).Data["secret_id"].(string)
	login, err := f.c.HandleRequest(context.Background(), &Request{ID: secret.UUID(), Operation: logical.UpdateOperation,
		Path: "auth/approle/login", Data: map[string]any{"role_id": roleID, "secret_id": secretID},
		Connection: &logical.Connection{RemoteAddr: "10.1.2.3", RemotePort: 40000}})
	if err != nil {
		t.Fatal(err)
	}
	auth := login.Response.Auth
	tok := secret.NewString(auth.ClientToken)
	read := must(f.doAs(t, tok, logical.ReadOperation, "secret/data/ml/openai", nil))
	if read.Data["data"] == nil {
		t.Fatal("no data")
	}
	if _, err := f.doAs(t, tok, logical.ReadOperation, "secret/data/finance/db", nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("denied read: %v", err)
	}
	hash := must(f.do(t, logical.UpdateOperation, "sys/audit-hash/file", map[string]any{"input": apiKey})).Data["hash"].(string)

	raw, _ := os.ReadFile(logPath)
	for name, v := range map[string]string{"api key": apiKey, "root token": f.token.Reveal(), "secret id": secretID,
		"client token": auth.ClientToken, "accessor": auth.Accessor} {
		if bytes.Contains(raw, []byte(v)) {
			t.Errorf("the %s appears in clear in the audit log", name)
		}
	}
	if !bytes.Contains(raw, []byte(hash)) {
		t.Error("the audit-hash of the value is not in the log")
	}

	entries := readEntries(t, logPath)
	byID := map[string][]auditlog.Entry{}
	var sawDenied, sawLogin, sawRead bool
	for _, e := range entries {
		byID[e.Request.ID] = append(byID[e.Request.ID], e)
		switch {
		case e.Request.Path == "secret/data/finance/db":
			sawDenied = e.Type == "request" && e.Error == "permission denied" && e.Auth.PolicyResults != nil && !e.Auth.PolicyResults.Allowed
		case e.Request.Path == "auth/approle/login" && e.Type == "response":
			sawLogin = e.Response.Auth != nil && strings.HasPrefix(e.Response.Auth.ClientToken, "hmac-sha256:") &&
				e.Response.Auth.EntityID != "" &&
				e.Request.RemoteAddress == "10.1.2.3" && e.Request.RemotePort == 40000 && e.Request.MountClass == "auth"
		case e.Request.Path == "secret/data/ml/openai" && e.Request.Operation == "read" && e.Type == "response":
			sawRead = e.Auth.Metadata["role_name"] == "trainer" && e.Auth.DisplayName == "approle-trainer" && e.Request.MountType == "kv" &&
				e.Auth.EntityID != ""
		}
	}
	if !sawDenied || !sawLogin || !sawRead {
		t.Fatalf("entries missing or wrong: denied %v login %v read %v", sawDenied, sawLogin, sawRead)
	}
	for id, es := range byID {
		if id == "" || len(es) > 2 || es[0].Type != "request" || (len(es) == 2 && es[1].Type != "response") {
			t.Fatalf("request %s: entries %+v", id, es)
		}
	}

	// The chain is intact, and continues across a seal and unseal.
	if rep := verifyFile(t, chainOf(t, f, "file"), logPath); rep.Problem != nil || rep.Entries != len(entries)+2 {
		t.Fatalf("verify: %+v %v", rep, rep.Problem)
	}
	uuid := f.c.auditUUID("file/")
	if err := f.c.SealInternal(context.Background()); err != nil {
		t.Fatal(err)
	}
	sealedLines := bytes.Count(mustRead(t, logPath), []byte("\n"))
	f.unseal(t)
	// Sealing stored the exact last link.
	var stored auditlog.Checkpoint
	raw, err = f.c.barrier.Get(context.Background(), auditView+uuid+"/checkpoint")
	if err != nil || json.Unmarshal(raw, &stored) != nil || stored.Seq != uint64(sealedLines) {
		t.Fatalf("checkpoint at seal: %+v (%v), %d lines", stored, err, sealedLines)
	}
	must(f.do(t, logical.ReadOperation, "secret/data/ml/openai", nil))
	opts := chainOf(t, f, "file")
	resp := must(f.do(t, logical.ReadOperation, "sys/audit-chain/file", nil))
	cp := &auditlog.Checkpoint{Seq: resp.Data["seq"].(uint64), Chain: resp.Data["chain"].(string)}
	opts.Checkpoint = cp
	if rep := verifyFile(t, opts, logPath); rep.Problem != nil || rep.FirstSeq != 1 || rep.LastSeq < uint64(len(entries))+3 {
		t.Fatalf("verify after unseal: %+v %v", rep, rep.Problem)
	}

	// Disabling discards the device: its path is free again, and a new
	// device there starts a new chain with a new salt.
	must(f.do(t, logical.DeleteOperation, "sys/audit/file", nil))
	if _, err := f.do(t, logical.UpdateOperation, "sys/audit-hash/file", map[string]any{"input": apiKey}); err == nil {
		t.Fatal("audit-hash on a disabled device")
	}
}

// TestAuditFailsClosed: with the only device unable to write, requests
// fail and return nothing; with a second, working device they succeed.
func TestAuditFailsClosed(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	f := initCore(t)
	ctx := context.Background()
	must := func(resp *logical.Response, err error) *logical.Response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	must(f.do(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}}))
	must(f.do(t, logical.UpdateOperation, "secret/data/k", map[string]any{"data": map[string]any{"v": "1"}}))
	if err := f.c.EnableAudit(ctx, "full", "file", "", map[string]string{"file_path": "/dev/full", "write_timeout": "200ms"}, false); err != nil {
		t.Fatal(err)
	}
	resp, err := f.do(t, logical.ReadOperation, "secret/data/k", nil)
	var coded *logical.CodedError
	if !errors.As(err, &coded) || coded.Status != 500 || coded.Msg != "internal error" || resp != nil {
		t.Fatalf("read with a failing device: %v, %v", resp, err)
	}
	if !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("cause: %v", err)
	}
	// A write is not carried out either.
	if _, err := f.do(t, logical.UpdateOperation, "secret/data/k", map[string]any{"data": map[string]any{"v": "2"}}); err == nil {
		t.Fatal("write with a failing device")
	}
	// Nor is a wrapped read, which would create a wrapping token: it is no
	// read that changes nothing.
	if _, err := f.wrapped(t, f.token, logical.ReadOperation, "secret/data/k", nil, time.Minute); err == nil {
		t.Fatal("wrapped read with a failing device")
	}
	if keys, err := f.c.barrier.List(ctx, wrappingView); err != nil || len(keys) != 0 {
		t.Fatalf("a wrapped response was stored for a request never recorded: %v %v", keys, err)
	}
	good := filepath.Join(t.TempDir(), "audit.log")
	if err := f.c.EnableAudit(ctx, "good", "file", "", map[string]string{"file_path": good}, false); err != nil {
		t.Fatal(err)
	}
	if got := must(f.do(t, logical.ReadOperation, "secret/data/k", nil)); got.Data == nil {
		t.Fatal("no data")
	}
	if err := f.c.DisableAudit(ctx, "good"); err != nil {
		t.Fatal(err)
	}
	// Checked: the write above never happened.
	if err := f.c.DisableAudit(ctx, "full"); err != nil {
		t.Fatal(err)
	}
	data := must(f.do(t, logical.ReadOperation, "secret/data/k", nil)).Data["data"]
	raw, _ := json.Marshal(data)
	if !bytes.Contains(raw, []byte(`"v":"1"`)) {
		t.Fatalf("the refused write happened: %s", raw)
	}
}

// TestConfiguredAuditDevice: a device of the server configuration is
// there at every unseal and cannot be disabled through the API.
func TestConfiguredAuditDevice(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "audit.log")
	f := initCoreWith(t, Config{AuditFactories: map[string]audit.Factory{"file": auditfile.New},
		AuditDevices: []AuditDevice{{Path: "main", Type: "file", Options: map[string]string{"file_path": logPath}}}})
	if _, err := f.do(t, logical.DeleteOperation, "sys/audit/main", nil); err == nil || !strings.Contains(err.Error(), "server configuration") {
		t.Fatalf("disable a configured device: %v", err)
	}
	if _, err := f.do(t, logical.ReadOperation, "sys/mounts", nil); err != nil {
		t.Fatal(err)
	}
	if rep := verifyFile(t, chainOf(t, f, "main"), logPath); rep.Problem != nil || rep.Entries < 4 {
		t.Fatalf("verify: %+v %v", rep, rep.Problem)
	}
	// Bad options for a type are a 400 naming the option.
	_, err := f.do(t, logical.UpdateOperation, "sys/audit/x", map[string]any{"type": "file", "options": map[string]any{"file_path": logPath + "2", "colour": "blue"}})
	if !errors.As(err, new(*logical.CodedError)) || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown option: %v", err)
	}
	_, err = f.do(t, logical.UpdateOperation, "sys/audit/y", map[string]any{"type": "tape"})
	if err == nil || !strings.Contains(err.Error(), "tape") {
		t.Fatalf("unknown type: %v", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestAuditQueuesPureReads: reads and lists of KV, by a token with no use
// to count, are served while their request entry is written; every such
// entry still precedes its response entry, under concurrency too.
func TestAuditQueuesPureReads(t *testing.T) {
	f := initCore(t)
	f.must(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}})
	f.must(t, logical.UpdateOperation, "sys/mounts/kv1", map[string]any{"type": "kv"})
	f.must(t, logical.UpdateOperation, "secret/data/k", map[string]any{"data": map[string]any{"v": "1"}})

	unlimited, limited := &token.Entry{}, &token.Entry{NumUses: 3}
	for _, tc := range []struct {
		op   logical.Operation
		path string
		te   *token.Entry
		want bool
	}{
		{logical.ReadOperation, "secret/data/k", unlimited, true},
		{logical.ReadOperation, "secret/metadata/k", unlimited, true},
		{logical.ListOperation, "secret/metadata/", unlimited, true},
		{logical.ReadOperation, "kv1/k", unlimited, true},
		{logical.ReadOperation, "secret/data/k", limited, false},
		{logical.UpdateOperation, "secret/data/k", unlimited, false},
		{logical.DeleteOperation, "secret/data/k", unlimited, false},
		{logical.ReadOperation, "sys/mounts", unlimited, false},
		{logical.ReadOperation, "auth/token/lookup-self", unlimited, false},
	} {
		route, rest, ok := f.c.router.Match(tc.path)
		if !ok {
			t.Fatalf("%s: no route", tc.path)
		}
		lreq := &logical.Request{Operation: tc.op, Path: rest}
		if got := changesNothing(route, lreq, tc.te); got != tc.want {
			t.Errorf("%s %s (uses %d): changesNothing = %v, want %v", tc.op, tc.path, tc.te.NumUses, got, tc.want)
		}
	}

	logPath := filepath.Join(t.TempDir(), "audit.log")
	f.must(t, logical.UpdateOperation, "sys/audit/file", map[string]any{"type": "file", "options": map[string]any{"file_path": logPath}})
	const workers, reads = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*reads)
	for range workers {
		wg.Go(func() {
			for range reads {
				res, err := f.c.HandleRequest(context.Background(), &Request{ID: secret.UUID(), Operation: logical.ReadOperation, Path: "secret/data/k", Token: f.token})
				if err == nil && res.Response.Data["data"] == nil {
					err = errors.New("no data")
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	entries := readEntries(t, logPath)
	seen := map[string]string{} // request id → type of its last entry
	recorded := 0
	for _, e := range entries {
		if e.Request.Path != "secret/data/k" {
			continue
		}
		switch last := seen[e.Request.ID]; {
		case e.Type == "request" && last == "":
		case e.Type == "response" && last == "request":
			recorded++
		default:
			t.Fatalf("request %s: %s entry after %q", e.Request.ID, e.Type, last)
		}
		seen[e.Request.ID] = e.Type
	}
	if recorded != workers*reads {
		t.Fatalf("%d reads recorded, want %d", recorded, workers*reads)
	}
	if rep := verifyFile(t, chainOf(t, f, "file"), logPath); rep.Problem != nil {
		t.Fatalf("verify: %+v %v", rep, rep.Problem)
	}
}

// TestAuditRecordsNotShared: the records of audited requests are
// recycled; concurrent requests of every kind (writes, reads, reads of
// nothing, denied requests) must each get entries of their own. Every
// request's two entries agree on path, operation and caller, and a read's
// response entry holds the hash of its own value.
func TestAuditRecordsNotShared(t *testing.T) {
	f := initCore(t)
	f.must(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}})
	logPath := filepath.Join(t.TempDir(), "audit.log")
	f.must(t, logical.UpdateOperation, "sys/audit/file", map[string]any{"type": "file", "options": map[string]any{"file_path": logPath}})
	nobody := f.must(t, logical.UpdateOperation, "auth/token/create", map[string]any{"policies": []any{"default"}}).Auth.ClientToken

	const workers, rounds = 8, 20
	value := func(w, i int) string { return fmt.Sprintf("value-%d-%d", w, i) }
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			do := func(tok secret.String, op logical.Operation, path string, data map[string]any) (*Result, error) {
				return f.c.HandleRequest(context.Background(), &Request{ID: secret.UUID(), Operation: op, Path: path, Data: data, Token: tok})
			}
			for i := range rounds {
				path := fmt.Sprintf("secret/data/w%d", w)
				if _, err := do(f.token, logical.UpdateOperation, path, map[string]any{"data": map[string]any{"v": value(w, i)}}); err != nil {
					errs <- err
					return
				}
				if _, err := do(f.token, logical.ReadOperation, path, nil); err != nil {
					errs <- err
					return
				}
				if _, err := do(f.token, logical.ReadOperation, fmt.Sprintf("secret/data/none%d", w), nil); !errors.Is(err, logical.ErrNotFound) {
					errs <- fmt.Errorf("read of nothing: %v", err)
					return
				}
				if _, err := do(secret.NewString(nobody), logical.ReadOperation, path, nil); !errors.Is(err, logical.ErrPermissionDenied) {
					errs <- fmt.Errorf("denied read: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	hashOf := map[string]string{}
	for w := range workers {
		for i := range rounds {
			resp := f.must(t, logical.UpdateOperation, "sys/audit-hash/file", map[string]any{"input": value(w, i)})
			hashOf[resp.Data["hash"].(string)] = fmt.Sprintf("secret/data/w%d", w)
		}
	}
	requests := map[string]auditlog.Entry{}
	responses, denied := 0, 0
	for _, e := range readEntries(t, logPath) {
		if e.Request == nil || !strings.HasPrefix(e.Request.Path, "secret/") {
			continue
		}
		if e.Type == auditlog.TypeRequest {
			// A denied request gets its request entry alone, with the
			// error.
			if e.Error != "" {
				denied++
				if e.Auth == nil || e.Auth.Policies[0] != "default" {
					t.Fatalf("denied request %s logged as %+v", e.Request.ID, e.Auth)
				}
				continue
			}
			requests[e.Request.ID] = e
			continue
		}
		responses++
		req, ok := requests[e.Request.ID]
		if !ok {
			t.Fatalf("response entry of %s without its request entry", e.Request.ID)
		}
		if req.Request.Path != e.Request.Path || req.Request.Operation != e.Request.Operation ||
			req.Request.ClientToken != e.Request.ClientToken || req.Auth.Accessor != e.Auth.Accessor {
			t.Fatalf("request %s: request entry %+v, response entry %+v", e.Request.ID, req.Request, e.Request)
		}
		if e.Request.Operation != "read" || e.Error != "" {
			continue
		}
		data, _ := e.Response.Data["data"].(map[string]any)
		v, _ := data["v"].(string)
		if path, ok := hashOf[v]; !ok || path != e.Request.Path {
			t.Fatalf("read of %s logged the value of %q", e.Request.Path, path)
		}
	}
	if want := workers * rounds; responses != 3*want || denied != want {
		t.Fatalf("%d response entries and %d denied requests, want %d and %d", responses, denied, 3*want, want)
	}
}

// TestAuditedRequestHeaders: sys/config/auditing/request-headers, with
// Vault's shapes; the configured headers appear in both entries of a
// request, in clear or HMAC'd, and nothing else of the request's headers;
// credentials are never configured in clear; the configuration survives
// a seal.
func TestAuditedRequestHeaders(t *testing.T) {
	f := initCore(t)
	f.must(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}})
	logPath := filepath.Join(t.TempDir(), "audit.log")
	f.must(t, logical.UpdateOperation, "sys/audit/file", map[string]any{"type": "file", "options": map[string]any{"file_path": logPath}})

	const base = "sys/config/auditing/request-headers"
	if got := f.must(t, logical.ReadOperation, base, nil).Data["headers"]; len(got.(map[string]any)) != 0 {
		t.Fatalf("headers before any: %v", got)
	}
	f.must(t, logical.UpdateOperation, base+"/X-Pipeline-Run", nil)
	f.must(t, logical.UpdateOperation, base+"/x-job-secret", map[string]any{"hmac": true})
	f.must(t, logical.UpdateOperation, base+"/X-Vault-Token", map[string]any{"hmac": "true"})
	// A default header, configured to be HMAC'd.
	f.must(t, logical.UpdateOperation, base+"/Correlation-ID", map[string]any{"hmac": true})
	f.must(t, logical.UpdateOperation, base+"/x-gone", nil)
	f.must(t, logical.DeleteOperation, base+"/X-Gone", nil)
	f.must(t, logical.DeleteOperation, base+"/x-never-set", nil)
	want := map[string]any{
		"x-pipeline-run": map[string]any{"hmac": false},
		"x-job-secret":   map[string]any{"hmac": true},
		"x-vault-token":  map[string]any{"hmac": true},
		"correlation-id": map[string]any{"hmac": true},
	}
	if got := f.must(t, logical.ReadOperation, base, nil).Data["headers"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("headers = %v, want %v", got, want)
	}
	if got := f.must(t, logical.ReadOperation, base+"/X-Job-Secret", nil).Data; !reflect.DeepEqual(got, map[string]any{"X-Job-Secret": map[string]any{"hmac": true}}) {
		t.Fatalf("one header = %v", got)
	}
	for _, tc := range []struct {
		op   logical.Operation
		path string
		data map[string]any
		want string
	}{
		{logical.ReadOperation, base + "/x-gone", nil, "Could not find header in config"},
		{logical.UpdateOperation, base + "/Authorization", nil, "carries credentials"},
		{logical.UpdateOperation, base + "/x-vault-token", map[string]any{"hmac": false}, "carries credentials"},
		{logical.UpdateOperation, base + "/bad name", nil, "invalid header name"},
		{logical.UpdateOperation, base + "/x-a", map[string]any{"hmac": "sometimes"}, "hmac"},
	} {
		_, err := f.do(t, tc.op, tc.path, tc.data)
		var ce *logical.CodedError
		if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: %v, want a 400 with %q", tc.op, tc.path, err, tc.want)
		}
	}
	// x-vault-token stayed HMAC'd.
	if got := f.must(t, logical.ReadOperation, base+"/x-vault-token", nil).Data["x-vault-token"]; !reflect.DeepEqual(got, map[string]any{"hmac": true}) {
		t.Fatalf("x-vault-token = %v", got)
	}

	// The configuration is kept across a seal.
	if err := f.c.SealInternal(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.unseal(t)
	if got := f.must(t, logical.ReadOperation, base, nil).Data["headers"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("headers after unseal = %v", got)
	}

	id := secret.UUID()
	headers := http.Header{}
	headers.Set("X-Pipeline-Run", "train-42")
	headers.Add("X-Job-Secret", "js-1")
	headers.Add("X-Job-Secret", "js-2")
	headers.Set("X-Vault-Token", f.token.Reveal())
	headers.Set("X-Not-Audited", "nope")
	// Recorded without configuration, in clear, as in Vault; unless
	// configured otherwise.
	headers.Set("X-Correlation-Id", "corr-7")
	headers.Set("Correlation-Id", "corr-hidden")
	if _, err := f.c.HandleRequest(context.Background(), &Request{ID: id, Operation: logical.UpdateOperation, Path: "secret/data/k",
		Data: map[string]any{"data": map[string]any{"v": "1"}}, Token: f.token, Headers: headers}); err != nil {
		t.Fatal(err)
	}
	// Requests served outside the pipeline (a snapshot) carry them too.
	snapID := secret.UUID()
	sreq := snapReq(f.token, snapPath)
	sreq.ID, sreq.Headers = snapID, http.Header{"X-Pipeline-Run": {"backup-1"}}
	if _, err := f.c.SnapshotSave(context.Background(), sreq, io.Discard); err != nil {
		t.Fatal(err)
	}
	hash := func(v string) string {
		return f.must(t, logical.UpdateOperation, "sys/audit-hash/file", map[string]any{"input": v}).Data["hash"].(string)
	}
	wantHeaders := map[string][]string{
		"x-pipeline-run":   {"train-42"},
		"x-job-secret":     {hash("js-1"), hash("js-2")},
		"x-vault-token":    {hash(f.token.Reveal())},
		"x-correlation-id": {"corr-7"},
		"correlation-id":   {hash("corr-hidden")},
	}
	raw := mustRead(t, logPath)
	for _, clear := range []string{"js-1", "js-2", f.token.Reveal(), "nope", "corr-hidden"} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Errorf("%q in the log", clear)
		}
	}
	seen, snapSeen := 0, 0
	for _, e := range readEntries(t, logPath) {
		if e.Request == nil {
			continue
		}
		if e.Request.ID == snapID {
			if got := e.Request.Headers["x-pipeline-run"]; len(got) != 1 || got[0] != "backup-1" {
				t.Errorf("snapshot %s entry headers = %v", e.Type, e.Request.Headers)
			}
			snapSeen++
			continue
		}
		if e.Request.ID != id {
			if e.Request.Headers != nil {
				t.Errorf("%s %s has headers %v", e.Type, e.Request.Path, e.Request.Headers)
			}
			continue
		}
		seen++
		if !reflect.DeepEqual(e.Request.Headers, wantHeaders) {
			t.Errorf("%s entry headers = %v, want %v", e.Type, e.Request.Headers, wantHeaders)
		}
	}
	if seen != 2 || snapSeen != 2 {
		t.Fatalf("%d entries of the request and %d of the snapshot, want 2 each", seen, snapSeen)
	}
}
