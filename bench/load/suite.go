package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The bodies of the token scenarios: the root token creates a service
// token (stored, with a lease) or a batch token (encrypted into the token
// itself, nothing stored), each with the default policy for an hour.
const (
	ServiceTokenBody = `{"policies":["default"],"ttl":"1h"}`
	BatchTokenBody   = `{"type":"batch","policies":["default"],"ttl":"1h"}`
)

// Suite is the benchmark's scenarios (see Scenarios): the bare handler,
// Vigil's KV v2 engine read and written, token creations, and AppRole and
// JWT logins, all at the same concurrency.
type Suite struct {
	// BareURL is the bare handler's base URL, VigilURL Vigil's.
	BareURL, VigilURL string
	// Mount is the KV v2 mount path, without slashes.
	Mount string
	// Header carries the token and Content-Type for Vigil (see
	// Vigil.Header).
	Header http.Header
	// Keys is how many keys Preload wrote (k0 … k<Keys-1>), which the
	// read scenario picks from at random.
	Keys int
	// ValueSize is the size of the written values.
	ValueSize int
	// AppRoleMount is where AppRole is enabled, without slashes, and
	// AppRoleLogin the body of its logins, {"role_id":…,"secret_id":…}
	// (see Vigil.SetupAppRole): a credential, sent but never printed.
	AppRoleMount string
	AppRoleLogin []byte
	// JWTES256 and JWTRS256 are the JWT auth methods of JWTLoginES256
	// and JWTLoginRS256.
	JWTES256, JWTRS256 JWTLogins
	// AuditedURL and AuditedHeader are those of the second server, which
	// has a file audit device, for KV2ReadAudited; it has the same mount
	// and keys.
	AuditedURL    string
	AuditedHeader http.Header
	// DBCreds and PGCreateDrop are the database scenarios' setups.
	DBCreds      *DBCredsScenario
	PGCreateDrop *PGBaseline
	// ActiveURL and StandbyURL are the two servers of the HA cluster of
	// the HAScenarios, the active one and a standby that forwards its
	// clients to it, and HAHeader carries the cluster's token. The
	// cluster has the same mount and keys.
	ActiveURL, StandbyURL string
	HAHeader              http.Header
}

// JWTLogins is where a JWT login scenario logs in, and with what.
type JWTLogins struct {
	// Mount is where the JWT auth method is enabled, without slashes.
	Mount string
	// Bodies are the bodies of its logins, {"role":…,"jwt":…} (see
	// JWTIssuer.LoginBodies), each with a JWT signed before the run so
	// that signing is not measured; the workers send them in turn.
	// Credentials: sent, never printed.
	Bodies [][]byte
}

// body is a Target.Body sending the bodies in turn, concurrent workers
// different ones; nil (no body) if there are none.
func (j JWTLogins) body(w, i int) []byte {
	if len(j.Bodies) == 0 {
		return nil
	}
	return j.Bodies[(w+i)%len(j.Bodies)]
}

