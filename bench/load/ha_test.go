package load

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const recoveryKey = "RECOVERY-KEY-do-not-print"

// fakeHA is one server of an HA cluster with an auto seal, as the
// benchmark sees it: sys/init with recovery shares, sys/health as
// active or standby, and KV reads that fail for a while after it became
// active.
type fakeHA struct {
	mu     sync.Mutex
	inits  int
	health int // sys/health's status; 501 before sys/init
	// healthPolls counts sys/health requests; after becomeActiveAt of
	// them (when not 0) the server becomes active.
	healthPolls, becomeActiveAt int
	// failReads is how many KV reads fail (503) once it is active.
	failReads, reads int
}

func (f *fakeHA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.URL.Path == "/v1/sys/health":
		f.healthPolls++
		if f.becomeActiveAt > 0 && f.healthPolls >= f.becomeActiveAt {
			f.health = HealthActive
		}
		reply(f.health, map[string]bool{"standby": f.health == HealthStandby})
	case r.URL.Path == "/v1/sys/init" && r.Method == http.MethodPut:
		var in struct {
			SecretShares      int `json:"secret_shares"`
			RecoveryShares    int `json:"recovery_shares"`
			RecoveryThreshold int `json:"recovery_threshold"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		if in.RecoveryShares != 1 || in.RecoveryThreshold != 1 || in.SecretShares != 0 {
			reply(http.StatusBadRequest, map[string][]string{"errors": {"want one recovery share"}})
			return
		}
		f.inits++
		f.health = HealthActive
		reply(http.StatusOK, map[string]any{"recovery_keys": []string{recoveryKey}, "root_token": secretToken})
	case r.URL.Path == "/v1/kvbench/data/k0" && r.Header.Get("X-Vault-Token") == secretToken:
		f.reads++
		if f.health != HealthActive || f.reads <= f.failReads {
			reply(http.StatusServiceUnavailable, map[string][]string{"errors": {"node is not active"}})
			return
		}
		reply(http.StatusOK, map[string]any{"data": map[string]any{"data": map[string]string{"value": "x"}}})
	default:
		reply(http.StatusForbidden, map[string][]string{"errors": {"permission denied"}})
	}
}

func (f *fakeHA) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func newFakeHA(t *testing.T, health int) (*fakeHA, *httptest.Server) {
	t.Helper()
	f := &fakeHA{health: health}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// Initialization with a recovery share, the roles of the servers, and
// the wait for a takeover.
func TestVigilHA(t *testing.T) {
	ctx := t.Context()
	f1, s1 := newFakeHA(t, http.StatusNotImplemented)
	f2, s2 := newFakeHA(t, HealthStandby)
	v := &Vigil{Base: s1.URL, Client: NewClient(4)}
	if status, err := v.Health(ctx); err != nil || status != http.StatusNotImplemented {
		t.Fatalf("Health before init: %d, %v", status, err)
	}
	if err := v.InitRecovery(ctx); err != nil {
		t.Fatal(err)
	}
	f1.set(func() {
		if f1.inits != 1 {
			t.Errorf("%d inits", f1.inits)
		}
	})
	if v.Header().Get("X-Vault-Token") != secretToken {
		t.Fatal("the root token is not kept")
	}
	v2 := v.At(s2.URL)
	if v2.Base != s2.URL || v2.Header().Get("X-Vault-Token") != secretToken || v2.Client != v.Client {
		t.Errorf("At: %v", v2)
	}
	if s := v2.String(); strings.Contains(s, secretToken) {
		t.Errorf("String() shows the token: %q", s)
	}

	servers := []*Vigil{v, v2}
	if i, err := AwaitRoles(ctx, servers, 5*time.Second); err != nil || i != 0 {
		t.Errorf("AwaitRoles = %d, %v; want 0", i, err)
	}
	// Two active servers, or none, are not the roles it waits for.
	f2.set(func() { f2.health = HealthActive })
	if i, err := AwaitRoles(ctx, servers, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "are both active") {
		t.Errorf("two active: AwaitRoles = %d, %v", i, err)
	}
	f1.set(func() { f1.health = HealthStandby })
	f2.set(func() { f2.health = HealthStandby })
	if i, err := AwaitRoles(ctx, servers, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no server is active") {
		t.Errorf("none active: AwaitRoles = %d, %v", i, err)
	}
	if err := v2.AwaitHealth(ctx, HealthStandby, time.Second); err != nil {
		t.Error(err)
	}
	if err := v2.AwaitHealth(ctx, HealthActive, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "status 429") {
		t.Errorf("AwaitHealth of a standby for active: %v", err)
	}

	// A takeover: the standby answers 429 to 3 polls, then 200, then
	// fails 2 reads; AwaitActive returns when the read succeeded.
	f2.set(func() { f2.healthPolls, f2.becomeActiveAt, f2.failReads, f2.reads = 0, 4, 2, 0 })
	start := time.Now()
	done, err := v2.AwaitActive(ctx, "/v1/kvbench/data/k0", 5*time.Millisecond, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f2.set(func() {
		if f2.healthPolls != 4 || f2.reads != 3 {
			t.Errorf("%d sys/health polls and %d reads, want 4 and 3 (after it said it is active, only reads)", f2.healthPolls, f2.reads)
		}
	})
	if !done.After(start) || done.After(time.Now()) {
		t.Errorf("done at %v, not between %v and now", done, start)
	}
	// A server that never takes over: the error says what it last saw.
	f1.set(func() { f1.health = HealthStandby })
	if _, err := v.AwaitActive(ctx, "/v1/kvbench/data/k0", 5*time.Millisecond, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "status 429") {
		t.Errorf("AwaitActive of a standby: %v", err)
	}
}

// An answer to sys/init that InitRecovery cannot use fails it without
// showing the recovery key or the token.
func TestInitRecoveryErrors(t *testing.T) {
	for _, body := range []string{
		`{"recovery_keys":["` + recoveryKey + `"]}`,
		`{"recovery_keys":["` + recoveryKey + `"],"root_token":"` + secretToken + `"`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
		v := &Vigil{Base: srv.URL}
		err := v.InitRecovery(t.Context())
		srv.Close()
		if err == nil || strings.Contains(err.Error(), recoveryKey) || strings.Contains(err.Error(), secretToken) {
			t.Errorf("InitRecovery with %d bytes of answer: %v", len(body), err)
		}
		if v.Header().Get("X-Vault-Token") != "" {
			t.Error("a token kept from a failed init")
		}
	}
}

func TestFailover(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var out []time.Duration
		for _, x := range n {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	for _, c := range []struct {
		kills       []time.Duration
		median, max time.Duration
	}{
		{nil, 0, 0},
		{ms(300), 300 * time.Millisecond, 300 * time.Millisecond},
		{ms(300, 100, 200), 200 * time.Millisecond, 300 * time.Millisecond},
		{ms(400, 100, 200, 300), 250 * time.Millisecond, 400 * time.Millisecond},
	} {
		f := Failover{Kills: c.kills}
		if f.Median() != c.median || f.Max() != c.max {
			t.Errorf("%v: median %v, max %v; want %v, %v", c.kills, f.Median(), f.Max(), c.median, c.max)
		}
		if len(c.kills) > 1 && c.kills[0] != c.max {
			t.Errorf("Median or Max sorted the kills: %v", c.kills)
		}
	}
}

// The HA scenarios' report: the cluster, their ratios and the failover
// lines, in text and JSON.
func TestReportHA(t *testing.T) {
	results := []Result{
		{Name: KV2ReadActive, Requests: 1000, RPS: 10000}, {Name: KV2ReadStandby, Requests: 600, RPS: 6000},
		{Name: KV2WriteActive, Requests: 400, RPS: 4000}, {Name: KV2WriteStandby, Requests: 300, RPS: 3000},
	}
	perRound := [][]Result{
		{{Name: KV2ReadActive, RPS: 10000}, {Name: KV2ReadStandby, RPS: 5000}, {Name: KV2WriteActive, RPS: 4000}, {Name: KV2WriteStandby, RPS: 3200}},
		{{Name: KV2ReadActive, RPS: 10000}, {Name: KV2ReadStandby, RPS: 7000}, {Name: KV2WriteActive, RPS: 4000}, {Name: KV2WriteStandby, RPS: 2800}},
	}
	f := Failover{Kills: []time.Duration{210 * time.Millisecond, 190400 * time.Microsecond, 350 * time.Millisecond}, Frozen: 2150 * time.Millisecond}
	rep := Report{Duration: 5 * time.Second, Rounds: 2, Warmup: time.Second, Results: results,
		HAPostgreSQL: "15.18", HAServers: 2, Failover: &f,
		Ratios: RoundRatios(ComputeRatios(results, Ratios), perRound)}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	s := text.String()
	for _, want := range []string{
		"\nha: 2 vigil server processes (1 active, 1 standby) on postgresql 15.18, in a database of their own\n",
		"\nkv2 read standby / kv2 read active = 0.60 (for information)\nkv2 write standby / kv2 write active = 0.75 (for information)\n",
		"\nper round, min–max of 2: kv2 read standby / kv2 read active 0.50–0.70, kv2 write standby / kv2 write active 0.70–0.80\n",
		"\n\nfailover after kill -9 of the active server, 3 times: 210ms 190ms 350ms\nfailover median = 210ms, max = 350ms\n" +
			"failover frozen = 2150ms (SIGSTOP of the active server, for information)\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "database engine") {
		t.Errorf("report of the HA scenarios speaks of the database ones:\n%s", s)
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		HAPostgreSQL string `json:"ha_postgresql"`
		HAServers    int    `json:"ha_servers"`
		Failover     struct {
			KillsMS  []float64 `json:"kills_ms"`
			MedianMS float64   `json:"median_ms"`
			MaxMS    float64   `json:"max_ms"`
			FrozenMS float64   `json:"frozen_ms"`
		} `json:"failover"`
		Ratios []Ratio `json:"ratios"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.HAPostgreSQL != "15.18" || back.HAServers != 2 ||
		len(back.Failover.KillsMS) != 3 || back.Failover.KillsMS[1] != 190.4 || back.Failover.MedianMS != 210 ||
		back.Failover.MaxMS != 350 || back.Failover.FrozenMS != 2150 ||
		len(back.Ratios) != 2 || back.Ratios[0].Num != KV2ReadStandby || back.Ratios[0].Den != KV2ReadActive {
		t.Errorf("JSON report (%v):\n%s", err, js.String())
	}

	// Without the cluster, no word of it.
	text.Reset()
	if err := (Report{Results: []Result{{Name: BareGET, RPS: 1}}}).WriteText(&text); err != nil || strings.Contains(text.String(), "ha:") || strings.Contains(text.String(), "failover") {
		t.Errorf("report without it (%v):\n%s", err, text.String())
	}
	js.Reset()
	if err := (Report{}).WriteJSON(&js); err != nil || strings.Contains(js.String(), "failover") || strings.Contains(js.String(), "ha_") {
		t.Errorf("JSON report without it (%v):\n%s", err, js.String())
	}
}
