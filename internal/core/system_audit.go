package core

import (
	"context"
	"encoding/base64"
	"strings"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// auditPaths serve sys/audit (list, enable, disable: root-protected),
// sys/audit-hash (what a value looks like in a device's log) and Vigil's
// sys/audit-chain (a device's chain key and checkpoint, for `vigil audit
// verify`: root-protected, since the key can also forge a chain).
func (s *systemBackend) auditPaths() []*framework.Path {
	pathField := &framework.FieldSchema{Type: framework.TypeString, Description: "audit device path"}
	return []*framework.Path{
		{
			Pattern: "audit/?",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: sysOp(s.listAudit, "List the enabled audit devices."),
			},
			HelpSynopsis: "List the enabled audit devices.",
		},
		{
			Pattern: "audit/(?P<path>.+)",
			Fields: map[string]*framework.FieldSchema{
				"path":        pathField,
				"type":        {Type: framework.TypeString, Description: "file, socket or syslog"},
				"description": {Type: framework.TypeString},
				"options":     {Type: framework.TypeKVPairs, Description: "device options (file_path, prefix, hmac_accessor, log_raw, ...)"},
				"local":       {Type: framework.TypeBool},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: sysOp(s.enableAudit, "Enable an audit device."),
				logical.DeleteOperation: sysOp(s.disableAudit, "Disable an audit device."),
			},
			HelpSynopsis: "Enable or disable an audit device.",
		},
		{
			Pattern: "audit-hash/(?P<path>.+)",
			Fields: map[string]*framework.FieldSchema{
				"path":  pathField,
				"input": {Type: framework.TypeString, Required: true, Description: "the value to hash"},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: sysOp(s.auditHash, "Hash a value as the device logs it."),
			},
			HelpSynopsis: "Hash a value with an audit device's salt, to search its log.",
		},
		{
			Pattern: "audit-chain/(?P<path>.+)",
			Fields:  map[string]*framework.FieldSchema{"path": pathField},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: sysOp(s.auditChain, "Read a device's chain key and checkpoint."),
			},
			HelpSynopsis: "The chain key and last checkpoint of an audit device, to verify its log.",
		},
		{
			Pattern: "config/auditing/request-headers/?",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: sysOp(s.listAuditedHeaders, "List the request headers the audit log records."),
			},
			HelpSynopsis: "The request headers the audit log records.",
		},
		{
			Pattern: "config/auditing/request-headers/(?P<header>.+)",
			Fields: map[string]*framework.FieldSchema{
				"header": {Type: framework.TypeString, Description: "the header's name (any case)"},
				"hmac":   {Type: framework.TypeBool, Description: "log the header's values HMAC'd"},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   sysOp(s.readAuditedHeader, "Read how the audit log records a request header."),
				logical.UpdateOperation: sysOp(s.writeAuditedHeader, "Record a request header in the audit log."),
				logical.DeleteOperation: sysOp(s.deleteAuditedHeader, "Stop recording a request header."),
			},
			HelpSynopsis: "Record a request header in the audit log, in clear or HMAC'd.",
		},
	}
}

func (s *systemBackend) listAuditedHeaders(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	headers := map[string]any{}
	for name, h := range s.c.AuditedHeaders() {
		headers[name] = map[string]any{"hmac": h.HMAC}
	}
	return &logical.Response{Data: map[string]any{"headers": headers}}, nil
}

func (s *systemBackend) readAuditedHeader(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("header")
	h, ok := s.c.AuditedHeaders()[strings.ToLower(name)]
	if !ok {
		return nil, logical.BadRequest("Could not find header in config")
	}
	return &logical.Response{Data: map[string]any{name: map[string]any{"hmac": h.HMAC}}}, nil
}

func (s *systemBackend) writeAuditedHeader(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, s.c.SetAuditedHeader(ctx, d.String("header"), AuditedHeader{HMAC: d.Bool("hmac")})
}

func (s *systemBackend) deleteAuditedHeader(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, s.c.DeleteAuditedHeader(ctx, d.String("header"))
}

func (s *systemBackend) listAudit(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	data := map[string]any{}
	for _, d := range s.c.AuditDevices() {
		opts := d.Options
		if opts == nil {
			opts = map[string]string{}
		}
		data[d.Path] = map[string]any{
			"type":        d.Type,
			"description": d.Description,
			"options":     opts,
			"local":       d.Local,
			"path":        d.Path,
		}
	}
	return &logical.Response{Data: data}, nil
}

func (s *systemBackend) enableAudit(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	opts := d.StringMap("options")
	return nil, s.c.EnableAudit(ctx, d.String("path"), d.String("type"), d.String("description"), opts, d.Bool("local"))
}

func (s *systemBackend) disableAudit(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, s.c.DisableAudit(ctx, d.String("path"))
}

func (s *systemBackend) auditHash(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	h, err := s.c.AuditHash(d.String("path"), d.String("input"))
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"hash": h}}, nil
}

func (s *systemBackend) auditChain(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	ch, err := s.c.AuditChainOf(ctx, d.String("path"))
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"path":            ch.Path,
		"key":             base64.StdEncoding.EncodeToString(ch.Key),
		"seq":             ch.Checkpoint.Seq,
		"chain":           ch.Checkpoint.Chain,
		"checkpoint_time": ch.Checkpoint.Time,
	}}, nil
}
