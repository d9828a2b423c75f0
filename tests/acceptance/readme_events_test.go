//go:build !e2e

package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli"
	"github.com/vigil-secrets/vigil/internal/testcluster"
	"github.com/vigil-secrets/vigil/internal/testlog"
)

// watcher is a README command that runs until the test stops it (vigil
// events subscribe), in-process.
type watcher struct {
	out, errOut testlog.Buffer
	cancel      context.CancelFunc
	done        chan int
	s           *testcluster.Server
	// subs is the server's subscription count once the watcher's was
	// open.
	subs int
}

// startWatcher runs the one command of block with the shell's
// environment, in the background, and returns once the server s has one
// more event subscription than before.
func startWatcher(t *testing.T, sh *docShell, s *testcluster.Server, block string) *watcher {
	t.Helper()
	cmds := shellCommands(block)
	if len(cmds) != 1 {
		t.Fatalf("the watcher's block has %d commands, want 1", len(cmds))
	}
	args, err := sh.words(cmds[0].line)
	if err != nil || args[0] != "vigil" || args[1] != "events" {
		t.Fatalf("the watcher's command %q: %v", cmds[0].line, err)
	}
	before := s.Core.EventSubscribers()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{cancel: cancel, done: make(chan int, 1), s: s}
	go func() {
		w.done <- cli.Run(ctx, args[1:], strings.NewReader(""), &w.out, &w.errOut, func(k string) string { return sh.env[k] })
	}()
	t.Cleanup(cancel)
	waitFor(t, 10*time.Second, func() error {
		select {
		case code := <-w.done:
			t.Fatalf("%s: exit %d: %s", cmds[0].line, code, w.errOut.String())
		default:
		}
		if w.subs = s.Core.EventSubscribers(); w.subs <= before {
			return errNotYet
		}
		return nil
	})
	return w
}

// lines waits until the watcher printed n lines and returns them.
func (w *watcher) lines(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	waitFor(t, 10*time.Second, func() error {
		got = strings.SplitAfter(w.out.String(), "\n")
		got = got[:len(got)-1] // after the last newline
		if len(got) < n {
			return fmt.Errorf("%d of %d lines; stdout %q, stderr %q", len(got), n, w.out.String(), w.errOut.String())
		}
		return nil
	})
	return got
}

// stop interrupts the watcher, which must exit 0, and waits until the
// server has closed its subscription.
func (w *watcher) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	if code := <-w.done; code != 0 {
		t.Fatalf("the watcher exited %d: %s", code, w.errOut.String())
	}
	waitFor(t, 10*time.Second, func() error {
		if w.s.Core.EventSubscribers() >= w.subs {
			return errNotYet
		}
		return nil
	})
}

type notYet struct{}

func (notYet) Error() string { return "not yet" }

var errNotYet error = notYet{}

// sameShape compares an event with the README's, whose "…" values stand
// for anything.
func sameShape(readme, got any) bool {
	switch r := readme.(type) {
	case string:
		if r == "…" {
			_, ok := got.(string)
			return ok
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(r) {
			return false
		}
		for k, v := range r {
			if !sameShape(v, g[k]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(readme, got)
}

// TestREADMEEvents runs section 13 as written against a dev-like server:
// the watcher prints the README's event when the writer writes; the
// filtered watcher sees only its path; the watcher policy, and Vault's
// form of it, let a token watch the app's secrets and nothing else.
func TestREADMEEvents(t *testing.T) {
	section := readmeSection(t, "### 13. Change events")
	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	env := map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()}
	sh := newDocShell(t, env, nil)

	w := startWatcher(t, sh, s, block(t, section, "sh", 0, "the watcher"))
	sh.mustRun(block(t, section, "sh", 1, "the write"))
	line := w.lines(t, 1)[0]
	w.stop(t)
	var want, got any
	if err := json.Unmarshal([]byte(block(t, section, "json", 0, "the event")), &want); err != nil {
		t.Fatalf("the README's event: %v", err)
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("the watcher printed %q: %v", line, err)
	}
	if !sameShape(want, got) {
		t.Fatalf("the watcher printed\n%s\nthe README shows\n%s", line, block(t, section, "json", 0, ""))
	}
	if strings.Contains(line, "s3cr3t") {
		t.Fatal("the event carries the value")
	}

	// The filtered watcher sees app/db's changes and not another key's.
	fw := startWatcher(t, sh, s, block(t, section, "sh", 2, "the filtered watcher"))
	sh.mustRun("vigil kv put secret/app/other k=v\nvigil kv patch secret/app/db password=n3w\n")
	var ev struct {
		Data struct {
			EventType string `json:"event_type"`
			Event     struct {
				Metadata map[string]string `json:"metadata"`
			} `json:"event"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(fw.lines(t, 1)[0]), &ev); err != nil || ev.Data.EventType != "kv-v2/data-patch" ||
		ev.Data.Event.Metadata["data_path"] != "secret/data/app/db" {
		t.Fatalf("the filtered watcher: %v %+v", err, ev)
	}
	fw.stop(t)

	// The watcher policy, then Vault's form of it.
	sh.mustRun(block(t, section, "sh", 3, "the watcher policy"))
	vc := vaultClientAt(t, s.URL, s.RootToken)
	if err := vc.Sys().PutPolicy("app-subscriber", block(t, section, "hcl", 0, "Vault's form")+
		`path "sys/events/subscribe/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	for _, policy := range []string{"app-watcher", "app-subscriber"} {
		sec, err := vc.Logical().Write("auth/token/create", map[string]any{"policies": []string{policy}})
		if err != nil {
			t.Fatal(err)
		}
		stream, err := apiClient(t, s.URL, sec.Auth.ClientToken).Sys().SubscribeEvents(t.Context(), "kv-v2/*", api.SubscribeEventsOptions{})
		if err != nil {
			t.Fatalf("%s: %v", policy, err)
		}
		sh.mustRun("vigil kv put secret/other/x k=v\nvigil kv put secret/app/x k=v\n")
		if ev := mustNextEvent(t, stream); ev.Path() != "secret/data/app/x" || ev.EventType() != "kv-v2/data-write" {
			t.Fatalf("%s: first event %s %s", policy, ev.EventType(), ev.Path())
		}
		stream.Close()
	}
}
