package approle

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// secretIDFields are the fields of role/<name>/secret-id, besides
// "metadata", which the handler decodes itself: Vault clients send it as a
// JSON string and some as an object, and no framework type takes both.
func secretIDFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"role_name": roleNameField(),
		"cidr_list": {Type: framework.TypeCommaStringSlice,
			Description: "CIDR blocks (or addresses) logins with this secret ID must come from; a subset of the role's secret_id_bound_cidrs."},
		"token_bound_cidrs": {Type: framework.TypeCommaStringSlice,
			Description: "CIDR blocks that may use the tokens this secret ID's logins create, instead of the role's; a subset of the role's token_bound_cidrs."},
		"num_uses": {Type: framework.TypeInt,
			Description: "How many logins the secret ID allows; 0 means the role's secret_id_num_uses, which it may not exceed."},
		"ttl": {Type: framework.TypeDurationSecond,
			Description: "How long the secret ID lives; 0 means the role's secret_id_ttl, which it may not exceed."},
	}
}

// metadataField is the parameter decoded outside the schema.
const metadataField = "metadata"

func (b *backend) pathSecretID() *framework.Path {
	return &framework.Path{
		Pattern: roleNamePattern + `/secret-id/?`,
		Fields:  secretIDFields(),
		// metadata is decoded by the handler, which reports unknown
		// parameters itself.
		TakesArbitraryInput: true,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleSecretIDIssue, Summary: "Issue a new secret ID for the role."},
			logical.ListOperation:   {Handler: b.handleSecretIDList, Summary: "List the accessors of the role's secret IDs."},
		},
		HelpSynopsis: "Issue a secret ID for the role, or list the accessors of its secret IDs.",
		HelpDescription: "The secret ID is returned once and never stored in clear. metadata (a JSON object of strings, " +
			"as a string or an object) is copied into the metadata of the tokens its logins create.",
	}
}

// customSecretIDFields are the fields of role/<name>/custom-secret-id.
func customSecretIDFields() map[string]*framework.FieldSchema {
	fields := secretIDFields()
	fields["secret_id"] = &framework.FieldSchema{Type: framework.TypeString, Sensitive: true, Description: "The secret ID to register."}
	return fields
}

func (b *backend) pathCustomSecretID() *framework.Path {
	return &framework.Path{
		Pattern:             roleNamePattern + `/custom-secret-id`,
		Fields:              customSecretIDFields(),
		TakesArbitraryInput: true,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleCustomSecretID, Summary: "Register a secret ID of the caller's choice."},
		},
		HelpSynopsis: "Register a secret ID chosen by the caller; prefer generated ones.",
	}
}

// secretIDRequest is a decoded secret ID issue request.
type secretIDRequest struct {
	metadata   map[string]string
	cidrList   []netip.Prefix
	tokenCIDRs []netip.Prefix
	numUses    int
	ttl        time.Duration
	// unknown are the parameters nothing reads, for the usual warning.
	unknown []string
}

func decodeSecretIDRequest(req *logical.Request, d *framework.FieldData, fields map[string]*framework.FieldSchema) (secretIDRequest, error) {
	var in secretIDRequest
	var err error
	if in.metadata, err = parseMetadata(req.Data[metadataField]); err != nil {
		return in, err
	}
	if in.cidrList, err = framework.ParseCIDRs("cidr_list", d.StringSlice("cidr_list")); err != nil {
		return in, err
	}
	if in.tokenCIDRs, err = framework.ParseCIDRs("token_bound_cidrs", d.StringSlice("token_bound_cidrs")); err != nil {
		return in, err
	}
	if in.numUses = d.Int("num_uses"); in.numUses < 0 {
		return in, logical.BadRequest("num_uses must not be negative")
	}
	in.ttl = d.Duration("ttl")
	for k := range req.Data {
		if _, ok := fields[k]; !ok && k != metadataField {
			in.unknown = append(in.unknown, k)
		}
	}
	sort.Strings(in.unknown)
	return in, nil
}

