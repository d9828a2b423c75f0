package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/auditlog"
	"github.com/vigil-secrets/vigil/internal/secret"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	testSalt = []byte("6a1f5c8e-3b0d-4c55-9d7e-2f1a0b9c8d7e")
	testKey  = bytes.Repeat([]byte{3}, auditlog.KeySize)
	testTime = time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)
)

// memSink keeps what it is given; fail and block make its writes fail or
// hang.
type memSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	fail    bool
	block   chan struct{}
	reopens int
	// bounded makes requests write themselves (see Bounded).
	bounded bool
	// writes counts the successful writes.
	writes int
}

func (m *memSink) WritesBounded() bool { return m.bounded }

func (m *memSink) Write(p []byte) error {
	if m.block != nil {
		<-m.block
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("disk full")
	}
	m.buf.Write(p)
	m.writes++
	return nil
}

func (m *memSink) Reopen() error { m.mu.Lock(); m.reopens++; m.mu.Unlock(); return nil }
func (m *memSink) Close() error  { return nil }

func (m *memSink) setFail(v bool) { m.mu.Lock(); m.fail = v; m.mu.Unlock() }

func (m *memSink) String() string { m.mu.Lock(); defer m.mu.Unlock(); return m.buf.String() }

func (m *memSink) writeCount() int { m.mu.Lock(); defer m.mu.Unlock(); return m.writes }

