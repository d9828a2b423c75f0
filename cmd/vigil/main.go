// Command vigil is Vigil's one binary: `vigil server` runs the server,
// `vigil operator migrate` copies storage offline, `vigil agent` runs
// beside a workload (Vault Agent's configuration), `vigil run` runs a
// command with secrets in its environment, and every other command is a
// client that talks to a server over HTTP.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigil-secrets/vigil/internal/agent"
	"github.com/vigil-secrets/vigil/internal/cli"
	"github.com/vigil-secrets/vigil/internal/server"
)

func main() {
	os.Exit(run())
}

func run() int {
	args := os.Args[1:]
	if len(args) > 1 && args[0] == "help" && args[1] == "agent" {
		args = []string{"agent", "-h"}
	}
	if len(args) > 0 && args[0] == "agent" {
		// Like `vigil run`, the agent passes signals to the process it
		// supervises: it subscribes to them itself.
		sigs := make(chan os.Signal, 8)
		signal.Notify(sigs, agent.Signals()...)
		defer signal.Stop(sigs)
		return agent.Main(context.Background(), args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv, sigs)
	}
	if len(args) > 0 && args[0] == "run" {
		// `vigil run` forwards the signals it gets to the command it
		// runs, and exits when that command does: it subscribes to
		// them itself, and an interrupt must not cancel it.
		return cli.Run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// `vigil operator migrate` opens storage backends, which the CLI
	// (internal/cli) must never do: it runs here, before the CLI; the
	// CLI only lists it under `vigil operator -h`.
	if len(args) > 1 && args[0] == "operator" && args[1] == "migrate" {
		return server.Migrate(ctx, args[2:], os.Stdout, os.Stderr)
	}
	if len(args) > 2 && args[0] == "help" && args[1] == "operator" && args[2] == "migrate" {
		return server.Migrate(ctx, []string{"-h"}, os.Stdout, os.Stderr)
	}
	if len(args) > 0 && args[0] == "server" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		return server.Run(ctx, args[1:], os.Stdout, os.Stderr, hup)
	}
	return cli.Run(ctx, args, os.Stdin, os.Stdout, os.Stderr, os.Getenv)
}
