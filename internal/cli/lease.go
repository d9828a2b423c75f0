package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/cli/output"
)

// The lease commands follow `vault lease lookup|renew|revoke`: the same
// flags, requests (sys/leases/lookup and sys/leases/renew with the id in
// the body, sys/leases/revoke/<id> and its -prefix and -force variants
// with the id in the URL), error prefixes and success lines. A lease id
// is the path that created the secret plus a random suffix, such as
// database/creds/readonly/2f6a...; it is not a secret.

func leaseCommands() []*command {
	return []*command{
		leaseLookupCommand(),
		leaseRenewCommand(),
		leaseRevokeCommand(),
	}
}

// leaseIDArg checks the number of arguments and returns the lease id, or
// returns false after printing Vault's usage error.
func (c *call) leaseIDArg() (string, int, bool) {
	switch len(c.args) {
	case 0:
		return "", c.usageError("Missing ID!"), false
	case 1:
	default:
		return "", c.usageError("Too many arguments (expected 1, got %d)", len(c.args)), false
	}
	id := cleanPath(strings.TrimSpace(c.args[0]))
	if id == "" {
		return "", c.usageError("Missing ID!"), false
	}
	return id, 0, true
}

func leaseLookupCommand() *command {
	return &command{
		name:     "lookup",
		synopsis: "Look up the lease of a secret",
		usage:    "[flags] ID",
		help: `Displays the lease ID: its issue and expiry times, last renewal, remaining
TTL and whether it can be renewed (sys/leases/lookup).

  $ vigil lease lookup database/creds/readonly/2f6a614c...`,
		run: func(ctx context.Context, c *call) int {
			if code, done := c.parse(); done {
				return code
			}
			id, code, ok := c.leaseIDArg()
			if !ok {
				return code
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			s, err := cl.Sys().LeaseLookup(ctx, id)
			if err != nil {
				return c.fail("looking up lease id "+id, err)
			}
			if s == nil || s.Data == nil {
				fmt.Fprintf(c.stderr, "Error looking up lease id %s: the server returned no data\n", id)
				return exitError
			}
			return c.printSecret(s)
		},
	}
}

func leaseRenewCommand() *command {
	return &command{
		name:     "renew",
		synopsis: "Renew the lease of a secret",
		usage:    "[flags] ID",
		help: `Renews the lease ID, extending the time its secret can be used before it
is revoked, by -increment from now (default: the secret's default TTL),
within its maximum TTL (sys/leases/renew). The secret itself does not
change. Renewal fails for leases that are not renewable, were revoked or
reached their maximum TTL. Tokens are renewed with "vigil token renew".

  $ vigil lease renew -increment=1h database/creds/readonly/2f6a614c...`,
		run: func(ctx context.Context, c *call) int {
			increment := c.fs.String("increment", "", "Requested TTL (`duration`) from now; the server may grant less.")
			if code, done := c.parse(); done {
				return code
			}
			id, code, ok := c.leaseIDArg()
			if !ok {
				return code
			}
			var inc time.Duration
			if *increment != "" {
				var err error
				if inc, err = durationValue("increment", *increment); err != nil {
					return c.fail("parsing flags", err)
				}
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			s, err := cl.Sys().LeaseRenew(ctx, id, inc)
			if err != nil {
				return c.fail("renewing "+id, err)
			}
			if s == nil {
				fmt.Fprintf(c.stderr, "Error renewing %s: the server returned no lease\n", id)
				return exitError
			}
			return c.printSecret(s)
		},
	}
}

func leaseRevokeCommand() *command {
	return &command{
		name:     "revoke",
		synopsis: "Revoke leases and their secrets",
		usage:    "[flags] ID",
		help: `Revokes the lease ID and its secret (sys/leases/revoke/ID). With -prefix,
ID is a prefix and every lease under it is revoked, with the tokens issued
under it (sys/leases/revoke-prefix/ID; sudo).

By default the server queues the revocation and keeps retrying it when the
secrets engine fails; -sync makes it revoke before answering, and then a
failure is yours to retry. -force (with -prefix) forgets the leases even
when the secrets engine fails to revoke them (sys/leases/revoke-force/ID;
sudo): only for recovery, when the secrets were removed by hand. It always
runs synchronously.

  $ vigil lease revoke database/creds/readonly/2f6a614c...
  $ vigil lease revoke -prefix aws/creds/deploy
  $ vigil lease revoke -force -prefix consul/creds`,
		run: func(ctx context.Context, c *call) int {
			force := c.fs.Bool("force", false, "Forget the leases even if the secrets engine fails to revoke them; needs -prefix.")
			c.fs.BoolVar(force, "f", false, "Short for -force.")
			prefix := c.fs.Bool("prefix", false, "Treat ID as a prefix and revoke every lease under it.")
			sync := c.fs.Bool("sync", false, "Revoke before the server answers, instead of queueing.")
			if code, done := c.parse(); done {
				return code
			}
			switch {
			case len(c.args) < 1:
				return c.usageError("Not enough arguments (expected 1, got %d)", len(c.args))
			case len(c.args) > 1:
				return c.usageError("Too many arguments (expected 1, got %d)", len(c.args))
			case *force && !*prefix:
				return c.usageError("Specifying -force requires also specifying -prefix")
			}
			id, code, ok := c.leaseIDArg()
			if !ok {
				return code
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			sys := cl.Sys()
			if *force {
				fmt.Fprintln(c.stderr, "Warning! Force-removing leases can cause Vigil to become out of sync with")
				fmt.Fprintln(c.stderr, "secret engines!")
				if err := sys.LeaseRevokeForce(ctx, id); err != nil {
					return c.fail("force revoking leases with prefix "+id, err)
				}
				return c.leaseDone("Success! Force revoked any leases with prefix: " + id)
			}
			if *prefix {
				if err := sys.LeaseRevokePrefix(ctx, id, *sync); err != nil {
					return c.fail("revoking leases with prefix "+id, err)
				}
			} else if err := sys.LeaseRevoke(ctx, id, *sync); err != nil {
				return c.fail("revoking lease "+id, err)
			}
			switch {
			case !*sync:
				return c.leaseDone("All revocation operations queued successfully!")
			case *prefix:
				return c.leaseDone("Success! Revoked any leases with prefix: " + id)
			}
			return c.leaseDone("Success! Revoked lease: " + id)
		},
	}
}

// leaseDone prints a revoke result line in table format; other formats
// print nothing, as success lines do elsewhere.
func (c *call) leaseDone(line string) int {
	if c.fmt == output.Table && c.g.field == "" {
		fmt.Fprintln(c.stdout, line)
	}
	return exitOK
}
