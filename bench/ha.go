package main

// The HA cluster of the HA scenarios and of -failover: two Vigil servers,
// each a process of its own, sharing one database created for the run on
// the PostgreSQL server of -pg-url, with a static seal (so that they
// unseal themselves) and HA enabled. One is active; the other is a
// standby that forwards its clients to it.
//
// The processes are the benchmark's own binary run again (os.Executable)
// with serverArg as its first argument, which makes it call server.Run
// instead of benchmarking: no separate build is needed, the server is the
// code the benchmark was built from, and kill -9 hits a real process
// whose database sessions the kernel closes, as it would in production.
// Each reads its standard input, a pipe from the benchmark, and stops
// when it closes: when the benchmark stops it, or dies.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-secrets/vigil/bench/load"
	"github.com/vigil-secrets/vigil/internal/server"
)

const (
	// serverArg, as the first argument, makes the benchmark's binary a
	// Vigil server: server.Run with the arguments after it. It is how
	// the benchmark starts the HA cluster's servers, not for users;
	// -help does not show it.
	serverArg = "__vigil-bench-server"
	// haServers is the size of the HA cluster.
	haServers = 2
	// haStartTimeout bounds a server's start, its unseal and the
	// election of an active server.
	haStartTimeout = time.Minute
	// takeoverTimeout bounds one failover.
	takeoverTimeout = 30 * time.Second
	// failoverPoll is how often the failover measurement asks the server
	// that is to take over.
	failoverPoll = 10 * time.Millisecond
	// failoverPause bounds the random pause before each kill (and the
	// freeze), so that it falls anywhere in the standby's lock polls
	// (every 200 ms), as a crash would: killed as soon as the restarted
	// standby reported in, just after its first poll, every failover took
	// the whole poll interval.
	failoverPause = time.Second
	// haStopTimeout is how long a server has to stop when asked before
	// it is killed.
	haStopTimeout = 30 * time.Second
	// outputTail is how much of each server's output an error shows.
	outputTail = 4000
	// sealKeyEnv holds the HA servers' seal key, in hex.
	sealKeyEnv = "VIGIL_BENCH_SEAL_KEY"
)

// isServerChild reports whether args (os.Args) ask for a Vigil server
// rather than the benchmark.
func isServerChild(args []string) bool { return len(args) > 1 && args[1] == serverArg }

// serveChild runs a Vigil server of the HA cluster with args (those
// after serverArg) until its standard input closes or it is interrupted,
// and returns its exit code.
func serveChild(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return server.Run(ctx, args, os.Stdout, os.Stderr, nil)
}

// haNode is one server of the HA cluster, across its restarts.
type haNode struct {
	name string // for errors: "vigil server 1"
	base string // its URL, also its api_addr
	args []string
	env  []string    // the process's environment, with the database's URL
	out  *syncBuffer // the output of all its processes

	cmd    *exec.Cmd      // the current process; nil before start
	stdin  io.WriteCloser // closing it stops the process
	exited chan struct{}  // closed once cmd has exited
}

// start starts a new process of the server.
func (n *haNode) start() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start %s: find the benchmark's binary: %w", n.name, err)
	}
	cmd := exec.Command(exe, append([]string{serverArg}, n.args...)...)
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = n.out, n.out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	n.cmd, n.stdin, n.exited = cmd, stdin, exited
	return nil
}

// running reports whether the server's current process is running.
func (n *haNode) running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// kill kills the process (kill -9) and waits for it to exit.
func (n *haNode) kill() error {
	if !n.running() {
		return nil
	}
	if err := n.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", n.name, err)
	}
	<-n.exited
	return nil
}

// stop asks the process to stop, by closing its standard input, and
// waits for it to exit, for haStopTimeout at most before it kills it. A
// server that exits with an error (or has exited with one) fails stop.
func (n *haNode) stop() error {
	if n.cmd == nil {
		return nil
	}
	if n.running() {
		thaw(n.cmd.Process) // a frozen process could not stop
		n.stdin.Close()
		select {
		case <-n.exited:
		case <-time.After(haStopTimeout):
			n.kill()
			return fmt.Errorf("%s did not stop within %v: killed", n.name, haStopTimeout)
		}
	}
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("%s exited with %d", n.name, code)
	}
	return nil
}

// haCluster is the HA cluster: its servers, their directory (their
// configurations) and their database.
type haCluster struct {
	nodes []*haNode
	dir   string
	pg    *load.PG
	// database is the servers' database on pg; created reports that the
	// run created it, and so must drop it.
	database string
	created  bool
	// vigil holds the cluster's root token.
	vigil *load.Vigil
}

