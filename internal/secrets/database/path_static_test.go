package database

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// staticUser creates the database user a static role manages, able to
// read the features table, and returns its name and password.
func (e *engine) staticUser() (user, password string) {
	e.t.Helper()
	e.db.Exec(e.t, "CREATE TABLE IF NOT EXISTS features (id int)")
	user, password = e.db.CreateRole(e.t, "")
	e.db.Exec(e.t, `GRANT SELECT ON features TO "`+user+`"`)
	return user, password
}

// staticRole writes static-roles/<name> for user with extra JSON fields.
func (e *engine) staticRole(name, user, extra string) {
	e.t.Helper()
	e.must(logical.UpdateOperation, "static-roles/"+name, fmt.Sprintf(`{"db_name":"ml","username":%q,%s}`, user, extra))
}

// staticCreds reads static-creds/<name>.
func (e *engine) staticCreds(name string) (user, password string, data map[string]any) {
	e.t.Helper()
	data = e.must(logical.ReadOperation, "static-creds/"+name, "").Data
	user, _ = data["username"].(string)
	password, _ = data["password"].(string)
	return user, password, data
}

// works fails the test unless user logs in with password and can read
// what the role's user may read.
func (e *engine) works(user, password string) {
	e.t.Helper()
	if err := e.db.RunAs(e.t, user, password, "SELECT * FROM features"); err != nil {
		e.t.Fatalf("%s cannot log in and read with its password: %v", user, err)
	}
}

// fails fails the test if user logs in with password.
func (e *engine) fails(user, password string) {
	e.t.Helper()
	if err := e.db.RunAs(e.t, user, password, "SELECT 1"); err == nil {
		e.t.Fatalf("%s still logs in with an old password", user)
	}
}

// periodic runs the engine's periodic work, as the core's scheduler does,
// and returns when it next has work.
func (e *engine) periodic() time.Time {
	e.t.Helper()
	next, err := e.b.Periodic(e.t.Context(), e.storage())
	if err != nil {
		e.t.Fatalf("Periodic: %v", err)
	}
	return next
}

// rfc3339 is how static reads write a time.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// wantFields checks fields of a read's data, as fmt prints them.
func wantFields(t *testing.T, what string, data map[string]any, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := fmt.Sprint(data[k]); got != v {
			t.Errorf("%s: %s = %s, want %s", what, k, got, v)
		}
	}
}