func open(t *testing.T, path string, sink Sink, opts map[string]string) *Device {
	t.Helper()
	d, err := OpenDevice(context.Background(), DeviceConfig{
		Path: path, Type: "mem", Options: opts, Salt: testSalt, ChainKey: testKey,
	}, func(_ context.Context, conf SinkConfig) (Sink, error) {
		conf.Options.String("mem_option", "")
		return sink, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// sampleInput is a KV read by an AppRole token with a secret in its data.
func sampleInput() *Input {
	allowed := true
	return &Input{
		Time: testTime,
		Auth: &Auth{
			Accessor: "acc-4f2a", DisplayName: "approle", Policies: []string{"default", "trainer"},
			Metadata: map[string]string{"role_name": "trainer"}, TokenType: "service",
			TTL: time.Hour, IssueTime: testTime.Add(-time.Minute), Allowed: &allowed,
		},
		Request: &Request{
			ID: "0b0e0f2c-1111-4222-8333-944455556666", Operation: "update", Path: "secret/data/openai",
			Data:       map[string]any{"data": map[string]any{"api_key": "sk-live-123", "n": json.Number("3")}, "options": map[string]any{"cas": json.Number("0")}},
			MountPoint: "secret/", MountType: "kv", MountAccessor: "kv_1a2b3c4d", MountClass: "secret",
			ClientToken: secret.NewString("hvs.CAESIJ-token"), ClientTokenAccessor: "acc-4f2a",
			RemoteAddr: "10.0.0.7", RemotePort: 53122, ClientCertSubject: "CN=trainer-7",
			Headers: []Header{{Name: "x-pipeline-run", Values: []string{"train-42"}}, {Name: "x-signed", Values: []string{"sig-1", "sig-2"}, HMAC: true}},
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatalf("entry is not JSON: %v\n%s", err, got)
	}
	pretty.WriteByte('\n')
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("%s changed:\n%s", name, pretty.Bytes())
	}
}

// TestEntryFormat pins the written form of entries: Vault's shape (spec
// §12.2) with Vigil's seq and chain.
func TestEntryFormat(t *testing.T) {
	f := newFormatter(formatOptions{hmacAccessor: true}, testSalt)
	req := f.format(auditlog.TypeRequest, sampleInput())
	golden(t, "request.json", req)

	in := sampleInput()
	in.Request.Operation, in.Request.Path, in.Request.Data = "read", "secret/data/openai", nil
	in.Response = &Response{
		Data:    map[string]any{"data": json.RawMessage(`{"api_key":"sk-live-123"}`), "metadata": map[string]any{"version": 3, "destroyed": false, "created_time": "2026-11-23T09:00:00Z"}},
		LeaseID: "database/creds/ro/abc",
	}
	resp := f.format(auditlog.TypeResponse, in)
	golden(t, "response.json", resp)

	login := &Input{Time: testTime,
		Request: &Request{ID: "r2", Operation: "update", Path: "auth/approle/login", MountPoint: "auth/approle/", MountType: "approle", MountClass: "auth",
			Data: map[string]any{"role_id": "role-1", "secret_id": "s3cr3t-id"}, RemoteAddr: "10.0.0.8"},
		Response: &Response{Auth: &Auth{ClientToken: secret.NewString("hvs.new-token"), Accessor: "acc-new", Policies: []string{"default"},
			Metadata: map[string]string{"role_name": "trainer"}, TokenType: "service", TTL: time.Hour}},
	}
	out := f.format(auditlog.TypeResponse, login)
	golden(t, "login_response.json", out)

	// A wrapped response: the client got the wrapping token.
	wrapped := sampleInput()
	wrapped.Request.Operation, wrapped.Request.Path, wrapped.Request.Data = "update", "auth/approle/role/trainer/secret-id", nil
	wrapped.Response = &Response{
		Data: map[string]any{"secret_id": "sid-123", "secret_id_accessor": "sida-1", "secret_id_ttl": 600},
		WrapInfo: &WrapInfo{Token: secret.NewString("hvs.wrapping-token"), Accessor: "wacc-1", TTL: 5 * time.Minute,
			CreationTime: testTime, CreationPath: "auth/approle/role/trainer/secret-id"},
	}
	wrappedOut := f.format(auditlog.TypeResponse, wrapped)
	golden(t, "wrapped_response.json", wrappedOut)
	for _, clear := range []string{"sid-123", "hvs.wrapping-token", "wacc-1"} {
		if bytes.Contains(wrappedOut, []byte(clear)) {
			t.Errorf("%q in clear in %s", clear, wrappedOut)
		}
	}

	denied := sampleInput()
	denied.Err = errors.New("permission denied")
	out = f.format(auditlog.TypeRequest, denied)
	if !bytes.Contains(out, []byte(`"error":"permission denied"`)) || !bytes.Contains(out, []byte(`"policy_results":{"allowed":true}`)) {
		t.Fatalf("denied entry: %s", out)
	}
	for _, secretValue := range []string{"sk-live-123", "hvs.CAESIJ-token", "hvs.new-token", "s3cr3t-id", "acc-4f2a", "acc-new", "sig-1", "sig-2"} {
		for _, e := range [][]byte{req, resp} {
			if bytes.Contains(e, []byte(secretValue)) {
				t.Errorf("%q in clear in %s", secretValue, e)
			}
		}
	}
}

func TestHashingOptions(t *testing.T) {
	h := newHasher(testSalt)
	if got := h.hash("sk-live-123"); !strings.HasPrefix(got, "hmac-sha256:") || len(got) != len("hmac-sha256:")+64 {
		t.Fatalf("hash = %q", got)
	}
	in := sampleInput()
	in.Request.NonHMACKeys = []string{"options"}

	raw := newFormatter(formatOptions{hmacAccessor: false, logRaw: true}, testSalt)
	out := raw.format(auditlog.TypeRequest, in)
	if !bytes.Contains(out, []byte(`"api_key":"sk-live-123"`)) || !bytes.Contains(out, []byte(`"client_token":"hvs.CAESIJ-token"`)) {
		t.Errorf("log_raw hashed: %s", out)
	}

	noAcc := newFormatter(formatOptions{hmacAccessor: false}, testSalt)
	out = noAcc.format(auditlog.TypeRequest, in)
	if !bytes.Contains(out, []byte(`"accessor":"acc-4f2a"`)) || bytes.Contains(out, []byte("sk-live-123")) || !bytes.Contains(out, []byte(`"options":{"cas":0}`)) {
		t.Errorf("hmac_accessor=false or non-HMAC keys: %s", out)
	}

	list := &Input{Time: testTime, Request: &Request{Operation: "list", Path: "secret/metadata/"},
		Response: &Response{Data: map[string]any{"keys": []string{"a", "b", "c"}}}}
	elide := newFormatter(formatOptions{hmacAccessor: true, elideLists: true}, testSalt)
	out = elide.format(auditlog.TypeResponse, list)
	if !bytes.Contains(out, []byte(`"keys":3`)) {
		t.Errorf("elide_list_responses: %s", out)
	}
	full := newFormatter(formatOptions{hmacAccessor: true}, testSalt)
	out = full.format(auditlog.TypeResponse, list)
	if !bytes.Contains(out, []byte(`"keys":["hmac-sha256:`)) {
		t.Errorf("list keys: %s", out)
	}
}

func TestDeviceWritesAChain(t *testing.T) {
	t.Run("writer goroutine", func(t *testing.T) { testDeviceWritesAChain(t, false) })
	t.Run("requests write", func(t *testing.T) { testDeviceWritesAChain(t, true) })
}

func testDeviceWritesAChain(t *testing.T, bounded bool) {
	sink := &memSink{bounded: bounded}
	d := open(t, "mem/", sink, map[string]string{"prefix": "vigil-audit: ", "mem_option": "x"})
	b := NewBroker()
	if b.Enabled() {
		t.Fatal("enabled with no device")
	}
	if err := b.Add(d); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(d); err == nil {
		t.Fatal("same path added twice")
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.LogRequest(ctx, sampleInput()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := b.LogResponse(ctx, sampleInput()); err != nil {
		t.Fatal(err)
	}
	rep, err := auditlog.Verify(auditlog.VerifyOptions{Key: testKey}, auditlog.Source{Name: "mem", R: strings.NewReader(sink.String())})
	if err != nil || rep.Problem != nil || rep.Entries != 51 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if !strings.HasPrefix(sink.String(), "vigil-audit: {") {
		t.Fatalf("prefix missing: %.40s", sink.String())
	}
	if cp, changed := d.Checkpoint(); cp.Seq != 51 || !changed {
		t.Fatalf("checkpoint %+v %v", cp, changed)
	} else if d.Saved(cp); func() bool { _, c := d.Checkpoint(); return c }() {
		t.Fatal("checkpoint still changed after Saved")
	}
	if got, _ := b.Hash("mem/", "sk-live-123"); !strings.Contains(sink.String(), got) {
		t.Fatal("the hash of a logged value is not in the log")
	}
	if _, err := b.Hash("nope/", "x"); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("hash on unknown device: %v", err)
	}
	if st := d.Stats(); st.Entries != 51 || st.Failures != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBadOptions(t *testing.T) {
	factory := func(context.Context, SinkConfig) (Sink, error) { return &memSink{}, nil }
	for _, opts := range []map[string]string{
		{"hmac_accessor": "maybe"},
		{"log_raw": "2"},
		{"format": "jsonx"},
		{"write_timeout": "-1s"},
		{"file_pth": "/tmp/x"},
	} {
		_, err := OpenDevice(context.Background(), DeviceConfig{Path: "m/", Type: "mem", Options: opts, Salt: testSalt, ChainKey: testKey}, factory)
		if !errors.Is(err, ErrBadOption) {
			t.Errorf("%v: err = %v", opts, err)
		}
	}
}

// TestFailClosed: with the only device failing, nothing is recorded and
// the broker says so; once it writes again, the entries kept back are
// written first and the chain has no hole.
func TestFailClosed(t *testing.T) {
	t.Run("writer goroutine", func(t *testing.T) { testFailClosed(t, false) })
	t.Run("requests write", func(t *testing.T) { testFailClosed(t, true) })
}

func testFailClosed(t *testing.T, bounded bool) {
	sink := &memSink{bounded: bounded}
	d := open(t, "mem/", sink, map[string]string{"write_timeout": "1s"})
	b := NewBroker()
	b.Add(d)
	ctx := context.Background()
	if err := b.LogRequest(ctx, sampleInput()); err != nil {
		t.Fatal(err)
	}
	sink.setFail(true)
	if err := b.LogRequest(ctx, sampleInput()); !errors.Is(err, ErrNotRecorded) {
		t.Fatalf("failing device: err = %v", err)
	}
	if d.Healthy() {
		t.Fatal("device reports healthy")
	}
	sink.setFail(false)
	// The retry writes the kept entry; the next request succeeds.
	deadline := time.Now().Add(5 * time.Second)
	for b.LogRequest(ctx, sampleInput()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("device never recovered")
		}
	}
	rep, err := auditlog.Verify(auditlog.VerifyOptions{Key: testKey}, auditlog.Source{Name: "mem", R: strings.NewReader(sink.String())})
	if err != nil || rep.Problem != nil || rep.Entries < 3 {
		t.Fatalf("chain after recovery: %+v %v", rep, rep.Problem)
	}
	if d.Stats().Failures == 0 {
		t.Fatal("no failure counted")
	}
}

// TestQueuedRequest: a queued request entry is not written on its own;
// the response entry waits for both, written in one write, in order; if
// neither can be written, the response fails, and the entries are written
// once the device recovers.
func TestQueuedRequest(t *testing.T) {
	for _, bounded := range []bool{false, true} {
		sink := &memSink{bounded: bounded}
		d := open(t, "mem/", sink, map[string]string{"write_timeout": "1s"})
		b := NewBroker()
		b.Add(d)
		ctx := context.Background()
		in := sampleInput()
		tk, err := b.QueueRequest(in)
		if err != nil || !tk.Queued() {
			t.Fatalf("queue: %v, %v", tk, err)
		}
		if n := sink.writeCount(); n != 0 {
			t.Fatalf("bounded=%v: the queued entry was written alone (%d writes)", bounded, n)
		}
		if err := b.LogResponseAfter(ctx, tk, in); err != nil {
			t.Fatal(err)
		}
		if n := sink.writeCount(); n != 1 {
			t.Errorf("bounded=%v: %d writes, want the two entries in one", bounded, n)
		}
		lines := strings.Split(strings.TrimSuffix(sink.String(), "\n"), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], `"type":"request"`) || !strings.Contains(lines[1], `"type":"response"`) {
			t.Fatalf("bounded=%v: lines %q", bounded, lines)
		}

		// Neither entry can be written: the response is refused.
		sink.setFail(true)
		in = sampleInput()
		if tk, err = b.QueueRequest(in); err != nil {
			t.Fatal(err)
		}
		if err := b.LogResponseAfter(ctx, tk, in); !errors.Is(err, ErrNotRecorded) {
			t.Fatalf("bounded=%v: failing device: err = %v", bounded, err)
		}
		sink.setFail(false)
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(sink.String(), "\n") < 4 {
			if time.Now().After(deadline) {
				t.Fatal("the kept entries were never written")
			}
			time.Sleep(10 * time.Millisecond)
		}
		rep, err := auditlog.Verify(auditlog.VerifyOptions{Key: testKey}, auditlog.Source{Name: "mem", R: strings.NewReader(sink.String())})
		if err != nil || rep.Problem != nil || rep.Entries != 4 {
			t.Fatalf("bounded=%v: chain: %+v %v", bounded, rep, err)
		}
	}
}

// TestQueuedRequestDevices: nothing is queued without exactly one device,
// and a response goes to the device that holds its request entry.
func TestQueuedRequestDevices(t *testing.T) {
	ctx := context.Background()
	b := NewBroker()
	if tk, err := b.QueueRequest(sampleInput()); err != nil || tk.Queued() {
		t.Fatalf("no device: %v, %v", tk, err)
	}
	first := &memSink{}
	b.Add(open(t, "first/", first, nil))
	in := sampleInput()
	tk, err := b.QueueRequest(in)
	if err != nil || !tk.Queued() {
		t.Fatalf("one device: %v, %v", tk, err)
	}
	// A device enabled in between sees neither entry.
	second := &memSink{}
	b.Add(open(t, "second/", second, nil))
	if err := b.LogResponseAfter(ctx, tk, in); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(first.String(), "\n"); n != 2 {
		t.Errorf("first device: %d lines, want 2", n)
	}
	if second.String() != "" {
		t.Errorf("second device recorded a request it never saw: %s", second.String())
	}
	if tk, err := b.QueueRequest(sampleInput()); err != nil || tk.Queued() {
		t.Fatalf("two devices: %v, %v", tk, err)
	}
	// The request's device is closed before its response: refused.
	b.Remove("first/")
	b.Remove("second/")
	d := open(t, "third/", &memSink{}, nil)
	b.Add(d)
	in = sampleInput()
	if tk, err = b.QueueRequest(in); err != nil || !tk.Queued() {
		t.Fatalf("third device: %v, %v", tk, err)
	}
	b.Remove("third/")
	d.Close()
	if err := b.LogResponseAfter(ctx, tk, in); !errors.Is(err, ErrNotRecorded) {
		t.Fatalf("closed device: err = %v", err)
	}
}

// TestSlowDeviceDoesNotBlockOthers: a hung device costs no request that
// another device recorded, and alone it fails within its timeout.
func TestSlowDeviceDoesNotBlockOthers(t *testing.T) {
	hung := &memSink{block: make(chan struct{})}
	defer close(hung.block)
	fast := &memSink{}
	b := NewBroker()
	b.Add(open(t, "hung/", hung, map[string]string{"write_timeout": "30s"}))
	b.Add(open(t, "fast/", fast, nil))
	ctx := context.Background()
	done := make(chan error, 1)
	go func() { done <- b.LogRequest(ctx, sampleInput()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a hung device blocked the request")
	}
	if !strings.Contains(fast.String(), `"type":"request"`) {
		t.Fatal("fast device did not record")
	}

	alone := NewBroker()
	stuck := &memSink{block: make(chan struct{})}
	defer close(stuck.block)
	alone.Add(open(t, "stuck/", stuck, map[string]string{"write_timeout": "100ms"}))
	if err := alone.LogRequest(ctx, sampleInput()); !errors.Is(err, ErrNotRecorded) {
		t.Fatalf("hung only device: err = %v", err)
	}
	// Two failing devices: both errors are reported.
	two := NewBroker()
	f1, f2 := &memSink{fail: true}, &memSink{fail: true}
	two.Add(open(t, "f1/", f1, nil))
	two.Add(open(t, "f2/", f2, nil))
	err := two.LogRequest(ctx, sampleInput())
	if !errors.Is(err, ErrNotRecorded) || !strings.Contains(err.Error(), "f1/") || !strings.Contains(err.Error(), "f2/") {
		t.Fatalf("two failing devices: %v", err)
	}
}

// TestTimeoutOfWaitingRequests: requests waiting on a device that does
// not write give up after its timeout, however many wait on one batch, and
// the write that lands afterwards neither wakes them twice nor keeps the
// device from recording the next request.
func TestTimeoutOfWaitingRequests(t *testing.T) {
	sink := &memSink{block: make(chan struct{})}
	d := open(t, "slow/", sink, map[string]string{"write_timeout": "50ms"})
	b := NewBroker()
	b.Add(d)
	ctx := context.Background()
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() { errs <- b.LogRequest(ctx, sampleInput()) }()
	}
	for range cap(errs) {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrNotRecorded) || !errors.Is(err, errTimeout) {
				t.Fatalf("err = %v, want a timeout", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a request waited past the device's timeout")
		}
	}
	if got := d.Stats().Failures; got != 4 {
		t.Errorf("failures = %d, want 4", got)
	}
	close(sink.block)
	if err := b.LogRequest(ctx, sampleInput()); err != nil {
		t.Fatalf("after the device caught up: %v", err)
	}
	if n := strings.Count(sink.String(), "\n"); n != 5 {
		t.Errorf("%d lines written, want the 4 late ones and the last", n)
	}
}

func TestReopenAndRemove(t *testing.T) {
	sink := &memSink{}
	b := NewBroker()
	b.Add(open(t, "mem/", sink, nil))
	if err := b.Reopen(context.Background()); err != nil || sink.reopens != 1 {
		t.Fatalf("reopen: %v, %d", err, sink.reopens)
	}
	if d := b.Remove("mem/"); d == nil || b.Enabled() {
		t.Fatal("remove")
	}
	if b.Remove("mem/") != nil {
		t.Fatal("removed twice")
	}
}

// TestRetryOpen: a device whose output cannot open yet fails requests
// until it can.
func TestRetryOpen(t *testing.T) {
	var mu sync.Mutex
	ok := false
	sink := &memSink{}
	factory := func(context.Context, SinkConfig) (Sink, error) {
		mu.Lock()
		defer mu.Unlock()
		if !ok {
			return nil, errors.New("no such directory")
		}
		return sink, nil
	}
	conf := DeviceConfig{Path: "late/", Type: "mem", Salt: testSalt, ChainKey: testKey, Options: map[string]string{"write_timeout": "200ms"}}
	if _, err := OpenDevice(context.Background(), conf, factory); err == nil {
		t.Fatal("opened without Retry")
	}
	conf.Retry = true
	d, err := OpenDevice(context.Background(), conf, factory)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b := NewBroker()
	b.Add(d)
	if err := b.LogRequest(context.Background(), sampleInput()); !errors.Is(err, ErrNotRecorded) {
		t.Fatalf("before the output exists: %v", err)
	}
	mu.Lock()
	ok = true
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for b.LogRequest(context.Background(), sampleInput()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("device never opened")
		}
	}
}

// format returns the JSON object of an entry (without seq and chain).
func (f *formatter) format(typ string, in *Input) []byte {
	return f.appendEntry(nil, typ, in)
}

// setBusy makes d's next batch gather, as if its last batch had held the
// entries of several requests, and sets how long a batch may gather.
func setBusy(d *Device, wait time.Duration) {
	d.mu.Lock()
	d.busy, d.gatherWait = true, wait
	d.mu.Unlock()
}

// busyDevice opens a device on sink behind a broker, busy and gathering
// for an hour, and returns a context that bounds the test's waits.
func busyDevice(t *testing.T, sink *memSink) (*Device, *Broker, context.Context) {
	t.Helper()
	d := open(t, "mem/", sink, map[string]string{"write_timeout": "30s"})
	b := NewBroker()
	b.Add(d)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	setBusy(d, time.Hour)
	return d, b, ctx
}

// queueRequests queues n request entries and returns their tickets.
func queueRequests(t *testing.T, b *Broker, n int) []Ticket {
	t.Helper()
	var tickets []Ticket
	for range n {
		tk, err := b.QueueRequest(sampleInput())
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, tk)
	}
	return tickets
}

// pendingEntries is the number of entries waiting in d's pending batch.
func pendingEntries(d *Device) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending.ends)
}

