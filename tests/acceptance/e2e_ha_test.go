//go:build e2e

package acceptance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// haNode is one `vigil server` of an HA cluster on a shared PostgreSQL.
type haNode struct {
	name, cfg, url string
	p              *proc
	logs           strings.Builder // output of the processes stopped so far
}

// haCluster is n servers with one static seal key on one database.
type haCluster struct {
	nodes []*haNode
	root  string
}

func newHACluster(t *testing.T, n int) *haCluster {
	t.Helper()
	db := pgtest.New(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "seal.key")
	if err := os.WriteFile(keyFile, secret.RandomBytes(32), 0o600); err != nil {
		t.Fatal(err)
	}
	hc := &haCluster{}
	for i := range n {
		addr := freeAddr(t)
		node := &haNode{name: fmt.Sprintf("node%d", i+1), url: "http://" + addr, cfg: filepath.Join(dir, fmt.Sprintf("node%d.hcl", i+1))}
		cfg := fmt.Sprintf(`
storage "postgresql" {
  connection_url = %q
  ha_enabled     = true
}
listener "tcp" {
  address = %q
}
api_addr  = %q
log_level = "info"
seal "static" {
  current_key_id = "k1"
  current_key    = "file://%s"
}
`, db.AdminURL(), addr, node.url, keyFile)
		if err := os.WriteFile(node.cfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		hc.nodes = append(hc.nodes, node)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, node := range hc.nodes {
				out := node.logs.String()
				if node.p != nil {
					out += node.p.output.String()
				}
				t.Logf("--- %s output:\n%s", node.name, out)
			}
		}
	})
	return hc
}

func (n *haNode) start(t *testing.T) {
	t.Helper()
	n.p = startServer(t, "-config", n.cfg)
	waitHealthy(t, n.url, n.p)
}

// kill stops the node with sig and keeps its output.
func (n *haNode) kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	n.p.stop(t, sig)
	n.logs.Write(n.p.output.Bytes())
}

// health returns the node's sys/health status code, 0 when unreachable.
func (n *haNode) health() int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(n.url + "/v1/sys/health")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// active waits until exactly one node other than except reports active
// and the others (not except) standby, and returns it.
func (hc *haCluster) active(t *testing.T, except *haNode) *haNode {
	t.Helper()
	var found *haNode
	waitFor(t, 30*time.Second, func() error {
		found = nil
		for _, n := range hc.nodes {
			if n == except || n.p == nil || n.p.cmd.ProcessState != nil {
				continue
			}
			switch code := n.health(); code {
			case 200:
				if found != nil {
					return fmt.Errorf("%s and %s are both active", found.name, n.name)
				}
				found = n
			case 429:
			default:
				return fmt.Errorf("%s: health %d", n.name, code)
			}
		}
		if found == nil {
			return fmt.Errorf("no active node")
		}
		return nil
	})
	return found
}

// put writes n to stream/data/k<n> through node; it reports whether the
// server acknowledged the write.
func put(client *http.Client, node *haNode, root string, i int) bool {
	req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/stream/data/k%d", node.url, i), strings.NewReader(fmt.Sprintf(`{"data":{"n":"%d"}}`, i)))
	req.Header.Set("X-Vault-Token", root)
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == 200
}