// TestStaticRole: creating a static role rotates the user's password at
// once (the old one stops working, the one static-creds returns works);
// rotate-role rotates again; an update keeps the password; deleting the
// role stops its rotations and leaves the user as it is. The password is
// in storage and in the static-creds read, nowhere else.
func TestStaticRole(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", "")
	user, pw0 := e.staticUser()
	e.refused(logical.ListOperation, "static-roles/", "", 404, "")

	e.staticRole("svc", user, `"rotation_period":"1h"`)
	if e.wakes.Load() == 0 {
		t.Error("writing a static role did not wake the periodic work")
	}
	e.fails(user, pw0)
	got, pw1, data := e.staticCreds("svc")
	if got != user || len(pw1) != passwordLength {
		t.Fatalf("static-creds: user %q, password of %d characters", got, len(pw1))
	}
	e.works(user, pw1)
	wantFields(t, "static-creds", data, map[string]string{
		"last_vault_rotation": rfc3339(e.start), "rotation_period": "3600", "ttl": "3600", "rotation_strategy": "in_place",
	})
	if _, ok := data["rotation_schedule"]; ok {
		t.Error("static-creds of a role with a period shows rotation_schedule")
	}
	raw, err := e.s.Get(t.Context(), "static-role/svc")
	if err != nil || !strings.Contains(string(raw), pw1) {
		t.Fatalf("the password is not stored with the role: %v", err)
	}

	role := e.must(logical.ReadOperation, "static-roles/svc", "").Data
	wantFields(t, "static-roles", role, map[string]string{
		"db_name": "ml", "username": user, "rotation_period": "3600", "rotation_strategy": "in_place", "credential_type": "password",
		"rotation_statements": "[]", "skip_import_rotation": "false", "last_vault_rotation": rfc3339(e.start),
	})
	noPassword(t, fmt.Sprint(role), pw0, pw1)
	if keys := e.must(logical.ListOperation, "static-roles/", "").Data["keys"]; fmt.Sprint(keys) != "[svc]" {
		t.Errorf("list = %v", keys)
	}
	e.refused(logical.ListOperation, "roles/", "", 404, "")

	// The ttl counts down on the clock; rotate-role starts the period again.
	e.clk.Advance(10 * time.Minute)
	if _, _, data := e.staticCreds("svc"); fmt.Sprint(data["ttl"]) != "3000" {
		t.Errorf("ttl 10 minutes after the rotation = %v, want 3000", data["ttl"])
	}
	e.must(logical.UpdateOperation, "rotate-role/svc", "")
	_, pw2, data := e.staticCreds("svc")
	e.fails(user, pw1)
	e.works(user, pw2)
	wantFields(t, "after rotate-role", data, map[string]string{"last_vault_rotation": rfc3339(e.clk.Now()), "ttl": "3600"})

	// An update changes the timing and keeps the password.
	e.must(logical.UpdateOperation, "static-roles/svc", `{"rotation_period":"2h"}`)
	if _, pw, data := e.staticCreds("svc"); pw != pw2 || fmt.Sprint(data["rotation_period"]) != "7200" || fmt.Sprint(data["ttl"]) != "7200" {
		t.Errorf("after an update: password kept %v, %v", pw == pw2, data)
	}
	e.works(user, pw2)
	e.must(logical.UpdateOperation, "static-roles/svc", `{"rotation_schedule":"0 0 * * *","rotation_window":"2h"}`)
	role = e.must(logical.ReadOperation, "static-roles/svc", "").Data
	wantFields(t, "after a change to a schedule", role, map[string]string{"rotation_schedule": "0 0 * * *", "rotation_window": "7200"})
	if _, ok := role["rotation_period"]; ok {
		t.Error("a role changed to a schedule still shows rotation_period")
	}

	// Deleted: no more rotations; the user keeps its last password.
	e.must(logical.DeleteOperation, "static-roles/svc", "")
	e.refused(logical.ReadOperation, "static-creds/svc", "", 400, "unknown static role: svc")
	e.refused(logical.UpdateOperation, "rotate-role/svc", "", 400, "unknown static role: svc")
	e.clk.Advance(48 * time.Hour)
	if next := e.periodic(); !next.IsZero() {
		t.Errorf("periodic work without static roles asks to run at %v", next)
	}
	e.works(user, pw2)
	noPassword(t, e.logs.String(), pw0, pw1, pw2)
}

