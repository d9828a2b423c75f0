package database

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secrets/database/dbplugin"
	"github.com/vigil-secrets/vigil/internal/secrets/database/postgres"
)

func (b *backend) pathStaticRoleList() *framework.Path {
	return listPath(`static-roles/?`, staticRolePrefix, "List the static roles.", "List the names of the static roles.")
}

func (b *backend) pathStaticRole() *framework.Path {
	return &framework.Path{
		Pattern: `static-roles/` + namePattern,
		Fields: map[string]*framework.FieldSchema{
			"name":     nameField("static role"),
			"db_name":  {Type: framework.TypeString, Description: "The connection (config/<db_name>) through which the user's password is set."},
			"username": {Type: framework.TypeString, Description: "The existing database user the role manages; it cannot be changed."},
			"rotation_period": {Type: framework.TypeDurationSecond,
				Description: "How often the password is rotated (5 seconds or more); excludes rotation_schedule."},
			"rotation_schedule": {Type: framework.TypeString,
				Description: `When the password is rotated: a cron schedule of five fields ("0 0 * * SAT"), in UTC unless prefixed with CRON_TZ=<zone>; excludes rotation_period.`},
			"rotation_window": {Type: framework.TypeDurationSecond,
				Description: "With rotation_schedule: how long after each scheduled time a rotation may still run (1 hour or more); one missed is skipped until the next time. Without, a missed rotation runs as soon as it can."},
			"rotation_statements": {Type: framework.TypeStringSlice,
				Description: `Statements that set the password ({{name}} or {{username}}, {{password}}); by default ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'.`},
			"rotation_strategy": {Type: framework.TypeString,
				Description: `"in_place" (the default): the user gets a new password at each rotation. "alternating": the role manages the user and <username>_b (created if missing, acting as the user); each rotation sets a new password on the one not handed out and hands it out, so that credentials read before a rotation work until the next one. It cannot be changed.`},
			"skip_import_rotation": {Type: framework.TypeBool,
				Description: "Do not rotate the password when the role is created: static-creds has no password until the first rotation."},
			"credential_type": {Type: framework.TypeString, Default: "password",
				Description: `The kind of credential managed; only "password".`},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.handleStaticRoleRead, Summary: "Read a static role (never its password)."},
			logical.CreateOperation: {Handler: b.handleStaticRoleWrite, Summary: "Create a static role; its password is rotated at once."},
			logical.UpdateOperation: {Handler: b.handleStaticRoleWrite, Summary: "Change a static role; fields not given keep their values."},
			logical.DeleteOperation: {Handler: b.handleStaticRoleDelete, Summary: "Delete a static role: its rotations stop; the database user is left as it is."},
		},
		ExistenceCheck: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
			r, err := loadStaticRole(ctx, req.Storage, d.String("name"))
			return r != nil, err
		},
		HelpSynopsis: "Create, read and delete a static role: an existing database user whose password the engine rotates.",
		HelpDescription: "A static role names an existing database user and when its password is rotated, by period or by " +
			"schedule. The password is kept only in the engine's encrypted storage and read from static-creds/<name>.",
	}
}

func (b *backend) handleStaticRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := loadStaticRole(ctx, req.Storage, d.String("name"))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.ErrNotFound
	}
	data := map[string]any{
		"db_name":              r.DBName,
		"username":             r.Username,
		"rotation_statements":  nonNil(r.RotationStatements),
		"rotation_strategy":    r.Strategy,
		"skip_import_rotation": r.SkipImportRotation,
		"credential_type":      "password",
	}
	r.addTiming(data)
	if r.Strategy == strategyAlternating {
		data["alternate_username"] = r.twin()
		data["current_username"] = r.CurrentUser
	}
	return &logical.Response{Data: data}, nil
}

