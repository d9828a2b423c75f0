package dbplugin

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRender(t *testing.T) {
	exp := time.Date(2026, 3, 1, 12, 30, 0, 0, time.FixedZone("CET", 3600))
	got := Render(`CREATE ROLE "{{name}}" PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; -- {{username}} {{other}}`,
		Vars{Name: "v-x", Password: "p-1", Expiration: exp})
	want := `CREATE ROLE "v-x" PASSWORD 'p-1' VALID UNTIL '2026-03-01 11:30:00+0000'; -- v-x {{other}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := Render("{{expiration}}", Vars{}); got != "{{expiration}}" {
		t.Errorf("an unset expiration was filled: %q", got)
	}
}

func TestRedact(t *testing.T) {
	pw := "p@ss word/ü"
	msg := "a " + pw + " b " + url.QueryEscape(pw) + " c " + url.PathEscape(pw) + " d " + EscapeURL(pw)
	got := Redact(msg, "", pw)
	if strings.Contains(got, "ss") || strings.Count(got, redacted) != 4 {
		t.Errorf("Redact = %q", got)
	}
	if u, err := url.Parse("postgres://u:" + EscapeURL(pw) + "@h/db"); err != nil {
		t.Error(err)
	} else if p, _ := u.User.Password(); p != pw {
		t.Errorf("EscapeURL does not round-trip: %q", p)
	}
}

func TestStatementError(t *testing.T) {
	e := &StatementError{Kind: "creation", Index: 2, Statement: strings.Repeat("x", 300), Msg: "boom"}
	got := e.Error()
	if !strings.HasPrefix(got, `creation statement 2 ("xxx`) || !strings.Contains(got, `...") failed: boom`) || len(got) > 260 {
		t.Errorf("Error() = %q", got)
	}
}
