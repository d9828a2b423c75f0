package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli/output"
)

func eventsCommands() []*command {
	return []*command{eventsSubscribeCommand()}
}

func eventsSubscribeCommand() *command {
	return &command{
		name:     "subscribe",
		synopsis: "Print change events as they happen, one JSON object per line",
		usage:    "[flags] EVENT_TYPE",
		help: `Subscribes to the change events of EVENT_TYPE, where '*' stands for any
run of characters, and prints each event as it arrives: one line of JSON
(Vault's CloudEvents form), as "vault events subscribe" does. It runs until
it is interrupted, the -timeout passes, or the server ends the stream
(sealed, no longer active, the token revoked or expired, or this
subscriber too slow and events lost): then it exits 1, and a caller that
wants to go on subscribes again.

An event says what changed (its path, data_path, operation, versions),
never a value. The token needs read on sys/events/subscribe/EVENT_TYPE,
and receives only the events whose data_path its policies allow: read
there, or the subscribe capability with a matching subscribe_event_types.

Event types: kv-v2/data-write, kv-v2/data-patch, kv-v2/data-delete,
kv-v2/delete, kv-v2/undelete, kv-v2/destroy, kv-v2/metadata-write,
kv-v2/metadata-patch, kv-v2/metadata-delete, kv-v2/config-write,
kv-v1/write, kv-v1/delete, database/rotate.

  $ vigil events subscribe kv-v2/data-write
  $ vigil events subscribe -filter='data_path == secret/data/app' 'kv-v2/*'`,
		run: func(ctx context.Context, c *call) int {
			filter := c.fs.String("filter", "", "Only events matching this `expression`: selector == value (or !=) over event_type, operation, source_plugin_mount, data_path, namespace, joined by and.")
			timeout := c.fs.Duration("timeout", 0, "Stop after this `duration` (0: run until interrupted).")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(1, 1); !ok {
				return code
			}
			if c.isSet("format") && c.fmt != output.JSON {
				return c.usageError("events are printed as JSON only (-format=json)")
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			if *timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, *timeout)
				defer cancel()
			}
			stream, err := cl.Sys().SubscribeEvents(ctx, c.args[0], api.SubscribeEventsOptions{Filter: *filter})
			if err != nil {
				return c.fail("subscribing to events", err)
			}
			defer stream.Close()
			for ev := range stream.Events() {
				if _, err := fmt.Fprintf(c.stdout, "%s\n", ev.Raw); err != nil {
					return c.fail("printing an event", err)
				}
			}
			err = stream.Err()
			switch {
			case ctx.Err() != nil:
				// The -timeout passed, or the command was interrupted.
				return exitOK
			case errors.Is(err, api.ErrEventsLost):
				fmt.Fprintln(c.stderr, "Error reading events: this subscriber fell behind and the server dropped events; subscribe again.")
				return exitError
			}
			return c.fail("reading events", err)
		},
	}
}
