package cli

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/auditlog"
)

// testSalt keys the fake's sys/audit-hash, as a device's salt does.
var testSalt = []byte("audit-test-salt")

// testHash is v as a device salted with testSalt writes it.
func testHash(v string) string {
	m := hmac.New(sha256.New, testSalt)
	m.Write([]byte(v))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))
}

// newAuditFake is a scriptFake that also answers POST sys/audit-hash/<path>
// as a device does, hashing the input with testSalt.
func newAuditFake(t *testing.T, answers map[string]scriptAnswer) *scriptFake {
	t.Helper()
	f := &scriptFake{t: t, answers: answers}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/sys/audit-hash/") {
			b, _ := io.ReadAll(r.Body)
			var in struct{ Input string }
			_ = json.Unmarshal(b, &in)
			f.mu.Lock()
			f.answers[r.Method+" "+r.URL.Path] = scriptAnswer{200, `{"request_id":"r","data":{"hash":"` + testHash(in.Input) + `"}}`}
			f.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		f.serve(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// auditListAnswer lists devices at paths ("file/"), as Vigil's server does.
func auditListAnswer(paths ...string) scriptAnswer {
	data := map[string]any{}
	for _, p := range paths {
		data[p] = map[string]any{"type": "file", "description": "", "options": map[string]string{"file_path": "/var/log/" + strings.TrimSuffix(p, "/") + ".log"}, "local": false, "path": p}
	}
	b, _ := json.Marshal(map[string]any{"request_id": "r", "data": data})
	return scriptAnswer{200, string(b)}
}

// chainAnswer is sys/audit-chain/file for key and checkpoint cp.
func chainAnswer(key []byte, cp auditlog.Checkpoint) scriptAnswer {
	b, _ := json.Marshal(map[string]any{"request_id": "r", "data": map[string]any{
		"path": "file/", "key": base64.StdEncoding.EncodeToString(key),
		"seq": cp.Seq, "chain": cp.Chain, "checkpoint_time": cp.Time,
	}})
	return scriptAnswer{200, string(b)}
}

// chainedLog writes entries as a device does, with prefix, and returns the
// lines (without newlines) and the checkpoint after the last.
func chainedLog(t *testing.T, key []byte, prefix string, entries ...auditlog.Entry) ([]string, auditlog.Checkpoint) {
	t.Helper()
	ch, err := auditlog.NewChain(key, auditlog.Checkpoint{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		obj, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSuffix(string(ch.Append(nil, prefix, obj)), "\n"))
	}
	return lines, ch.Checkpoint(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

func logFile(t *testing.T, name string, lines []string) string {
	t.Helper()
	return writeFile(t, name, strings.Join(lines, "\n")+"\n")
}

func TestAuditEnable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		uri  string
		body map[string]any
		out  string
	}{
		{
			name: "type and option",
			args: []string{"file", "file_path=/var/log/vigil/audit.log"},
			uri:  "/v1/sys/audit/file",
			body: map[string]any{"type": "file", "description": "", "options": map[string]any{"file_path": "/var/log/vigil/audit.log"}, "local": false},
			out:  "Success! Enabled the file audit device at: file/\n",
		},
		{
			name: "every flag",
			args: []string{"-path=/team/log/", "-description=team log", "-local", "file", "file_path=stdout", "prefix=vigil:", "hmac_accessor=false"},
			uri:  "/v1/sys/audit/team/log",
			body: map[string]any{"type": "file", "description": "team log", "local": true,
				"options": map[string]any{"file_path": "stdout", "prefix": "vigil:", "hmac_accessor": "false"}},
			out: "Success! Enabled the file audit device at: team/log/\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{"PUT " + tt.uri: {204, ""}})
			r := f.run(t, "", 0, append([]string{"audit", "enable"}, tt.args...)...)
			if r.stdout != tt.out || r.stderr != "" {
				t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
			}
			checkScriptRequest(t, f.only(t), http.MethodPut, tt.uri, tt.body)
		})
	}
}

func TestAuditEnableDisableErrors(t *testing.T) {
	t.Parallel()
	f := newScriptFake(t, map[string]scriptAnswer{
		"PUT /v1/sys/audit/file": {400, `{"errors":["path already in use"]}`},
	})
	for _, args := range [][]string{
		{"audit", "enable"},
		{"audit", "enable", " "},
		{"audit", "enable", "file", "file_path"},
		{"audit", "enable", "file", "k=a", "k=b"},
		{"audit", "disable"},
		{"audit", "disable", "/"},
		{"audit", "disable", "a", "b"},
		{"audit", "list", "extra"},
	} {
		if r := f.run(t, "", 2, args...); r.stdout != "" || !strings.Contains(r.stderr, "Error") {
			t.Errorf("%v: stdout %q stderr %q", args, r.stdout, r.stderr)
		}
	}
	if len(f.requests()) != 0 {
		t.Errorf("usage errors sent requests: %+v", f.requests())
	}
	r := f.run(t, "", 1, "audit", "enable", "file")
	if !strings.Contains(r.stderr, "Error enabling audit device") || !strings.Contains(r.stderr, "path already in use") {
		t.Errorf("server error: %q", r.stderr)
	}
}

func TestAuditDisable(t *testing.T) {
	t.Parallel()
	f := newScriptFake(t, map[string]scriptAnswer{"DELETE /v1/sys/audit/team/log": {204, ""}})
	r := f.run(t, "", 0, "audit", "disable", "/team/log/")
	if r.stdout != "Success! Disabled audit device (if it was enabled) at: team/log/\n" || r.stderr != "" {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	checkScriptRequest(t, f.only(t), http.MethodDelete, "/v1/sys/audit/team/log", nil)
}

func TestAuditList(t *testing.T) {
	t.Parallel()
	const devices = `{"request_id":"r","data":{
		"file/":{"type":"file","description":"","options":{"file_path":"/var/log/a.log","prefix":"v:"},"local":false,"path":"file/"},
		"sock/":{"type":"socket","description":"to siem","options":{},"local":true,"path":"sock/"}}}`
	f := newScriptFake(t, map[string]scriptAnswer{"GET /v1/sys/audit": {200, devices}})

	r := f.run(t, "", 0, "audit", "list")
	const table = "" +
		"Path     Type      Description\n" +
		"----     ----      -----------\n" +
		"file/    file      n/a\n" +
		"sock/    socket    to siem\n"
	if r.stdout != table || r.stderr != "" {
		t.Errorf("list:\n%s\nwant:\n%s\nstderr: %s", r.stdout, table, r.stderr)
	}
	checkScriptRequest(t, f.requests()[0], http.MethodGet, "/v1/sys/audit", nil)

	r = f.run(t, "", 0, "audit", "list", "-detailed")
	const detailed = "" +
		"Path     Type      Description    Replication    Options\n" +
		"----     ----      -----------    -----------    -------\n" +
		"file/    file      n/a            replicated     file_path=/var/log/a.log prefix=v:\n" +
		"sock/    socket    to siem        local          n/a\n"
	if r.stdout != detailed {
		t.Errorf("detailed:\n%s\nwant:\n%s", r.stdout, detailed)
	}

	r = f.run(t, "", 0, "audit", "list", "-format=json")
	var got map[string]map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 2 ||
		got["sock/"]["type"] != "socket" || got["sock/"]["local"] != true || got["file/"]["path"] != "file/" {
		t.Errorf("json %v:\n%s", err, r.stdout)
	}

	empty := newScriptFake(t, map[string]scriptAnswer{"GET /v1/sys/audit": {200, `{"request_id":"r","data":{}}`}})
	if r := empty.run(t, "", 2, "audit", "list"); r.stderr != "No audit devices are enabled.\n" || r.stdout != "" {
		t.Errorf("none: %q", r.stdout)
	}
	if r := empty.run(t, "", 0, "audit", "list", "-format=json"); r.stdout != "{}\n" {
		t.Errorf("none json: %q", r.stdout)
	}
}

var testKey = bytes.Repeat([]byte{0x42}, auditlog.KeySize)

func TestAuditExportKey(t *testing.T) {
	t.Parallel()
	cp := auditlog.Checkpoint{Seq: 7, Chain: strings.Repeat("ab", 32), Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	f := newScriptFake(t, map[string]scriptAnswer{
		"GET /v1/sys/audit":            auditListAnswer("file/"),
		"GET /v1/sys/audit-chain/file": chainAnswer(testKey, cp),
	})
	b64 := base64.StdEncoding.EncodeToString(testKey)
	want := map[string]any{"path": "file/", "key": b64, "seq": float64(7), "chain": cp.Chain, "checkpoint_time": "2026-03-01T12:00:00Z"}

	// The only device is chosen.
	r := f.run(t, "", 0, "audit", "export-key")
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("stdout %v:\n%s", err, r.stdout)
	}
	if reqs := f.requests(); len(reqs) != 2 || reqs[0].URI != "/v1/sys/audit" || reqs[1].URI != "/v1/sys/audit-chain/file" {
		t.Errorf("requests = %+v", reqs)
	}

	// To a new file of mode 0600; never over an existing one without -force.
	out := filepath.Join(t.TempDir(), "key.json")
	r = f.run(t, "", 0, "audit", "export-key", "-device=file/", "-output="+out)
	if r.stdout != "Success! Exported the chain key of audit device file/ to: "+out+"\n" {
		t.Errorf("-output: %q", r.stdout)
	}
	checkKeyFile(t, out, want)
	if err := os.WriteFile(out, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = f.run(t, "", 1, "audit", "export-key", "-output="+out)
	if !strings.Contains(r.stderr, "exists") || strings.Contains(r.stderr, b64) {
		t.Errorf("overwrite: %q", r.stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "keep" {
		t.Errorf("the existing file was changed: %q", b)
	}
	f.run(t, "", 0, "audit", "export-key", "-force", "-output="+out)
	checkKeyFile(t, out, want)

	// No device, or several: a usage error naming them.
	none := newScriptFake(t, map[string]scriptAnswer{"GET /v1/sys/audit": auditListAnswer()})
	if r := none.run(t, "", 2, "audit", "export-key"); !strings.Contains(r.stderr, "no audit device is enabled") {
		t.Errorf("none: %q", r.stderr)
	}
	several := newScriptFake(t, map[string]scriptAnswer{"GET /v1/sys/audit": auditListAnswer("sock/", "file/")})
	if r := several.run(t, "", 2, "audit", "export-key"); !strings.Contains(r.stderr, "2 audit devices are enabled (file/, sock/): choose one with -device") {
		t.Errorf("several: %q", r.stderr)
	}
}

func checkKeyFile(t *testing.T, name string, want map[string]any) {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(name)
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("%s %v:\n%s", name, err, b)
	}
}

// verifyLog is a chained log of n entries and its checkpoint.
func verifyLog(t *testing.T, n int) ([]string, auditlog.Checkpoint) {
	t.Helper()
	var entries []auditlog.Entry
	for i := range n {
		entries = append(entries, auditlog.Entry{
			Time: time.Date(2026, 3, 1, 10, i, 0, 0, time.UTC).Format(time.RFC3339Nano), Type: auditlog.TypeRequest,
			Request: &auditlog.Request{Operation: "read", Path: "secret/data/app"},
		})
	}
	return chainedLog(t, testKey, "vigil:", entries...)
}

func TestAuditVerify(t *testing.T) {
	t.Parallel()
	lines, cp := verifyLog(t, 5)
	f := newScriptFake(t, map[string]scriptAnswer{
		"GET /v1/sys/audit":            auditListAnswer("file/"),
		"GET /v1/sys/audit-chain/file": chainAnswer(testKey, cp),
	})
	const ok = "OK: 5 entries, seq 1 to 5, chain intact\ncheckpoint seq 5 (2026-03-01T12:00:00Z) reached\n"

	whole := logFile(t, "audit.log", lines)
	if r := f.run(t, "", 0, "audit", "verify", whole); r.stdout != ok || r.stderr != "" {
		t.Errorf("intact: stdout %q stderr %q", r.stdout, r.stderr)
	}
	// Rotated files, oldest first, and stdin.
	older, newer := logFile(t, "audit.log.1", lines[:2]), logFile(t, "audit.log", lines[2:])
	if r := f.run(t, "", 0, "audit", "verify", "-device=file", older, newer); r.stdout != ok {
		t.Errorf("two files: %q", r.stdout)
	}
	if r := f.run(t, strings.Join(lines[2:], "\n")+"\n", 0, "audit", "verify", older, "-"); r.stdout != ok {
		t.Errorf("stdin: %q", r.stdout)
	}

	// The newer file alone needs -partial; its first entry is on trust.
	r := f.run(t, "", 2, "audit", "verify", newer)
	if !strings.HasPrefix(r.stdout, "TAMPERED: "+newer+":1: removed: ") {
		t.Errorf("newer alone: %q", r.stdout)
	}
	r = f.run(t, "", 0, "audit", "verify", "-partial", newer)
	if r.stdout != "OK: 3 entries, seq 3 to 5, chain intact\ncheckpoint seq 5 (2026-03-01T12:00:00Z) reached\n"+
		"note: the log starts at seq 3; that first entry was taken on trust (-partial)\n" {
		t.Errorf("-partial: %q", r.stdout)
	}

	// An edited entry: exit 2, naming the line.
	edited := append([]string(nil), lines...)
	edited[2] = strings.Replace(edited[2], "secret/data/app", "secret/data/ap2", 1)
	file := logFile(t, "edited.log", edited)
	r = f.run(t, "", 2, "audit", "verify", file)
	if !strings.HasPrefix(r.stdout, "TAMPERED: "+file+":3: modified: ") || r.stderr != "" {
		t.Errorf("edited: stdout %q stderr %q", r.stdout, r.stderr)
	}

	// The last entry removed: caught by the checkpoint only.
	cut := logFile(t, "cut.log", lines[:4])
	r = f.run(t, "", 2, "audit", "verify", cut)
	if !strings.HasPrefix(r.stdout, "TAMPERED: truncated: the log ends at seq 4 but the server recorded seq 5") {
		t.Errorf("truncated: %q", r.stdout)
	}
	if r := f.run(t, "", 0, "audit", "verify", "-no-checkpoint", cut); r.stdout != "OK: 4 entries, seq 1 to 4, chain intact\n" {
		t.Errorf("-no-checkpoint: %q", r.stdout)
	}

	// A wrong key breaks the first link.
	other := newScriptFake(t, map[string]scriptAnswer{
		"GET /v1/sys/audit-chain/file": chainAnswer(bytes.Repeat([]byte{1}, auditlog.KeySize), cp),
	})
	if r := other.run(t, "", 2, "audit", "verify", "-device=file", whole); !strings.HasPrefix(r.stdout, "TAMPERED: "+whole+":1: modified") {
		t.Errorf("wrong key: %q", r.stdout)
	}
}

func TestAuditVerifyKeyFile(t *testing.T) {
	t.Parallel()
	lines, cp := verifyLog(t, 3)
	f := newScriptFake(t, map[string]scriptAnswer{
		"GET /v1/sys/audit":            auditListAnswer("file/"),
		"GET /v1/sys/audit-chain/file": chainAnswer(testKey, cp),
	})
	keyFile := filepath.Join(t.TempDir(), "key.json")
	f.run(t, "", 0, "audit", "export-key", "-output="+keyFile)

	// No server: VIGIL_ADDR is unset and nothing listens on the default.
	file := logFile(t, "audit.log", lines)
	r := run(t, nil, runOpts{}, "audit", "verify", "-key-file="+keyFile, file)
	if r.code != 0 || r.stdout != "OK: 3 entries, seq 1 to 3, chain intact\ncheckpoint seq 3 (2026-03-01T12:00:00Z) reached\n" {
		t.Errorf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	// The exported checkpoint catches a cut log.
	r = run(t, nil, runOpts{}, "audit", "verify", "-key-file="+keyFile, logFile(t, "cut.log", lines[:2]))
	if r.code != 2 || !strings.HasPrefix(r.stdout, "TAMPERED: truncated:") {
		t.Errorf("cut: exit %d stdout %q", r.code, r.stdout)
	}

	bad := writeFile(t, "bad.json", `{"key":"`+base64.StdEncoding.EncodeToString([]byte("short"))+`"}`)
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-key-file=" + bad, file}, 1, "the key must be 32 bytes"},
		{[]string{"-key-file=" + writeFile(t, "junk.json", "not json"), file}, 1, "invalid JSON at offset"},
		{[]string{"-key-file=" + writeFile(t, "chain.json", `{"key":"`+base64.StdEncoding.EncodeToString(testKey)+`","seq":3,"chain":"zz"}`), file}, 1, "64 hex digits"},
		{[]string{"-key-file=" + keyFile, filepath.Join(t.TempDir(), "missing.log")}, 1, "no such file"},
		{[]string{"-key-file=" + keyFile, "-device=file", file}, 2, "cannot be used together"},
		{[]string{"-key-file=" + keyFile}, 2, "Not enough arguments"},
		{[]string{"-key-file=" + keyFile, "-", "-"}, 2, "can be read only once"},
	} {
		r := run(t, nil, runOpts{}, append([]string{"audit", "verify"}, tt.args...)...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) || r.stdout != "" {
			t.Errorf("%v: exit %d stdout %q stderr %q", tt.args, r.code, r.stdout, r.stderr)
		}
	}
}

// searchLog builds the log the search tests read, with times relative to
// now; the entries' request ids are r1 to r6.
func searchLog(t *testing.T, now time.Time) []string {
	t.Helper()
	at := func(ago time.Duration) string { return now.Add(-ago).UTC().Format(time.RFC3339Nano) }
	req := func(id, op, path, remote, accessor string) *auditlog.Request {
		return &auditlog.Request{ID: id, Operation: op, Path: path, RemoteAddress: remote, ClientTokenAccessor: accessor}
	}
	alice, bob := testHash("acc-alice"), testHash("acc-bob")
	entries := []auditlog.Entry{
		{Time: at(3 * time.Hour), Type: "request", Auth: &auditlog.Auth{Accessor: alice}, Request: func() *auditlog.Request {
			r := req("r1", "read", "secret/data/app/db", "10.0.0.5", alice)
			r.Headers = map[string][]string{"x-pipeline-run": {"train-42"}}
			return r
		}()},
		{Time: at(3*time.Hour - time.Second), Type: "response", Auth: &auditlog.Auth{Accessor: alice}, Request: req("r2", "read", "secret/data/app/db", "10.0.0.5", alice)},
		{Time: at(90 * time.Minute), Type: "request", Auth: &auditlog.Auth{Accessor: bob}, Request: func() *auditlog.Request {
			r := req("r3", "update", "secret/data/other", "192.168.1.9", bob)
			r.Data = map[string]any{"data": map[string]any{"password": testHash("hunter2")}}
			r.Headers = map[string][]string{"x-pipeline-run": {"eval-7", "eval-8"}, "x-signed": {testHash("sig")}}
			return r
		}()},
		{Time: at(30 * time.Minute), Type: "request", Auth: &auditlog.Auth{Accessor: bob}, Request: req("r4", "list", "sys/policies/acl", "::1", bob), Error: "permission denied"},
		{Time: at(10 * time.Minute), Type: "response", Request: req("r5", "update", "auth/approle/login", "10.0.0.7", ""),
			Response: &auditlog.Response{Auth: &auditlog.Auth{Accessor: testHash("acc-carol")}}},
		// A device with hmac_accessor=false.
		{Time: at(5 * time.Minute), Type: "request", Request: req("r6", "read", "cubbyhole/x", "10.1.0.1", "plain-acc")},
	}
	lines, _ := chainedLog(t, testKey, "vigil:", entries...)
	return lines
}

// ids returns the request ids of the JSON entries printed one per line.
func ids(t *testing.T, out string) string {
	t.Helper()
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		var e auditlog.Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Request == nil {
			t.Fatalf("not an entry: %q (%v)", l, err)
		}
		got = append(got, e.Request.ID)
	}
	return strings.Join(got, ",")
}

func TestAuditSearch(t *testing.T) {
	t.Parallel()
	now := time.Now()
	lines := searchLog(t, now)
	file := logFile(t, "audit.log", lines)
	f := newAuditFake(t, map[string]scriptAnswer{"GET /v1/sys/audit": auditListAnswer("file/")})
	rfc := func(ago time.Duration) string { return now.Add(-ago).UTC().Format(time.RFC3339) }

	tests := []struct {
		name string
		args []string
		want string
		// hashes are the inputs the command must have sent to sys/audit-hash.
		hashes []string
	}{
		{name: "no filter", want: "r1,r2,r3,r4,r5,r6"},
		{name: "path glob across slashes", args: []string{"-path=secret/*"}, want: "r1,r2,r3"},
		{name: "path with ?", args: []string{"-path=secret/data/app/?b"}, want: "r1,r2"},
		{name: "path suffix", args: []string{"-path=*/login"}, want: "r5"},
		{name: "path exact", args: []string{"-path=secret/data"}, want: ""},
		{name: "op", args: []string{"-op=update"}, want: "r3,r5"},
		{name: "op any case", args: []string{"-op=LIST"}, want: "r4"},
		{name: "type", args: []string{"-type=response"}, want: "r2,r5"},
		{name: "remote CIDR", args: []string{"-remote=10.0.0.0/24"}, want: "r1,r2,r5"},
		{name: "remote IP", args: []string{"-remote=10.0.0.5"}, want: "r1,r2"},
		{name: "remote IPv6", args: []string{"-remote=::1"}, want: "r4"},
		{name: "since duration", args: []string{"-since=2h"}, want: "r3,r4,r5,r6"},
		{name: "until duration", args: []string{"-until=1h"}, want: "r1,r2,r3"},
		{name: "since and until RFC 3339", args: []string{"-since=" + rfc(2*time.Hour), "-until=" + rfc(20*time.Minute)}, want: "r3,r4"},
		{name: "accessor hashed", args: []string{"-accessor=acc-bob"}, want: "r3,r4", hashes: []string{"acc-bob"}},
		{name: "accessor issued by a login", args: []string{"-accessor=acc-carol"}, want: "r5", hashes: []string{"acc-carol"}},
		{name: "accessor in clear", args: []string{"-accessor=plain-acc"}, want: "r6", hashes: []string{"plain-acc"}},
		{name: "accessor already hashed", args: []string{"-accessor=" + testHash("acc-alice")}, want: "r1,r2"},
		{name: "value", args: []string{"-value=hunter2"}, want: "r3", hashes: []string{"hunter2"}},
		{name: "value nowhere", args: []string{"-value=nothing"}, want: "", hashes: []string{"nothing"}},
		{name: "path, op and type", args: []string{"-path=secret/*", "-op=read", "-type=request"}, want: "r1"},
		{name: "accessor and value", args: []string{"-device=file", "-accessor=acc-bob", "-value=hunter2"}, want: "r3", hashes: []string{"acc-bob", "hunter2"}},
		{name: "remote and since", args: []string{"-remote=10.0.0.0/8", "-since=2h"}, want: "r5,r6"},
		{name: "nothing matches", args: []string{"-op=delete"}, want: ""},
		{name: "header present", args: []string{"-header=X-Pipeline-Run"}, want: "r1,r3"},
		{name: "header value", args: []string{"-header=x-pipeline-run=eval-8"}, want: "r3", hashes: []string{"eval-8"}},
		{name: "header value HMAC'd", args: []string{"-header=X-Signed=sig"}, want: "r3", hashes: []string{"sig"}},
		{name: "header value already hashed", args: []string{"-header=x-signed=" + testHash("sig")}, want: "r3"},
		{name: "header value elsewhere", args: []string{"-header=x-signed=train-42"}, want: "", hashes: []string{"train-42"}},
		{name: "header absent", args: []string{"-header=x-none"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newAuditFake(t, map[string]scriptAnswer{"GET /v1/sys/audit": auditListAnswer("file/")})
			r := f.run(t, "", 0, append(append([]string{"audit", "search"}, tt.args...), file)...)
			if got := ids(t, r.stdout); got != tt.want {
				t.Errorf("matched %q, want %q", got, tt.want)
			}
			n := len(strings.Split(tt.want, ","))
			if tt.want == "" {
				n = 0
			}
			if want := plural(n, "matching entry", "matching entries") + "\n"; r.stderr != want {
				t.Errorf("stderr %q, want %q", r.stderr, want)
			}
			var sent []string
			for _, rq := range f.requests() {
				if strings.HasPrefix(rq.URI, "/v1/sys/audit-hash/") {
					if rq.URI != "/v1/sys/audit-hash/file" || rq.Method != http.MethodPost {
						t.Errorf("hash request %s %s", rq.Method, rq.URI)
					}
					sent = append(sent, rq.Body["input"].(string))
				}
			}
			if strings.Join(sent, ",") != strings.Join(tt.hashes, ",") {
				t.Errorf("hashed %q, want %q", sent, tt.hashes)
			}
			if strings.Contains(r.stdout+r.stderr, "hunter2") {
				t.Errorf("the -value was printed:\n%s\n%s", r.stdout, r.stderr)
			}
		})
	}

	// Entries print exactly as in the log, without the prefix.
	r := f.run(t, "", 0, "audit", "search", "-path=cubbyhole/*", file)
	if want := strings.TrimPrefix(lines[5], "vigil:") + "\n"; r.stdout != want {
		t.Errorf("json line:\n%s\nwant\n%s", r.stdout, want)
	}
	// -value from stdin.
	r = f.run(t, "hunter2\n", 0, "audit", "search", "-value=-", file)
	if ids(t, r.stdout) != "r3" {
		t.Errorf("-value=-: %q", r.stdout)
	}
}

func TestAuditSearchTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	file := logFile(t, "audit.log", searchLog(t, now))
	r := run(t, nil, runOpts{}, "audit", "search", "-format=table", "-remote=::1", file)
	const want = "" +
		"TIME                    TYPE       OP      PATH                REMOTE    ERROR\n" +
		"----                    ----       --      ----                ------    -----\n" +
		"2026-03-01T11:30:00Z    request    list    sys/policies/acl    ::1       permission denied\n"
	if r.code != 0 || r.stdout != want || r.stderr != "1 matching entry\n" {
		t.Errorf("exit %d stdout:\n%s\nwant:\n%s\nstderr %q", r.code, r.stdout, want, r.stderr)
	}
	// VIGIL_FORMAT does not change search's default.
	r = run(t, nil, runOpts{env: map[string]string{"VIGIL_FORMAT": "yaml"}}, "audit", "search", "-remote=::1", file)
	if r.code != 0 || ids(t, r.stdout) != "r4" {
		t.Errorf("VIGIL_FORMAT=yaml: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestAuditSearchSkipsOtherLines(t *testing.T) {
	t.Parallel()
	lines := searchLog(t, time.Now())
	mixed := []string{"garbage 1", lines[0], "", "{not json", "garbage 3", lines[1], "[1]", "{}", "garbage 6"}
	file := logFile(t, "mixed.log", mixed)
	// An entry written without a chain (another server) is still read.
	plain := logFile(t, "plain.log", []string{`{"time":"2026-01-01T00:00:00Z","type":"request","request":{"id":"p1","path":"x"}}`})
	r := run(t, nil, runOpts{}, "audit", "search", file, plain)
	if r.code != 0 || ids(t, r.stdout) != "r1,r2,p1" {
		t.Errorf("exit %d stdout %q", r.code, r.stdout)
	}
	wantErr := "Warning: " + file + ":1: not an audit entry; skipped\n" +
		"Warning: " + file + ":4: not an audit entry; skipped\n" +
		"Warning: " + file + ":5: not an audit entry; skipped\n" +
		"Warning: " + file + ": 3 more lines that are not audit entries were skipped\n" +
		"3 matching entries\n"
	if r.stderr != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, wantErr)
	}
}

func TestAuditSearchErrors(t *testing.T) {
	t.Parallel()
	file := logFile(t, "audit.log", searchLog(t, time.Now()))
	several := newAuditFake(t, map[string]scriptAnswer{"GET /v1/sys/audit": auditListAnswer("file/", "sock/")})
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-type=other", file}, 2, `invalid -type "other"`},
		{[]string{"-remote=10.0.0", file}, 2, `invalid -remote "10.0.0"`},
		{[]string{"-since=yesterday", file}, 2, `invalid -since "yesterday"`},
		{[]string{"-until=-1h", file}, 2, `invalid -until "-1h"`},
		{[]string{"-format=yaml", file}, 2, "search prints -format=json or -format=table"},
		{[]string{"-op=read"}, 2, "Not enough arguments"},
		{[]string{"-value=-", "-"}, 2, "stdin cannot hold both -value and a log"},
		{[]string{"-header==v", file}, 2, "invalid -header"},
		{[]string{filepath.Join(t.TempDir(), "missing.log")}, 1, "no such file"},
		// -value cannot be hashed: the device is ambiguous.
		{[]string{"-value=hunter2", file}, 2, "2 audit devices are enabled (file/, sock/): choose one with -device"},
	} {
		r := several.run(t, "", tt.code, append([]string{"audit", "search"}, tt.args...)...)
		if !strings.Contains(r.stderr, tt.msg) || r.stdout != "" || strings.Contains(r.stderr, "hunter2") {
			t.Errorf("%v: stdout %q stderr %q", tt.args, r.stdout, r.stderr)
		}
	}

	// No server: -value fails, -accessor is matched as given with a warning.
	r := run(t, nil, runOpts{env: map[string]string{"VIGIL_ADDR": "http://127.0.0.1:1"}}, "audit", "search", "-value=hunter2", file)
	if r.code != 1 || !strings.Contains(r.stderr, "Error reaching the audit device to hash -value") || strings.Contains(r.stderr, "hunter2") {
		t.Errorf("-value without server: exit %d %q", r.code, r.stderr)
	}
	r = run(t, nil, runOpts{env: map[string]string{"VIGIL_ADDR": "http://127.0.0.1:1"}}, "audit", "search", "-accessor=plain-acc", file)
	if r.code != 0 || ids(t, r.stdout) != "r6" || !strings.Contains(r.stderr, "Warning: -accessor is matched only as given") {
		t.Errorf("-accessor without server: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = run(t, nil, runOpts{env: map[string]string{"VIGIL_ADDR": "http://127.0.0.1:1"}}, "audit", "search", "-header=X-Pipeline-Run=train-42", file)
	if r.code != 0 || ids(t, r.stdout) != "r1" || !strings.Contains(r.stderr, "Warning: the -header value is matched only as given") {
		t.Errorf("-header without server: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestAuditHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		has  []string
	}{
		{[]string{"help"}, []string{"audit", "Enable, list and disable audit devices"}},
		{[]string{"audit", "-h"}, []string{"Usage: vigil audit <command>", "disable", "enable", "export-key", "list", "search", "verify"}},
		{[]string{"audit", "enable", "-h"}, []string{"Usage: vigil audit enable [flags] TYPE [KEY=VALUE...]", "-path", "-description", "-local"}},
		{[]string{"audit", "disable", "-h"}, []string{"Usage: vigil audit disable [flags] PATH"}},
		{[]string{"audit", "list", "-h"}, []string{"Usage: vigil audit list [flags]", "-detailed", "-format"}},
		{[]string{"audit", "export-key", "-h"}, []string{"Usage: vigil audit export-key [flags]", "-device", "-output", "-force", "0600"}},
		{[]string{"audit", "verify", "-h"}, []string{"Usage: vigil audit verify [flags] FILE...", "-key-file", "-partial", "-no-checkpoint", "TAMPERED"}},
		{[]string{"audit", "search", "-h"}, []string{"Usage: vigil audit search [flags] FILE...", "-path", "-accessor", "-remote", "-since", "-until", "-op", "-type", "-value", "-header", "even when nothing matches", "json (default) or table"}},
	}
	for _, tt := range tests {
		r := run(t, nil, runOpts{}, tt.args...)
		if r.code != 0 {
			t.Errorf("%v: exit %d\n%s", tt.args, r.code, r.stderr)
		}
		for _, h := range tt.has {
			if !strings.Contains(r.stdout, h) {
				t.Errorf("%v: output lacks %q:\n%s", tt.args, h, r.stdout)
			}
		}
	}
}