// TestStaticRoleSchedules: rotations by period and by cron schedule run
// in the engine's periodic work when due and not before; one whose
// schedule's rotation window was missed waits for the next time; a new
// backend over the same storage (a restart) picks the schedules up and
// rotates what it missed at once.
func TestStaticRoleSchedules(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", "")
	periodUser, _ := e.staticUser()
	cronUser, _ := e.staticUser()
	windowUser, _ := e.staticUser()
	// Five past an hour (HH:05).
	e.clk.Set(e.clk.Now().UTC().Truncate(time.Hour).Add(time.Hour + 5*time.Minute))
	start := e.clk.Now()
	topOfHour := start.Truncate(time.Hour).Add(time.Hour)
	e.staticRole("period", periodUser, `"rotation_period":"90m"`)
	e.staticRole("hourly", cronUser, `"rotation_schedule":"0 * * * *"`)
	// Daily at the hour after next, which may be run within an hour.
	at := topOfHour.Add(time.Hour)
	e.staticRole("daily", windowUser, fmt.Sprintf(`"rotation_schedule":"0 %d * * *","rotation_window":3600`, at.Hour()))
	_, periodPW, _ := e.staticCreds("period")
	_, cronPW, data := e.staticCreds("hourly")
	_, windowPW, _ := e.staticCreds("daily")
	wantFields(t, "static-creds of a cron role", data, map[string]string{
		"rotation_schedule": "0 * * * *", "ttl": fmt.Sprint(seconds(topOfHour.Sub(start).Round(time.Second))),
	})
	if _, ok := data["rotation_window"]; ok {
		t.Error("a role without a window shows rotation_window")
	}

	rotated := func(name, user, old string) string {
		t.Helper()
		_, pw, data := e.staticCreds(name)
		if pw == old {
			t.Fatalf("%s was not rotated at %v", name, e.clk.Now())
		}
		e.fails(user, old)
		e.works(user, pw)
		if got := data["last_vault_rotation"]; got != rfc3339(e.clk.Now()) {
			t.Errorf("%s: last_vault_rotation %v, want %v", name, got, rfc3339(e.clk.Now()))
		}
		return pw
	}
	unchanged := func(name, old string) {
		t.Helper()
		if _, pw, _ := e.staticCreds(name); pw != old {
			t.Fatalf("%s was rotated at %v, before it was due", name, e.clk.Now())
		}
	}

	if next := e.periodic(); !next.Equal(topOfHour) {
		t.Fatalf("periodic work asks to run at %v, want %v", next, topOfHour)
	}
	e.clk.Set(topOfHour.Add(-time.Second))
	e.periodic()
	unchanged("hourly", cronPW)
	e.clk.Set(topOfHour)
	e.periodic()
	cronPW = rotated("hourly", cronUser, cronPW)
	unchanged("period", periodPW)
	unchanged("daily", windowPW)

	e.clk.Set(start.Add(90 * time.Minute))
	next := e.periodic()
	periodPW = rotated("period", periodUser, periodPW)
	if !next.Equal(topOfHour.Add(time.Hour)) {
		t.Errorf("next periodic run at %v, want %v (the hourly and daily roles)", next, topOfHour.Add(time.Hour))
	}

	// A restart just inside the daily role's window: the new backend
	// rotates it, and the hourly one, due since.
	e.b = e.newBackend()
	e.clk.Set(at.Add(59 * time.Minute))
	e.periodic()
	windowPW = rotated("daily", windowUser, windowPW)
	cronPW = rotated("hourly", cronUser, cronPW)
	unchanged("period", periodPW)

	// Down for two days: the period and hourly roles rotate at once, the
	// daily one waits for its next time, its window having passed.
	e.b = e.newBackend()
	e.clk.Set(at.Add(48*time.Hour + 90*time.Minute))
	next = e.periodic()
	rotated("period", periodUser, periodPW)
	rotated("hourly", cronUser, cronPW)
	unchanged("daily", windowPW)
	tomorrow := at.Add(72 * time.Hour)
	if _, _, data := e.staticCreds("daily"); fmt.Sprint(data["ttl"]) != fmt.Sprint(seconds(tomorrow.Sub(e.clk.Now()))) {
		t.Errorf("the daily role's ttl after a missed window is %v, want %v", data["ttl"], seconds(tomorrow.Sub(e.clk.Now())))
	}
	if want := e.clk.Now().UTC().Truncate(time.Hour).Add(time.Hour); !next.Equal(want) {
		t.Errorf("next periodic run at %v, want %v", next, want)
	}
	e.clk.Set(tomorrow)
	e.periodic()
	rotated("daily", windowUser, windowPW)
}

