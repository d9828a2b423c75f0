// Command bench measures Vigil's KV v2 reads and writes, token creations,
// and AppRole and JWT logins over HTTP beside a bare net/http JSON handler,
// the database secrets engine's credentials beside the same users
// created and dropped straight over pgx, and KV v2 reads and writes
// through an HA cluster's standby beside the same through its active
// server, at the same concurrency in the same run, and prints req/s, p50,
// p99 and the throughput ratios; with -failover, it then measures how
// long the HA cluster takes to replace its active server:
//
//	go run ./bench [-concurrency 32] [-duration 5s] [-rounds 5] [-warmup 1s]
//	               [-keys 1000] [-value-size 256] [-storage bolt|inmem]
//	               [-scenarios "bare POST,approle login"] [-json]
//	               [-pg-url postgres://user:password@host:port/db] [-pg-conns 4]
//	               [-failover 10]
//
// The scenarios run interleaved: -duration is split into -rounds slices and
// each round runs every scenario for one slice, so that a ratio's two sides
// see the same drift of a shared machine's load.
//
// It starts a real Vigil server in-process on a loopback port with a
// throwaway configuration and data directory, initializes and unseals it
// over HTTP, and never prints the root token or the unseal key. The
// database and HA scenarios need an existing PostgreSQL server (-pg-url,
// or VIGIL_BENCH_PG_URL), on which they create users, a schema and a
// database named after the run, and drop them all before it ends. The
// HA cluster's two servers are processes of their own: this binary run
// again as a server (see ha.go). See README.md for the method and how
// to read the ratios.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigil-secrets/vigil/bench/load"
	"github.com/vigil-secrets/vigil/internal/server"
)

const (
	mount        = "kvbench" // the KV v2 mount
	appRoleMount = "approle" // the AppRole auth method
	appRole      = "bench"   // its role
	jwtRole      = "bench"   // the role of each JWT auth method
	// jwtPool is how many JWTs each JWT login scenario signs before the
	// run; its workers send them in turn, each many times (Vigil, like
	// Vault, does not track jti).
	jwtPool = 64

	dbMount      = "database" // the database secrets engine
	dbConnection = "benchdb"  // its connection
	dbRole       = "bench"    // its role
	// dbTTL is the lease of each credential and the VALID UNTIL of each
	// user, Vigil's and the baseline's.
	dbTTL = time.Hour
	// pgURLEnv names the environment variable that gives -pg-url's
	// default; a URL there is not shown by -help, as a flag default
	// would be.
	pgURLEnv = "VIGIL_BENCH_PG_URL"
	// cleanupTimeout bounds the removal of what a run created on the
	// PostgreSQL server, which happens even after an interrupt.
	cleanupTimeout = time.Minute
)

type config struct {
	concurrency int
	duration    time.Duration
	rounds      int
	warmup      time.Duration
	keys        int
	valueSize   int
	storage     string
	json        bool
	cpuProfile  string
	scenarios   []string
	// pgURL is the admin URL of the database scenarios' PostgreSQL
	// server, and pgConns the connections each side has to it.
	pgURL   string
	pgConns int
	// pgPrefix names what the run creates on that server; "" means a
	// new one (load.NewPGPrefix).
	pgPrefix string
	// failover is how many times to kill the HA cluster's active server
	// (0: no failover measurement).
	failover int
}

