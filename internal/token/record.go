package token

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// record is the stored form of a service token's entry (id/<hash>).
type record struct {
	V int `json:"v,omitempty"`
	// Accessor is the accessor in clear: only entries of format 0 have it.
	Accessor string `json:"accessor,omitempty"`
	// SealedAccessor is the accessor sealed under the store key, bound to
	// the hashed id.
	SealedAccessor []byte            `json:"sealed_accessor,omitempty"`
	Policies       []string          `json:"policies"`
	Path           string            `json:"path"`
	DisplayName    string            `json:"display_name"`
	Meta           map[string]string `json:"meta,omitempty"`
	CreationTime   time.Time         `json:"creation_time"`
	// TTL is the creation TTL. In format 0 it also set the expiry
	// (CreationTime+TTL, 0 for never).
	TTL            time.Duration  `json:"ttl"`
	Type           string         `json:"type"`
	Parent         string         `json:"parent,omitempty"`
	NumUses        int            `json:"num_uses,omitempty"`
	ExplicitMaxTTL time.Duration  `json:"explicit_max_ttl,omitempty"`
	MaxTTL         time.Duration  `json:"max_ttl,omitempty"`
	Period         time.Duration  `json:"period,omitempty"`
	Renewable      bool           `json:"renewable,omitempty"`
	ExpireTime     time.Time      `json:"expire_time,omitzero"`
	LastRenewal    time.Time      `json:"last_renewal,omitzero"`
	Role           string         `json:"role,omitempty"`
	BoundCIDRs     []netip.Prefix `json:"bound_cidrs,omitempty"`
	EntityID       string         `json:"entity_id,omitempty"`
	MountPath      string         `json:"mount_path,omitempty"`
	InternalData   map[string]any `json:"internal_data,omitempty"`
	Alias          *aliasRecord   `json:"alias,omitempty"`
}

type aliasRecord struct {
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// encodeEntry returns the stored form of e, its accessor sealed with k.
func encodeEntry(k *storeKeys, d digest, e *Entry) ([]byte, error) {
	r := record{
		V:              recordVersion,
		Policies:       e.Policies,
		Path:           e.Path,
		DisplayName:    e.DisplayName,
		Meta:           e.Meta,
		CreationTime:   e.CreationTime,
		TTL:            e.TTL,
		Type:           e.Type,
		Parent:         e.Parent,
		NumUses:        e.NumUses,
		ExplicitMaxTTL: e.ExplicitMaxTTL,
		MaxTTL:         e.MaxTTL,
		Period:         e.Period,
		Renewable:      e.Renewable,
		ExpireTime:     e.ExpireTime,
		LastRenewal:    e.LastRenewal,
		Role:           e.Role,
		BoundCIDRs:     e.BoundCIDRs,
		EntityID:       e.EntityID,
		MountPath:      e.MountPath,
		InternalData:   e.InternalData,
	}
	if e.Alias != nil {
		r.Alias = &aliasRecord{Name: e.Alias.Name, Metadata: e.Alias.Metadata}
	}
	if e.Accessor != "" {
		r.SealedAccessor = k.sealAccessor(d, e.Accessor)
	}
	if raw, ok := appendRecord(make([]byte, 0, 1024), &r); ok {
		return raw, nil
	}
	raw, err := json.Marshal(&r)
	if err != nil {
		return nil, fmt.Errorf("token: encode entry: %w", err)
	}
	return raw, nil
}

// decodeEntry reads a stored entry of any format.
func (st *Store) decodeEntry(ctx context.Context, d digest, raw []byte) (*Entry, error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("token: decode entry: %w", err)
	}
	e := &Entry{
		HashedID:       d.String(),
		Accessor:       r.Accessor,
		Policies:       r.Policies,
		Path:           r.Path,
		DisplayName:    r.DisplayName,
		Meta:           r.Meta,
		CreationTime:   r.CreationTime,
		TTL:            r.TTL,
		Type:           r.Type,
		Parent:         r.Parent,
		NumUses:        r.NumUses,
		ExplicitMaxTTL: r.ExplicitMaxTTL,
		MaxTTL:         r.MaxTTL,
		Period:         r.Period,
		Renewable:      r.Renewable,
		ExpireTime:     r.ExpireTime,
		LastRenewal:    r.LastRenewal,
		Role:           r.Role,
		BoundCIDRs:     r.BoundCIDRs,
		EntityID:       r.EntityID,
		MountPath:      r.MountPath,
		InternalData:   r.InternalData,
	}
	if r.Alias != nil {
		e.Alias = &logical.Alias{Name: r.Alias.Name, Metadata: r.Alias.Metadata}
	}
	if e.Type == "" {
		e.Type = TypeService
	}
	if r.V == 0 && e.TTL > 0 && e.ExpireTime.IsZero() {
		// Format 0 expired at creation plus TTL.
		e.ExpireTime = e.CreationTime.Add(e.TTL)
	}
	if len(r.SealedAccessor) > 0 {
		k, err := st.storeKeys(ctx, false)
		if err != nil {
			return nil, err
		}
		if e.Accessor, err = k.openAccessor(d, r.SealedAccessor); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// writeOps is a batch of storage writes, applied in one transaction when
// the storage supports it and otherwise in order.
type writeOps []logical.StorageOp

func (w *writeOps) put(key string, v []byte) {
	if v == nil {
		v = []byte{}
	}
	*w = append(*w, logical.StorageOp{Key: key, Value: v})
}

func (w *writeOps) del(key string) { *w = append(*w, logical.StorageOp{Key: key, Delete: true}) }

func (w writeOps) apply(ctx context.Context, s logical.Storage) error {
	if err := logical.ApplyOps(ctx, s, w); err != nil {
		return fmt.Errorf("token: write: %w", err)
	}
	return nil
}
