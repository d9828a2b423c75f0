package logical

// Event is a change a mount reports: which path of the mount changed, how,
// and (for versioned data) to which version. The pipeline stamps it with
// the mount, a unique id and the time, and publishes it to the subscribers
// of its type whose policies allow them to see it (see package events).
//
// An event never carries a secret's value, a password, a token or anything
// else that would be sensitive in a log: only paths, names, versions and
// operation names. Subscribers are trusted with less than readers are.
//
// A mount reports a change it made while serving a request in
// [Response.Events]: the pipeline publishes them once the request has
// succeeded, so an event never announces a change that failed. A change
// made outside a request (its [Periodic] work) goes through
// [BackendConfig.SendEvent].
type Event struct {
	// Type is the event type, "<plugin>/<name>" as Vault names them:
	// "kv-v2/data-write", "database/rotate".
	Type string
	// Operation names the change ("data-write"): the "operation" metadata
	// field.
	Operation string
	// Path is the path, relative to the mount, of the request (or the
	// work) that made the change: "data/app", "rotate-role/web".
	Path string
	// DataPath is the path, relative to the mount, where a client reads
	// what changed ("data/app", "static-creds/web"), or "" when there is
	// none. Whether a subscriber sees the event is decided on this path.
	DataPath string
	// Metadata holds the type's own fields ("current_version": "3"), all
	// strings. Never secret material.
	Metadata map[string]string
}