// TestStaticRoleAlternating: an alternating role hands out its user and
// the twin it creates in turn; the credentials read before a rotation
// keep working after it and stop at the next; the twin can do what the
// user can.
func TestStaticRoleAlternating(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", "")
	user, pw0 := e.staticUser()
	twin := user + "_b"
	e.db.DropRoleAtEnd(t, twin)
	e.staticRole("svc", user, `"rotation_period":"1h","rotation_strategy":"alternating"`)
	if !e.db.RoleExists(t, twin) {
		t.Fatal("the twin was not created")
	}
	e.fails(user, pw0)
	u1, pw1, data := e.staticCreds("svc")
	if u1 != user {
		t.Fatalf("first credentials are %s's, want %s's", u1, user)
	}
	e.works(u1, pw1)
	wantFields(t, "static-creds", data, map[string]string{"rotation_strategy": "alternating", "ttl": "3600"})
	role := e.must(logical.ReadOperation, "static-roles/svc", "").Data
	wantFields(t, "static-roles", role, map[string]string{"alternate_username": twin, "current_username": user, "rotation_strategy": "alternating"})

	// A scheduled rotation hands out the twin; the user still works.
	e.clk.Advance(time.Hour)
	e.periodic()
	u2, pw2, _ := e.staticCreds("svc")
	if u2 != twin {
		t.Fatalf("after a rotation the credentials are %s's, want the twin's", u2)
	}
	e.works(u2, pw2)
	e.works(u1, pw1)
	if got := e.must(logical.ReadOperation, "static-roles/svc", "").Data["current_username"]; got != twin {
		t.Errorf("current_username = %v, want %s", got, twin)
	}

	// The next rotation: the user again, with a new password; the
	// credentials read two rotations ago stop working.
	e.must(logical.UpdateOperation, "rotate-role/svc", "")
	u3, pw3, _ := e.staticCreds("svc")
	if u3 != user || pw3 == pw1 {
		t.Fatalf("after two rotations: %s", u3)
	}
	e.fails(u1, pw1)
	e.works(u3, pw3)
	e.works(u2, pw2)

	// The two are interchangeable: what one may do and creates, the other
	// may do and owns.
	e.db.Exec(t, `GRANT INSERT ON features TO "`+user+`"`, `GRANT CREATE ON SCHEMA public TO "`+user+`"`)
	if err := e.db.RunAs(t, twin, pw2, "INSERT INTO features VALUES (1)"); err != nil {
		t.Errorf("the twin cannot do what the user was granted later: %v", err)
	}
	if err := e.db.RunAs(t, twin, pw2, "CREATE TABLE made_by_twin (x int)"); err != nil {
		t.Fatal(err)
	}
	if err := e.db.RunAs(t, user, pw3, "DROP TABLE made_by_twin"); err != nil {
		t.Errorf("the user cannot drop what its twin created: %v", err)
	}

	// The strategy cannot change; nor, for an in-place role, is a twin made.
	e.refused(logical.UpdateOperation, "static-roles/svc", `{"rotation_strategy":"in_place"}`, 400, "cannot change the rotation_strategy")
	other, _ := e.staticUser()
	e.staticRole("plain", other, `"rotation_period":"1h"`)
	if e.db.RoleExists(t, other+"_b") {
		t.Error("an in-place role made a twin")
	}
	noPassword(t, e.logs.String(), pw0, pw1, pw2, pw3)
}

// TestStaticRoleSkipImport: with skip_import_rotation the password is not
// rotated at creation; an alternating role's first rotation then goes to
// the twin, so that the password applications already have works one
// rotation more.
func TestStaticRoleSkipImport(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", "")
	user, pw0 := e.staticUser()
	e.db.DropRoleAtEnd(t, user+"_b")
	e.staticRole("svc", user, `"rotation_period":"1h","rotation_strategy":"alternating","skip_import_rotation":true`)
	e.works(user, pw0)
	u, pw, data := e.staticCreds("svc")
	if u != user || pw != "" || data["last_vault_rotation"] != nil || fmt.Sprint(data["ttl"]) != "3600" {
		t.Fatalf("static-creds before the first rotation: %v", data)
	}
	e.clk.Advance(time.Hour)
	e.periodic()
	u, pw, _ = e.staticCreds("svc")
	if u != user+"_b" {
		t.Fatalf("the first rotation went to %s, want the twin", u)
	}
	e.works(u, pw)
	e.works(user, pw0)
}

