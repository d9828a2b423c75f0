package load

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestBareHandler(t *testing.T) {
	body := KVReadBody(256)
	srv := httptest.NewServer(BareHandler(body))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(got, body) {
		t.Errorf("GET: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), got)
	}

	resp, err = http.Post(srv.URL, "application/json", strings.NewReader(`{"data":{"value":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("POST: status %d, want 204", resp.StatusCode)
	}

	req, _ := http.NewRequest(http.MethodDelete, srv.URL, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: status %d, want 405", resp.StatusCode)
	}
}

func TestKVBodies(t *testing.T) {
	var read struct {
		Data struct {
			Data     map[string]string
			Metadata struct{ Version int }
		}
		MountType string `json:"mount_type"`
	}
	b := KVReadBody(100)
	if err := json.Unmarshal(b, &read); err != nil {
		t.Fatal(err)
	}
	if len(read.Data.Data["value"]) != 100 || read.Data.Metadata.Version != 1 || read.MountType != "kv" {
		t.Errorf("KVReadBody: %s", b)
	}
	// Shaped like Vigil's: the envelope costs a few hundred bytes.
	if n := len(b); n < 100+200 || n > 100+600 {
		t.Errorf("KVReadBody(100) is %d bytes", n)
	}

	write := writeBody(20)
	seen := map[string]bool{}
	for w := range 40 {
		for i := range 2000 {
			b := write(w, i)
			var in struct{ Data map[string]string }
			if err := json.Unmarshal(b, &in); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			v := in.Data["value"]
			if len(v) != 20 || seen[v] {
				t.Fatalf("value %q: wrong size or repeated", v)
			}
			seen[v] = true
		}
	}
	if v := writeBody(1)(35, 1000); len(v) != len(`{"data":{"value":"x"}}`) {
		t.Errorf("short value: %s", v)
	}
}

// setupJWTs enables, configures and signs the logins of a JWT auth method
// per algorithm on v, at jwt-es256 and jwt-rs256.
func setupJWTs(t *testing.T, v *Vigil) (es256, rs256 JWTLogins) {
	t.Helper()
	setup := func(alg jose.SignatureAlgorithm, mount string) JWTLogins {
		is, err := NewJWTIssuer(alg)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.EnableAuth(t.Context(), mount, "jwt"); err != nil {
			t.Fatal(err)
		}
		if err := v.SetupJWT(t.Context(), mount, "bench", is); err != nil {
			t.Fatal(err)
		}
		bodies, err := is.LoginBodies("bench", 8, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return JWTLogins{Mount: mount, Bodies: bodies}
	}
	return setup(jose.ES256, "jwt-es256"), setup(jose.RS256, "jwt-rs256")
}

// TestBareRequestsMirrorKV: the bare handler gets the requests of the
// KV v2 scenarios (path, headers, body), with a stand-in token of the
// same length instead of the real one.
func TestBareRequestsMirrorKV(t *testing.T) {
	const token = "hvs.not-a-real-token-0123456789"
	s := Suite{BareURL: "http://bare", VigilURL: "http://vigil", Mount: "secret", Keys: 1, ValueSize: 16,
		Header: http.Header{"X-Vault-Token": {token}, "Content-Type": {"application/json"}}}
	byName := map[string]Target{}
	for _, tg := range s.Targets() {
		byName[tg.Name] = tg
	}
	for _, pair := range [][2]string{{BareGET, KV2Read}, {BarePOST, KV2Write}} {
		bare, kv := byName[pair[0]], byName[pair[1]]
		if bare.Method != kv.Method {
			t.Errorf("%s is a %s, %s a %s", pair[0], bare.Method, pair[1], kv.Method)
		}
		bp, ok1 := strings.CutPrefix(bare.URL(3, 7), s.BareURL)
		kp, ok2 := strings.CutPrefix(kv.URL(3, 7), s.VigilURL)
		if !ok1 || !ok2 || bp != kp {
			t.Errorf("%s asks for %q, %s for %q", pair[0], bare.URL(3, 7), pair[1], kv.URL(3, 7))
		}
		if kv.Body != nil && !bytes.Equal(bare.Body(3, 7), kv.Body(3, 7)) {
			t.Errorf("%s sends another body than %s", pair[0], pair[1])
		}
		if len(bare.Header) != len(kv.Header) || bare.Header.Get("Content-Type") != kv.Header.Get("Content-Type") {
			t.Errorf("%s sends header %v, %s %v", pair[0], bare.Header, pair[1], kv.Header)
		}
		got := bare.Header.Get("X-Vault-Token")
		if len(got) != len(token) || strings.Contains(got, "hvs.") {
			t.Errorf("%s sends token %q, want a stand-in of %d bytes", pair[0], got, len(token))
		}
	}
	if s.Header.Get("X-Vault-Token") != token {
		t.Error("the stand-in changed the suite's own header")
	}
}

func TestSuiteRunAll(t *testing.T) {
	bare := httptest.NewServer(BareHandler(KVReadBody(32)))
	defer bare.Close()
	pg, db := newPG(t)
	fake, v := startFakeDBVigil(t, pg)
	ctx := t.Context()
	if err := v.SetupDatabase(ctx, dbSetup(pg)); err != nil {
		t.Fatal(err)
	}
	baseline, err := pg.NewBaseline(ctx, 3, dbTestTTL)
	if err != nil {
		t.Fatal(err)
	}
	defer baseline.Close()
	if err := v.MountKV2(ctx, "kvbench", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := v.Preload(ctx, "kvbench", 20, 32, 4); err != nil {
		t.Fatal(err)
	}
	if err := v.EnableAuth(ctx, "approle", "approle"); err != nil {
		t.Fatal(err)
	}
	login, err := v.SetupAppRole(ctx, "approle", "bench")
	if err != nil {
		t.Fatal(err)
	}

	es256, rs256 := setupJWTs(t, v)

	s := Suite{BareURL: bare.URL, VigilURL: v.Base, Mount: "kvbench", Header: v.Header(), Keys: 20, ValueSize: 32,
		AppRoleMount: "approle", AppRoleLogin: login, JWTES256: es256, JWTRS256: rs256,
		AuditedURL: v.Base, AuditedHeader: v.Header(),
		DBCreds:      &DBCredsScenario{Vigil: v, Mount: "database", Role: "bench", PG: pg, TTL: dbTestTTL},
		PGCreateDrop: baseline,
		ActiveURL:    v.Base, StandbyURL: v.Base, HAHeader: v.Header()}
	if err := s.CheckTokens(ctx, v, Scenarios); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckDatabase(ctx, Scenarios); err != nil {
		t.Fatal(err)
	}
	results, err := RunAll(ctx, s.Targets(), Options{Concurrency: 4, Duration: 100 * time.Millisecond, Warmup: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range results {
		names = append(names, r.Name)
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	if want := []string{BareGET, KV2Read, KV2ReadAudited, BarePOST, KV2Write, TokenCreate, BatchCreate, AppRoleLogin, JWTLoginES256, JWTLoginRS256, PGCreateDrop, DBCreds,
		KV2ReadActive, KV2ReadStandby, KV2WriteActive, KV2WriteStandby}; strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("scenarios %q, want %q", names, want)
	}
	if strings.Join(names, ",") != strings.Join(Scenarios, ",") {
		t.Errorf("scenarios %q, but Scenarios is %q", names, Scenarios)
	}
	fake.mu.Lock()
	n, tokens, loginTokens := len(fake.kv), fake.tokens, fake.loginTokens
	// The HA write scenarios' keys, each its own.
	haKeys := map[byte]int{}
	for k := range fake.kv {
		if k[0] == 'a' || k[0] == 's' {
			haKeys[k[0]]++
		}
	}
	issued, held := fake.db.n, len(fake.db.leases)
	jwtLogins := map[string][2]int{}
	for mount, j := range fake.jwt {
		jwtLogins[mount] = [2]int{j.logins, len(j.jtis)}
	}
	fake.mu.Unlock()
	if n <= 20 {
		t.Errorf("the write scenario wrote no new keys (%d keys)", n)
	}
	if haKeys['a'] == 0 || haKeys['s'] == 0 {
		t.Errorf("the HA write scenarios wrote %d keys through the active and %d through the standby", haKeys['a'], haKeys['s'])
	}
	var created int64
	for _, r := range results[5:10] { // the token scenarios
		created += r.Requests
	}
	if int64(tokens) < created {
		t.Errorf("%d tokens made for %d token requests", tokens, created)
	}
	if loginTokens != 0 {
		t.Errorf("%d logins sent a token", loginTokens)
	}
	// Each JWT scenario logged in to its own mount, with all its JWTs in
	// turn.
	for i, mount := range []string{"jwt-es256", "jwt-rs256"} {
		if got := jwtLogins[mount]; int64(got[0]) < results[8+i].Requests || got[1] != 8 {
			t.Errorf("%s: %d logins with %d JWTs, for %d requests and 8 JWTs", mount, got[0], got[1], results[8+i].Requests)
		}
	}
	// Every credential issued was revoked, and no user of either
	// database scenario is left.
	if int64(issued) < results[11].Requests || held != 0 {
		t.Errorf("%d credentials for %d operations, %d leases held", issued, results[11].Requests, held)
	}
	if got := runUsers(t, db, pg.Prefix()+"-"); got != "0" {
		t.Errorf("%s users left", got)
	}
}

func TestCheckTokens(t *testing.T) {
	fake := newFakeVigil()
	vsrv := httptest.NewServer(fake)
	defer vsrv.Close()
	v := &Vigil{Base: vsrv.URL}
	ctx := t.Context()
	if err := v.InitUnseal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.EnableAuth(ctx, "approle", "approle"); err != nil {
		t.Fatal(err)
	}
	login, err := v.SetupAppRole(ctx, "approle", "bench")
	if err != nil {
		t.Fatal(err)
	}
	es256, rs256 := setupJWTs(t, v)
	s := Suite{VigilURL: vsrv.URL, Header: v.Header(), AppRoleMount: "approle", AppRoleLogin: login, JWTES256: es256, JWTRS256: rs256}
	tokens := func() int { return fake.count(func() int { return fake.tokens }) }

	if err := s.CheckTokens(ctx, v, Scenarios); err != nil {
		t.Fatal(err)
	}
	if n := tokens(); n != 5 {
		t.Errorf("%d tokens made, want one per token scenario", n)
	}
	if err := s.CheckTokens(ctx, v, []string{BareGET, KV2Read, BarePOST, KV2Write}); err != nil || tokens() != 5 {
		t.Errorf("no token scenario: %v, %d tokens", err, tokens())
	}

	// A second short of the hour is an hour (the server counts a batch
	// token's TTL from its creation second); a minute is not.
	fake.mu.Lock()
	fake.tokenTTL = 3599
	fake.mu.Unlock()
	if err := s.CheckTokens(ctx, v, Scenarios); err != nil {
		t.Errorf("TTL 3599s: %v", err)
	}
	fake.mu.Lock()
	fake.tokenTTL = 60
	fake.mu.Unlock()
	err = s.CheckTokens(ctx, v, Scenarios)
	if err == nil || !strings.HasPrefix(err.Error(), `token create: got a "service" token with a TTL of 60s`) {
		t.Errorf("TTL 60s: err = %v", err)
	}

	// The wrong kind of token, or a refused login, fails the check
	// with the scenario's name, and without the credentials.
	fake.mu.Lock()
	fake.tokenTTL, fake.batchAsSvc = 0, true
	fake.mu.Unlock()
	err = s.CheckTokens(ctx, v, []string{TokenCreate, BatchCreate})
	if err == nil || !strings.HasPrefix(err.Error(), `batch create: got a "service" token`) {
		t.Errorf("service token for a batch request: err = %v", err)
	}
	fake.mu.Lock()
	fake.batchAsSvc, fake.loginStatus = false, http.StatusTooManyRequests
	fake.mu.Unlock()
	err = s.CheckTokens(ctx, v, []string{BatchCreate, AppRoleLogin})
	if err == nil || !strings.HasPrefix(err.Error(), "approle login: POST /v1/auth/approle/login: status 429: ") {
		t.Errorf("rate-limited login: err = %v", err)
	}
	if err != nil && (strings.Contains(err.Error(), secretID) || strings.Contains(err.Error(), secretToken)) {
		t.Errorf("error leaks a secret: %v", err)
	}
	err = s.CheckTokens(ctx, v, []string{JWTLoginRS256})
	if err == nil || !strings.HasPrefix(err.Error(), "jwt login RS256: POST /v1/auth/jwt-rs256/login: status 429: ") {
		t.Errorf("rate-limited JWT login: err = %v", err)
	}

	// A JWT the mount does not accept (here, the other mount's), or none
	// at all, fails the check of its scenario only.
	fake.mu.Lock()
	fake.loginStatus = 0
	fake.mu.Unlock()
	crossed := s
	crossed.JWTRS256.Bodies = s.JWTES256.Bodies
	if err := crossed.CheckTokens(ctx, v, []string{JWTLoginES256}); err != nil {
		t.Errorf("ES256 alone: %v", err)
	}
	err = crossed.CheckTokens(ctx, v, Scenarios)
	if err == nil || !strings.HasPrefix(err.Error(), "jwt login RS256: POST /v1/auth/jwt-rs256/login: status 400: ") {
		t.Errorf("JWT of another key: err = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), strings.Split(string(s.JWTES256.Bodies[0]), ".")[2][:20]) {
		t.Errorf("error leaks the JWT: %v", err)
	}
	crossed.JWTRS256.Bodies = nil
	if err := crossed.CheckTokens(ctx, v, Scenarios); err == nil || err.Error() != "jwt login RS256: no JWT to log in with" {
		t.Errorf("no JWT: err = %v", err)
	}
}

func TestParseScenarios(t *testing.T) {
	for _, c := range []struct {
		list string
		want []string // nil: an error
	}{
		{strings.Join(Scenarios, ","), Scenarios},
		{"bare POST,approle login", []string{BarePOST, AppRoleLogin}},
		{" approle login , BARE post ", []string{BarePOST, AppRoleLogin}}, // the suite's order
		{"kv2 read,kv2 read", []string{KV2Read}},
		{"token create,batch create,bare POST", []string{BarePOST, TokenCreate, BatchCreate}},
		{"JWT LOGIN rs256, jwt login ES256,approle login", []string{AppRoleLogin, JWTLoginES256, JWTLoginRS256}},
		{"db creds, PG Create/Drop", []string{PGCreateDrop, DBCreds}},
		{"db creds", []string{DBCreds}},
		{"kv2 write standby,KV2 READ ACTIVE, kv2 read", []string{KV2Read, KV2ReadActive, KV2WriteStandby}},
		{"", nil},
		{"bare GET,", nil},
		{"bare GET,,kv2 read", nil},
		{"approle", nil},
		{"jwt login", nil},
		{"jwt login ES384", nil},
		{"db creds,pg create", nil},
		{"pg create drop", nil},
		{"bare  GET", nil},
		{"kv2 read primary", nil},
	} {
		got, err := ParseScenarios(c.list)
		if c.want == nil {
			if err == nil || !strings.Contains(err.Error(), strings.Join(Scenarios, ",")) {
				t.Errorf("ParseScenarios(%q) = %q, %v; want an error listing the scenarios", c.list, got, err)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("ParseScenarios(%q) = %q, %v; want %q", c.list, got, err, c.want)
		}
	}
}

func TestSelect(t *testing.T) {
	all := Suite{}.Targets()
	var names []string
	for _, tg := range Select(all, []string{JWTLoginRS256, AppRoleLogin, BareGET, "nonesuch"}) {
		names = append(names, tg.Name)
	}
	if got := strings.Join(names, ","); got != BareGET+","+AppRoleLogin+","+JWTLoginRS256 {
		t.Errorf("Select: %s", got)
	}
	if got := Select(all, nil); len(got) != 0 {
		t.Errorf("Select of nothing: %d targets", len(got))
	}
}

func TestReport(t *testing.T) {
	results := []Result{
		{Name: BareGET, Requests: 1000, RPS: 10000, P50: 800 * time.Microsecond, P99: 3 * time.Millisecond},
		{Name: KV2Read, Requests: 900, RPS: 9000, P50: 900 * time.Microsecond, P99: 4 * time.Millisecond},
		{Name: BarePOST, Requests: 1000, RPS: 8000, P50: time.Millisecond, P99: 3 * time.Millisecond},
		{Name: KV2Write, Requests: 400, Errors: 2, RPS: 4000, P50: 5 * time.Millisecond, P99: 20 * time.Millisecond, FirstError: "POST /v1/kvbench/data/k1-2: status 500"},
		{Name: TokenCreate, Requests: 200, RPS: 2000, P50: 6 * time.Millisecond, P99: 30 * time.Millisecond},
		{Name: BatchCreate, Requests: 600, RPS: 6000, P50: 2 * time.Millisecond, P99: 8 * time.Millisecond},
		{Name: AppRoleLogin, Requests: 240, RPS: 2400, P50: 5 * time.Millisecond, P99: 25 * time.Millisecond, Elapsed: 100 * time.Millisecond, CPU: 60 * time.Millisecond},
		{Name: JWTLoginES256, Requests: 160, RPS: 1600, P50: 7 * time.Millisecond, P99: 30 * time.Millisecond, Elapsed: 100 * time.Millisecond, CPU: 160 * time.Millisecond},
		{Name: JWTLoginRS256, Requests: 200, RPS: 2000, P50: 6 * time.Millisecond, P99: 28 * time.Millisecond},
	}
	ratios := ComputeRatios(results, Ratios)
	if len(ratios) != 8 {
		t.Fatalf("ratios: %+v", ratios)
	}
	for i, want := range []Ratio{
		{Num: KV2Read, Den: BareGET, Value: 0.9, Goal: 0.85, Met: true},
		{Num: KV2Write, Den: BareGET, Value: 0.4, Goal: 0.5, Met: false},
		{Num: KV2Write, Den: BarePOST, Value: 0.5},
		{Num: TokenCreate, Den: BarePOST, Value: 0.25},
		{Num: BatchCreate, Den: BarePOST, Value: 0.75},
		{Num: AppRoleLogin, Den: BarePOST, Value: 0.3, Goal: 0.25, Met: true},
		{Num: JWTLoginES256, Den: BarePOST, Value: 0.2},
		{Num: JWTLoginRS256, Den: BarePOST, Value: 0.25},
	} {
		got := ratios[i]
		if got.Num != want.Num || got.Den != want.Den || got.Goal != want.Goal || got.Met != want.Met || got.Value < want.Value-1e-9 || got.Value > want.Value+1e-9 {
			t.Errorf("ratio %d = %+v, want %+v", i, got, want)
		}
	}
	if r := ComputeRatios(results[:1], Ratios); len(r) != 0 {
		t.Errorf("ratios of missing scenarios: %+v", r)
	}

	ratios[0].PerRound = []float64{0.95, 0.8, 0.9}
	ratios[1].PerRound = []float64{0.4, 0.35, 0.45}
	ratios[7].PerRound = []float64{0.22, 0.27, 0.25}
	rep := Report{GoVersion: "go1.26", GOOS: "linux", GOARCH: "amd64", GOMAXPROCS: 2, NumCPU: 2, Concurrency: 32, Storage: "bolt",
		Duration: 5 * time.Second, Rounds: 3, Warmup: time.Second, Keys: 1000, ValueSize: 256, BareBodyBytes: 585, KVReadBodyBytes: 583, Results: results, Ratios: ratios}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"GOMAXPROCS=2", "concurrency=32", "storage=bolt", "go1.26", "5s per scenario in 3 rounds after 1s warmup\n",
		"kv2 read / bare GET = 0.90 (goal ≥ 0.85: met)",
		"kv2 write / bare GET = 0.40 (goal ≥ 0.50: NOT met)",
		"kv2 write / bare POST = 0.50 (for information)\n" +
			"token create / bare POST = 0.25 (for information)\n" +
			"batch create / bare POST = 0.75 (for information)\n" +
			"approle login / bare POST = 0.30 (goal ≥ 0.25: met)\n" +
			"jwt login ES256 / bare POST = 0.20 (for information)\n" +
			"jwt login RS256 / bare POST = 0.25 (for information)\n",
		"  scenario  req/s     p50      p99  requests  errors  cpu/req  busy\n",
		"    approle login   2400  5.00ms  25.00ms       240       0    250µs   30%\n" +
			"  jwt login ES256   1600  7.00ms  30.00ms       160       0   1.00ms   80%\n" +
			"  jwt login RS256   2000  6.00ms  28.00ms       200       0        -     -\n",
		"\nper round, min–max of 3: kv2 read / bare GET 0.80–0.95, kv2 write / bare GET 0.35–0.45, jwt login RS256 / bare POST 0.22–0.27\n",
		"800µs", "20.00ms", "response bodies: bare GET 585 B, kv2 read 583 B", "first: POST /v1/kvbench/data/k1-2: status 500",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}

	// Whoever greps a ratio line finds only it.
	for _, q := range ratios {
		line := q.Num + " / " + q.Den + " = "
		if n := strings.Count(text.String(), line); n != 1 {
			t.Errorf("%d lines match %q:\n%s", n, line, text.String())
		}
	}

	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		GOMAXPROCS  int     `json:"gomaxprocs"`
		Storage     string  `json:"storage"`
		DurationSec float64 `json:"duration_s"`
		Rounds      int     `json:"rounds"`
		Results     []struct {
			Name  string   `json:"name"`
			RPS   float64  `json:"rps"`
			P99ms float64  `json:"p99_ms"`
			CPUus *float64 `json:"cpu_per_request_us"`
			Busy  *float64 `json:"busy"`
		} `json:"results"`
		Ratios []Ratio `json:"ratios"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("%v\n%s", err, js.String())
	}
	if back.GOMAXPROCS != 2 || back.Storage != "bolt" || back.DurationSec != 5 || back.Rounds != 3 || len(back.Results) != 9 ||
		back.Results[3].Name != KV2Write || back.Results[3].P99ms != 20 || len(back.Ratios) != 8 || !back.Ratios[0].Met ||
		len(back.Ratios[0].PerRound) != 3 || back.Ratios[0].PerRound[1] != 0.8 ||
		back.Results[6].Name != AppRoleLogin || back.Results[6].RPS != 2400 ||
		back.Ratios[5].Num != AppRoleLogin || back.Ratios[5].Den != BarePOST || back.Ratios[5].Goal != 0.25 || !back.Ratios[5].Met ||
		back.Results[8].Name != JWTLoginRS256 || back.Results[8].RPS != 2000 ||
		back.Ratios[7].Num != JWTLoginRS256 || back.Ratios[7].Den != BarePOST || back.Ratios[7].Goal != 0 || back.Ratios[7].Met ||
		len(back.Ratios[7].PerRound) != 3 ||
		back.Results[6].CPUus == nil || *back.Results[6].CPUus != 250 || back.Results[6].Busy == nil || *back.Results[6].Busy != 0.3 ||
		back.Results[8].CPUus != nil || back.Results[8].Busy != nil {
		t.Errorf("JSON report:\n%s", js.String())
	}
}

func TestReportOneRound(t *testing.T) {
	results := []Result{{Name: BareGET, RPS: 100}, {Name: KV2Read, RPS: 90}}
	ratios := RoundRatios(ComputeRatios(results, Ratios), [][]Result{results})
	rep := Report{Duration: 5 * time.Second, Rounds: 1, Warmup: time.Second, Results: results, Ratios: ratios}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if s := text.String(); !strings.Contains(s, "5s per scenario in 1 round after 1s warmup") || strings.Contains(s, "per round") {
		t.Errorf("one-round report:\n%s", s)
	}
}

// A run of some scenarios prints the ratios of those, and only those.
func TestReportSubset(t *testing.T) {
	results := []Result{{Name: BarePOST, RPS: 8000}, {Name: AppRoleLogin, RPS: 1600}}
	perRound := [][]Result{
		{{Name: BarePOST, RPS: 9000}, {Name: AppRoleLogin, RPS: 900}},
		{{Name: BarePOST, RPS: 7000}, {Name: AppRoleLogin, RPS: 2100}},
	}
	ratios := RoundRatios(ComputeRatios(results, Ratios), perRound)
	rep := Report{Duration: 5 * time.Second, Rounds: 2, Warmup: time.Second, BareBodyBytes: 585, Results: results, Ratios: ratios}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	s := text.String()
	if !strings.Contains(s, "\napprole login / bare POST = 0.20 (goal ≥ 0.25: NOT met)\n") ||
		!strings.Contains(s, "\nper round, min–max of 2: approle login / bare POST 0.10–0.30\n") {
		t.Errorf("report lacks the approle login ratio:\n%s", s)
	}
	if n := strings.Count(s, " = "); n != 1 {
		t.Errorf("%d ratio lines, want 1:\n%s", n, s)
	}
	if strings.Contains(s, "response bodies") {
		t.Errorf("report of a run without kv2 read gives its body size:\n%s", s)
	}
}

// The database scenarios' report: their ratio, and the server and
// connections they ran with.
func TestReportDatabase(t *testing.T) {
	results := []Result{{Name: PGCreateDrop, Requests: 3000, RPS: 300, P50: 90 * time.Millisecond}, {Name: DBCreds, Requests: 2400, RPS: 240}}
	perRound := [][]Result{
		{{Name: PGCreateDrop, RPS: 320}, {Name: DBCreds, RPS: 240}},
		{{Name: PGCreateDrop, RPS: 280}, {Name: DBCreds, RPS: 238}},
	}
	rep := Report{Duration: 10 * time.Second, Rounds: 2, Warmup: time.Second, Results: results,
		PostgreSQL: "15.18", PGConns: 4, Ratios: RoundRatios(ComputeRatios(results, Ratios), perRound)}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	s := text.String()
	for _, want := range []string{
		"\npostgresql 15.18, 4 connections for Vigil's database engine and as many for the baseline\n",
		"  pg create/drop    300  90.00ms",
		"\ndb creds / pg create/drop = 0.80 (for information)\n",
		"\nper round, min–max of 2: db creds / pg create/drop 0.75–0.85\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "db creds / pg create/drop = "); n != 1 {
		t.Errorf("%d ratio lines:\n%s", n, s)
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		PostgreSQL string  `json:"postgresql"`
		PGConns    int     `json:"pg_conns"`
		Ratios     []Ratio `json:"ratios"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.PostgreSQL != "15.18" || back.PGConns != 4 ||
		len(back.Ratios) != 1 || back.Ratios[0].Num != DBCreds || back.Ratios[0].Den != PGCreateDrop {
		t.Errorf("JSON report (%v):\n%s", err, js.String())
	}

	// Without the database scenarios, no word of PostgreSQL.
	text.Reset()
	if err := (Report{Results: []Result{{Name: BareGET, RPS: 1}}}).WriteText(&text); err != nil || strings.Contains(text.String(), "postgresql") {
		t.Errorf("report without them (%v):\n%s", err, text.String())
	}
}

func TestRoundRatios(t *testing.T) {
	round := func(bare, read, write float64) []Result {
		return []Result{{Name: BareGET, RPS: bare}, {Name: KV2Read, RPS: read}, {Name: KV2Write, RPS: write}}
	}
	perRound := [][]Result{
		round(100, 80, 40),
		round(200, 180, 60),
		round(0, 50, 10), // no baseline throughput: left out
		round(100, 90, 30),
	}
	overall := ComputeRatios(round(400, 350, 130), Ratios)
	overall[0].PerRound = []float64{9} // the caller's, to be replaced
	got := RoundRatios(overall, perRound)
	if len(got) != 2 {
		t.Fatalf("%+v", got)
	}
	want := [][]float64{{0.8, 0.9, 0.9}, {0.4, 0.3, 0.3}}
	for i, q := range got {
		if q.Value != overall[i].Value || q.Num != overall[i].Num || len(q.PerRound) != len(want[i]) {
			t.Fatalf("ratio %d: %+v", i, q)
		}
		for r, v := range q.PerRound {
			if v < want[i][r]-1e-9 || v > want[i][r]+1e-9 {
				t.Errorf("%s / %s, round %d: %v, want %v", q.Num, q.Den, r, v, want[i][r])
			}
		}
	}
	if len(overall[0].PerRound) != 1 {
		t.Errorf("RoundRatios changed its argument: %+v", overall[0])
	}
}