// Targets returns the targets of all Scenarios, in their order: BareGET,
// KV2Read, KV2ReadAudited, BarePOST, KV2Write, TokenCreate, BatchCreate,
// AppRoleLogin, JWTLoginES256, JWTLoginRS256, PGCreateDrop, DBCreds,
// KV2ReadActive, KV2ReadStandby, KV2WriteActive and KV2WriteStandby.
// PGCreateDrop and DBCreds are operations (Target.Op), not single
// requests.
func (s Suite) Targets() []Target {
	data := s.VigilURL + "/v1/" + s.Mount + "/data/"
	audited := s.AuditedURL + "/v1/" + s.Mount + "/data/"
	active := s.ActiveURL + "/v1/" + s.Mount + "/data/"
	standby := s.StandbyURL + "/v1/" + s.Mount + "/data/"
	write := writeBody(s.ValueSize)
	// read picks a preloaded key at random.
	read := func(base string) func(int, int) string {
		return func(int, int) string { return base + "k" + strconv.Itoa(rand.IntN(max(s.Keys, 1))) }
	}
	// written names the keys of a write scenario, prefix<worker>-<i>:
	// the two HA write scenarios write as many keys as many times each,
	// but not the same ones.
	written := func(base, prefix string) func(int, int) string {
		return func(w, i int) string { return base + prefix + strconv.Itoa(w) + "-" + strconv.Itoa(i) }
	}
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	fixed := func(url string) func(int, int) string { return func(int, int) string { return url } }
	body := func(b []byte) func(int, int) []byte { return func(int, int) []byte { return b } }
	// The bare handler gets the requests the KV v2 scenarios send, path,
	// headers and body alike, except that the token is a stand-in of the
	// same length: the client does the same work for both sides of a
	// ratio, and the bare server reads as many bytes.
	bare := s.BareURL + "/v1/" + s.Mount + "/data/"
	bareHeader := standIn(s.Header)
	return []Target{{
		Name:   BareGET,
		Method: http.MethodGet,
		URL:    read(bare),
		Header: bareHeader,
	}, {
		Name:   KV2Read,
		Method: http.MethodGet,
		URL:    read(data),
		Header: s.Header,
	}, {
		Name:   KV2ReadAudited,
		Method: http.MethodGet,
		URL:    read(audited),
		Header: s.AuditedHeader,
	}, {
		Name:   BarePOST,
		Method: http.MethodPost,
		URL:    written(bare, "k"),
		Body:   write,
		Header: bareHeader,
	}, {
		Name:   KV2Write,
		Method: http.MethodPost,
		URL:    written(data, "k"),
		Body:   write,
		Header: s.Header,
	}, {
		Name:   TokenCreate,
		Method: http.MethodPost,
		URL:    fixed(s.VigilURL + "/v1/auth/token/create"),
		Body:   body([]byte(ServiceTokenBody)),
		Header: s.Header,
	}, {
		Name:   BatchCreate,
		Method: http.MethodPost,
		URL:    fixed(s.VigilURL + "/v1/auth/token/create"),
		Body:   body([]byte(BatchTokenBody)),
		Header: s.Header,
	}, {
		Name:   AppRoleLogin,
		Method: http.MethodPost,
		URL:    fixed(s.VigilURL + "/v1/auth/" + s.AppRoleMount + "/login"),
		Body:   body(s.AppRoleLogin),
		Header: jsonHeader, // no token: a login
	}, {
		Name:   JWTLoginES256,
		Method: http.MethodPost,
		URL:    fixed(s.VigilURL + "/v1/auth/" + s.JWTES256.Mount + "/login"),
		Body:   s.JWTES256.body,
		Header: jsonHeader,
	}, {
		Name:   JWTLoginRS256,
		Method: http.MethodPost,
		URL:    fixed(s.VigilURL + "/v1/auth/" + s.JWTRS256.Mount + "/login"),
		Body:   s.JWTRS256.body,
		Header: jsonHeader,
	}, {
		Name: PGCreateDrop,
		Op:   s.PGCreateDrop.op,
	}, {
		Name: DBCreds,
		Op:   s.DBCreds.op,
	}, {
		Name:   KV2ReadActive,
		Remote: true,
		Method: http.MethodGet,
		URL:    read(active),
		Header: s.HAHeader,
	}, {
		Name:   KV2ReadStandby,
		Remote: true,
		Method: http.MethodGet,
		URL:    read(standby),
		Header: s.HAHeader,
	}, {
		Name:   KV2WriteActive,
		Remote: true,
		Method: http.MethodPost,
		URL:    written(active, "a"),
		Body:   write,
		Header: s.HAHeader,
	}, {
		Name:   KV2WriteStandby,
		Remote: true,
		Method: http.MethodPost,
		URL:    written(standby, "s"),
		Body:   write,
		Header: s.HAHeader,
	}}
}

