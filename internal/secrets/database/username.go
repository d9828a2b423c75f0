package database

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/secrets/database/postgres"
)

// defaultUsernameTemplate is Vault's PostgreSQL default: "v-", eight
// bytes of the token's display name and of the role name, 20 random
// characters and the Unix time, cut to PostgreSQL's 63 bytes.
const defaultUsernameTemplate = `{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}`

// usernameData is what a username template sees.
type usernameData struct {
	DisplayName string
	RoleName    string
}

// usernameTemplate is a parsed username_template.
type usernameTemplate struct {
	tmpl *template.Template
	now  func() time.Time
}

// parseUsernameTemplate parses text ("" is the default) with the
// functions of Vault's username templates. A template that does not
// parse, or fails on sample data, is the caller's mistake (400).
func parseUsernameTemplate(text string, now func() time.Time) (*usernameTemplate, error) {
	if text == "" {
		text = defaultUsernameTemplate
	}
	u := &usernameTemplate{now: now}
	t, err := template.New("username_template").Option("missingkey=error").Funcs(u.funcs()).Parse(text)
	if err != nil {
		return nil, logical.BadRequest("invalid username_template: %v", err)
	}
	u.tmpl = t
	if _, err := u.generate(usernameData{DisplayName: "token", RoleName: "role"}); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *usernameTemplate) funcs() template.FuncMap {
	return template.FuncMap{
		"random":           randomAlphanumeric,
		"truncate":         truncate,
		"truncate_sha256":  truncateSHA256,
		"sha256":           func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) },
		"replace":          func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"uppercase":        strings.ToUpper,
		"lowercase":        strings.ToLower,
		"unix_time":        func() string { return strconv.FormatInt(u.now().Unix(), 10) },
		"unix_time_millis": func() string { return strconv.FormatInt(u.now().UnixMilli(), 10) },
		"timestamp":        func(layout string) string { return u.now().UTC().Format(layout) },
		"uuid":             secret.UUID,
	}
}

// generate renders a user name and checks that it can be put between
// double quotes in SQL and is not cut by PostgreSQL. The display name and
// role name are sanitized first; the checks guard against the template's
// own text.
func (u *usernameTemplate) generate(d usernameData) (string, error) {
	d.DisplayName, d.RoleName = sanitizeName(d.DisplayName), sanitizeName(d.RoleName)
	var buf bytes.Buffer
	if err := u.tmpl.Execute(&buf, d); err != nil {
		return "", logical.BadRequest("username_template failed: %v", err)
	}
	name := strings.TrimSpace(buf.String())
	switch {
	case name == "":
		return "", logical.BadRequest("username_template produced an empty user name")
	case len(name) > postgres.MaxUsernameLen:
		return "", logical.BadRequest("username_template produced a user name of %d bytes; the limit is %d", len(name), postgres.MaxUsernameLen)
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unsafeRune):
		return "", logical.BadRequest("username_template produced a user name with a quote, backslash or control character")
	}
	return name, nil
}

// unsafeRune reports a character a user name must not hold: it could end
// the quoted identifier or literal the statements put it in.
func unsafeRune(r rune) bool {
	return r == '"' || r == '\'' || r == '\\' || r < 0x20 || r == 0x7f
}

// sanitizeName keeps letters, digits and "_.-@" of a display or role name
// and turns anything else into '-'.
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_.-@", r) {
			return r
		}
		return '-'
	}, s)
}

// truncate cuts s to at most n bytes, at a character boundary (Vault cuts
// at the byte, which can split a character PostgreSQL then refuses).
func truncate(n int, s string) (string, error) {
	if n < 0 {
		return "", fmt.Errorf("truncate: negative length %d", n)
	}
	if len(s) <= n {
		return s, nil
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], nil
}

// truncateSHA256 cuts s to n bytes, replacing what is cut with the
// SHA-256 of s when s is longer.
func truncateSHA256(n int, s string) (string, error) {
	if n <= 8 {
		return "", fmt.Errorf("truncate_sha256: length must be more than 8")
	}
	if len(s) <= n {
		return s, nil
	}
	h := sha256.Sum256([]byte(s))
	head, _ := truncate(n-8, s)
	return head + hex.EncodeToString(h[:])[:8], nil
}

const alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomAlphanumeric returns n characters drawn uniformly from letters and
// digits.
func randomAlphanumeric(n int) (string, error) {
	if n < 0 || n > 1024 {
		return "", fmt.Errorf("random: length %d out of range", n)
	}
	return randomFrom(alphanumeric, n), nil
}
