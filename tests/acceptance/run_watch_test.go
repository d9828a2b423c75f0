//go:build !e2e

package acceptance

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// `vigil run -watch` told of changes by the server's change events. The
// poll is set to ten minutes, so that within the test's waits only an
// event can explain a restart.

// runToken creates a token whose one policy has the given rules.
func runToken(t *testing.T, root *vault.Client, name, rules string) string {
	t.Helper()
	if err := root.Sys().PutPolicy(name, rules); err != nil {
		t.Fatal(err)
	}
	sec, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Auth.ClientToken
}

// noExit fails if vigil run has ended.
func (r *vigilRun) noExit(t *testing.T) {
	t.Helper()
	select {
	case code := <-r.done:
		t.Fatalf("vigil run exited: %d\n%s", code, r.stderr)
	default:
	}
}

// restartScript logs each start and SIGTERM of the child to $1.
const restartScript = `echo "start $K" >> "$1"; trap 'echo "term $K" >> "$1"; exit 0' TERM; while :; do sleep 0.05; done`

// TestRunWatchEvents: a token allowed to subscribe (read on
// sys/events/subscribe/*) and to read its secret: a new KV version
// restarts the child within seconds though the poll is every ten minutes;
// a write of another key does not. Nothing vigil prints, at debug level,
// holds a value or the token.
func TestRunWatchEvents(t *testing.T) {
	t.Parallel()
	_, root, env := runServer(t)
	env["VIGIL_TOKEN"] = runToken(t, root, "app-events", `
path "sys/events/subscribe/*" { capabilities = ["read"] }
path "secret/data/app"        { capabilities = ["read"] }
path "secret/data/other"      { capabilities = ["read"] }`)
	runPut(t, root, "app", map[string]any{"key": "event-1"})
	log := filepath.Join(t.TempDir(), "log")
	r := startVigilRun(t.Context(), env, "-watch", "-poll=10m", "-log-level=debug", "-min-backoff=10ms", "-max-backoff=100ms",
		"-env", "K=secret/app#key", "--", "sh", "-c", restartScript, "sh", log)
	waitFile(t, log, "start event-1\n")
	// The subscription is open once vigil says so; a change made before
	// would be caught by the read that follows it, but this test is about
	// the event.
	waitFor(t, 30*time.Second, func() error {
		if !strings.Contains(r.stderr.String(), "subscribed to change events") {
			return fmt.Errorf("not subscribed yet\n%s", r.stderr)
		}
		return nil
	})

	runPut(t, root, "other", map[string]any{"key": "not-used"})
	began := time.Now()
	runPut(t, root, "app", map[string]any{"key": "event-2"})
	waitFile(t, log, "start event-1\nterm event-1\nstart event-2\n")
	if took := time.Since(began); took > time.Minute {
		t.Errorf("the restart took %s: the event was not heard", took)
	}
	runPut(t, root, "app", map[string]any{"key": "event-3"})
	waitFile(t, log, "start event-1\nterm event-1\nstart event-2\nterm event-2\nstart event-3\n")
	r.noExit(t)
	if got := readFile(t, log); strings.Count(got, "start") != 3 {
		t.Errorf("the child log is %q: the write of another key restarted the child", got)
	}
	r.noValues(t, "event-1", "event-2", "event-3", "not-used", env["VIGIL_TOKEN"])
}

// TestRunWatchWithoutEventsPolicy: a token that may read its secret but
// not subscribe: vigil run says once which policy rule the token lacks,
// and goes on polling, which restarts the child after a change.
func TestRunWatchWithoutEventsPolicy(t *testing.T) {
	t.Parallel()
	_, root, env := runServer(t)
	env["VIGIL_TOKEN"] = runToken(t, root, "app-only", `path "secret/data/app" { capabilities = ["read"] }`)
	runPut(t, root, "app", map[string]any{"key": "poll-1"})
	log := filepath.Join(t.TempDir(), "log")
	r := startVigilRun(t.Context(), env, "-watch", "-poll=50ms", "-min-backoff=10ms", "-max-backoff=50ms",
		"-env", "K=secret/app#key", "--", "sh", "-c", restartScript, "sh", log)
	waitFile(t, log, "start poll-1\n")
	waitFor(t, 30*time.Second, func() error {
		if !strings.Contains(r.stderr.String(), "a watcher stopped") {
			return fmt.Errorf("the event watcher has not given up yet\n%s", r.stderr)
		}
		return nil
	})
	stderr := r.stderr.String()
	if !strings.Contains(stderr, `sys/events/subscribe/*`) || !strings.Contains(stderr, `capabilities = [`) {
		t.Errorf("vigil run does not say which policy rule the token needs:\n%s", stderr)
	}
	if n := strings.Count(stderr, "could not subscribe"); n != 1 {
		t.Errorf("%d messages about the refused subscriptions, want 1:\n%s", n, stderr)
	}
	runPut(t, root, "app", map[string]any{"key": "poll-2"})
	waitFile(t, log, "start poll-1\nterm poll-1\nstart poll-2\n")
	r.noExit(t)
	r.noValues(t, "poll-1", "poll-2", env["VIGIL_TOKEN"])
}

// TestRunWatchStaticCredsEvents: a rotation of static credentials
// (database/rotate, data path database/static-creds/<role>) restarts the
// child with the new password, told by the event.
func TestRunWatchStaticCredsEvents(t *testing.T) {
	t.Parallel()
	_, root, env := runServer(t)
	db, user, _, _ := setupStatic(t, root)
	if _, err := root.Logical().Write("database/static-roles/svc-events", map[string]any{"db_name": "ml", "username": user, "rotation_period": "24h"}); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "log")
	script := `echo "$PGUSER $PGPASSWORD" >> "$1"; trap 'exit 0' TERM; while :; do sleep 0.05; done`
	r := startVigilRun(t.Context(), env, "-watch", "-poll=10m", "-log-level=debug", "-min-backoff=10ms", "-max-backoff=100ms",
		"-env", "PGUSER=database/static-creds/svc-events#username", "-env", "PGPASSWORD=database/static-creds/svc-events#password",
		"--", "sh", "-c", script, "sh", log)
	waitFile(t, log, user+" ")
	pw1 := lastLine(t, log)[1]
	// A rotation before the subscription opened would be caught by the
	// read that follows it; wait for it so that the event does the work.
	waitFor(t, 30*time.Second, func() error {
		if !strings.Contains(r.stderr.String(), "subscribed to change events") {
			return fmt.Errorf("not subscribed yet\n%s", r.stderr)
		}
		return nil
	})
	rotateRole(t, root, "svc-events")
	waitFor(t, 60*time.Second, func() error {
		if n := strings.Count(readFile(t, log), "\n"); n < 2 {
			return fmt.Errorf("the child has not restarted")
		}
		return nil
	})
	pw2 := lastLine(t, log)[1]
	if pw2 == pw1 {
		t.Fatal("the child restarted with the old password")
	}
	logsIn(t, db, user, pw2)
	r.noExit(t)
	r.noValues(t, pw1, pw2)
}
