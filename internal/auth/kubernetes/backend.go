// Package kubernetes is the Kubernetes auth method (spec §6.1), mounted as
// type "kubernetes": a pod logs in with its service-account token (a
// projected, audience-bound token or a legacy secret-based one) and gets a
// token shaped by the role whose bounds its service account and namespace
// meet.
//
// The package owns the method's configuration, its roles and the login
// decision. It must not import storage, the barrier, core, token or lease
// (DESIGN.md §4); it talks to the Kubernetes API with plain net/http and
// small JSON structs, not client-go.
//
// # Configuration (auth/<mount>/config)
//
//	kubernetes_host           the API server's URL (https://host:port); required in tokenreview mode
//	kubernetes_ca_cert        PEM CA certificate(s) of the API server
//	token_reviewer_jwt        the bearer token of TokenReview calls; never returned (reads show token_reviewer_jwt_set)
//	pem_keys                  PEM public keys or certificates: the JWT's signature is checked locally with them first
//	issuer                    the expected iss ("kubernetes/serviceaccount" when empty and checked)
//	disable_iss_validation    skip the iss check in tokenreview mode (default true)
//	disable_local_ca_jwt      do not use the pod's own CA and token (default false)
//	token_validation          "tokenreview" (default) or "jwks" (Vigil's own mode, below)
//	oidc_discovery_url        jwks mode: the cluster's service-account issuer; its
//	                          /.well-known/openid-configuration names the JWKS
//	jwks_url                  jwks mode: the cluster's JWKS (instead of discovery)
//	jwks_ca_pem               jwks mode: CA certificate(s) to trust for the two URLs above
//
// A configuration write replaces the whole configuration, as Vault's does.
// Not supported: use_annotations_as_alias_metadata and, on roles,
// bound_service_account_namespace_selector (both need reads of the
// Kubernetes API beyond TokenReview); writing them is a 400.
//
// # Logins with TokenReview (the default)
//
// A login names a role and carries the JWT. The JWT is parsed locally
// (its signature checked only when pem_keys are configured, its iss only
// when issuer validation is enabled, its aud against the role's audience),
// its service account name and namespace are matched against the role,
// and then the Kubernetes API decides: Vigil POSTs a TokenReview to
// <kubernetes_host>/apis/authentication.k8s.io/v1/tokenreviews, with a
// timeout, over TLS with kubernetes_ca_cert, authenticated with the
// token_reviewer_jwt, or else the pod's own service-account token when
// Vigil runs in a pod, or else the client's own JWT (which then needs the
// system:auth-delegator role). The review must say authenticated, overlap
// the audiences asked for, and name the same service account (username
// system:serviceaccount:<ns>:<name>) and uid as the JWT, and the same pod
// when both name one. Failing TokenReview calls refuse the login.
//
// When Vigil runs in a pod and disable_local_ca_jwt is false, the pod's
// /var/run/secrets/kubernetes.io/serviceaccount/ca.crt and token stand in
// for an unconfigured kubernetes_ca_cert and token_reviewer_jwt; they are
// read again every minute, as the kubelet rotates the token.
//
// # Logins with a JWKS (token_validation = "jwks")
//
// For clusters Vigil cannot reach, the mount validates tokens locally
// against the cluster's service-account issuer, as cloud IAM validates pod
// identities: the key set comes from oidc_discovery_url (whose discovery
// document must name the configured issuer) or jwks_url, and issuer is
// required. The signature must verify with a key of the set under an
// asymmetric algorithm (RS, PS and ES at 256, 384 and 512 bits, EdDSA;
// "none" and the HMAC algorithms are refused; a JWK that names an
// algorithm verifies with that one only), iss must equal issuer, exp must
// be present and not passed and nbf and iat not in the future (with 30
// seconds of leeway), and aud must contain the role's audience when it
// has one. Key sets are fetched with a 10-second timeout, following no
// redirect, and cached for an hour; a key id not in the cached set makes
// at most one fetch per 10 seconds, and a failed fetch keeps the last good
// set (and is logged). internal/jwks, shared with the JWT method, does the
// fetching, the caching and the verifying. disable_iss_validation does not
// apply in this mode. Legacy secret-based tokens carry no exp and the
// legacy issuer, so this mode accepts projected tokens only. What it
// cannot know is whether the pod a token is bound to still exists: keep
// projected token lifetimes short (and set a role audience) when using it.
//
// # What a login proves
//
// Every failure after the role was found is a 403: "service account name
// not authorized", "namespace not authorized", or "permission denied" for
// everything else (a bad signature, a failed review); the reason is logged
// with the role name, never with the token. The auth's metadata (and its
// alias's) carry role, service_account_name, service_account_namespace,
// service_account_uid, service_account_secret_name (legacy tokens), and
// pod_name and pod_uid when a projected token is bound to a pod. The
// display name is <namespace>-<name>, the alias name the service account's
// uid (or <namespace>/<name> with alias_name_source =
// serviceaccount_name). A JWT, the reviewer JWT and the local token go into
// no error message and no log line.
//
// # Storage layout
//
//	config        the mount's configuration (configEntry)
//	role/<name>   a role (roleEntry); names are lowercase
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// Storage keys.
const (
	configKey  = "config"
	rolePrefix = "role/"
)

