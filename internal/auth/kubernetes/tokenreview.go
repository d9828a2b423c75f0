package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/vigil-secrets/vigil/internal/jwks"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// reviewPath is the TokenReview collection under the API server's URL.
const reviewPath = "/apis/authentication.k8s.io/v1/tokenreviews"

// Keys of a review's status.user.extra for pod-bound tokens.
const (
	extraPodName = "authentication.kubernetes.io/pod-name"
	extraPodUID  = "authentication.kubernetes.io/pod-uid"
)

// tokenReview is the TokenReview object, request and answer.
type tokenReview struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Spec       tokenReviewSpec    `json:"spec"`
	Status     *tokenReviewStatus `json:"status,omitempty"`
}

type tokenReviewSpec struct {
	Token     string   `json:"token"`
	Audiences []string `json:"audiences,omitempty"`
}

type tokenReviewStatus struct {
	Authenticated bool     `json:"authenticated"`
	Audiences     []string `json:"audiences,omitempty"`
	User          struct {
		Username string              `json:"username"`
		UID      string              `json:"uid"`
		Groups   []string            `json:"groups,omitempty"`
		Extra    map[string][]string `json:"extra,omitempty"`
	} `json:"user"`
	Error string `json:"error,omitempty"`
}

// reviewerCache keeps the HTTP client of TokenReview calls for the CA it
// was built with, so that connections are reused across logins.
type reviewerCache struct {
	mu     sync.Mutex
	caPEM  string
	client *http.Client
}

func (rc *reviewerCache) get(base *http.Transport, caPEM string) (*http.Client, error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.client != nil && rc.caPEM == caPEM {
		return rc.client, nil
	}
	c, err := jwks.HTTPClient(base, caPEM, reviewTimeout)
	if err != nil {
		return nil, err
	}
	rc.client, rc.caPEM = c, caPEM
	return c, nil
}

// reviewRequest is one TokenReview call.
type reviewRequest struct {
	host      string // kubernetes_host
	caPEM     string
	bearer    secret.String
	token     secret.String
	audiences []string
}

// review asks the API server about a token and checks the answer against
// the account the token's claims name. Every error is a refusal; none
// quotes a token.
func (b *backend) review(ctx context.Context, r reviewRequest, sa serviceAccount) error {
	u, err := hostURL(r.host)
	if err != nil {
		return err
	}
	client, err := b.reviewers.get(b.transport, r.caPEM)
	if err != nil {
		return fmt.Errorf("the Kubernetes CA: %w", err)
	}
	body, err := json.Marshal(tokenReview{
		APIVersion: "authentication.k8s.io/v1",
		Kind:       "TokenReview",
		Spec:       tokenReviewSpec{Token: r.token.Reveal(), Audiences: r.audiences},
	})
	if err != nil {
		return fmt.Errorf("encode the TokenReview: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	endpoint := u.String() + reviewPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build the TokenReview request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.bearer.Reveal())
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error names the URL and the cause, never the headers.
		return fmt.Errorf("the TokenReview call failed: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBodySize+1))
	if err != nil {
		return fmt.Errorf("read the TokenReview answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("the Kubernetes API refused the TokenReview (%d): the reviewer token is invalid or lacks system:auth-delegator", resp.StatusCode)
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated:
		return fmt.Errorf("the Kubernetes API answered the TokenReview with %d", resp.StatusCode)
	case len(raw) > maxBodySize:
		return errors.New("the TokenReview answer is too large")
	}
	var tr tokenReview
	if err := json.Unmarshal(raw, &tr); err != nil {
		return errors.New("the TokenReview answer is not a TokenReview")
	}
	if tr.Status == nil {
		return errors.New("the TokenReview answer has no status")
	}
	st := tr.Status
	switch {
	case !st.Authenticated:
		return errors.New("the TokenReview says the token is not authenticated")
	case len(r.audiences) > 0 && !overlaps(st.Audiences, r.audiences):
		return errors.New("the TokenReview's audiences do not overlap the audiences asked for")
	case st.User.Username != sa.username():
		return errors.New("the TokenReview names another user than the JWT's service account")
	case st.User.UID != sa.UID:
		return errors.New("the TokenReview names another uid than the JWT's service account")
	}
	// A pod-bound token's review names the pod; it must be the JWT's.
	if sa.PodName != "" {
		if names := st.User.Extra[extraPodName]; len(names) > 0 && (len(names) != 1 || names[0] != sa.PodName) {
			return errors.New("the TokenReview names another pod than the JWT")
		}
		if uids := st.User.Extra[extraPodUID]; len(uids) > 0 && (len(uids) != 1 || uids[0] != sa.PodUID) {
			return errors.New("the TokenReview names another pod uid than the JWT")
		}
	}
	return nil
}