func main() {
	if isServerChild(os.Args) {
		os.Exit(serveChild(os.Args[2:]))
	}
	var c config
	flag.IntVar(&c.concurrency, "concurrency", 32, "concurrent requests (workers) in every scenario")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "measured time per scenario, in total over all rounds")
	flag.IntVar(&c.rounds, "rounds", 5, "interleave the scenarios in this many rounds, each measuring every scenario for duration/rounds")
	flag.DurationVar(&c.warmup, "warmup", time.Second, fmt.Sprintf("unmeasured warmup per scenario, before its first round (later rounds warm up for min(warmup, %v))", load.Rewarmup))
	flag.IntVar(&c.keys, "keys", 1000, "keys written before the read scenario, which reads them at random")
	flag.IntVar(&c.valueSize, "value-size", 256, "bytes per secret value")
	flag.StringVar(&c.storage, "storage", "bolt", "Vigil storage backend: bolt (fsynced) or inmem")
	flag.BoolVar(&c.json, "json", false, "print the results as JSON")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (load generator and server) to this file")
	scenarios := flag.String("scenarios", strings.Join(load.Scenarios, ","), "comma-separated scenarios to run; they run in the order of this default whatever the order given")
	flag.StringVar(&c.pgURL, "pg-url", "", "admin URL of an existing PostgreSQL server for the database scenarios, postgres://user:password@host:port/database (default $"+pgURLEnv+")")
	flag.IntVar(&c.pgConns, "pg-conns", 4, "connections to PostgreSQL of Vigil's database connection (max_open_connections) and of the baseline's pool")
	flag.IntVar(&c.failover, "failover", 0, "after the scenarios, kill -9 the HA cluster's active server this many times and report how long each failover took (needs -pg-url)")
	flag.Parse()
	if c.pgURL == "" {
		c.pgURL = os.Getenv(pgURLEnv)
	}
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "scenarios" })
	var (
		skipped []string
		err     error
	)
	c.scenarios, skipped, err = chooseScenarios(*scenarios, explicit, c.pgURL != "")
	switch {
	case err != nil:
		fail(err)
	case flag.NArg() > 0:
		fail(fmt.Errorf("unexpected argument %q", flag.Arg(0)))
	case c.storage != "bolt" && c.storage != "inmem":
		fail(fmt.Errorf("-storage must be bolt or inmem, not %q", c.storage))
	case c.concurrency < 1 || c.duration <= 0 || c.warmup < 0 || c.keys < 1 || c.valueSize < 1 || c.pgConns < 1 || c.failover < 0:
		fail(errors.New("-concurrency, -duration, -keys, -value-size and -pg-conns must be positive, -warmup and -failover not negative"))
	case c.failover > 0 && c.pgURL == "":
		fail(fmt.Errorf("-failover needs a PostgreSQL server: give -pg-url postgres://user:password@host:port/database or set %s", pgURLEnv))
	}
	if len(skipped) > 0 {
		fmt.Fprintf(os.Stderr, "bench: not measuring %s: no PostgreSQL server (give -pg-url or set %s)\n", andList(skipped), pgURLEnv)
	}
	// Before the setup, which takes seconds.
	if err := load.CheckRounds(c.duration, c.rounds); err != nil {
		fail(fmt.Errorf("invalid -duration/-rounds: %w", err))
	}
	if c.pgURL != "" && (needsPG(c.scenarios) || c.failover > 0) {
		if _, err := load.ParsePGURL(c.pgURL); err != nil {
			fail(fmt.Errorf("-pg-url (or %s): %w", pgURLEnv, err))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
	}
	rep, err := run(ctx, c)
	if c.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil && len(rep.Results) == 0 {
		fail(err)
	}
	// A run that measured and then failed (to clean up, say) shows what
	// it measured, then the failure.
	var werr error
	if c.json {
		werr = rep.WriteJSON(os.Stdout)
	} else {
		werr = rep.WriteText(os.Stdout)
	}
	if err = errors.Join(err, werr); err != nil {
		fail(err)
	}
	for _, r := range rep.Results {
		if r.Errors > 0 {
			os.Exit(1) // the figures of a run with errors mean nothing
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// needsPG reports whether a database or HA scenario is among names.
func needsPG(names []string) bool {
	return slices.ContainsFunc(names, isPGScenario)
}

// isPGScenario reports whether the scenario called name needs a
// PostgreSQL server: a database or an HA scenario.
func isPGScenario(name string) bool {
	return slices.Contains(load.DatabaseScenarios, name) || slices.Contains(load.HAScenarios, name)
}

// needsHA reports whether c needs the HA cluster: for an HA scenario, or
// for the failover measurement.
func needsHA(c config) bool {
	return c.failover > 0 || slices.ContainsFunc(c.scenarios, func(n string) bool { return slices.Contains(load.HAScenarios, n) })
}

// chooseScenarios parses -scenarios. Without a PostgreSQL server the
// database and HA scenarios cannot run: when the list was given
// explicitly and names one, that is an error; otherwise (the default
// list) they are left out and returned as skipped, for the caller to say
// so.
func chooseScenarios(list string, explicit, havePG bool) (names, skipped []string, err error) {
	names, err = load.ParseScenarios(list)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid -scenarios: %w", err)
	}
	if havePG {
		return names, nil, nil
	}
	var db []string
	names = slices.DeleteFunc(names, func(n string) bool {
		if isPGScenario(n) {
			db = append(db, n)
			return true
		}
		return false
	})
	if len(db) == 0 {
		return names, nil, nil
	}
	if explicit {
		verb := "needs"
		if len(db) > 1 {
			verb = "need"
		}
		return nil, nil, fmt.Errorf("%s %s a PostgreSQL server: give -pg-url postgres://user:password@host:port/database or set %s",
			andList(db), verb, pgURLEnv)
	}
	return names, db, nil
}

// andList joins names as "a", "a and b", "a, b and c".
func andList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func run(ctx context.Context, c config) (rep load.Report, err error) {
	if c.pgPrefix == "" {
		c.pgPrefix = load.NewPGPrefix() // one for the database and the HA scenarios
	}
	rep = load.Report{
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		Concurrency: c.concurrency, Storage: c.storage,
		Duration: c.duration, Rounds: c.rounds, Warmup: c.warmup, Keys: c.keys, ValueSize: c.valueSize,
	}

	// The baseline: a bare net/http server answering a KV v2-shaped body.
	bareLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	bareBody := load.KVReadBody(c.valueSize)
	rep.BareBodyBytes = len(bareBody)
	bare := &http.Server{Handler: load.BareHandler(bareBody), ReadHeaderTimeout: 10 * time.Second}
	go bare.Serve(bareLn)
	defer bare.Close()

	// Vigil, in-process.
	base, stopVigil, err := startVigil(ctx, c.storage, false)
	if err != nil {
		return rep, err
	}
	defer func() {
		if serr := stopVigil(); serr != nil && err == nil {
			err = serr
		}
	}()
	v := &load.Vigil{Base: base, Client: load.NewClient(c.concurrency)}
	defer v.Client.CloseIdleConnections()
	if err := v.InitUnseal(ctx); err != nil {
		return rep, err
	}
	suite := load.Suite{
		BareURL: "http://" + bareLn.Addr().String(), VigilURL: base, Mount: mount,
		Header: v.Header(), Keys: c.keys, ValueSize: c.valueSize, AppRoleMount: appRoleMount,
	}
	// Only the setup the chosen scenarios need.
	chosen := func(names ...string) bool {
		return slices.ContainsFunc(names, func(n string) bool { return slices.Contains(c.scenarios, n) })
	}
	if chosen(load.KV2Read, load.KV2Write) {
		if err := v.MountKV2(ctx, mount, 10*time.Second); err != nil {
			return rep, err
		}
	}
	if chosen(load.KV2Read) {
		if err := v.Preload(ctx, mount, c.keys, c.valueSize, c.concurrency); err != nil {
			return rep, fmt.Errorf("preload %d keys: %w", c.keys, err)
		}
		sample, err := v.Read(ctx, "/v1/"+mount+"/data/k0")
		if err != nil {
			return rep, err
		}
		rep.KVReadBodyBytes = len(sample)
	}
	if chosen(load.KV2ReadAudited) {
		// A second server, the same but for a file audit device.
		abase, stopAudited, err := startVigil(ctx, c.storage, true)
		if err != nil {
			return rep, err
		}
		defer func() {
			if serr := stopAudited(); serr != nil && err == nil {
				err = serr
			}
		}()
		av := &load.Vigil{Base: abase, Client: v.Client}
		if err := av.InitUnseal(ctx); err != nil {
			return rep, err
		}
		if err := av.MountKV2(ctx, mount, 10*time.Second); err != nil {
			return rep, err
		}
		if err := av.Preload(ctx, mount, c.keys, c.valueSize, c.concurrency); err != nil {
			return rep, fmt.Errorf("preload %d keys on the audited server: %w", c.keys, err)
		}
		suite.AuditedURL, suite.AuditedHeader = abase, av.Header()
	}
	if chosen(load.AppRoleLogin) {
		if err := v.EnableAuth(ctx, appRoleMount, "approle"); err != nil {
			return rep, err
		}
		if suite.AppRoleLogin, err = v.SetupAppRole(ctx, appRoleMount, appRole); err != nil {
			return rep, err
		}
	}
	// One JWT auth method per algorithm, each with its own key.
	for _, j := range []struct {
		name, mount string
		alg         jose.SignatureAlgorithm
		logins      *load.JWTLogins
	}{
		{load.JWTLoginES256, "jwt-es256", jose.ES256, &suite.JWTES256},
		{load.JWTLoginRS256, "jwt-rs256", jose.RS256, &suite.JWTRS256},
	} {
		if !chosen(j.name) {
			continue
		}
		if *j.logins, err = setupJWT(ctx, v, j.mount, j.alg, jwtLifetime(c)); err != nil {
			return rep, fmt.Errorf("%s: %w", j.name, err)
		}
	}
	undoDB, err := setupDatabase(ctx, c, v, &suite, &rep)
	// After the measurement (and after an interrupt), before the server
	// stops.
	defer func() {
		if uerr := undoDB(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	if err != nil {
		return rep, err
	}
	hc, err := setupHA(ctx, c, v.Client, &suite, &rep)
	if hc != nil {
		// After the measurement (and after an interrupt).
		defer func() {
			if cerr := hc.close(ctx); cerr != nil && err == nil {
				err = cerr
			}
		}()
	}
	if err != nil {
		return rep, err
	}
	if err := suite.CheckTokens(ctx, v, c.scenarios); err != nil {
		return rep, fmt.Errorf("check the token scenarios: %w", err)
	}
	if err := suite.CheckDatabase(ctx, c.scenarios); err != nil {
		return rep, fmt.Errorf("check the database scenarios: %w", err)
	}

	rr, err := load.RunRounds(ctx, load.Select(suite.Targets(), c.scenarios), load.Options{
		Concurrency: c.concurrency, Duration: c.duration, Warmup: c.warmup,
	}, c.rounds)
	if err != nil {
		return rep, err
	}
	rep.Results = rr.Results
	rep.Ratios = load.RoundRatios(load.ComputeRatios(rr.Results, load.Ratios), rr.PerRound)
	if c.failover > 0 {
		// Last: it kills servers.
		f, err := hc.failover(ctx, c.failover, haReadPath)
		rep.Failover = &f
		if err != nil {
			return rep, hc.withOutput(fmt.Errorf("failover: %w", err))
		}
	}
	return rep, nil
}

// haReadPath is the KV read that tells that a server of the HA cluster
// serves.
const haReadPath = "/v1/" + mount + "/data/k0"

// setupHA starts the HA cluster if c needs it (see needsHA), on a new
// database on the PostgreSQL server of c.pgURL, named after the run's
// prefix, mounts KV v2 and writes the keys, through the active server,
// and checks that a read through the standby gets one; it sets the HA
// scenarios' fields of suite and the cluster's of rep. The cluster it
// returns must be closed; nil is returned on failure (after startHA
// cleaned up) and when c does not need it.
func setupHA(ctx context.Context, c config, client *http.Client, suite *load.Suite, rep *load.Report) (*haCluster, error) {
	if !needsHA(c) {
		return nil, nil
	}
	pg, err := load.ParsePGURL(c.pgURL)
	if err != nil {
		return nil, fmt.Errorf("-pg-url: %w", err)
	}
	hc, err := startHA(ctx, pg, c.pgPrefix+"_ha", client)
	if err != nil {
		return nil, fmt.Errorf("HA cluster: %w", err)
	}
	rep.HAPostgreSQL, rep.HAServers = pg.Version(), len(hc.nodes)
	active, err := hc.roles(ctx)
	if err != nil {
		return hc, fmt.Errorf("HA cluster: %w", hc.withOutput(err))
	}
	standby := hc.standby(active)
	av, sv := hc.at(active), hc.at(standby)
	// All the keys for the read scenarios; k0 alone (haReadPath) for the
	// rest.
	keys := 1
	if slices.Contains(c.scenarios, load.KV2ReadActive) || slices.Contains(c.scenarios, load.KV2ReadStandby) {
		keys = c.keys
	}
	err = hc.watch(ctx, hc.nodes, func(ctx context.Context) error {
		if err := av.MountKV2(ctx, mount, 10*time.Second); err != nil {
			return err
		}
		if err := av.Preload(ctx, mount, keys, c.valueSize, c.concurrency); err != nil {
			return fmt.Errorf("preload %d keys: %w", keys, err)
		}
		if _, err := sv.Read(ctx, haReadPath); err != nil {
			return fmt.Errorf("read through the standby: %w", err)
		}
		return nil
	})
	if err != nil {
		return hc, fmt.Errorf("HA cluster: %w", hc.withOutput(err))
	}
	suite.ActiveURL, suite.StandbyURL, suite.HAHeader = active.base, standby.base, av.Header()
	return hc, nil
}

// setupDatabase prepares the database scenarios among c.scenarios, if
// any: the run's schema on the PostgreSQL server of c.pgURL, Vigil's
// database engine for DBCreds and the baseline's pool for PGCreateDrop,
// each with c.pgConns connections. The function it returns undoes all of
// it and must be called in any case, even when setupDatabase fails.
func setupDatabase(ctx context.Context, c config, v *load.Vigil, suite *load.Suite, rep *load.Report) (undo func() error, err error) {
	undo = func() error { return nil }
	if !slices.ContainsFunc(c.scenarios, func(n string) bool { return slices.Contains(load.DatabaseScenarios, n) }) {
		return undo, nil
	}
	pg, err := load.ParsePGURL(c.pgURL)
	if err != nil {
		return undo, fmt.Errorf("-pg-url: %w", err)
	}
	prefix := c.pgPrefix
	if prefix == "" {
		prefix = load.NewPGPrefix()
	}
	undo = func() error {
		if suite.PGCreateDrop != nil {
			suite.PGCreateDrop.Close()
		}
		return cleanupPG(ctx, v, pg, suite.DBCreds != nil)
	}
	if err := pg.Prepare(ctx, prefix); err != nil {
		return undo, err
	}
	rep.PostgreSQL, rep.PGConns = pg.Version(), c.pgConns
	if slices.Contains(c.scenarios, load.DBCreds) {
		err := v.SetupDatabase(ctx, load.DatabaseSetup{
			Mount: dbMount, Connection: dbConnection, Role: dbRole,
			ConnectionURL: pg.ConnectionURL(), Username: pg.Username(), Password: pg.Password(),
			MaxOpenConnections: c.pgConns, UsernameTemplate: pg.UsernameTemplate(),
			Creation: pg.CreationStatements(), TTL: dbTTL,
		})
		if err != nil {
			return undo, fmt.Errorf("%s: %w", load.DBCreds, err)
		}
		suite.DBCreds = &load.DBCredsScenario{Vigil: v, Mount: dbMount, Role: dbRole, PG: pg, TTL: dbTTL}
	}
	if slices.Contains(c.scenarios, load.PGCreateDrop) {
		b, err := pg.NewBaseline(ctx, c.pgConns, dbTTL)
		if err != nil {
			return undo, fmt.Errorf("%s: %w", load.PGCreateDrop, err)
		}
		suite.PGCreateDrop = b
	}
	return undo, nil
}

// cleanupPG removes what a run created on the PostgreSQL server, on a
// context of its own so that it happens after an interrupt too: the
// leases Vigil still holds (when vigilDB, the database engine was set up)
// are revoked, then any user of the run still there is dropped with the
// run's schema. A user left behind is an error: every operation of the
// database scenarios drops the user it created, so one left means an
// operation failed half-way, or a revocation did not drop its user.
func cleanupPG(ctx context.Context, v *load.Vigil, pg *load.PG, vigilDB bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var errs []error
	if vigilDB {
		if err := v.RevokePrefix(ctx, dbMount+"/creds/"+dbRole); err != nil {
			errs = append(errs, fmt.Errorf("revoke the run's database credentials: %w", err))
		}
	}
	dropped, err := pg.Cleanup(ctx)
	if dropped > 0 {
		errs = append(errs, fmt.Errorf("%d database users whose names begin with %q were left behind by the run (now dropped)", dropped, pg.Prefix()+"-"))
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("clean up %v: %w", pg, err))
	}
	return errors.Join(errs...)
}

// setupJWT enables the JWT auth method at mount, configures it with the
// public key of a new issuer that signs with alg and creates its role, then
// signs jwtPool JWTs valid for lifetime.
func setupJWT(ctx context.Context, v *load.Vigil, mount string, alg jose.SignatureAlgorithm, lifetime time.Duration) (load.JWTLogins, error) {
	is, err := load.NewJWTIssuer(alg)
	if err != nil {
		return load.JWTLogins{}, err
	}
	if err := v.EnableAuth(ctx, mount, "jwt"); err != nil {
		return load.JWTLogins{}, err
	}
	if err := v.SetupJWT(ctx, mount, jwtRole, is); err != nil {
		return load.JWTLogins{}, err
	}
	bodies, err := is.LoginBodies(jwtRole, jwtPool, time.Now(), lifetime)
	if err != nil {
		return load.JWTLogins{}, err
	}
	return load.JWTLogins{Mount: mount, Bodies: bodies}, nil
}

// jwtLifetime is how long the JWTs stay valid: an hour beyond the longest
// the rest of the run can take (every chosen scenario's measured time and
// warmups), so that none expires during it.
func jwtLifetime(c config) time.Duration {
	perScenario := c.duration + c.warmup + time.Duration(c.rounds)*min(c.warmup, load.Rewarmup)
	return time.Hour + time.Duration(len(c.scenarios))*perScenario
}

// startVigil runs server.Run with a throwaway configuration and data
// directory and waits until it answers HTTP. stop cancels it, waits for it
// to return and removes the directory; on failure, the server's output is
// part of the error.
func startVigil(ctx context.Context, storage string, audited bool) (base string, stop func() error, err error) {
	dir, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		return "", nil, err
	}
	addr, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	path := filepath.Join(dir, "vigil.hcl")
	if err := os.WriteFile(path, []byte(vigilConfig(storage, dir, addr, audited)), 0o600); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}

	out := &syncBuffer{}
	sctx, cancel := context.WithCancel(ctx)
	exited := make(chan struct{})
	var code int // written before exited is closed
	go func() {
		defer close(exited)
		code = server.Run(sctx, []string{"-config", path}, out, out, nil)
	}()
	var once sync.Once
	stop = func() error {
		once.Do(func() {
			cancel()
			<-exited
			os.RemoveAll(dir)
		})
		if code != 0 {
			return fmt.Errorf("vigil server exited with %d:\n%s", code, out.String())
		}
		return nil
	}

	// Wait until it answers, or until it gives up.
	base = "http://" + addr
	wctx, wcancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-exited:
			wcancel()
		case <-wctx.Done():
		}
	}()
	err = (&load.Vigil{Base: base}).WaitHealthy(wctx, 30*time.Second)
	wcancel()
	if err != nil {
		select {
		case <-exited:
			err = fmt.Errorf("vigil server exited with %d before serving", code)
		default:
		}
		stop()
		return "", nil, fmt.Errorf("%w\nserver output:\n%s", err, out.String())
	}
	return base, stop, nil
}

// vigilConfig is the server's configuration: storage (bolt in dir, or
// inmem), one plain-HTTP listener on addr, errors only in the log, and a
// login rate limit so high that it never caps the login scenarios (the
// default, 50 logins/s per client address with a burst of 100, would
// answer most of their requests 429). With audited, a file audit device
// writes to dir/audit.log (not fsynced per line: the default).
func vigilConfig(storage, dir, addr string, audited bool) string {
	stanza := `storage "inmem" {}`
	if storage == "bolt" {
		stanza = fmt.Sprintf("storage \"bolt\" {\n  path = %q\n}", filepath.Join(dir, "vigil.db"))
	}
	if audited {
		stanza += fmt.Sprintf("\n\naudit \"file\" {\n  file_path = %q\n}", filepath.Join(dir, "audit.log"))
	}
	return fmt.Sprintf(`%s

listener "tcp" {
  address     = %q
  tls_disable = true
}

log_level = "error"

login_rate_limit = 1000000
login_burst      = 1000000
`, stanza, addr)
}

// freePort returns a loopback address that was free an instant ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
