package database

import (
	"context"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

func (b *backend) pathStaticCreds() *framework.Path {
	p := namedPath(`static-creds/`, "static role", logical.ReadOperation, b.handleStaticCreds,
		"Read the current credentials of a static role.", "Read the user name and current password of a static role.")
	p.HelpDescription = "The answer carries no lease: ttl says how many seconds the password has until its next rotation " +
		"(under the alternating strategy, the credentials keep working for one rotation more)."
	return p
}

func (b *backend) handleStaticCreds(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	r, err := loadStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("unknown static role: %s", name)
	}
	if _, err := roleConfig(ctx, req.Storage, name, r.DBName); err != nil {
		return nil, err
	}
	data := map[string]any{
		"username":          r.CurrentUser,
		"password":          r.Password.Reveal(),
		"ttl":               r.ttl(b.now()),
		"rotation_strategy": r.Strategy,
	}
	r.addTiming(data)
	return &logical.Response{Data: data}, nil
}

func (b *backend) pathRotateRole() *framework.Path {
	p := namedPath(`rotate-role/`, "static role", logical.UpdateOperation, b.handleRotateRole,
		"Rotate a static role's password now.", "Rotate a static role's password now.")
	p.HelpDescription = "The next scheduled rotation is counted from this one (by period), or stays the schedule's next time."
	return p
}

func (b *backend) handleRotateRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	defer b.roleLocks.lock(name)()
	r, err := loadStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("unknown static role: %s", name)
	}
	if err := b.rotate(ctx, req.Storage, name, r, false); err != nil {
		return nil, err
	}
	b.retries.clear(name)
	return &logical.Response{Events: []logical.Event{rotateEvent(name, req.Path)}}, nil
}