// parseMetadata decodes a secret ID's metadata: a JSON object of strings,
// given as a string (what Vault's CLI and clients send) or as an object, or
// a "k=v,k2=v2" string. Keys and values must not be empty.
func parseMetadata(raw any) (map[string]string, error) {
	out := map[string]string{}
	bad := func(why string) error { return logical.BadRequest("invalid metadata: %s", why) }
	switch v := raw.(type) {
	case nil:
		return nil, nil
	case string:
		s := strings.TrimSpace(v)
		switch {
		case s == "":
			return nil, nil
		case strings.HasPrefix(s, "{"):
			if err := json.Unmarshal([]byte(s), &out); err != nil {
				return nil, bad("it must be a JSON object of strings")
			}
		default:
			for _, pair := range strings.Split(s, ",") {
				k, val, ok := strings.Cut(pair, "=")
				if !ok {
					return nil, bad(`expected a JSON object or "key=value" pairs`)
				}
				out[strings.TrimSpace(k)] = strings.TrimSpace(val)
			}
		}
	case map[string]any:
		for k, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, bad(fmt.Sprintf("the value of %q is not a string", k))
			}
			out[k] = s
		}
	case map[string]string:
		maps.Copy(out, v)
	default:
		return nil, bad("it must be a JSON object of strings")
	}
	for k, val := range out {
		if k == "" {
			return nil, bad("keys must not be empty")
		}
		if val == "" {
			return nil, bad(fmt.Sprintf("the value of %q is empty", k))
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func (b *backend) handleSecretIDIssue(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.issueSecretID(ctx, req, d, secret.NewString(secret.UUID()), secretIDFields())
}

func (b *backend) handleCustomSecretID(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	// Surrounding spaces are dropped, as login drops them.
	sid := secret.NewString(strings.TrimSpace(d.String("secret_id")))
	switch {
	case sid.IsEmpty():
		return nil, logical.BadRequest("missing secret_id")
	case len(sid.Reveal()) > maxInputLen:
		return nil, logical.BadRequest("secret_id must be at most %d bytes", maxInputLen)
	}
	return b.issueSecretID(ctx, req, d, sid, customSecretIDFields())
}

// issueSecretID registers sid for the request's role and answers with it.
func (b *backend) issueSecretID(ctx context.Context, req *logical.Request, d *framework.FieldData, sid secret.String, fields map[string]*framework.FieldSchema) (*logical.Response, error) {
	name, err := roleName(d)
	if err != nil {
		return nil, err
	}
	in, err := decodeSecretIDRequest(req, d, fields)
	if err != nil {
		return nil, err
	}
	r, unlock, err := b.lockedRole(ctx, req.Storage, name, false, errNoRole(name))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !r.BindSecretID {
		return nil, logical.BadRequest("bind_secret_id is not set on the role")
	}
	if len(r.SecretIDBoundCIDRs) > 0 && !framework.CIDRsSubset(in.cidrList, r.SecretIDBoundCIDRs) {
		return nil, logical.BadRequest("cidr_list must be a subset of the role's secret_id_bound_cidrs")
	}
	if len(r.Token.BoundCIDRs) > 0 && !framework.CIDRsSubset(in.tokenCIDRs, r.Token.BoundCIDRs) {
		return nil, logical.BadRequest("token_bound_cidrs must be a subset of the role's token_bound_cidrs")
	}
	numUses := in.numUses
	switch {
	case numUses == 0:
		numUses = r.SecretIDNumUses
	case r.SecretIDNumUses > 0 && numUses > r.SecretIDNumUses:
		return nil, logical.BadRequest("num_uses must not be greater than the role's secret_id_num_uses (%d)", r.SecretIDNumUses)
	}
	ttl := in.ttl
	switch {
	case ttl == 0:
		ttl = r.SecretIDTTL
	case r.SecretIDTTL > 0 && ttl > r.SecretIDTTL:
		return nil, logical.BadRequest("ttl must not be longer than the role's secret_id_ttl (%s)", r.SecretIDTTL)
	}
	// The mount's maximum lease TTL caps every secret ID that expires.
	if b.system != nil {
		if limit := b.system.MaxLeaseTTL(); limit > 0 && ttl > limit {
			ttl = limit
		}
	}

	h, err := b.mac(ctx, req.Storage, labelSecretID, sid.Reveal())
	if err != nil {
		return nil, err
	}
	accessor := secret.UUID()
	ah, err := b.mac(ctx, req.Storage, labelAccessor, accessor)
	if err != nil {
		return nil, err
	}
	idLock := b.secretIDLock(h)
	idLock.Lock()
	defer idLock.Unlock()
	key := secretIDKey(name, h)
	existing, err := loadSecretID(ctx, req.Storage, key)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		// Only a custom secret ID can collide; a generated one has 122
		// random bits.
		return nil, logical.BadRequest("this secret_id is already registered for the role")
	}
	if ae, err := loadAccessor(ctx, req.Storage, ah); err != nil {
		return nil, err
	} else if ae != nil {
		return nil, fmt.Errorf("approle: generated accessor collides with an existing one")
	}
	now := b.now().UTC()
	e := &secretIDEntry{
		Accessor:        accessor,
		NumUses:         numUses,
		TTL:             ttl,
		CreationTime:    now,
		LastUpdatedTime: now,
		Metadata:        in.metadata,
		CIDRList:        in.cidrList,
		TokenBoundCIDRs: in.tokenCIDRs,
	}
	if ttl > 0 {
		e.ExpirationTime = now.Add(ttl)
	}
	// The accessor first: a secret ID is never usable without one.
	var w writeOps
	if err := w.put(accessorKey(ah), accessorEntry{RoleName: name, SecretIDHMAC: h}); err != nil {
		return nil, err
	}
	if err := w.put(key, e); err != nil {
		return nil, err
	}
	if err := w.apply(ctx, req.Storage); err != nil {
		return nil, err
	}
	resp := &logical.Response{Data: map[string]any{
		"secret_id":          sid.Reveal(),
		"secret_id_accessor": accessor,
		"secret_id_ttl":      seconds(ttl),
		"secret_id_num_uses": numUses,
	}}
	if len(in.unknown) > 0 {
		resp.AddWarning(fmt.Sprintf("Endpoint ignored these unrecognized parameters: %v", in.unknown))
	}
	return resp, nil
}

func (b *backend) handleSecretIDList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, err := roleName(d)
	if err != nil {
		return nil, err
	}
	_, unlock, err := b.lockedRole(ctx, req.Storage, name, false, errNoRole(name))
	if err != nil {
		return nil, err
	}
	defer unlock()
	hmacs, err := req.Storage.List(ctx, secretIDDir(name))
	if err != nil {
		return nil, err
	}
	accessors := make([]string, 0, len(hmacs))
	for _, h := range hmacs {
		if strings.HasSuffix(h, "/") {
			continue
		}
		e, err := loadSecretID(ctx, req.Storage, secretIDKey(name, h))
		if err != nil {
			return nil, err
		}
		if e != nil {
			accessors = append(accessors, e.Accessor)
		}
	}
	if len(accessors) == 0 {
		return nil, logical.ErrNotFound
	}
	slices.Sort(accessors)
	return &logical.Response{Data: map[string]any{"keys": accessors}}, nil
}

