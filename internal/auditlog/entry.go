// Package auditlog is the written form of Vigil's audit log: the JSON
// entry shapes (Vault's, spec §12) and the hash chain that makes a log
// tamper-evident (Vigil's own; Vault and OpenBao have none).
//
// The server writes entries with it and `vigil audit verify` and
// `vigil audit search` read them back with it, so it imports nothing
// internal and lives at the bottom of the dependency graph.
//
// # The chain
//
// Each line is one JSON object, optionally after a prefix. Its last two
// members are added by [Chain.Append]: "seq", the entry's sequence number
// on its device (1, 2, 3, ...), and "chain", a MAC over the line up to that
// point, keyed by the device's chain key and seeded with the previous
// entry's chain:
//
//	chain(n) = HMAC-SHA256(key, chain(n-1) || line(n) up to ,"chain")
//	chain(0) = 32 zero bytes
//
// A reader holding the key recomputes every link: an edited line breaks
// its own link, a removed, inserted or moved line breaks the sequence. The
// device also records its last (seq, chain) in storage as a
// [Checkpoint], so that a log cut short is caught too.
package auditlog

// Entry types.
const (
	TypeRequest  = "request"
	TypeResponse = "response"
)

// Entry is one audit log line. Empty members are left out.
type Entry struct {
	// Time is UTC RFC 3339 with nanoseconds.
	Time     string    `json:"time"`
	Type     string    `json:"type"`
	Auth     *Auth     `json:"auth,omitempty"`
	Request  *Request  `json:"request,omitempty"`
	Response *Response `json:"response,omitempty"`
	// Error is the error the client got, in clear.
	Error string `json:"error,omitempty"`
	// Seq and Chain are written by [Chain.Append], never by the encoder.
	Seq   uint64 `json:"seq,omitempty"`
	Chain string `json:"chain,omitempty"`
}

// Auth describes the token of a request, or the token a login issued.
// ClientToken and Accessor are HMAC'd.
type Auth struct {
	ClientToken      string            `json:"client_token,omitempty"`
	Accessor         string            `json:"accessor,omitempty"`
	DisplayName      string            `json:"display_name,omitempty"`
	Policies         []string          `json:"policies,omitempty"`
	TokenPolicies    []string          `json:"token_policies,omitempty"`
	IdentityPolicies []string          `json:"identity_policies,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	EntityID         string            `json:"entity_id,omitempty"`
	TokenType        string            `json:"token_type,omitempty"`
	// TokenTTL is in seconds.
	TokenTTL int64 `json:"token_ttl,omitempty"`
	// TokenIssueTime is RFC 3339 (seconds).
	TokenIssueTime string         `json:"token_issue_time,omitempty"`
	RemainingUses  int            `json:"remaining_uses,omitempty"`
	PolicyResults  *PolicyResults `json:"policy_results,omitempty"`
}

// PolicyResults records the ACL's decision on the request.
type PolicyResults struct {
	Allowed bool `json:"allowed"`
}

// Namespace is always the root namespace.
type Namespace struct {
	ID string `json:"id"`
}

// Request describes what the client asked. Path, operation and mount stay
// readable; string values of Data are HMAC'd.
type Request struct {
	ID                  string         `json:"id,omitempty"`
	Operation           string         `json:"operation,omitempty"`
	MountPoint          string         `json:"mount_point,omitempty"`
	MountType           string         `json:"mount_type,omitempty"`
	MountAccessor       string         `json:"mount_accessor,omitempty"`
	MountClass          string         `json:"mount_class,omitempty"`
	ClientToken         string         `json:"client_token,omitempty"`
	ClientTokenAccessor string         `json:"client_token_accessor,omitempty"`
	Namespace           *Namespace     `json:"namespace,omitempty"`
	Path                string         `json:"path,omitempty"`
	Data                map[string]any `json:"data,omitempty"`
	RemoteAddress       string         `json:"remote_address,omitempty"`
	RemotePort          int            `json:"remote_port,omitempty"`
	// ClientCertificateSubject is the subject of the client's TLS
	// certificate, when it sent one (Vigil's own member).
	ClientCertificateSubject string `json:"client_certificate_subject,omitempty"`
	WrapTTL                  int    `json:"wrap_ttl,omitempty"`
	// Headers are the request headers configured to be audited, by
	// lower-case name; values of those configured with hmac are HMAC'd.
	Headers map[string][]string `json:"headers,omitempty"`
}

// Response describes what the client got back.
type Response struct {
	MountPoint    string         `json:"mount_point,omitempty"`
	MountType     string         `json:"mount_type,omitempty"`
	MountAccessor string         `json:"mount_accessor,omitempty"`
	MountClass    string         `json:"mount_class,omitempty"`
	Auth          *Auth          `json:"auth,omitempty"`
	Secret        *Secret        `json:"secret,omitempty"`
	Data          map[string]any `json:"data,omitempty"`
	Warnings      []string       `json:"warnings,omitempty"`
	Redirect      string         `json:"redirect,omitempty"`
	WrapInfo      *WrapInfo      `json:"wrap_info,omitempty"`
}

// WrapInfo describes the wrapping token of a wrapped response; its token
// and accessors are HMAC'd.
type WrapInfo struct {
	TTL             int64  `json:"ttl,omitempty"`
	Token           string `json:"token,omitempty"`
	Accessor        string `json:"accessor,omitempty"`
	CreationTime    string `json:"creation_time,omitempty"`
	CreationPath    string `json:"creation_path,omitempty"`
	WrappedAccessor string `json:"wrapped_accessor,omitempty"`
}

// Secret names the lease of a leased response (lease ids are not secret).
type Secret struct {
	LeaseID string `json:"lease_id"`
}
