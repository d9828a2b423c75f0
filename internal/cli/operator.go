package cli

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli/output"
	"github.com/vigil-secrets/vigil/internal/secret"
)

func operatorCommands() []*command {
	return []*command{
		operatorInitCommand(),
		operatorUnsealCommand(),
		operatorSealCommand(),
		operatorStepDownCommand(),
		operatorRotateCommand(),
		operatorKeyStatusCommand(),
		operatorGenerateRootCommand(),
		operatorSnapshotCommand(),
		operatorMigrateCommand(),
	}
}

func statusCommand() *command {
	return &command{
		name:     "status",
		synopsis: "Print the server's seal status",
		usage:    "[flags]",
		help:     `Prints whether the server is initialized and sealed. Exits 2 when it is sealed, 1 on error.`,
		run: func(ctx context.Context, c *call) int {
			return c.noArgs(func(cl *api.Client) int {
				st, err := cl.Sys().SealStatus(ctx)
				if err != nil {
					return c.fail("checking seal status", err)
				}
				if code := c.printStatus(ctx, cl, st); code != exitOK {
					return code
				}
				if st.Sealed {
					return exitUsage
				}
				return exitOK
			})
		},
	}
}

// statusOutput is the JSON/YAML form of status: the seal status and the
// HA state.
type statusOutput struct {
	*api.SealStatusResponse
	HAEnabled     bool       `json:"ha_enabled"`
	IsSelf        bool       `json:"is_self,omitempty"`
	ActiveTime    *time.Time `json:"active_time,omitempty"`
	LeaderAddress string     `json:"leader_address,omitempty"`
}

// printStatus prints the seal status, with the HA rows from sys/leader
// (whose failure, "sealed" in particular, is ignored).
func (c *call) printStatus(ctx context.Context, cl *api.Client, st *api.SealStatusResponse) int {
	out := statusOutput{SealStatusResponse: st}
	if l, err := cl.Sys().Leader(ctx); err == nil {
		out.HAEnabled = l.HAEnabled
		out.IsSelf = l.IsSelf
		out.LeaderAddress = l.LeaderAddress
		if l.HAEnabled && !l.ActiveTime.IsZero() {
			out.ActiveTime = &l.ActiveTime
		}
	}
	if code, handled := c.structured(out); handled {
		return code
	}
	rows := []output.Row{{Key: "Seal Type", Value: st.Type}}
	sharesKey := "Total Shares"
	if st.RecoverySeal {
		rows = append(rows, output.Row{Key: "Recovery Seal Type", Value: st.RecoverySealType})
		sharesKey = "Total Recovery Shares"
	}
	rows = append(rows,
		output.Row{Key: "Initialized", Value: st.Initialized},
		output.Row{Key: "Sealed", Value: st.Sealed},
		output.Row{Key: sharesKey, Value: st.N},
		output.Row{Key: "Threshold", Value: st.T})
	if st.Sealed {
		rows = append(rows,
			output.Row{Key: "Unseal Progress", Value: fmt.Sprintf("%d/%d", st.Progress, st.T)},
			output.Row{Key: "Unseal Nonce", Value: st.Nonce})
	}
	rows = append(rows, output.Row{Key: "Version", Value: st.Version})
	if st.BuildDate != "" {
		rows = append(rows, output.Row{Key: "Build Date", Value: st.BuildDate})
	}
	rows = append(rows, output.Row{Key: "Storage Type", Value: st.StorageType})
	if st.ClusterName != "" {
		rows = append(rows, output.Row{Key: "Cluster Name", Value: st.ClusterName})
	}
	if st.ClusterID != "" {
		rows = append(rows, output.Row{Key: "Cluster ID", Value: st.ClusterID})
	}
	rows = append(rows, output.Row{Key: "HA Enabled", Value: out.HAEnabled})
	if out.HAEnabled && !st.Sealed {
		mode := "standby"
		if out.IsSelf {
			mode = "active"
		}
		rows = append(rows, output.Row{Key: "HA Mode", Value: mode})
		if out.LeaderAddress != "" {
			rows = append(rows, output.Row{Key: "Active Node Address", Value: out.LeaderAddress})
		}
	}
	if err := output.WriteKeyValues(c.stdout, rows); err != nil {
		return c.fail("printing the result", err)
	}
	return exitOK
}