// TestStaticRoleAtomicRotation: when the new password cannot be stored,
// the database keeps the old one; a scheduled rotation that fails is
// retried with a backoff, logged without a password, and then succeeds.
func TestStaticRoleAtomicRotation(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", "")
	user, _ := e.staticUser()
	e.staticRole("svc", user, `"rotation_period":"1h"`)
	_, pw1, _ := e.staticCreds("svc")

	e.failPuts.Store(true)
	e.refused(logical.UpdateOperation, "rotate-role/svc", "", 500, "storage unavailable")
	e.works(user, pw1)

	e.clk.Advance(time.Hour)
	now := e.clk.Now()
	if next := e.periodic(); !next.Equal(now.Add(retryMin)) {
		t.Errorf("after a failed rotation the next run is at %v, want %v", next, now.Add(retryMin))
	}
	e.works(user, pw1)
	if !strings.Contains(e.logs.String(), "static role rotation failed") {
		t.Error("the failure was not logged")
	}
	e.clk.Advance(retryMin - time.Second)
	if next := e.periodic(); !next.Equal(now.Add(retryMin)) {
		t.Errorf("backing off, the next run is at %v", next)
	}
	e.clk.Advance(time.Second)
	if next := e.periodic(); !next.Equal(now.Add(3 * retryMin)) {
		t.Errorf("after a second failure the next run is at %v, want %v", next, now.Add(3*retryMin))
	}
	e.failPuts.Store(false)
	e.clk.Advance(2 * retryMin)
	e.periodic()
	_, pw2, _ := e.staticCreds("svc")
	e.fails(user, pw1)
	e.works(user, pw2)
	noPassword(t, e.logs.String(), pw1, pw2)

	// A creation whose rotation cannot be stored stores nothing and
	// leaves no twin behind.
	other, otherPW := e.staticUser()
	e.failPuts.Store(true)
	e.refused(logical.UpdateOperation, "static-roles/alt", fmt.Sprintf(`{"db_name":"ml","username":%q,"rotation_period":60,"rotation_strategy":"alternating"}`, other), 500, "storage unavailable")
	e.failPuts.Store(false)
	e.works(other, otherPW)
	if e.db.RoleExists(t, other+"_b") {
		t.Error("a failed creation left its twin behind")
	}
	e.refused(logical.ReadOperation, "static-roles/alt", "", 404, "")
}