// TestHAClusterOnPostgres runs three servers on one PostgreSQL with a
// static seal: init once, all unseal by themselves; writes and reads
// through any node; kill -9 of the active under a stream of writes,
// three times, loses no acknowledged write and the killed node rejoins
// as a standby; a frozen former leader cannot write once it resumes; a
// full restart unseals every node by itself.
func TestHAClusterOnPostgres(t *testing.T) {
	hc := newHACluster(t, 3)
	for _, n := range hc.nodes {
		n.start(t)
	}
	init, err := vaultClientAt(t, hc.nodes[1].url, "").Sys().Init(&vault.InitRequest{RecoveryShares: 1, RecoveryThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	hc.root = init.RootToken
	act := hc.active(t, nil)

	// Writes and reads through every node.
	c0 := vaultClientAt(t, hc.nodes[0].url, hc.root)
	if err := c0.Sys().Mount("stream", &vault.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, n := range hc.nodes {
		if _, err := vaultClientAt(t, n.url, hc.root).KVv2("stream").Put(ctx, fmt.Sprintf("via-%d", i), map[string]any{"n": n.name}); err != nil {
			t.Fatalf("write through %s: %v", n.name, err)
		}
	}
	for _, n := range hc.nodes {
		for i := range hc.nodes {
			sec, err := vaultClientAt(t, n.url, hc.root).KVv2("stream").Get(ctx, fmt.Sprintf("via-%d", i))
			if err != nil || sec.Data["n"] != hc.nodes[i].name {
				t.Fatalf("read via-%d through %s: %v %v", i, n.name, sec, err)
			}
		}
	}

	// kill -9 of the active under a stream of writes, three times.
	var mu sync.Mutex
	acked := map[int]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for i := w; ; i += 4 {
				select {
				case <-stop:
					return
				default:
				}
				node := hc.nodes[i%len(hc.nodes)]
				if put(client, node, hc.root, i) {
					mu.Lock()
					acked[i] = true
					mu.Unlock()
				}
			}
		})
	}
	for round := range 3 {
		time.Sleep(500 * time.Millisecond)
		victim := act
		victim.kill(t, syscall.SIGKILL)
		act = hc.active(t, victim)
		t.Logf("round %d: %s killed, %s active", round, victim.name, act.name)
		victim.start(t)
		if code := victim.health(); code != 429 {
			t.Fatalf("%s after restart: health %d, want a standby's 429", victim.name, code)
		}
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(acked) < 10 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range acked {
		if got := readN(t, client, act, hc.root, i); got != fmt.Sprint(i) {
			t.Fatalf("acknowledged write k%d reads %q", i, got)
		}
	}
	t.Logf("%d acknowledged writes, all readable", len(acked))

	// A frozen leader: a standby takes over; the request it was sent
	// while frozen is, once it resumes, either refused or landed through
	// the new active, never written by the former leader.
	frozen := act
	if err := frozen.p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	act = hc.active(t, frozen)
	done := make(chan bool, 1)
	go func() { done <- put(client, frozen, hc.root, -1) }()
	time.Sleep(200 * time.Millisecond)
	if err := frozen.p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	ok := <-done
	got := readN(t, client, act, hc.root, -1)
	if ok && got != "-1" {
		t.Fatalf("the resumed leader acknowledged a write the active cannot read (%q)", got)
	}
	t.Logf("write sent to the frozen leader: acknowledged=%v", ok)
	waitFor(t, 30*time.Second, func() error {
		if code := frozen.health(); code != 429 {
			return fmt.Errorf("resumed leader: health %d", code)
		}
		return nil
	})
	if !put(client, frozen, hc.root, -2) || readN(t, client, act, hc.root, -2) != "-2" {
		t.Fatal("a write through the resumed node (now a standby) did not land")
	}

	// A full restart: every node unseals by itself, one becomes active.
	for _, n := range hc.nodes {
		n.kill(t, syscall.SIGTERM)
	}
	for _, n := range hc.nodes {
		n.start(t)
	}
	act = hc.active(t, nil)
	for i := range acked {
		if got := readN(t, client, act, hc.root, i); got != fmt.Sprint(i) {
			t.Fatalf("after restart, k%d reads %q", i, got)
		}
	}
}

// readN reads stream/data/k<i> through node: its "n", or "" when absent.
func readN(t *testing.T, client *http.Client, node *haNode, root string, i int) string {
	t.Helper()
	sec, err := vaultClientAt(t, node.url, root).KVv2("stream").Get(context.Background(), fmt.Sprintf("k%d", i))
	if err != nil {
		if strings.Contains(err.Error(), "secret not found") {
			return ""
		}
		t.Fatalf("read k%d: %v", i, err)
	}
	s, _ := sec.Data["n"].(string)
	return s
}

// TestREADMEReplicas runs the README's replica section with two servers:
// its configuration (addresses, database and key file made local, TLS
// left out on loopback) and its commands, then the "done when":
// a write through the standby lands, kill -9 of the active makes the
// standby active with every acknowledged write readable, and the killed
// server rejoins as a standby.
func TestREADMEReplicas(t *testing.T) {
	sec := readmeSection(t, "#### Several replicas on PostgreSQL")
	hcl := block(t, sec, "hcl", 0, "the replica configuration")
	sh := block(t, sec, "sh", 0, "the commands")
	db := pgtest.New(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "unseal-2026-11.key")
	if err := os.WriteFile(keyFile, secret.RandomBytes(32), 0o600); err != nil {
		t.Fatal(err)
	}
	hc := &haCluster{}
	for i := range 2 {
		addr := freeAddr(t)
		node := &haNode{name: fmt.Sprintf("replica%d", i+1), url: "http://" + addr, cfg: filepath.Join(dir, fmt.Sprintf("vigil%d.hcl", i+1))}
		var kept []string
		for _, line := range strings.Split(hcl, "\n") {
			if strings.Contains(line, "tls_cert_file") || strings.Contains(line, "tls_key_file") {
				continue
			}
			kept = append(kept, line)
		}
		cfg := strings.NewReplacer(
			"10.0.0.11:8200", addr,
			"https://", "http://",
			"/etc/vigil/unseal-2026-11.key", keyFile,
		).Replace(strings.Join(kept, "\n"))
		if err := os.WriteFile(node.cfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		hc.nodes = append(hc.nodes, node)
	}
	cliEnv := func(n *haNode, token string) []string {
		return []string{"VIGIL_ADDR=" + n.url, "HOME=" + dir, "VIGIL_TOKEN=" + token, "VAULT_TOKEN="}
	}
	var serverEnv []string
	for _, line := range strings.Split(sh, "\n") {
		args := strings.Fields(stripComment(line))
		switch {
		case len(args) == 0:
		case args[0] == "export":
			name, _, _ := strings.Cut(args[1], "=")
			if name != "VIGIL_PG_CONNECTION_URL" {
				t.Fatalf("README exports %s", name)
			}
			// The file's URL names no reachable database: the variable
			// must override it, as the README says.
			serverEnv = append(serverEnv, name+"="+db.AdminURL())
		case strings.Join(args, " ") == "./vigil server -config vigil.hcl":
			for _, n := range hc.nodes {
				n.p = startServerEnv(t, serverEnv, "-config", n.cfg)
				waitHealthy(t, n.url, n.p)
			}
		case strings.Join(args, " ") == "./vigil operator init":
			out, errOut, code := runCLI(t, cliEnv(hc.nodes[0], ""), "", "operator", "init", "-recovery-shares=1", "-recovery-threshold=1", "-format=json")
			if code != 0 {
				t.Fatalf("operator init: %d %s", code, errOut)
			}
			m := regexp.MustCompile(`"root_token":\s*"([^"]+)"`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no root token in %s", out)
			}
			hc.root = m[1]
		case strings.Join(args, " ") == "./vigil status":
			act := hc.active(t, nil)
			for _, n := range hc.nodes {
				out, errOut, code := runCLI(t, cliEnv(n, ""), "", "status")
				mode := "standby"
				if n == act {
					mode = "active"
				}
				if code != 0 || !regexp.MustCompile(`HA Mode\s+`+mode).MatchString(out) || !strings.Contains(out, "Sealed") {
					t.Fatalf("status of %s: %d %s %s", n.name, code, out, errOut)
				}
				if n != act && !strings.Contains(out, act.url) {
					t.Fatalf("status of the standby does not name the active:\n%s", out)
				}
			}
		case strings.Join(args, " ") == "./vigil operator step-down":
			before := hc.active(t, nil)
			var standby *haNode
			for _, n := range hc.nodes {
				if n != before {
					standby = n
				}
			}
			// Sent to the standby: forwarded to the active, which hands over.
			if _, errOut, code := runCLI(t, cliEnv(standby, hc.root), "", "operator", "step-down"); code != 0 {
				t.Fatalf("step-down: %d %s", code, errOut)
			}
			waitFor(t, 30*time.Second, func() error {
				if standby.health() != 200 || before.health() != 429 {
					return fmt.Errorf("no handover yet")
				}
				return nil
			})
		default:
			t.Fatalf("the test does not know the README command %q", line)
		}
	}

	// Done when: a write through the standby lands...
	act := hc.active(t, nil)
	var standby *haNode
	for _, n := range hc.nodes {
		if n != act {
			standby = n
		}
	}
	sc := vaultClientAt(t, standby.url, hc.root)
	if err := sc.Sys().Mount("stream", &vault.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	acked := map[int]bool{}
	for i := range 50 {
		if !put(client, standby, hc.root, i) {
			t.Fatalf("write %d through the standby failed", i)
		}
		acked[i] = true
	}
	// ...kill -9 of the active makes the standby active, with every
	// acknowledged write readable...
	killed := time.Now()
	act.kill(t, syscall.SIGKILL)
	if now := hc.active(t, act); now != standby {
		t.Fatalf("%s is active, want %s", now.name, standby.name)
	}
	t.Logf("the standby was active %v after the kill (the goal, measured by the bench, is 3 s)", time.Since(killed).Round(time.Millisecond))
	for i := range acked {
		if got := readN(t, client, standby, hc.root, i); got != fmt.Sprint(i) {
			t.Fatalf("k%d reads %q", i, got)
		}
	}
	// ...and the old server rejoins as a standby.
	act.p = startServerEnv(t, serverEnv, "-config", act.cfg)
	waitHealthy(t, act.url, act.p)
	waitFor(t, 30*time.Second, func() error {
		if code := act.health(); code != 429 {
			return fmt.Errorf("rejoined server: health %d", code)
		}
		return nil
	})
	if got := readN(t, client, act, hc.root, 7); got != "7" {
		t.Fatalf("read through the rejoined standby: %q", got)
	}
}