func (b *backend) pathSecretIDLookup() *framework.Path {
	return &framework.Path{
		Pattern: roleNamePattern + `/secret-id/lookup`,
		Fields: map[string]*framework.FieldSchema{
			"role_name": roleNameField(),
			"secret_id": {Type: framework.TypeString, Sensitive: true, Description: "The secret ID to look up."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleSecretIDLookup, Summary: "Read the properties of a secret ID."},
		},
		HelpSynopsis: "Read the properties of a secret ID. An unknown secret ID gets an empty answer (204), as in Vault.",
	}
}

func (b *backend) pathSecretIDDestroy() *framework.Path {
	return &framework.Path{
		Pattern: roleNamePattern + `/secret-id/destroy`,
		Fields: map[string]*framework.FieldSchema{
			"role_name": roleNameField(),
			"secret_id": {Type: framework.TypeString, Sensitive: true, Description: "The secret ID to destroy."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleSecretIDDestroy, Summary: "Destroy a secret ID."},
			logical.DeleteOperation: {Handler: b.handleSecretIDDestroy, Summary: "Destroy a secret ID."},
		},
		HelpSynopsis: "Destroy a secret ID. Destroying an unknown secret ID succeeds.",
	}
}

// withSecretID runs f on the request's secret ID, under the role's shared
// lock and the secret ID's lock (exclusive or shared). e is nil when the
// role has no such secret ID.
func (b *backend) withSecretID(ctx context.Context, req *logical.Request, d *framework.FieldData, exclusive bool, f func(key string, e *secretIDEntry) (*logical.Response, error)) (*logical.Response, error) {
	name, err := roleName(d)
	if err != nil {
		return nil, err
	}
	sid := secret.NewString(strings.TrimSpace(d.String("secret_id")))
	if sid.IsEmpty() {
		return nil, logical.BadRequest("missing secret_id")
	}
	_, unlock, err := b.lockedRole(ctx, req.Storage, name, false, errNoRole(name))
	if err != nil {
		return nil, err
	}
	defer unlock()
	h, err := b.mac(ctx, req.Storage, labelSecretID, sid.Reveal())
	if err != nil {
		return nil, err
	}
	return b.withSecretIDLocked(ctx, req.Storage, secretIDKey(name, h), h, exclusive, f)
}

// withSecretIDLocked runs f on the secret ID at key (HMAC h) under its lock.
func (b *backend) withSecretIDLocked(ctx context.Context, s logical.Storage, key, h string, exclusive bool, f func(key string, e *secretIDEntry) (*logical.Response, error)) (*logical.Response, error) {
	idLock := b.secretIDLock(h)
	if exclusive {
		idLock.Lock()
		defer idLock.Unlock()
	} else {
		idLock.RLock()
		defer idLock.RUnlock()
	}
	e, err := loadSecretID(ctx, s, key)
	if err != nil {
		return nil, err
	}
	return f(key, e)
}

func (b *backend) handleSecretIDLookup(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.withSecretID(ctx, req, d, false, func(_ string, e *secretIDEntry) (*logical.Response, error) {
		if e == nil {
			// Vault answers an unknown secret ID with an empty 204.
			return nil, nil
		}
		return &logical.Response{Data: lookupData(e)}, nil
	})
}

