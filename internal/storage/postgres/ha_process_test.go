//go:build unix

package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/storage"
)

// The tests here run the leader in a process of its own, to kill it
// (SIGKILL) or freeze it (SIGSTOP) for real.

// childEnv carries the database URL to a child process; childTTLEnv its
// lock TTL.
const (
	childEnv    = "VIGIL_TEST_PG_HA_CHILD"
	childTTLEnv = "VIGIL_TEST_PG_HA_CHILD_TTL"
)

// haChild is the child process's node: it takes the lock, prints
// "leading", then writes k over and over, printing each outcome ("ok",
// "fenced" or "error ...") on a line of its own.
func haChild(url string) int {
	ctx := context.Background()
	ttl, err := time.ParseDuration(os.Getenv(childTTLEnv))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	b, err := Open(ctx, Options{ConnectionURL: url, HAEnabled: true, LockTTL: ttl, RetryInterval: 50 * time.Millisecond, MaxParallel: 2})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	if _, err := b.Campaign(ctx, "child", "https://child:8200"); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("leading")
	for i := 0; ; i++ {
		err := b.Put(ctx, "k", []byte(fmt.Sprintf("child-%d", i)))
		switch {
		case err == nil:
			fmt.Println("ok")
		case errors.Is(err, storage.ErrFenced):
			fmt.Println("fenced")
		default:
			fmt.Println("error", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// child is a running child process and the lines it printed.
type child struct {
	cmd   *exec.Cmd
	lines chan string
}

func startChild(t *testing.T, url string, ttl time.Duration) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+url, childTTLEnv+"="+ttl.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1<<16)}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			c.lines <- s.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return c
}

// waitLine waits for the child to print want, failing on an error line.
func (c *child) waitLine(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(eventually)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("the child exited before printing %q", want)
			}
			if len(l) >= 5 && l[:5] == "error" {
				t.Fatalf("child: %s", l)
			}
			if l == want {
				return
			}
		case <-timeout:
			t.Fatalf("the child did not print %q", want)
		}
	}
}

// TestHAProcessKilled: the leader's process is killed with SIGKILL; a
// standby takes over long before the TTL, since the dead process's
// session ends with it.
func TestHAProcessKilled(t *testing.T) {
	url := pgtest.New(t).AdminURL()
	c := startChild(t, url, longTTL)
	c.waitLine(t, "leading")
	c.waitLine(t, "ok")
	b := openHA(t, url, longTTL)
	wantLeader(t, b, "child")
	ch := campaignAsync(t, b, "b")

	start := time.Now()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	lb := await(t, ch, longTTL/3, "B after the leader was killed")
	t.Logf("B took over %s after the kill (TTL %s)", time.Since(start).Round(time.Millisecond), longTTL)
	notLost(t, lb, "B")
	mustPut(t, b, "k", []byte("b"))
	wantLeader(t, b, "b")
}

// TestHAProcessFrozen: the leader's process is stopped with SIGSTOP; after
// the TTL a standby takes over and writes. When the old leader resumes,
// its writes are refused, and the standby's write stays.
func TestHAProcessFrozen(t *testing.T) {
	url := pgtest.New(t).AdminURL()
	c := startChild(t, url, quickTTL)
	c.waitLine(t, "leading")
	c.waitLine(t, "ok")
	b := openHA(t, url, quickTTL)
	ch := campaignAsync(t, b, "b")

	if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	lb := await(t, ch, eventually, "B after the leader froze")
	mustPut(t, b, "k", []byte("b"))
	if err := c.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.waitLine(t, "fenced")
	c.waitLine(t, "fenced")
	if got := mustGet(t, b, "k"); string(got) != "b" {
		t.Fatalf("k = %q: the resumed old leader wrote after the takeover", got)
	}
	notLost(t, lb, "B")
}