// TestBusyDeviceGathers: once a batch held the entries of more than one
// request, the next is not written as soon as the device is idle but
// gathers, until it holds gatherEntries entries or gatherWait has
// passed; a device whose last batch held one request's entries writes
// at once. No gathering batch is left behind, whatever holds the writer
// role when its time is up.
func TestBusyDeviceGathers(t *testing.T) {
	for _, bounded := range []bool{false, true} {
		sink := &memSink{bounded: bounded}
		// Gathering for an hour: a request's entries wait for more.
		d, b, ctx := busyDevice(t, sink)
		tickets := queueRequests(t, b, 3)
		first := make(chan error, 1)
		go func() { first <- b.LogResponseAfter(ctx, tickets[0], sampleInput()) }()
		for pendingEntries(d) != 4 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		if n := sink.writeCount(); n != 0 {
			t.Fatalf("bounded=%v: a busy device wrote a batch of 4 entries at once (%d writes)", bounded, n)
		}
		// The eighth entry completes the batch: one write of eight.
		queueRequests(t, b, 3)
		if err := b.LogResponseAfter(ctx, tickets[1], sampleInput()); err != nil {
			t.Fatal(err)
		}
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if n, lines := sink.writeCount(), strings.Count(sink.String(), "\n"); n != 1 || lines != gatherEntries {
			t.Fatalf("bounded=%v: %d writes of %d lines, want one of %d", bounded, n, lines, gatherEntries)
		}

		// A batch gathers no longer than gatherWait: one entry, written
		// by the writer goroutine when its time is up.
		setBusy(d, 5*time.Millisecond)
		if err := b.LogRequest(ctx, sampleInput()); err != nil {
			t.Fatalf("bounded=%v: gathering for 5ms: %v", bounded, err)
		}
		// That batch held one entry: the device is quiet again, and the
		// next entry is written at once, though a gathering would last
		// an hour.
		d.mu.Lock()
		d.gatherWait = time.Hour
		d.mu.Unlock()
		if err := b.LogRequest(ctx, sampleInput()); err != nil {
			t.Fatalf("bounded=%v: quiet device: %v", bounded, err)
		}

		// The time is up while Reopen holds the writer role: releasing
		// it gathers again, and the batch is written.
		setBusy(d, 5*time.Millisecond)
		if err := d.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		held := make(chan error, 1)
		go func() { held <- b.LogRequest(ctx, sampleInput()) }()
		for pendingEntries(d) != 1 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // the gathering's time is up
		d.release()
		if err := <-held; err != nil {
			t.Fatalf("bounded=%v: batch gathering while the role was held: %v", bounded, err)
		}

		// Close writes a gathering batch.
		setBusy(d, time.Hour)
		closing := make(chan error, 1)
		go func() { closing <- b.LogRequest(ctx, sampleInput()) }()
		for pendingEntries(d) != 1 {
			time.Sleep(time.Millisecond)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-closing; err != nil {
			t.Fatalf("bounded=%v: batch gathering at Close: %v", bounded, err)
		}
		rep, err := auditlog.Verify(auditlog.VerifyOptions{Key: testKey}, auditlog.Source{Name: "mem", R: strings.NewReader(sink.String())})
		if err != nil || rep.Problem != nil || rep.Entries != gatherEntries+4 {
			t.Fatalf("bounded=%v: chain: %+v %v", bounded, rep, err)
		}
	}
}

// TestGatherAfterWrite: entries that arrive while a busy device writes
// gather once the write is done, rather than being written at once by
// whoever held the writer role (the request that wrote, or the writer
// goroutine).
func TestGatherAfterWrite(t *testing.T) {
	for _, bounded := range []bool{false, true} {
		sink := &memSink{bounded: bounded, block: make(chan struct{})}
		d, b, ctx := busyDevice(t, sink)
		tickets := queueRequests(t, b, gatherEntries-1)
		// The batch is full: its write starts, and waits on the sink.
		full := make(chan error, 1)
		go func() { full <- b.LogResponseAfter(ctx, tickets[0], sampleInput()) }()
		for pendingEntries(d) != 0 {
			time.Sleep(time.Millisecond)
		}
		late := make(chan error, 1)
		go func() { late <- b.LogRequest(ctx, sampleInput()) }()
		for pendingEntries(d) != 1 {
			time.Sleep(time.Millisecond)
		}
		sink.block <- struct{}{} // the full batch's write
		if err := <-full; err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if n, p := sink.writeCount(), pendingEntries(d); n != 1 || p != 1 {
			close(sink.block) // let Close finish
			t.Fatalf("bounded=%v: after the write, %d writes and %d entries pending; want the late entry gathering", bounded, n, p)
		}
		close(sink.block)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-late; err != nil {
			t.Fatalf("bounded=%v: late entry: %v", bounded, err)
		}
	}
}