// addTiming adds what static-roles and static-creds reads say of the
// role's rotations, as Vault's: the last one, and the period or the
// schedule (with its window).
func (r *staticRole) addTiming(data map[string]any) {
	if !r.LastRotation.IsZero() {
		data["last_vault_rotation"] = r.LastRotation.UTC().Format(time.RFC3339Nano)
	}
	if r.RotationPeriod > 0 {
		data["rotation_period"] = seconds(r.RotationPeriod)
		return
	}
	data["rotation_schedule"] = r.RotationSchedule
	if r.RotationWindow > 0 {
		data["rotation_window"] = seconds(r.RotationWindow)
	}
}

func (b *backend) handleStaticRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	if err := b.writeStaticRole(ctx, req.Storage, name, d); err != nil {
		return nil, err
	}
	// Its next rotation may come before the mount's next periodic run.
	b.wake()
	return nil, nil
}

func (b *backend) writeStaticRole(ctx context.Context, s logical.Storage, name string, d *framework.FieldData) error {
	defer b.roleLocks.lock(name)()
	if dyn, err := loadRole(ctx, s, name); err != nil || dyn != nil {
		if err != nil {
			return err
		}
		return nameTaken(name, "dynamic")
	}
	r, err := loadStaticRole(ctx, s, name)
	if err != nil {
		return err
	}
	create := r == nil
	now := b.now()
	if create {
		r = &staticRole{Strategy: strategyInPlace, CreatedAt: now}
	}
	if err := r.update(d, create, now); err != nil {
		return err
	}
	c, err := roleConfig(ctx, s, name, r.DBName)
	if err != nil {
		return err
	}
	var twinCreated bool
	if r.Strategy == strategyAlternating {
		if twinCreated, err = b.ensureTwin(ctx, c, r); err != nil {
			return err
		}
	}
	b.retries.clear(name)
	if create && !r.SkipImportRotation {
		// The password is rotated at once, which stores the role.
		err = b.rotate(ctx, s, name, r, true)
	} else {
		if create {
			r.CurrentUser = r.Username
		}
		err = framework.PutJSON(ctx, s, staticRolePrefix+name, r)
	}
	if err != nil && twinCreated {
		b.dropTwin(ctx, c, r)
	}
	return err
}

// nameTaken refuses a role whose name a role of the other kind has: Vault
// keeps the names of dynamic and static roles apart.
func nameTaken(name, kind string) error {
	return logical.BadRequest("role and static role names must be unique: %q is a %s role", name, kind)
}

// update applies the request's fields to r and checks the result: on an
// update, fields not given keep their values.
func (r *staticRole) update(d *framework.FieldData, create bool, now time.Time) error {
	if ct := d.String("credential_type"); ct != "password" {
		return logical.BadRequest("credential_type %q is not supported; only \"password\" is", ct)
	}
	if d.Has("db_name") {
		r.DBName = d.String("db_name")
	}
	if r.DBName == "" {
		return logical.BadRequest("db_name is required")
	}
	if user := d.String("username"); create {
		if err := checkUsername(user); err != nil {
			return err
		}
		r.Username = user
	} else if d.Has("username") && user != r.Username {
		return logical.BadRequest("cannot change the username of a static role (%q); delete the role and create it again", r.Username)
	}
	if err := r.updateTiming(d, create, now); err != nil {
		return err
	}
	if d.Has("rotation_statements") {
		r.RotationStatements = parseStatements(d.StringSlice("rotation_statements"))
	}
	if d.Has("rotation_strategy") {
		strategy := d.String("rotation_strategy")
		switch {
		case strategy != strategyInPlace && strategy != strategyAlternating:
			return logical.BadRequest("rotation_strategy must be %q or %q, not %q", strategyInPlace, strategyAlternating, strategy)
		case !create && strategy != r.Strategy:
			return logical.BadRequest("cannot change the rotation_strategy of a static role (%q); delete the role and create it again", r.Strategy)
		}
		r.Strategy = strategy
	}
	if r.Strategy == strategyAlternating && len(r.twin()) > postgres.MaxUsernameLen {
		return logical.BadRequest("username %q is too long for the alternating strategy: %q must fit in %d bytes",
			r.Username, r.twin(), postgres.MaxUsernameLen)
	}
	if create {
		r.SkipImportRotation = d.Bool("skip_import_rotation")
	}
	return nil
}