// TestStaticRoleBadInput: mistakes are 400s that say what is wrong and
// hold no password.
func TestStaticRoleBadInput(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", `"allowed_roles":"app-*"`)
	user, pw := e.staticUser()
	e.must(logical.UpdateOperation, "roles/app-dyn", `{"db_name":"ml","creation_statements":"CREATE ROLE \"{{name}}\""}`)
	long := strings.Repeat("u", 62)
	for _, tc := range []struct{ name, role, body, want string }{
		{"unknown database", "app-x", `{"db_name":"nope","username":"%s","rotation_period":60}`, `database "nope" does not exist`},
		{"not allowed", "other", `{"db_name":"ml","username":"%s","rotation_period":60}`, `"other" is not an allowed role`},
		{"no db_name", "app-x", `{"username":"%s","rotation_period":60}`, "db_name is required"},
		{"no username", "app-x", `{"db_name":"ml","rotation_period":60}`, "username is required"},
		{"quote in username", "app-x", `{"db_name":"ml","username":"a\"b","rotation_period":60}`, "must not hold a quote"},
		{"period too short", "app-x", `{"db_name":"ml","username":"%s","rotation_period":"4s"}`, "rotation_period must be 5 seconds or more"},
		{"no timing", "app-x", `{"db_name":"ml","username":"%s"}`, "one of rotation_period or rotation_schedule is required"},
		{"both", "app-x", `{"db_name":"ml","username":"%s","rotation_period":60,"rotation_schedule":"0 * * * *"}`, "exclude each other"},
		{"bad cron", "app-x", `{"db_name":"ml","username":"%s","rotation_schedule":"0 25 * * *"}`, `invalid rotation_schedule "0 25 * * *"`},
		{"six fields", "app-x", `{"db_name":"ml","username":"%s","rotation_schedule":"0 0 0 * * *"}`, "want five fields"},
		{"never", "app-x", `{"db_name":"ml","username":"%s","rotation_schedule":"0 0 30 2 *"}`, "never comes round"},
		{"window with period", "app-x", `{"db_name":"ml","username":"%s","rotation_period":60,"rotation_window":3600}`, "rotation_window is only valid with rotation_schedule"},
		{"window too short", "app-x", `{"db_name":"ml","username":"%s","rotation_schedule":"0 * * * *","rotation_window":60}`, "rotation_window must be 3600 seconds or more"},
		{"strategy", "app-x", `{"db_name":"ml","username":"%s","rotation_period":60,"rotation_strategy":"blue-green"}`, `rotation_strategy must be "in_place" or "alternating"`},
		{"twin too long", "app-x", `{"db_name":"ml","username":"` + long + `","rotation_period":60,"rotation_strategy":"alternating"}`, "too long for the alternating strategy"},
		{"credential type", "app-x", `{"db_name":"ml","username":"%s","rotation_period":60,"credential_type":"rsa_private_key"}`, "credential_type"},
		{"dynamic role's name", "app-dyn", `{"db_name":"ml","username":"%s","rotation_period":60}`, `"app-dyn" is a dynamic role`},
		{"no such user", "app-x", `{"db_name":"ml","username":"no-such-user","rotation_period":60}`, `role "no-such-user" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if strings.Contains(body, "%s") {
				body = fmt.Sprintf(body, user)
			}
			msg := e.refused(logical.UpdateOperation, "static-roles/"+tc.role, body, 400, tc.want)
			noPassword(t, msg, pw, e.db.Password)
		})
	}
	e.works(user, pw) // nothing rotated it
	e.refused(logical.ReadOperation, "static-roles/app-x", "", 404, "")

	// A static role's name is taken for dynamic roles too; the username
	// stays; a role no longer allowed has no credentials.
	e.staticRole("app-svc", user, `"rotation_period":60`)
	e.refused(logical.UpdateOperation, "roles/app-svc", `{"db_name":"ml","creation_statements":"x"}`, 400, `"app-svc" is a static role`)
	e.refused(logical.UpdateOperation, "static-roles/app-svc", `{"username":"someone-else"}`, 400, "cannot change the username")
	e.must(logical.UpdateOperation, "config/ml", `{"allowed_roles":"app-dyn"}`)
	e.refused(logical.ReadOperation, "static-creds/app-svc", "", 400, `"app-svc" is not an allowed role`)
	e.refused(logical.UpdateOperation, "rotate-role/app-svc", "", 400, `"app-svc" is not an allowed role`)
	noPassword(t, e.logs.String(), pw, e.db.Password)
}

// TestStaticRoleEvents: a rotation asked for answers a database/rotate
// event; a scheduled one sends it through SendEvent; both name the role
// and point at static-creds, never at the user or the password.
func TestStaticRoleEvents(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", "")
	user, _ := e.staticUser()
	if resp := e.must(logical.UpdateOperation, "static-roles/svc", fmt.Sprintf(`{"db_name":"ml","username":%q,"rotation_period":"1h"}`, user)); len(resp.Events) != 0 {
		t.Fatalf("creating a role: events %+v", resp.Events)
	}
	_, pw1, _ := e.staticCreds("svc")

	resp := e.must(logical.UpdateOperation, "rotate-role/svc", "")
	want := logical.Event{Type: "database/rotate", Operation: "rotate", Path: "rotate-role/svc", DataPath: "static-creds/svc", Metadata: map[string]string{"name": "svc"}}
	if len(resp.Events) != 1 || fmt.Sprint(resp.Events[0]) != fmt.Sprint(want) {
		t.Fatalf("rotate-role: events %+v", resp.Events)
	}
	_, pw2, _ := e.staticCreds("svc")
	if sent := e.takeSent(); len(sent) != 0 {
		t.Fatalf("sent %+v before any scheduled rotation", sent)
	}

	e.periodic()
	if sent := e.takeSent(); len(sent) != 0 {
		t.Fatalf("a periodic run with nothing due sent %+v", sent)
	}
	e.clk.Advance(time.Hour)
	e.periodic()
	sent := e.takeSent()
	want.Path = "static-creds/svc"
	if len(sent) != 1 || fmt.Sprint(sent[0]) != fmt.Sprint(want) {
		t.Fatalf("scheduled rotation: sent %+v", sent)
	}
	_, pw3, _ := e.staticCreds("svc")
	if pw3 == pw2 {
		t.Fatal("the scheduled rotation did not rotate")
	}
	noPassword(t, fmt.Sprint(resp.Events, sent), pw1, pw2, pw3)
	if strings.Contains(fmt.Sprint(resp.Events, sent), user) {
		t.Fatal("an event names the database user")
	}
}
