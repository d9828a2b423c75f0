// Command vigil is Vigil's one binary: `vigil server` runs the server,
// `vigil operator migrate` copies storage offline, and every other command
// is a client that talks to a server over HTTP.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigil-secrets/vigil/internal/cli"
	"github.com/vigil-secrets/vigil/internal/server"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := os.Args[1:]
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