// CheckTokens sends one request of each token scenario among names and
// checks that it gets the token that scenario is meant to measure: for
// TokenCreate and the logins (AppRoleLogin, JWTLoginES256, JWTLoginRS256),
// a service token (stored: it has an accessor) with the default policy and
// an hour's lease; for BatchCreate, a batch token of an hour. It runs
// before the measurement, so that a misconfigured server fails the setup
// with a clear error instead of every request of a scenario.
func (s Suite) CheckTokens(ctx context.Context, v *Vigil, names []string) error {
	check := func(name string, want string, info TokenInfo, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		// Up to a second less than the hour: a batch token's creation
		// time is kept to the second, and its TTL counted from it.
		hour := info.LeaseDuration >= 3599 && info.LeaseDuration <= 3600
		if info.Type != want || !hour || !slices.Contains(info.Policies, "default") || info.Accessor != (want == "service") {
			return fmt.Errorf("%s: got a %q token with a TTL of %ds, policies %q and accessor %v; want a %s token with the default policy for an hour",
				name, info.Type, info.LeaseDuration, info.Policies, info.Accessor, want)
		}
		return nil
	}
	for _, name := range names {
		var err error
		switch name {
		case TokenCreate:
			info, cerr := v.CreateToken(ctx, []byte(ServiceTokenBody))
			err = check(name, "service", info, cerr)
		case BatchCreate:
			info, cerr := v.CreateToken(ctx, []byte(BatchTokenBody))
			err = check(name, "batch", info, cerr)
		case AppRoleLogin:
			info, cerr := v.Login(ctx, s.AppRoleMount, s.AppRoleLogin)
			err = check(name, "service", info, cerr)
		case JWTLoginES256, JWTLoginRS256:
			j := s.JWTES256
			if name == JWTLoginRS256 {
				j = s.JWTRS256
			}
			if len(j.Bodies) == 0 {
				return fmt.Errorf("%s: no JWT to log in with", name)
			}
			info, cerr := v.Login(ctx, j.Mount, j.Bodies[0])
			err = check(name, "service", info, cerr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ParseScenarios parses a comma-separated list of scenario names (spaces
// around the commas are ignored, case is not significant) and returns
// them in the order of Scenarios, each once. It rejects unknown names and
// empty lists.
func ParseScenarios(list string) ([]string, error) {
	chosen := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(Scenarios, func(s string) bool { return strings.EqualFold(s, name) })
		if i < 0 {
			if name == "" {
				return nil, fmt.Errorf("empty scenario name in %q; the scenarios are %q", list, strings.Join(Scenarios, ","))
			}
			return nil, fmt.Errorf("unknown scenario %q; the scenarios are %q", name, strings.Join(Scenarios, ","))
		}
		chosen[Scenarios[i]] = true
	}
	var out []string
	for _, s := range Scenarios {
		if chosen[s] {
			out = append(out, s)
		}
	}
	return out, nil
}

// Select returns the targets named in names, in the order of targets.
func Select(targets []Target, names []string) []Target {
	var out []Target
	for _, t := range targets {
		if slices.Contains(names, t.Name) {
			out = append(out, t)
		}
	}
	return out
}

// writeBody returns a Target.Body that gives every request a new
// {"data":{"value":…}} with a value of valueSize printable bytes: one random
// value, its start overwritten by "<worker>-<i>-" (the random part has no
// '-', so values are distinct when valueSize leaves room for the stamp).
func writeBody(valueSize int) func(w, i int) []byte {
	tmpl := KVWriteBody(RandomPrintable(valueSize))
	const prefix = len(`{"data":{"value":"`)
	return func(w, i int) []byte {
		b := make([]byte, len(tmpl))
		copy(b, tmpl)
		stamp := strconv.AppendInt(make([]byte, 0, 24), int64(w), 36)
		stamp = append(strconv.AppendInt(append(stamp, '-'), int64(i), 36), '-')
		copy(b[prefix:prefix+min(len(stamp), valueSize)], stamp)
		return b
	}
}

// Preload writes keys k0 … k<keys-1> with random values of valueSize bytes
// into the KV v2 mount, concurrency at a time.
func (v *Vigil) Preload(ctx context.Context, mount string, keys, valueSize, concurrency int) error {
	return ForEach(ctx, keys, concurrency, func(ctx context.Context, i int) error {
		return v.Write(ctx, "/v1/"+mount+"/data/k"+strconv.Itoa(i), KVWriteBody(RandomPrintable(valueSize)))
	})
}

// RunAll runs each target in turn with o, each with its own client and
// after a garbage collection, and stops at the first error: RunRounds with
// a single round.
func RunAll(ctx context.Context, targets []Target, o Options) ([]Result, error) {
	rr, err := RunRounds(ctx, targets, o, 1)
	return rr.Results, err
}

// standIn returns a copy of h with every X-Vault-Token value replaced by
// as many 'x's: a header as long as h, carrying no credential.
func standIn(h http.Header) http.Header {
	c := h.Clone()
	for i, v := range c.Values("X-Vault-Token") {
		c["X-Vault-Token"][i] = strings.Repeat("x", len(v))
	}
	return c
}