// Limits and intervals.
const (
	// defaultLocalSADir is where Kubernetes mounts a pod's service-account
	// credentials.
	defaultLocalSADir = "/var/run/secrets/kubernetes.io/serviceaccount"
	// localSARefresh is how long the pod's own CA and token are cached.
	localSARefresh = time.Minute
	// reviewTimeout bounds a TokenReview call. (The fetch timeout, the
	// refresh interval and the age of key sets, and the bound on a
	// login's JWT, are internal/jwks's.)
	reviewTimeout = 10 * time.Second
	// timeLeeway is the clock skew allowed on exp, nbf and iat in jwks mode.
	timeLeeway = 30 * time.Second
	// maxBodySize bounds the answers of the Kubernetes API.
	maxBodySize = 1 << 20
)

// Factory builds a Kubernetes backend for one mount.
func Factory(_ context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	if conf == nil {
		return nil, errors.New("kubernetes: nil backend config")
	}
	return newBackend(conf, options{})
}

// options are the parts of a backend tests replace.
type options struct {
	// localSADir is the pod's service-account directory
	// ([defaultLocalSADir] when empty).
	localSADir string
	// transport is cloned for every HTTP client the backend makes
	// (http.DefaultTransport when nil); it must be an *http.Transport.
	transport *http.Transport
}

// backend is the Kubernetes auth method of one mount.
type backend struct {
	*framework.Backend
	now       func() time.Time
	logger    *slog.Logger
	transport *http.Transport
	local     *localSA
	reviewers reviewerCache
	keys      keyCache
}

var (
	_ logical.Backend       = (*backend)(nil)
	_ logical.SpecialPather = (*backend)(nil)
)

func newBackend(conf *logical.BackendConfig, o options) (*backend, error) {
	b := &backend{now: conf.Now, logger: conf.Logger, transport: o.transport}
	if b.now == nil {
		b.now = time.Now
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	if b.transport == nil {
		t, ok := http.DefaultTransport.(*http.Transport)
		if !ok {
			return nil, errors.New("kubernetes: the default HTTP transport is not an *http.Transport")
		}
		b.transport = t
	}
	dir := o.localSADir
	if dir == "" {
		dir = defaultLocalSADir
	}
	b.local = &localSA{dir: dir, now: b.now}
	paths := []*framework.Path{
		b.pathLogin(),
		b.pathConfig(),
		b.pathRoleList(),
		b.pathRole(),
	}
	fb, err := framework.NewBackend(backendHelp, paths,
		framework.WithSpecialPaths(logical.PathsSpecial{Unauthenticated: []string{"login"}}),
		framework.WithAuthRenew(b.renew),
	)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	b.Backend = fb
	return b, nil
}

const backendHelp = `The Kubernetes auth method: pods log in with their service-account token,
checked by the cluster's TokenReview API or, for clusters Vigil cannot reach,
against the cluster's service-account issuer keys (token_validation = "jwks").`
