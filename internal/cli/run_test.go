package cli

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/agent/secretenv"
	"github.com/vigil-secrets/vigil/internal/agent/watch"
)

// parseRunArgs parses `vigil run` arguments as the command does.
func parseRunArgs(t *testing.T, args ...string) (login, command []string, code int, ok bool, stderr string) {
	t.Helper()
	var errOut bytes.Buffer
	e := &env{stdout: &bytes.Buffer{}, stderr: &errOut, getenv: func(string) string { return "" }}
	c := newCall(e, runCommand(), "vigil run", args)
	var f runFlags
	c.fs.Var(&f.envs, "env", "")
	c.fs.StringVar(&f.method, "method", "token", "")
	c.fs.BoolVar(&f.watch, "watch", false, "")
	login, command, code, ok = c.parseRun()
	return login, command, code, ok, errOut.String()
}

func TestParseRun(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name           string
		args           []string
		login, command []string
		err            string
	}{
		{"dashes", []string{"-env", "A=p#k", "--", "python", "train.py", "-x"}, nil, []string{"python", "train.py", "-x"}, ""},
		{"no dashes", []string{"-env", "A=p#k", "env"}, nil, []string{"env"}, ""},
		{"login args between flags", []string{"-method=jwt", "role=ci", "jwt=@f", "-watch", "-env", "A=p#k", "--", "make", "eval"}, []string{"role=ci", "jwt=@f"}, []string{"make", "eval"}, ""},
		{"login args, no dashes", []string{"-method=approle", "role_id=@r", "./serve", "a=b"}, []string{"role_id=@r"}, []string{"./serve", "a=b"}, ""},
		{"command flags after dashes", []string{"--", "ls", "-env"}, nil, []string{"ls", "-env"}, ""},
		{"stray word before dashes", []string{"-env", "A=p#k", "oops", "--", "ls"}, nil, nil, `unexpected argument "oops" before --`},
		{"bad flag", []string{"-bogus", "--", "ls"}, nil, nil, "flag provided but not defined"},
		{"bad flag after a login arg", []string{"role=x", "-bogus", "--", "ls"}, nil, nil, "flag provided but not defined"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			login, command, _, ok, stderr := parseRunArgs(t, tt.args...)
			if tt.err != "" {
				if ok || !strings.Contains(stderr, tt.err) {
					t.Fatalf("ok %v, stderr %q; want %q", ok, stderr, tt.err)
				}
				return
			}
			if !ok || !slices.Equal(login, tt.login) || !slices.Equal(command, tt.command) {
				t.Errorf("login %q command %q (ok %v, %s); want %q %q", login, command, ok, stderr, tt.login, tt.command)
			}
		})
	}
}

func TestRunMethod(t *testing.T) {
	t.Parallel()
	c := newCall(&env{getenv: func(string) string { return "" }}, runCommand(), "vigil run", nil)
	for _, tt := range []struct {
		name   string
		method string
		args   []string
		token  string
		want   string // the method's String()
		err    string
	}{
		{"the current token", "token", nil, "s.tok", "token", ""},
		{"no token", "token", nil, "", "", "no token"},
		{"a token file", "token", []string{"token=@/run/tok"}, "", "token_file /run/tok", ""},
		{"token with other args", "token", []string{"role=x"}, "s.tok", "", "takes no KEY=VALUE"},
		{"approle", "approle", []string{"role_id=@/r", "secret_id=@/s"}, "", "approle at auth/approle", ""},
		{"kubernetes with its default token", "kubernetes", []string{"role=app"}, "", "kubernetes at auth/kubernetes", ""},
		{"stdin", "jwt", []string{"role=ci", "jwt=-"}, "", "", "stdin is the command's"},
		{"userpass", "userpass", []string{"username=a"}, "", "", "for people"},
		{"empty key", "jwt", []string{"=x"}, "", "", "invalid key/value pair"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := c.runMethod(runFlags{method: tt.method}, tt.args, tt.token)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.String() != tt.want {
				t.Errorf("method %q, want %q", m.String(), tt.want)
			}
		})
	}
	m, err := c.runMethod(runFlags{method: "jwt", authPath: "gitlab"}, []string{"role=ci", "jwt=@/ci/token"}, "")
	if err != nil || m.String() != "jwt at auth/gitlab" {
		t.Errorf("-auth-path: %v %v", m, err)
	}
}

func TestRunWatchers(t *testing.T) {
	t.Parallel()
	cl, err := api.NewClient(api.Config{Address: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	backoff := lifetime.Backoff{Min: time.Second, Max: time.Minute}
	ws := runWatchers(runFlags{poll: 10 * time.Minute}, cl, backoff, slog.New(slog.DiscardHandler))
	if len(ws) != 2 {
		t.Fatalf("%d watchers, want the poll and the events", len(ws))
	}
	if p, ok := ws[0].(secretenv.Poller); !ok || p.Interval != 10*time.Minute {
		t.Errorf("first watcher %#v, want a Poller every -poll", ws[0])
	}
	if e, ok := ws[1].(watch.Events); !ok || e.Client != cl || e.Backoff.Min != backoff.Min || e.Backoff.Max != backoff.Max || len(e.Types) != 0 {
		t.Errorf("second watcher %#v, want Events over the run's client, subscribed to every type", ws[1])
	}
	if help := runCommand().help; !strings.Contains(help, "change events") || !strings.Contains(help, "sys/events/subscribe/*") {
		t.Errorf("vigil run's help does not tell of change events:\n%s", help)
	}
}
