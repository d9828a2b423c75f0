package template

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is what a template did with a dependency.
type Kind int

// The kinds of dependency.
const (
	// KindRead is secret "path": a read.
	KindRead Kind = iota + 1
	// KindWrite is secret "path" "k=v" ...: a write, which issues
	// something new (a certificate, credentials) each time it is made.
	KindWrite
	// KindList is secrets "path".
	KindList
	// KindFile is file "path".
	KindFile
)

func (k Kind) String() string {
	switch k {
	case KindRead:
		return "read"
	case KindWrite:
		return "write"
	case KindList:
		return "list"
	case KindFile:
		return "file"
	}
	return "unknown"
}

// Dependency is a secret or file a render used, with the lease of the
// secret it got.
type Dependency struct {
	Kind Kind
	// Path is the secret's path (with its query, if any) or the file's.
	Path string
	// LeaseID, LeaseDuration and Renewable are the secret's lease, zero
	// when it has none (KV).
	LeaseID       string
	LeaseDuration time.Duration
	Renewable     bool
	// TTL is, for a secret without a lease, when it changes next: the ttl
	// field of its data (a database static role's credential, a KV v1
	// secret's refresh hint), or 85% of the life of a token it made
	// (auth/token/create). 0 when neither applies.
	TTL time.Duration
	// key identifies the request: kind, path and, for a write, a hash of
	// its arguments (which are not kept: they may hold secrets).
	key string
}

// Key identifies the request behind the dependency: two templates that
// make the same request have dependencies with the same key, and
// [Cache.Forget] takes it.
func (d Dependency) Key() string { return d.key }

// String names the dependency without its write arguments.
func (d Dependency) String() string { return d.Kind.String() + " " + d.Path }

func depKey(kind Kind, path string, data map[string]string) string {
	k := kind.String() + " " + path
	if len(data) == 0 {
		return k
	}
	keys := make([]string, 0, len(data))
	for name := range data {
		keys = append(keys, name)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, name := range keys {
		h.Write([]byte(strconv.Quote(name) + "=" + strconv.Quote(data[name]) + "\n"))
	}
	return k + " #" + hex.EncodeToString(h.Sum(nil))[:16]
}

// leaseOf fills a dependency's lease from the secret it got.
func leaseOf(d *Dependency, s *Secret) {
	if s == nil {
		return
	}
	d.LeaseID = s.LeaseID
	d.LeaseDuration = time.Duration(s.LeaseDuration) * time.Second
	d.Renewable = s.Renewable
	switch {
	case s.LeaseID == "" && s.Auth != nil && s.Auth.LeaseDuration > 0:
		// A token made by the template (auth/token/create): made again
		// before it expires.
		d.TTL = time.Duration(s.Auth.LeaseDuration) * time.Second * 85 / 100
	case s.LeaseID == "":
		d.TTL = dataTTL(s.Data["ttl"])
	}
}

// dataTTL reads a ttl field: seconds as a number, or a duration string.
func dataTTL(v any) time.Duration {
	var secs float64
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return 0
		}
		secs = f
	case float64:
		secs = v
	case int:
		secs = float64(v)
	case int64:
		secs = float64(v)
	case string:
		if d, err := time.ParseDuration(strings.TrimSpace(v)); err == nil && d > 0 {
			return d
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0
		}
		secs = f
	default:
		return 0
	}
	if secs <= 0 || secs > float64(100*365*24*3600) {
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

// Action is what the agent does for a dependency when its time comes.
type Action int

// The actions.
const (
	// Reread means: forget the answer (Cache.Forget), render the
	// templates that used it again, and rewrite those whose output
	// changed.
	Reread Action = iota + 1
	// Renew means: renew the lease (sys/leases/renew); when renewal
	// fails or grants less than asked, Reread.
	Renew
)

func (a Action) String() string {
	switch a {
	case Reread:
		return "reread"
	case Renew:
		return "renew"
	}
	return "unknown"
}

// Plan says what to do next for a dependency and after how long,
// following Vault Agent's rules: a renewable lease is renewed when two
// thirds of it have passed; a lease that cannot be renewed is replaced
// (read or issued again) when 85% of it has passed; a secret without a
// lease whose data has a ttl (a database static role, which rotates) is
// read again when that ttl ends; anything else (KV, files, lists) is read
// again every staticInterval (template_config's
// static_secret_render_interval).
func (d Dependency) Plan(staticInterval time.Duration) (Action, time.Duration) {
	switch {
	case d.Kind == KindFile || d.Kind == KindList:
		return Reread, staticInterval
	case d.LeaseID != "" && d.LeaseDuration > 0 && d.Renewable:
		return Renew, d.LeaseDuration * 2 / 3
	case d.LeaseID != "" && d.LeaseDuration > 0:
		return Reread, d.LeaseDuration * 85 / 100
	case d.TTL > 0:
		// A moment after the rotation, so that the new value is there.
		return Reread, d.TTL + time.Second
	}
	return Reread, staticInterval
}