// startHA creates database on pg, starts the cluster's servers on it,
// initializes it through the first one (with one recovery key share,
// which is forgotten: the servers unseal themselves) and waits until one
// server is active and the others standbys. Its requests go through
// client. On failure, it leaves nothing behind; otherwise close does
// that.
func startHA(ctx context.Context, pg *load.PG, database string, client *http.Client) (h *haCluster, err error) {
	h = &haCluster{pg: pg, database: database}
	defer func() {
		if err != nil {
			err = h.withOutput(err)
			if cerr := h.close(ctx); cerr != nil {
				err = errors.Join(err, cerr)
			}
			h = nil
		}
	}()
	if h.dir, err = os.MkdirTemp("", "vigil-bench-ha-"); err != nil {
		return h, err
	}
	if err := pg.CreateDatabase(ctx, database); err != nil {
		return h, err
	}
	h.created = true
	// The URL, which holds the admin password, and the seal key go to
	// the servers in their environment: nothing secret is written to a
	// file.
	key := make([]byte, 32)
	rand.Read(key)
	env := append(os.Environ(),
		server.PGConnectionURLEnv+"="+pg.DatabaseURL(database),
		sealKeyEnv+"="+hex.EncodeToString(key))
	clear(key)
	servers := make([]*load.Vigil, haServers)
	for i := range haServers {
		addr, err := freePort()
		if err != nil {
			return h, err
		}
		cfg := filepath.Join(h.dir, fmt.Sprintf("vigil%d.hcl", i+1))
		if err := os.WriteFile(cfg, []byte(haConfig(addr)), 0o600); err != nil {
			return h, err
		}
		n := &haNode{
			name: fmt.Sprintf("vigil server %d", i+1), base: "http://" + addr,
			args: []string{"-config", cfg}, env: env, out: &syncBuffer{},
		}
		h.nodes = append(h.nodes, n)
		if err := n.start(); err != nil {
			return h, err
		}
		servers[i] = &load.Vigil{Base: n.base, Client: client}
	}
	err = h.watch(ctx, h.nodes, func(ctx context.Context) error {
		for _, v := range servers {
			if err := v.WaitHealthy(ctx, haStartTimeout); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return h, err
	}
	h.vigil = servers[0]
	if err := h.watch(ctx, h.nodes, h.vigil.InitRecovery); err != nil {
		return h, fmt.Errorf("initialize the HA cluster: %w", err)
	}
	if _, err := h.roles(ctx); err != nil {
		return h, err
	}
	return h, nil
}

// haConfig is an HA server's configuration: PostgreSQL storage with HA,
// one plain-HTTP listener on addr, which is also its api_addr, a static
// seal, and errors only in the log. The storage's URL and the seal's key
// come from the environment (server.PGConnectionURLEnv, sealKeyEnv).
func haConfig(addr string) string {
	return fmt.Sprintf(`storage "postgresql" {
  ha_enabled = true
}

listener "tcp" {
  address     = %q
  tls_disable = true
}

api_addr = %q

seal "static" {
  current_key_id = "bench"
  current_key    = %q
}

log_level = "error"
`, addr, "http://"+addr, "env://"+sealKeyEnv)
}

// at is a client of n with the cluster's token.
func (h *haCluster) at(n *haNode) *load.Vigil { return h.vigil.At(n.base) }

// roles waits until one server is active and the others standbys, and
// returns the active one.
func (h *haCluster) roles(ctx context.Context) (*haNode, error) {
	servers := make([]*load.Vigil, len(h.nodes))
	for i, n := range h.nodes {
		servers[i] = h.at(n)
	}
	var active int
	err := h.watch(ctx, h.nodes, func(ctx context.Context) (err error) {
		active, err = load.AwaitRoles(ctx, servers, haStartTimeout)
		return err
	})
	if err != nil {
		return nil, err
	}
	return h.nodes[active], nil
}

// standby returns a server other than active.
func (h *haCluster) standby(active *haNode) *haNode {
	for _, n := range h.nodes {
		if n != active {
			return n
		}
	}
	return nil
}

// watch runs fn with a context that ends if one of nodes' processes
// exits, and says so in the error.
func (h *haCluster) watch(ctx context.Context, nodes []*haNode, fn func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, n := range nodes {
		if n.cmd == nil {
			continue
		}
		exited := n.exited // not n's: a restart replaces it
		go func() {
			select {
			case <-exited:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	err := fn(ctx)
	if err == nil {
		return nil
	}
	for _, n := range nodes {
		if n.cmd != nil && !n.running() {
			return fmt.Errorf("%s exited (%v): %w", n.name, n.cmd.ProcessState, err)
		}
	}
	return err
}

// failover measures failovers: kills times, after a random pause (see
// failoverPause), it kills the active server (kill -9) and measures the
// time until the other answers sys/health as the active server and
// serves a GET of readPath, then restarts the killed one and waits until
// it is a standby. Then, once, it freezes the active server (SIGSTOP)
// and measures the same, resumes it and waits until it is a standby
// again.
func (h *haCluster) failover(ctx context.Context, kills int, readPath string) (load.Failover, error) {
	var f load.Failover
	for i := range kills {
		victim, err := h.roles(ctx)
		if err != nil {
			return f, fmt.Errorf("failover %d: %w", i+1, err)
		}
		survivor := h.standby(victim)
		if err := pause(ctx, mrand.N(failoverPause)); err != nil {
			return f, err
		}
		start := time.Now()
		if err := victim.kill(); err != nil {
			return f, err
		}
		took, err := h.takeover(ctx, survivor, start, readPath)
		if err != nil {
			return f, fmt.Errorf("failover %d, after kill -9 of %s: %w", i+1, victim.name, err)
		}
		f.Kills = append(f.Kills, took)
		if err := victim.start(); err != nil {
			return f, err
		}
		err = h.watch(ctx, []*haNode{victim}, func(ctx context.Context) error {
			return h.at(victim).AwaitHealth(ctx, load.HealthStandby, haStartTimeout)
		})
		if err != nil {
			return f, fmt.Errorf("failover %d, %s restarted: %w", i+1, victim.name, err)
		}
	}

	victim, err := h.roles(ctx)
	if err != nil {
		return f, fmt.Errorf("freeze: %w", err)
	}
	if err := pause(ctx, mrand.N(failoverPause)); err != nil {
		return f, err
	}
	start := time.Now()
	if err := freeze(victim.cmd.Process); err != nil {
		return f, fmt.Errorf("freeze %s: %w", victim.name, err)
	}
	took, err := h.takeover(ctx, h.standby(victim), start, readPath)
	if terr := thaw(victim.cmd.Process); terr != nil {
		return f, errors.Join(err, fmt.Errorf("resume %s: %w", victim.name, terr))
	}
	if err != nil {
		return f, fmt.Errorf("after SIGSTOP of %s: %w", victim.name, err)
	}
	f.Frozen = took
	err = h.watch(ctx, []*haNode{victim}, func(ctx context.Context) error {
		return h.at(victim).AwaitHealth(ctx, load.HealthStandby, haStartTimeout)
	})
	if err != nil {
		return f, fmt.Errorf("%s resumed after SIGSTOP: %w", victim.name, err)
	}
	return f, nil
}

// pause waits for d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// takeover waits until n answers as the active server and serves a GET
// of readPath, and returns the time from start until it did.
func (h *haCluster) takeover(ctx context.Context, n *haNode, start time.Time, readPath string) (time.Duration, error) {
	var done time.Time
	err := h.watch(ctx, []*haNode{n}, func(ctx context.Context) (err error) {
		done, err = h.at(n).AwaitActive(ctx, readPath, failoverPoll, takeoverTimeout)
		return err
	})
	if err != nil {
		return 0, err
	}
	return done.Sub(start), nil
}

// withOutput adds the end of each server's output to err.
func (h *haCluster) withOutput(err error) error {
	var b strings.Builder
	for _, n := range h.nodes {
		out := n.out.String()
		if len(out) > outputTail {
			out = "…" + out[len(out)-outputTail:]
		}
		if out = strings.TrimSpace(out); out != "" {
			fmt.Fprintf(&b, "\n%s output:\n%s", n.name, out)
		}
	}
	if b.Len() == 0 {
		return err
	}
	return fmt.Errorf("%w%s", err, b.String())
}

// close stops the servers, drops their database if the run created it
// and removes their directory. It does all of it on a context of its
// own, so that it happens after an interrupt too.
func (h *haCluster) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	// Together: each takes a second or two.
	stopErrs := make([]error, len(h.nodes))
	var wg sync.WaitGroup
	for i, n := range h.nodes {
		wg.Go(func() { stopErrs[i] = n.stop() })
	}
	wg.Wait()
	var errs []error
	if err := errors.Join(stopErrs...); err != nil {
		errs = append(errs, h.withOutput(err))
	}
	if h.created {
		if err := h.pg.DropDatabase(ctx, h.database); err != nil {
			errs = append(errs, err)
		}
	}
	if h.dir != "" {
		if err := os.RemoveAll(h.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
