package kubernetes

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/secret"
)

// localSA reads the credentials Kubernetes mounts into the pod Vigil runs
// in: the cluster's CA and the pod's service-account token. Both are
// cached for [localSARefresh]; the kubelet rotates projected tokens, so
// they are read again after that. Outside a pod the files do not exist and
// both are empty.
type localSA struct {
	dir string
	now func() time.Time

	mu     sync.Mutex
	readAt time.Time
	ca     string
	token  secret.String
}

// get returns the pod's CA PEM and token ("" for a missing file).
func (l *localSA) get() (ca string, token secret.String, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.readAt.IsZero() && now.Sub(l.readAt) < localSARefresh && now.After(l.readAt.Add(-time.Second)) {
		return l.ca, l.token, nil
	}
	caRaw, err := readOptional(filepath.Join(l.dir, "ca.crt"))
	if err != nil {
		return "", secret.String{}, err
	}
	tokRaw, err := readOptional(filepath.Join(l.dir, "token"))
	if err != nil {
		return "", secret.String{}, err
	}
	l.ca = caRaw
	l.token = secret.NewString(strings.TrimSpace(tokRaw))
	l.readAt = now
	return l.ca, l.token, nil
}

// readOptional reads a small file; a missing file is "".
func readOptional(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		// The error names the path, never the content.
		return "", err
	}
	return string(raw), nil
}
