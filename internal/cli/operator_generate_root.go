package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/cli/output"
	"github.com/vigil-secrets/vigil/internal/secret"
)

func operatorGenerateRootCommand() *command {
	return &command{
		name:     "generate-root",
		synopsis: "Generate a new root token from a threshold of key shares",
		usage:    "[flags] [KEY | -]",
		help: `Generates a new root token when a threshold of share holders agree: unseal
key holders with the Shamir seal, recovery key holders with an auto seal.
The token comes back encoded with a one-time password (OTP), so that only
whoever started the generation can read it.

  Make an OTP, and start:
      vigil operator generate-root -generate-otp
      vigil operator generate-root -init -otp=<OTP>

  Each share holder submits a key (prompted, hidden; or KEY, or "-" for a
  line on stdin, with -nonce=<nonce printed by -init>):
      vigil operator generate-root

  The last key prints the encoded token; decode it:
      vigil operator generate-root -decode=<encoded token> -otp=<OTP>

-init without -otp has the server make the OTP and print it once. -status
prints the attempt's progress and -cancel discards it. The token is
encoded as Vault encodes it: vault operator generate-root -decode also
reads it. PGP-encrypted tokens (-pgp-key) are not supported.`,
		run: func(ctx context.Context, c *call) int {
			init := c.fs.Bool("init", false, "Start a root token generation.")
			cancel := c.fs.Bool("cancel", false, "Discard the generation in progress and its key shares.")
			status := c.fs.Bool("status", false, "Print the progress of the generation without submitting a key.")
			decode := c.fs.String("decode", "", "Decode this `encoded token` with -otp, and print the root token.")
			otp := c.fs.String("otp", "", "The one-time password for -init or -decode.")
			genOTP := c.fs.Bool("generate-otp", false, "Print a one-time password of the length the server needs.")
			pgpKey := c.fs.String("pgp-key", "", "Not supported: Vigil encodes the token with an OTP only.")
			nonce := c.fs.String("nonce", "", "The generation's `nonce` (printed by -init), needed with KEY or -.")
			if code, done := c.parse(); done {
				return code
			}
			if code, ok := c.nargs(0, 1); !ok {
				return code
			}
			modes := 0
			for _, on := range []bool{*init, *cancel, *status, *decode != "", *genOTP} {
				if on {
					modes++
				}
			}
			switch {
			case modes > 1:
				return c.usageError("use one of -init, -cancel, -status, -decode and -generate-otp")
			case modes == 1 && len(c.args) > 0:
				return c.usageError("a key is submitted on its own, without -init, -cancel, -status, -decode or -generate-otp")
			case *pgpKey != "":
				return c.usageError("-pgp-key is not supported: start with -otp (make one with -generate-otp), or with -init alone to have the server make one")
			case *decode != "":
				return c.decodeRootToken(*decode, *otp)
			}
			cl, code, ok := c.client()
			if !ok {
				return code
			}
			switch {
			case *genOTP:
				return c.generateOTP(ctx, cl)
			case *cancel:
				if err := cl.Sys().GenerateRootCancel(ctx); err != nil {
					return c.fail("canceling root token generation", err)
				}
				return c.success("Root token generation canceled (if it was started)")
			case *init:
				st, err := cl.Sys().GenerateRootInit(ctx, *otp, "")
				if err != nil {
					return c.fail("starting root token generation", err)
				}
				return c.printGenerateRoot(st)
			case *status:
				st, err := cl.Sys().GenerateRootStatus(ctx)
				if err != nil {
					return c.fail("reading root token generation status", err)
				}
				return c.printGenerateRoot(st)
			}
			return c.provideRootKey(ctx, cl, *nonce)
		},
	}
}

// decodeRootToken prints the root token an encoded token and its OTP hold.
// It needs no server.
func (c *call) decodeRootToken(encoded, otp string) int {
	if otp == "" {
		return c.usageError("missing otp: use -otp to supply it")
	}
	tok, err := api.DecodeRootToken(encoded, otp)
	if err != nil {
		return c.fail("decoding the root token", usageErr("%v", err))
	}
	if code, handled := c.structured(map[string]string{"token": tok}); handled {
		return code
	}
	fmt.Fprintln(c.stdout, tok)
	return exitOK
}