func (b *backend) handleSecretIDDestroy(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.withSecretID(ctx, req, d, true, func(key string, e *secretIDEntry) (*logical.Response, error) {
		if e == nil {
			return nil, nil
		}
		var w writeOps
		if err := b.removeSecretID(ctx, req.Storage, &w, key, e); err != nil {
			return nil, err
		}
		return nil, w.apply(ctx, req.Storage)
	})
}

func (b *backend) pathAccessorLookup() *framework.Path {
	return &framework.Path{
		Pattern: roleNamePattern + `/secret-id-accessor/lookup`,
		Fields: map[string]*framework.FieldSchema{
			"role_name":          roleNameField(),
			"secret_id_accessor": {Type: framework.TypeString, Description: "The accessor of the secret ID to look up."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleAccessorLookup, Summary: "Read the properties of a secret ID by its accessor."},
		},
		HelpSynopsis: "Read the properties of a secret ID by its accessor.",
	}
}

func (b *backend) pathAccessorDestroy() *framework.Path {
	return &framework.Path{
		Pattern: roleNamePattern + `/secret-id-accessor/destroy`,
		Fields: map[string]*framework.FieldSchema{
			"role_name":          roleNameField(),
			"secret_id_accessor": {Type: framework.TypeString, Description: "The accessor of the secret ID to destroy."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleAccessorDestroy, Summary: "Destroy a secret ID by its accessor."},
			logical.DeleteOperation: {Handler: b.handleAccessorDestroy, Summary: "Destroy a secret ID by its accessor."},
		},
		HelpSynopsis: "Destroy a secret ID by its accessor.",
	}
}

// withAccessor locates the secret ID of the request's accessor, under the
// role's shared lock and the secret ID's lock, and runs f on it. An
// accessor that is unknown, belongs to another role or points nowhere is a
// 404 naming it, as Vault answers.
func (b *backend) withAccessor(ctx context.Context, req *logical.Request, d *framework.FieldData, exclusive bool, f func(key string, e *secretIDEntry) (*logical.Response, error)) (*logical.Response, error) {
	name, err := roleName(d)
	if err != nil {
		return nil, err
	}
	accessor := strings.TrimSpace(d.String("secret_id_accessor"))
	if accessor == "" {
		return nil, logical.BadRequest("missing secret_id_accessor")
	}
	notFound := logical.CodedErrorf(404, "failed to find accessor entry for secret_id_accessor: %q", accessor)
	_, unlock, err := b.lockedRole(ctx, req.Storage, name, false, errNoRole(name))
	if err != nil {
		return nil, err
	}
	defer unlock()
	ah, err := b.mac(ctx, req.Storage, labelAccessor, accessor)
	if err != nil {
		return nil, err
	}
	ae, err := loadAccessor(ctx, req.Storage, ah)
	if err != nil {
		return nil, err
	}
	if ae == nil || ae.RoleName != name {
		return nil, notFound
	}
	return b.withSecretIDLocked(ctx, req.Storage, secretIDKey(name, ae.SecretIDHMAC), ae.SecretIDHMAC, exclusive,
		func(key string, e *secretIDEntry) (*logical.Response, error) {
			if e == nil || e.Accessor != accessor {
				return nil, notFound
			}
			return f(key, e)
		})
}

func (b *backend) handleAccessorLookup(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.withAccessor(ctx, req, d, false, func(_ string, e *secretIDEntry) (*logical.Response, error) {
		return &logical.Response{Data: lookupData(e)}, nil
	})
}

func (b *backend) handleAccessorDestroy(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.withAccessor(ctx, req, d, true, func(key string, e *secretIDEntry) (*logical.Response, error) {
		var w writeOps
		if err := b.removeSecretID(ctx, req.Storage, &w, key, e); err != nil {
			return nil, err
		}
		return nil, w.apply(ctx, req.Storage)
	})
}

// lookupData renders a secret ID's properties as Vault's lookups do.
func lookupData(e *secretIDEntry) map[string]any {
	md := make(map[string]any, len(e.Metadata))
	for k, v := range e.Metadata {
		md[k] = v
	}
	return map[string]any{
		"cidr_list":          framework.FormatCIDRs(e.CIDRList),
		"creation_time":      formatTime(e.CreationTime),
		"expiration_time":    formatTime(e.ExpirationTime),
		"last_updated_time":  formatTime(e.LastUpdatedTime),
		"metadata":           md,
		"secret_id_accessor": e.Accessor,
		"secret_id_num_uses": e.NumUses,
		"secret_id_ttl":      seconds(e.TTL),
		"token_bound_cidrs":  framework.FormatCIDRs(e.TokenBoundCIDRs),
	}
}
