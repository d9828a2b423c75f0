package kubernetes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
)

// saPrefix begins the Kubernetes user name of a service account:
// system:serviceaccount:<namespace>:<name>.
const saPrefix = "system:serviceaccount:"

// serviceAccount is what a token says about its bearer. Legacy
// (secret-based) tokens carry flat claims and a secret name; projected
// tokens carry a nested "kubernetes.io" object and, when bound to a pod,
// the pod's name and uid.
type serviceAccount struct {
	Namespace  string
	Name       string
	UID        string
	SecretName string
	PodName    string
	PodUID     string
}

// username is the account's Kubernetes user name.
func (sa serviceAccount) username() string { return saPrefix + sa.Namespace + ":" + sa.Name }

// claims are the parts of a service-account token's payload Vigil reads.
type claims struct {
	Issuer    string
	Subject   string
	Audiences []string
	// Expiry, NotBefore and IssuedAt are zero when absent.
	Expiry, NotBefore, IssuedAt time.Time
	SA                          serviceAccount
}

// rawClaims is the JSON of a token's payload.
type rawClaims struct {
	Issuer    string       `json:"iss"`
	Subject   string       `json:"sub"`
	Audience  audience     `json:"aud"`
	Expiry    *numericDate `json:"exp"`
	NotBefore *numericDate `json:"nbf"`
	IssuedAt  *numericDate `json:"iat"`

	LegacyNamespace  string `json:"kubernetes.io/serviceaccount/namespace"`
	LegacySecretName string `json:"kubernetes.io/serviceaccount/secret.name"`
	LegacyName       string `json:"kubernetes.io/serviceaccount/service-account.name"`
	LegacyUID        string `json:"kubernetes.io/serviceaccount/service-account.uid"`

	Kubernetes *struct {
		Namespace      string   `json:"namespace"`
		ServiceAccount nameUID  `json:"serviceaccount"`
		Pod            *nameUID `json:"pod"`
		Secret         *nameUID `json:"secret"`
	} `json:"kubernetes.io"`
}

type nameUID struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// audience is aud: a string or a list of strings.
type audience []string

func (a *audience) UnmarshalJSON(raw []byte) error {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return errors.New("aud is neither a string nor a list of strings")
	}
	*a = many
	return nil
}

// numericDate is a JWT NumericDate: seconds since the epoch, possibly
// fractional.
type numericDate struct{ t time.Time }

func (n *numericDate) UnmarshalJSON(raw []byte) error {
	var num json.Number
	if err := json.Unmarshal(raw, &num); err != nil {
		return errors.New("a time claim is not a number")
	}
	f, err := num.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return errors.New("a time claim is out of range")
	}
	sec, frac := math.Modf(f)
	n.t = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

func (n *numericDate) time() time.Time {
	if n == nil {
		return time.Time{}
	}
	return n.t
}

// maxNameLen bounds the names and uids taken from a token: Kubernetes
// names are at most 253 bytes.
const maxNameLen = 253

// parseClaims decodes a token's payload and finds its service account,
// from projected claims when the token has them and legacy claims
// otherwise. A token naming no service account (or an inconsistent one) is
// refused. Its errors never quote the payload.
func parseClaims(payload []byte) (*claims, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	var rc rawClaims
	if err := dec.Decode(&rc); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, errors.New("the JWT's payload is not JSON")
		}
		return nil, errors.New("the JWT's payload has claims of the wrong type")
	}
	if dec.More() {
		return nil, errors.New("the JWT's payload is not one JSON object")
	}
	c := &claims{
		Issuer:    rc.Issuer,
		Subject:   rc.Subject,
		Audiences: rc.Audience,
		Expiry:    rc.Expiry.time(),
		NotBefore: rc.NotBefore.time(),
		IssuedAt:  rc.IssuedAt.time(),
	}
	if k := rc.Kubernetes; k != nil {
		c.SA = serviceAccount{Namespace: k.Namespace, Name: k.ServiceAccount.Name, UID: k.ServiceAccount.UID}
		if k.Pod != nil {
			c.SA.PodName, c.SA.PodUID = k.Pod.Name, k.Pod.UID
		}
		if k.Secret != nil {
			c.SA.SecretName = k.Secret.Name
		}
	} else {
		c.SA = serviceAccount{
			Namespace:  rc.LegacyNamespace,
			Name:       rc.LegacyName,
			UID:        rc.LegacyUID,
			SecretName: rc.LegacySecretName,
		}
	}
	if err := c.SA.check(); err != nil {
		return nil, err
	}
	// The subject, when present, must name the same account.
	if c.Subject != "" && c.Subject != c.SA.username() {
		return nil, errors.New("the JWT's sub does not name its service account")
	}
	return c, nil
}

// check refuses an account with a missing or malformed part.
func (sa serviceAccount) check() error {
	for _, f := range []struct{ name, v string }{
		{"namespace", sa.Namespace}, {"service account name", sa.Name}, {"service account uid", sa.UID},
	} {
		if f.v == "" {
			return fmt.Errorf("the JWT names no %s", f.name)
		}
	}
	for _, v := range []string{sa.Namespace, sa.Name, sa.UID, sa.SecretName, sa.PodName, sa.PodUID} {
		if len(v) > maxNameLen || strings.ContainsAny(v, ":/ \t\r\n\x00") {
			return errors.New("the JWT's service account claims are malformed")
		}
	}
	if (sa.PodName == "") != (sa.PodUID == "") {
		return errors.New("the JWT names a pod without its name or uid")
	}
	return nil
}

// overlaps reports whether a and b share an element.
func overlaps(a, b []string) bool {
	return slices.ContainsFunc(a, func(s string) bool { return slices.Contains(b, s) })
}

// matchAny reports whether s matches one of patterns: "*" matches
// everything, and '*' inside a pattern stands for any run of characters.
func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if p == "*" || framework.GlobMatch(p, s) {
			return true
		}
	}
	return false
}