// generateOTP prints an OTP of the length the server's tokens have.
func (c *call) generateOTP(ctx context.Context, cl *api.Client) int {
	st, err := cl.Sys().GenerateRootStatus(ctx)
	if err != nil {
		return c.fail("reading root token generation status", err)
	}
	if st.OTPLength <= 0 {
		return c.fail("generating an OTP", fmt.Errorf("the server did not say how long the OTP must be"))
	}
	otp := secret.RandomBase62(st.OTPLength)
	if code, handled := c.structured(map[string]any{"otp": otp, "otp_length": st.OTPLength}); handled {
		return code
	}
	fmt.Fprintln(c.stdout, otp)
	return exitOK
}

// provideRootKey submits one key share: KEY, a line of stdin ("-"), or
// typed at a hidden prompt, for which the nonce is the attempt's.
func (c *call) provideRootKey(ctx context.Context, cl *api.Client, nonce string) int {
	st, err := cl.Sys().GenerateRootStatus(ctx)
	if err != nil {
		return c.fail("reading root token generation status", err)
	}
	if !st.Started {
		fmt.Fprintln(c.stderr, `Error: no root token generation is in progress. Start one with "vigil operator generate-root -init".`)
		fmt.Fprintf(c.stderr, "An OTP of your own must be %d characters long (vigil operator generate-root -generate-otp).\n", st.OTPLength)
		return exitError
	}
	var key secret.String
	switch {
	case len(c.args) == 1 && c.args[0] != "-":
		key = secret.NewString(c.args[0])
	case len(c.args) == 1:
		if key, err = c.readSecretLine(ctx, ""); err != nil {
			return c.fail("reading the key", err)
		}
	default:
		fmt.Fprintf(c.stderr, "Operation nonce: %s\n", st.Nonce)
		if key, err = c.readSecretLine(ctx, "Key (will be hidden): "); err != nil {
			return c.fail("reading the key", err)
		}
		nonce = st.Nonce
	}
	switch {
	case key.IsEmpty():
		return c.usageError("no key given")
	case nonce == "":
		return c.usageError("missing nonce: specify it with -nonce (vigil operator generate-root -status prints it)")
	}
	st, err = cl.Sys().GenerateRootUpdate(ctx, key.Reveal(), nonce)
	if err != nil {
		return c.fail("submitting the key", err)
	}
	return c.printGenerateRoot(st)
}

// printGenerateRoot prints an attempt's state as Vault's CLI does.
func (c *call) printGenerateRoot(st *api.GenerateRootStatusResponse) int {
	if code, handled := c.structured(st); handled {
		return code
	}
	rows := []output.Row{
		{Key: "Nonce", Value: st.Nonce},
		{Key: "Started", Value: st.Started},
		{Key: "Progress", Value: strconv.Itoa(st.Progress) + "/" + strconv.Itoa(st.Required)},
		{Key: "Complete", Value: st.Complete},
	}
	if st.EncodedToken != "" {
		rows = append(rows, output.Row{Key: "Encoded Token", Value: st.EncodedToken})
	}
	if st.OTP != "" {
		fmt.Fprintln(c.stderr, "The server generated a one-time password (the OTP row): it is shown once, and")
		fmt.Fprintln(c.stderr, "decodes the new root token. Keep it safe until then.")
		rows = append(rows, output.Row{Key: "OTP", Value: st.OTP})
	}
	if st.OTPLength != 0 {
		rows = append(rows, output.Row{Key: "OTP Length", Value: st.OTPLength})
	}
	if err := output.WriteKeyValues(c.stdout, rows); err != nil {
		return c.fail("printing the result", err)
	}
	if st.Complete {
		fmt.Fprintln(c.stderr, "\nDecode the token with: vigil operator generate-root -decode=<encoded token> -otp=<OTP>")
	}
	return exitOK
}