func operatorInitCommand() *command {
	return &command{
		name:     "init",
		synopsis: "Initialize a new server",
		usage:    "[flags]",
		help: `Initializes the server: creates the root key and the initial root token.
The keys and the token are printed once, to stdout; store them safely.

With the Shamir seal (no seal block in the server's configuration) the root
key is split into -key-shares unseal keys, of which -key-threshold are
needed to unseal; the server stays sealed afterwards.

With an auto seal (seal "static" or seal "pkcs11") the seal protects the
root key and the server unseals itself, now and at every start. Init
prints -recovery-shares recovery keys instead, of which -recovery-threshold
authorize operations such as generate-root; they do not unseal.

With -status, only reports whether the server is initialized: exit 0 when
it is, 2 when it is not.`,
		run: func(ctx context.Context, c *call) int {
			shares := c.fs.Int("key-shares", 5, "Number of unseal key `shares` to create (Shamir seal).")
			threshold := c.fs.Int("key-threshold", 3, "Number of shares needed to unseal (`threshold`).")
			recShares := c.fs.Int("recovery-shares", 5, "Number of recovery key `shares` to create (auto seals).")
			recThreshold := c.fs.Int("recovery-threshold", 3, "Number of recovery key shares needed to authorize an operation (`threshold`).")
			statusOnly := c.fs.Bool("status", false, "Only report whether the server is initialized.")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(0, 0); !ok {
				return code
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			if *statusOnly {
				done, err := cl.Sys().InitStatus(ctx)
				if err != nil {
					return c.fail("checking initialization status", err)
				}
				if !done {
					fmt.Fprintln(c.stdout, "Vigil is not initialized")
					return exitUsage
				}
				fmt.Fprintln(c.stdout, "Vigil is initialized")
				return exitOK
			}
			// Like the Vault CLI, look at the seal first: it decides which
			// shares apply. An unreachable server fails here.
			st, err := cl.Sys().SealStatus(ctx)
			if err != nil {
				return c.fail("initializing", err)
			}
			// The pair that does not apply is sent only when given, so that
			// the server refuses it with Vault's message.
			unseal := sharesFlags{"key", *shares, *threshold, c.isSet("key-shares") || c.isSet("key-threshold")}
			recovery := sharesFlags{"recovery", *recShares, *recThreshold, c.isSet("recovery-shares") || c.isSet("recovery-threshold")}
			applies, other := &unseal, &recovery
			if st.RecoverySeal {
				applies, other = other, applies
			}
			if code, ok := c.checkShares(*applies); !ok {
				return code
			}
			if !other.set {
				other.shares, other.threshold = 0, 0
			}
			req := api.InitRequest{SecretShares: unseal.shares, SecretThreshold: unseal.threshold, RecoveryShares: recovery.shares, RecoveryThreshold: recovery.threshold}
			resp, err := cl.Sys().Init(ctx, req)
			if err != nil {
				return c.fail("initializing", err)
			}
			return c.printInit(resp, req, st.Type)
		},
	}
}

// sharesFlags is a pair of init flags: -key-shares and -key-threshold, or
// -recovery-shares and -recovery-threshold.
type sharesFlags struct {
	prefix            string
	shares, threshold int
	set               bool // either flag was given
}

// checkShares checks a pair as the server would, to report a mistake
// before any key exists.
func (c *call) checkShares(f sharesFlags) (int, bool) {
	sharesFlag, thresholdFlag := "-"+f.prefix+"-shares", "-"+f.prefix+"-threshold"
	switch {
	case f.shares < 1 || f.shares > 255:
		return c.usageError("%s must be between 1 and 255", sharesFlag), false
	case f.threshold < 1 || f.threshold > f.shares:
		return c.usageError("%s must be between 1 and %s (%d)", thresholdFlag, sharesFlag, f.shares), false
	case f.shares > 1 && f.threshold == 1:
		return c.usageError("%s must be at least 2 when there are several shares", thresholdFlag), false
	}
	return 0, true
}

// initOutput is the JSON/YAML form of operator init: the server's answer
// plus the field names the Vault CLI prints, so scripts reading
// .unseal_keys_b64, .recovery_keys_b64 or .root_token work unchanged.
type initOutput struct {
	Keys                  []string `json:"keys"`
	KeysB64               []string `json:"keys_base64"`
	UnsealKeysB64         []string `json:"unseal_keys_b64"`
	UnsealKeysHex         []string `json:"unseal_keys_hex"`
	UnsealShares          int      `json:"unseal_shares"`
	UnsealThreshold       int      `json:"unseal_threshold"`
	RecoveryKeysB64       []string `json:"recovery_keys_b64"`
	RecoveryKeysHex       []string `json:"recovery_keys_hex"`
	RecoveryKeysShares    int      `json:"recovery_keys_shares"`
	RecoveryKeysThreshold int      `json:"recovery_keys_threshold"`
	RootToken             string   `json:"root_token"`
}

func (c *call) printInit(r *api.InitResponse, req api.InitRequest, sealType string) int {
	if c.fmt != output.Table || c.g.field != "" {
		out := initOutput{
			Keys: nonNil(r.Keys), KeysB64: nonNil(r.KeysB64),
			UnsealKeysB64: nonNil(r.KeysB64), UnsealKeysHex: nonNil(r.Keys),
			UnsealShares: req.SecretShares, UnsealThreshold: req.SecretThreshold,
			RecoveryKeysB64: nonNil(r.RecoveryKeysB64), RecoveryKeysHex: nonNil(r.RecoveryKeys),
			RecoveryKeysShares: req.RecoveryShares, RecoveryKeysThreshold: req.RecoveryThreshold,
			RootToken: r.RootToken,
		}
		if len(r.Keys) == 0 {
			// As Vault says of a seal that stores its key itself.
			out.UnsealShares, out.UnsealThreshold = 1, 1
		}
		code, _ := c.structured(out)
		return code
	}
	w := c.stdout
	printKeys(w, "Unseal Key", r.Keys, r.KeysB64)
	printKeys(w, "Recovery Key", r.RecoveryKeys, r.RecoveryKeysB64)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Initial Root Token: %s\n", r.RootToken)
	fmt.Fprintln(w)
	if len(r.RecoveryKeys) > 0 {
		fmt.Fprintf(w, "Vigil is initialized with %d recovery key shares and a recovery key threshold\n", req.RecoveryShares)
		fmt.Fprintf(w, "of %d. The %s seal protects the root key: the server unsealed itself and\n", req.RecoveryThreshold, sealType)
		fmt.Fprintln(w, "does so at every start. Recovery keys do not unseal it; give each to a")
		fmt.Fprintf(w, "different trusted person: %d of them generate a new root token (vigil operator\n", req.RecoveryThreshold)
		fmt.Fprintln(w, "generate-root), or unseal the server after `vigil operator seal`.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Whoever holds the seal's key (the key file, the HSM) can open the data:")
		fmt.Fprintln(w, "protect it as you would the data. Use the root token to set up policies and")
		fmt.Fprintln(w, "other auth methods, then revoke it.")
		return exitOK
	}
	fmt.Fprintf(w, "Vigil is initialized with %d key shares and a key threshold of %d.\n", req.SecretShares, req.SecretThreshold)
	fmt.Fprintln(w, "Give each key share to a different trusted person and keep them apart:")
	fmt.Fprintf(w, "after every restart or seal, %d of them are needed (vigil operator unseal)\n", req.SecretThreshold)
	fmt.Fprintln(w, "before the server can answer requests.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Vigil does not keep the root key. If fewer than the threshold of shares")
	fmt.Fprintln(w, "survive, the data can never be unsealed again. Use the root token to set up")
	fmt.Fprintln(w, "policies and other auth methods, then revoke it.")
	return exitOK
}

// printKeys prints numbered key shares, in base64 when the server sent it.
func printKeys(w io.Writer, label string, hexKeys, b64Keys []string) {
	keys := b64Keys
	if len(keys) != len(hexKeys) {
		keys = hexKeys
	}
	for i, k := range keys {
		fmt.Fprintf(w, "%s %d: %s\n", label, i+1, k)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func operatorUnsealCommand() *command {
	return &command{
		name:     "unseal",
		synopsis: "Submit an unseal key share",
		usage:    "[flags] [KEY | -]",
		help: `Submits one unseal key share. Without KEY, or with "-", the key is read as
one line from stdin (not echoed on a terminal), which keeps it out of the
shell history. -reset discards the shares submitted so far.`,
		run: func(ctx context.Context, c *call) int {
			reset := c.fs.Bool("reset", false, "Discard the unseal key shares submitted so far.")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(0, 1); !ok {
				return code
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			var st *api.SealStatusResponse
			var err error
			if *reset {
				if len(c.args) > 0 {
					return c.usageError("-reset takes no key")
				}
				st, err = cl.Sys().UnsealReset(ctx)
			} else {
				var key secret.String
				if len(c.args) == 1 && c.args[0] != "-" {
					key = secret.NewString(c.args[0])
				} else {
					key, err = c.readSecretLine(ctx, "Unseal Key (will be hidden): ")
					if err != nil {
						return c.fail("reading the unseal key", err)
					}
				}
				if key.IsEmpty() {
					return c.usageError("no unseal key given")
				}
				if !validShare(key.Reveal()) {
					return c.usageError("the unseal key must be a hex or base64 string")
				}
				st, err = cl.Sys().Unseal(ctx, key.Reveal())
			}
			if err != nil {
				return c.fail("unsealing", err)
			}
			return c.printStatus(ctx, cl, st)
		},
	}
}

// validShare is a cheap local check that a key looks like hex or base64;
// the server checks it for real.
func validShare(k string) bool {
	if _, err := hex.DecodeString(k); err == nil {
		return true
	}
	for _, r := range k {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '+', r == '/', r == '=', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

func operatorSealCommand() *command {
	return &command{
		name:     "seal",
		synopsis: "Seal the server",
		usage:    "[flags]",
		help:     `Seals the server: it forgets its keys and answers 503 until unsealed again. Needs a root token.`,
		run: func(ctx context.Context, c *call) int {
			return c.noArgs(func(cl *api.Client) int {
				if err := cl.Sys().Seal(ctx); err != nil {
					return c.fail("sealing", err)
				}
				return c.success("Vigil is sealed.")
			})
		},
	}
}

func operatorStepDownCommand() *command {
	return &command{
		name:     "step-down",
		synopsis: "Make the active server hand over to a standby",
		usage:    "[flags]",
		help: `Makes the active server of an HA cluster give up the leader lock: a standby
becomes active, and this server stands by (it campaigns again once another
server is active, or after 10 s if none takes over).
Sent to a standby, the request is forwarded to the active server. Without HA
it changes nothing. Needs sudo on sys/step-down.`,
		run: func(ctx context.Context, c *call) int {
			return c.noArgs(func(cl *api.Client) int {
				if err := cl.Sys().StepDown(ctx); err != nil {
					return c.fail("stepping down", err)
				}
				return c.success("The active server is stepping down.")
			})
		},
	}
}

func operatorRotateCommand() *command {
	return &command{
		name:     "rotate",
		synopsis: "Rotate the barrier encryption key",
		usage:    "[flags]",
		help:     `Adds a new term to the barrier keyring; new writes use it, old data stays readable.`,
		run: func(ctx context.Context, c *call) int {
			return c.noArgs(func(cl *api.Client) int {
				if err := cl.Sys().Rotate(ctx); err != nil {
					return c.fail("rotating the key", err)
				}
				ks, err := cl.Sys().KeyStatus(ctx)
				if err != nil {
					return c.fail("reading the key status", err)
				}
				if c.fmt == output.Table && c.g.field == "" {
					fmt.Fprintln(c.stdout, "Success! Rotated key")
					fmt.Fprintln(c.stdout)
				}
				return c.printKeyStatus(ks)
			})
		},
	}
}

func operatorKeyStatusCommand() *command {
	return &command{
		name:     "key-status",
		synopsis: "Print the barrier key status",
		usage:    "[flags]",
		help:     `Prints the current barrier key term, its install time and the encryption count.`,
		run: func(ctx context.Context, c *call) int {
			return c.noArgs(func(cl *api.Client) int {
				ks, err := cl.Sys().KeyStatus(ctx)
				if err != nil {
					return c.fail("reading the key status", err)
				}
				return c.printKeyStatus(ks)
			})
		},
	}
}

func (c *call) printKeyStatus(ks *api.KeyStatus) int {
	if code, handled := c.structured(ks); handled {
		return code
	}
	rows := []output.Row{
		{Key: "Key Term", Value: strconv.Itoa(ks.Term)},
		{Key: "Install Time", Value: ks.InstallTime.UTC().Format(time.RFC1123)},
		{Key: "Encryption Count", Value: strconv.FormatInt(ks.Encryptions, 10)},
	}
	if err := output.WriteKeyValues(c.stdout, rows); err != nil {
		return c.fail("printing the result", err)
	}
	return exitOK
}

// noArgs runs the body of a command that takes flags but no arguments,
// with a client, after parsing.
func (c *call) noArgs(body func(cl *api.Client) int) int {
	if code, done := c.parse(); done {
		return code
	}
	if code, ok := c.nargs(0, 0); !ok {
		return code
	}
	cl, code, ok := c.client()
	if !ok {
		return code
	}
	return body(cl)
}