// updateTiming applies rotation_period, or rotation_schedule and
// rotation_window, which exclude each other, as Vault does.
func (r *staticRole) updateTiming(d *framework.FieldData, create bool, now time.Time) error {
	hasPeriod, hasWindow := d.Has("rotation_period"), d.Has("rotation_window")
	schedule := strings.TrimSpace(d.String("rotation_schedule"))
	switch {
	case hasPeriod && schedule != "":
		return logical.BadRequest("rotation_period and rotation_schedule exclude each other; give one of them")
	case create && !hasPeriod && schedule == "":
		return logical.BadRequest("one of rotation_period or rotation_schedule is required")
	case hasPeriod:
		period := d.Duration("rotation_period")
		if period < minRotationPeriod {
			return logical.BadRequest("rotation_period must be %d seconds or more", seconds(minRotationPeriod))
		}
		if hasWindow {
			return logical.BadRequest("rotation_window is only valid with rotation_schedule")
		}
		r.RotationPeriod, r.RotationSchedule, r.RotationWindow, r.schedule = period, "", 0, nil
		return nil
	case schedule != "":
		sched, err := parseSchedule(schedule, now)
		if err != nil {
			return err
		}
		r.RotationPeriod, r.RotationSchedule, r.RotationWindow, r.schedule = 0, schedule, 0, sched
	}
	if hasWindow {
		window := d.Duration("rotation_window")
		switch {
		case r.RotationSchedule == "":
			return logical.BadRequest("rotation_window is only valid with rotation_schedule")
		case window < minRotationWindow:
			return logical.BadRequest("rotation_window must be %d seconds or more", seconds(minRotationWindow))
		}
		r.RotationWindow = window
	}
	return nil
}

// checkUsername checks a static role's username: it goes between double
// quotes in the statements, and PostgreSQL would cut a longer one.
func checkUsername(user string) error {
	switch {
	case user == "":
		return logical.BadRequest("username is required")
	case len(user) > postgres.MaxUsernameLen:
		return logical.BadRequest("username is %d bytes long; the limit is %d", len(user), postgres.MaxUsernameLen)
	case !utf8.ValidString(user) || strings.ContainsFunc(user, unsafeRune):
		return logical.BadRequest("username must not hold a quote, backslash or control character")
	}
	return nil
}

// ensureTwin makes sure the alternating role's twin exists on c's
// database and reports whether it created it.
func (b *backend) ensureTwin(ctx context.Context, c *configEntry, r *staticRole) (bool, error) {
	db, err := b.conns.get(c)
	if err != nil {
		return false, dbError(err)
	}
	tw, ok := db.(dbplugin.Twins)
	if !ok {
		return false, logical.BadRequest("%v", errNoTwins)
	}
	created, err := tw.EnsureTwin(ctx, r.Username, r.twin())
	if err != nil {
		return false, dbError(err)
	}
	if created {
		b.logger.Info("alternate user created", "username", r.twin(), "acts_as", r.Username)
	}
	return created, nil
}

// dropTwin removes a twin this request created, when the role's creation
// fails after it: no user is left behind.
func (b *backend) dropTwin(ctx context.Context, c *configEntry, r *staticRole) {
	db, err := b.conns.get(c)
	if err == nil {
		err = db.DeleteUser(context.WithoutCancel(ctx), r.twin(), nil)
	}
	if err != nil {
		b.logger.Error("an alternate user created for a static role that failed could not be removed",
			"username", r.twin(), "error", err)
	}
}

func (b *backend) handleStaticRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	defer b.roleLocks.lock(name)()
	if err := req.Storage.Delete(ctx, staticRolePrefix+name); err != nil {
		return nil, err
	}
	b.retries.clear(name)
	return nil, nil
}
