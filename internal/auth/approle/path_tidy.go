package approle

import (
	"context"
	"fmt"
	"strings"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

func (b *backend) pathTidy() *framework.Path {
	return &framework.Path{
		Pattern: `tidy/secret-id`,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleTidy, Summary: "Remove expired secret IDs and dangling accessors."},
		},
		HelpSynopsis: "Remove expired secret IDs, the secret IDs of deleted roles and accessor records that point nowhere.",
		HelpDescription: "Vault starts the clean-up in the background and answers 202; Vigil runs it before answering, " +
			"also with 202 and a warning that says what was removed. Only one tidy runs at a time.",
	}
}

// tidyResult counts what a tidy removed.
type tidyResult struct {
	secretIDs int
	accessors int
}

func (b *backend) handleTidy(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if !b.tidying.CompareAndSwap(false, true) {
		return &logical.Response{Warnings: []string{"Tidy operation already in progress."}}, nil
	}
	defer b.tidying.Store(false)
	res, err := b.tidy(ctx, req.Storage)
	if err != nil {
		b.logger.Error("secret id tidy failed", "error", err, "secret_ids_removed", res.secretIDs, "accessors_removed", res.accessors)
		return nil, err
	}
	b.logger.Info("secret id tidy finished", "secret_ids_removed", res.secretIDs, "accessors_removed", res.accessors)
	return &logical.Response{
		StatusCode: 202,
		Warnings: []string{fmt.Sprintf("Tidy operation finished: removed %d expired or orphaned secret IDs and %d dangling accessors.",
			res.secretIDs, res.accessors)},
	}, nil
}

// tidy removes expired secret IDs, the secret IDs of roles that no longer
// exist, and accessor records whose secret ID is gone. It holds one role's
// lock at a time, and one secret ID's lock at a time, so logins and role
// changes proceed meanwhile.
func (b *backend) tidy(ctx context.Context, s logical.Storage) (tidyResult, error) {
	var res tidyResult
	dirs, err := s.List(ctx, secretIDPrefix)
	if err != nil {
		return res, err
	}
	for _, dir := range dirs {
		name, ok := strings.CutSuffix(dir, "/")
		if !ok {
			continue
		}
		n, err := b.tidyRole(ctx, s, name)
		res.secretIDs += n
		if err != nil {
			return res, err
		}
	}
	n, err := b.tidyAccessors(ctx, s)
	res.accessors = n
	return res, err
}

// tidyRole removes the expired secret IDs of one role, or all of them when
// the role no longer exists.
func (b *backend) tidyRole(ctx context.Context, s logical.Storage, name string) (int, error) {
	lock := b.roleLock(name)
	lock.RLock()
	defer lock.RUnlock()
	r, err := loadRole(ctx, s, name)
	if err != nil {
		return 0, err
	}
	if r == nil {
		// An interrupted role deletion: nothing may use these.
		return b.removeRoleSecretIDs(ctx, s, name, nil)
	}
	now := b.now()
	return b.removeRoleSecretIDs(ctx, s, name, func(e *secretIDEntry) bool { return e.expired(now) })
}

// tidyAccessors removes the accessor records whose secret ID does not exist
// (left by an interrupted removal). Each is checked under its secret ID's
// lock, which issuance holds while it writes an accessor and its secret ID.
func (b *backend) tidyAccessors(ctx context.Context, s logical.Storage) (int, error) {
	hashes, err := s.List(ctx, accessorPrefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ah := range hashes {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if strings.HasSuffix(ah, "/") {
			continue
		}
		removed, err := b.tidyAccessor(ctx, s, ah)
		if err != nil {
			return n, err
		}
		if removed {
			n++
		}
	}
	return n, nil
}

func (b *backend) tidyAccessor(ctx context.Context, s logical.Storage, ah string) (bool, error) {
	ae, err := loadAccessor(ctx, s, ah)
	if err != nil || ae == nil {
		return false, err
	}
	lock := b.secretIDLock(ae.SecretIDHMAC)
	lock.Lock()
	defer lock.Unlock()
	if ae, err = loadAccessor(ctx, s, ah); err != nil || ae == nil {
		return false, err
	}
	e, err := loadSecretID(ctx, s, secretIDKey(ae.RoleName, ae.SecretIDHMAC))
	if err != nil {
		return false, err
	}
	if e != nil {
		if h, err := b.mac(ctx, s, labelAccessor, e.Accessor); err != nil || h == ah {
			return false, err
		}
		// The secret ID has another accessor: this record is stale.
	}
	return true, s.Delete(ctx, accessorKey(ah))
}
