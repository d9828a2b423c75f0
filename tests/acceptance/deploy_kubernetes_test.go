//go:build !e2e

package acceptance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	vault "github.com/hashicorp/vault/api"
	"gopkg.in/yaml.v3"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent"
	"github.com/vigil-secrets/vigil/internal/agent/auth"
	"github.com/vigil-secrets/vigil/internal/agent/source"
	"github.com/vigil-secrets/vigil/internal/agent/template"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/testcluster"
	"github.com/vigil-secrets/vigil/internal/testlog"
)

// The Kubernetes examples (deploy/kubernetes) and the External Secrets
// Operator page (docs/external-secrets.md), checked as a cluster and Vigil
// would take them. The manifests keep the promises their README makes
// (a projected token of audience vigil where the agent's configuration
// looks for it, a memory-backed volume shared at the templates'
// directory, no secret anywhere in them); the agent configurations they
// carry parse as `vigil agent` reads them; and the README's and the page's
// commands, run as written against a real server, let the pods log in
// with the roles and audiences the manifests name and render what their
// templates read, and let ESO do what it does.

const (
	deployDir = "../../deploy/kubernetes"
	esoPage   = "../../docs/external-secrets.md"
	// k8sIssuer is the iss of the fake cluster's service-account tokens.
	k8sIssuer = "https://kubernetes.default.svc.cluster.local"
)

// k8sObject is the part of a Kubernetes object the tests read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string
	Metadata   struct{ Name, Namespace string }
	// Data is a ConfigMap's.
	Data map[string]string
	// AutomountServiceAccountToken is a ServiceAccount's.
	AutomountServiceAccountToken *bool `yaml:"automountServiceAccountToken"`
	Spec                         struct {
		// Template is a Deployment's or a Job's pod template.
		Template struct{ Spec k8sPodSpec }
		// The Pod's own spec.
		k8sPodSpec `yaml:",inline"`
	}
}

// pod returns the pod spec of a workload, nil for other kinds.
func (o *k8sObject) pod() *k8sPodSpec {
	switch o.Kind {
	case "Deployment", "StatefulSet", "DaemonSet", "Job":
		return &o.Spec.Template.Spec
	case "Pod":
		return &o.Spec.k8sPodSpec
	}
	return nil
}

type k8sPodSpec struct {
	ServiceAccountName           string `yaml:"serviceAccountName"`
	AutomountServiceAccountToken *bool  `yaml:"automountServiceAccountToken"`
	SecurityContext              struct {
		RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
		FSGroup      *int64 `yaml:"fsGroup"`
	} `yaml:"securityContext"`
	InitContainers []*k8sContainer `yaml:"initContainers"`
	Containers     []*k8sContainer
	Volumes        []*k8sVolume
}

type k8sContainer struct {
	Name, Image   string
	RestartPolicy string `yaml:"restartPolicy"`
	Command, Args []string
	Env           []struct {
		Name, Value string
		ValueFrom   map[string]any `yaml:"valueFrom"`
	}
	EnvFrom      []map[string]any `yaml:"envFrom"`
	StartupProbe *struct {
		Exec struct{ Command []string }
	} `yaml:"startupProbe"`
	SecurityContext struct {
		RunAsUser                *int64 `yaml:"runAsUser"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct{ Drop []string }
	} `yaml:"securityContext"`
	VolumeMounts []*k8sMount `yaml:"volumeMounts"`
}

type k8sMount struct {
	Name      string
	MountPath string `yaml:"mountPath"`
	SubPath   string `yaml:"subPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type k8sVolume struct {
	Name      string
	ConfigMap *struct{ Name string } `yaml:"configMap"`
	EmptyDir  *struct {
		Medium    string
		SizeLimit string `yaml:"sizeLimit"`
	} `yaml:"emptyDir"`
	Projected *struct {
		Sources []struct {
			ServiceAccountToken *struct {
				Path, Audience    string
				ExpirationSeconds int64 `yaml:"expirationSeconds"`
			} `yaml:"serviceAccountToken"`
		}
	}
}

// volume returns the pod's volume called name.
func (p *k8sPodSpec) volume(name string) *k8sVolume {
	for _, v := range p.Volumes {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// fileMount returns the mount of c, and its volume, under which file is:
// the deepest mount path that is a directory of file.
func (p *k8sPodSpec) fileMount(c *k8sContainer, file string) (*k8sVolume, *k8sMount) {
	var best *k8sMount
	for _, m := range c.VolumeMounts {
		dir := strings.TrimSuffix(m.MountPath, "/") + "/"
		if strings.HasPrefix(file, dir) && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = m
		}
	}
	if best == nil {
		return nil, nil
	}
	return p.volume(best.Name), best
}

// mountOf returns c's mount of the volume called name, nil if none.
func (c *k8sContainer) mountOf(name string) *k8sMount {
	for _, m := range c.VolumeMounts {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// configFlag returns the value of the container's -config flag.
func (c *k8sContainer) configFlag() string {
	argv := append(slices.Clone(c.Command), c.Args...)
	for i, a := range argv {
		for _, f := range []string{"-config", "--config"} {
			if a == f && i+1 < len(argv) {
				return argv[i+1]
			}
			if v, ok := strings.CutPrefix(a, f+"="); ok {
				return v
			}
		}
	}
	return ""
}

// isAgent reports whether the container runs `vigil agent`.
func (c *k8sContainer) isAgent() bool {
	argv := append(slices.Clone(c.Command), c.Args...)
	return strings.Contains(c.Image, "vigil") && slices.Contains(argv, "agent")
}

// decodeYAML decodes every document of a YAML stream.
func decodeYAML[T any](t *testing.T, name string, src []byte) []T {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var out []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, v)
	}
}

// deployExample is one manifest file of deploy/kubernetes: its objects,
// the workload running the agent, and the agent's parsed configuration.
type deployExample struct {
	file     string
	raw      string
	objects  []k8sObject
	workload *k8sObject
	pod      *k8sPodSpec
	agentC   *k8sContainer
	// sidecar is true when the agent runs beside the app (a native
	// sidecar or a regular container), false for a plain init container.
	sidecar bool
	agent   *config.Agent
	// hcl is the agent's configuration as the ConfigMap holds it.
	hcl string
	// token is the projected service-account token the agent logs in with.
	token struct {
		volume   string
		audience string
		ttl      time.Duration
	}
}

// namespace returns the workload's namespace.
func (ex *deployExample) namespace() string { return ex.workload.Metadata.Namespace }

// object returns the file's object of kind called name, nil if none.
func (ex *deployExample) object(kind, name string) *k8sObject {
	for i := range ex.objects {
		if o := &ex.objects[i]; o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	return nil
}

// apps returns the containers other than the agent's that use the
// rendered files: the pod's regular containers.
func (ex *deployExample) apps() []*k8sContainer {
	var out []*k8sContainer
	for _, c := range ex.pod.Containers {
		if c != ex.agentC {
			out = append(out, c)
		}
	}
	return out
}

// loadDeployExamples parses every manifest of deploy/kubernetes and the
// agent configuration each one's workload runs with. What cannot be
// found at all (no workload running the agent, no ConfigMap holding its
// configuration) fails the test; the promises are checked elsewhere.
func loadDeployExamples(t *testing.T) []*deployExample {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", deployDir, err)
	}
	var out []*deployExample
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ex := &deployExample{file: filepath.Base(f), raw: string(raw), objects: decodeYAML[k8sObject](t, f, raw)}
		for i := range ex.objects {
			o := &ex.objects[i]
			p := o.pod()
			if p == nil {
				continue
			}
			for _, c := range slices.Concat(p.InitContainers, p.Containers) {
				if !c.isAgent() {
					continue
				}
				if ex.agentC != nil {
					t.Fatalf("%s: more than one container runs vigil agent", ex.file)
				}
				ex.workload, ex.pod, ex.agentC = o, p, c
				ex.sidecar = !slices.Contains(p.InitContainers, c) || c.RestartPolicy == "Always"
			}
		}
		if ex.agentC == nil {
			t.Fatalf("%s: no workload runs vigil agent", ex.file)
		}
		cfgPath := ex.agentC.configFlag()
		vol, m := ex.pod.fileMount(ex.agentC, cfgPath)
		if cfgPath == "" || vol == nil || vol.ConfigMap == nil || m.SubPath != "" {
			t.Fatalf("%s: the agent's -config %q is not in a ConfigMap volume it mounts", ex.file, cfgPath)
		}
		cm := ex.object("ConfigMap", vol.ConfigMap.Name)
		if cm == nil {
			t.Fatalf("%s: no ConfigMap %q for the agent's configuration", ex.file, vol.ConfigMap.Name)
		}
		key := strings.TrimPrefix(cfgPath, strings.TrimSuffix(m.MountPath, "/")+"/")
		hcl, ok := cm.Data[key]
		if !ok {
			t.Fatalf("%s: ConfigMap %s has no key %q (the agent's -config %s)", ex.file, cm.Metadata.Name, key, cfgPath)
		}
		ex.hcl = hcl
		if ex.agent, err = config.ParseAgent(ex.file+": "+cm.Metadata.Name+"/"+key, []byte(hcl)); err != nil {
			t.Fatalf("the agent configuration `vigil agent` would read: %v", err)
		}
		if aa := ex.agent.AutoAuth; aa == nil || aa.Method.Kubernetes == nil {
			t.Fatalf("%s: the agent does not log in with the kubernetes method", ex.file)
		}
		tokenPath := ex.agent.AutoAuth.Method.Kubernetes.TokenPath
		if tv, tm := ex.pod.fileMount(ex.agentC, tokenPath); tv != nil && tv.Projected != nil {
			rel := strings.TrimPrefix(tokenPath, strings.TrimSuffix(tm.MountPath, "/")+"/")
			for _, src := range tv.Projected.Sources {
				if sat := src.ServiceAccountToken; sat != nil && sat.Path == rel {
					ex.token.volume, ex.token.audience = tv.Name, sat.Audience
					ex.token.ttl = time.Duration(sat.ExpirationSeconds) * time.Second
				}
			}
		}
		out = append(out, ex)
	}
	return out
}

// secretShapes are values that look like credentials: none may appear in
// a manifest.
var secretShapes = map[string]*regexp.Regexp{
	"an OpenAI-style key":       regexp.MustCompile(`sk-[A-Za-z0-9_-]{8,}`),
	"a Hugging Face token":      regexp.MustCompile(`hf_[A-Za-z0-9]{8,}`),
	"a Vigil or Vault token":    regexp.MustCompile(`\bhv[sbr]\.[A-Za-z0-9_-]{8,}`),
	"a JWT":                     regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.`),
	"a private key":             regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`),
	"a URL with a password":     regexp.MustCompile(`[a-z][a-z0-9+.-]*://[^/\s:@"']+:[^/\s@"']+@`),
	"a credential set verbatim": regexp.MustCompile(`(?i)\b(password|passwd|secret|token|api_?key)\s*[:=]\s*["']?[A-Za-z0-9+_-]{12,}`),
}

// sensitiveEnv are variable names that would hold a credential.
var sensitiveEnv = regexp.MustCompile(`(?i)key|token|secret|password|passwd|url|dsn|credential`)

// TestDeployKubernetesManifests checks the promises of deploy/kubernetes:
// each manifest's agent configuration parses; the agent finds its token
// where a projected token of audience vigil is mounted, in its container
// only; the templates write into a memory-backed emptyDir that the
// applications mount read-only at the same directory; the sidecar runs
// beside the app and holds it until every file is rendered, the init
// container renders once and exits; everything runs as non-root with a
// read-only root filesystem; and no secret is anywhere in the manifests.
func TestDeployKubernetesManifests(t *testing.T) {
	examples := loadDeployExamples(t)
	readme := mustReadFile(t, filepath.Join(deployDir, "README.md"))
	dockerUID := dockerfileUser(t)
	var putValues []string
	for _, kv := range readmeKVPuts(t, readme) {
		for _, v := range kv.data {
			putValues = append(putValues, v)
		}
	}
	var sidecars, inits int
	for _, ex := range examples {
		if ex.sidecar {
			sidecars++
		} else {
			inits++
		}
		t.Run(ex.file, func(t *testing.T) {
			ex.checkObjects(t, readme)
			ex.checkToken(t)
			ex.checkCA(t, readme)
			dir := ex.checkFiles(t, readme)
			ex.checkMode(t)
			ex.checkSecurity(t, dockerUID)
			ex.checkNoSecrets(t, dir, putValues)
		})
	}
	if sidecars == 0 || inits == 0 {
		t.Errorf("%d sidecar and %d init-container examples; want both", sidecars, inits)
	}
	addrs := map[string]bool{}
	for _, ex := range examples {
		addrs[ex.agent.Vault.Address] = true
	}
	if len(addrs) != 1 {
		t.Errorf("the examples name several Vigil addresses: %v", addrs)
	}
}

// containers returns the pod's init and regular containers.
func (ex *deployExample) containers() []*k8sContainer {
	return slices.Concat(ex.pod.InitContainers, ex.pod.Containers)
}

// checkObjects checks the file as a whole: one namespace, no Secret, the
// README applies it, and the pod's identity is a service account of the
// file with no API server token in the pod.
func (ex *deployExample) checkObjects(t *testing.T, readme string) {
	ns, p := ex.namespace(), ex.pod
	for _, o := range ex.objects {
		if o.Metadata.Namespace != ns {
			t.Errorf("%s %s is in namespace %q, the workload in %q", o.Kind, o.Metadata.Name, o.Metadata.Namespace, ns)
		}
		if o.Kind == "Secret" {
			t.Errorf("Secret %s: the examples keep secrets out of Kubernetes objects", o.Metadata.Name)
		}
	}
	if !strings.Contains(readme, "kubectl apply -f deploy/kubernetes/"+ex.file) {
		t.Errorf("the README does not apply %s", ex.file)
	}
	sa := ex.object("ServiceAccount", p.ServiceAccountName)
	switch {
	case sa == nil:
		t.Errorf("the pod's service account %q is not in the file", p.ServiceAccountName)
	case sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken:
		t.Errorf("ServiceAccount %s does not set automountServiceAccountToken: false", sa.Metadata.Name)
	}
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Error("the pod does not set automountServiceAccountToken: false")
	}
}

// checkToken checks the login: the kubernetes method at its usual mount,
// with a role, and its token_path a projected token of audience vigil,
// mounted in the agent's container only.
func (ex *deployExample) checkToken(t *testing.T) {
	m := ex.agent.AutoAuth.Method
	switch {
	case ex.token.volume == "":
		t.Errorf("token_path %s is not a projected serviceAccountToken the agent's container mounts", m.Kubernetes.TokenPath)
	case ex.token.audience != "vigil":
		t.Errorf("the projected token's audience is %q, want vigil", ex.token.audience)
	case ex.token.ttl < 10*time.Minute:
		t.Errorf("expirationSeconds is %v: Kubernetes refuses less than 600", ex.token.ttl.Seconds())
	}
	for _, c := range ex.containers() {
		if c != ex.agentC && ex.token.volume != "" && c.mountOf(ex.token.volume) != nil {
			t.Errorf("container %s mounts the agent's token", c.Name)
		}
	}
	if m.MountPath != "auth/kubernetes" || m.Kubernetes.Role == "" {
		t.Errorf("the method's mount_path is %q and role %q", m.MountPath, m.Kubernetes.Role)
	}
}

// checkCA checks the way to Vigil: over TLS, with ca_cert in a ConfigMap
// of the file or one the README creates.
func (ex *deployExample) checkCA(t *testing.T, readme string) {
	a := ex.agent
	if !strings.HasPrefix(a.Vault.Address, "https://") {
		t.Errorf("vault address %q: the pods reach Vigil over TLS", a.Vault.Address)
	}
	if a.Vault.CACert == "" {
		return
	}
	v, _ := ex.pod.fileMount(ex.agentC, a.Vault.CACert)
	switch {
	case v == nil || v.ConfigMap == nil:
		t.Errorf("ca_cert %s is not in a ConfigMap volume the agent mounts", a.Vault.CACert)
	case ex.object("ConfigMap", v.ConfigMap.Name) == nil &&
		!strings.Contains(readme, "kubectl -n "+ex.namespace()+" create configmap "+v.ConfigMap.Name+" "):
		t.Errorf("ConfigMap %s (ca_cert) is neither in the file nor created in %s by the README", v.ConfigMap.Name, ex.namespace())
	}
}

// checkFiles checks where the templates go: one directory (returned),
// files without access for others that the README describes, a
// memory-backed emptyDir there that the agent writes and every app
// container mounts whole and read-only at the same place, and an fsGroup
// through which the apps read.
func (ex *deployExample) checkFiles(t *testing.T, readme string) string {
	a, p := ex.agent, ex.pod
	if len(a.Templates) == 0 {
		t.Fatal("the agent renders no template")
	}
	dir := path.Dir(a.Templates[0].Destination)
	for _, tpl := range a.Templates {
		dest := tpl.Destination
		if path.Dir(dest) != dir {
			t.Errorf("template %s is not in %s with the others", dest, dir)
		}
		if tpl.Perms == 0 || tpl.Perms&0o007 != 0 {
			t.Errorf("template %s perms %#o: set them, with nothing for others", dest, tpl.Perms)
		}
		if !strings.Contains(readme, dest) {
			t.Errorf("the README does not say what %s holds", dest)
		}
	}
	vol, am := p.fileMount(ex.agentC, a.Templates[0].Destination)
	switch {
	case vol == nil || vol.EmptyDir == nil:
		t.Fatalf("the agent's container mounts no emptyDir at %s", dir)
	case vol.EmptyDir.Medium != "Memory":
		t.Errorf("volume %s has medium %q, want Memory", vol.Name, vol.EmptyDir.Medium)
	case am.MountPath != dir || am.SubPath != "" || am.ReadOnly:
		t.Errorf("the agent mounts %s at %s (subPath %q, readOnly %v), want %s writable", vol.Name, am.MountPath, am.SubPath, am.ReadOnly, dir)
	}
	if p.SecurityContext.FSGroup == nil {
		t.Error("no fsGroup: the app could not read the agent's 0440 files")
	}
	if len(ex.apps()) == 0 {
		t.Fatal("no application container")
	}
	for _, c := range ex.apps() {
		m := c.mountOf(vol.Name)
		if m == nil || m.MountPath != dir || m.SubPath != "" || !m.ReadOnly {
			t.Errorf("container %s does not mount %s read-only at %s, whole (a subPath mount never sees a new rendering): %+v", c.Name, vol.Name, dir, m)
		}
	}
	return dir
}

// checkMode checks the agent's part in the pod's life: a sidecar keeps
// the files fresh and, as a native sidecar, holds the app until every
// file is there; an init container of a Job renders once, exits, and
// fails rather than wait forever for a secret that is not there.
func (ex *deployExample) checkMode(t *testing.T) {
	a := ex.agent
	if ex.sidecar {
		if a.ExitAfterAuth {
			t.Error("the sidecar's agent sets exit_after_auth: it would stop keeping the files fresh")
		}
		if !slices.Contains(ex.pod.InitContainers, ex.agentC) {
			return
		}
		probe := ""
		if ex.agentC.StartupProbe != nil {
			probe = strings.Join(ex.agentC.StartupProbe.Exec.Command, " ")
		}
		for _, tpl := range a.Templates {
			if !strings.Contains(probe, "test -s "+tpl.Destination) {
				t.Errorf("the sidecar's startup probe does not wait for %s: the app could start without it", tpl.Destination)
			}
		}
		return
	}
	if !a.ExitAfterAuth {
		t.Error("the init container's agent does not set exit_after_auth: the pod would never start its app")
	}
	if !a.TemplateConfig.ExitOnRetryFailure {
		t.Error("the init container's agent does not set exit_on_retry_failure: a missing secret would hold the job forever")
	}
	if ex.workload.Kind != "Job" {
		t.Errorf("the init-container example is a %s, want a Job", ex.workload.Kind)
	}
}

// checkSecurity checks every container: non-root (the agent as the
// image's user, the apps as others), no privilege escalation, a read-only
// root filesystem, no capabilities.
func (ex *deployExample) checkSecurity(t *testing.T, imageUID int64) {
	if nonRoot := ex.pod.SecurityContext.RunAsNonRoot; nonRoot == nil || !*nonRoot {
		t.Error("the pod does not set runAsNonRoot: true")
	}
	agentUID := ex.agentC.SecurityContext.RunAsUser
	for _, c := range ex.containers() {
		sc := c.SecurityContext
		if sc.RunAsUser == nil || *sc.RunAsUser == 0 || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("container %s: want a non-root runAsUser, allowPrivilegeEscalation false, readOnlyRootFilesystem true and capabilities dropped", c.Name)
		}
		if c != ex.agentC && sc.RunAsUser != nil && agentUID != nil && *sc.RunAsUser == *agentUID {
			t.Errorf("container %s runs as the agent's user: it could rewrite the files", c.Name)
		}
	}
	if agentUID != nil && *agentUID != imageUID {
		t.Errorf("the agent runs as %d, the image's USER is %d", *agentUID, imageUID)
	}
}

// checkNoSecrets checks that no secret is in the manifest: no variable
// from a Kubernetes Secret, variables that would hold a credential name a
// file in dir instead, and no literal looks like a credential or is a
// value the README stores.
func (ex *deployExample) checkNoSecrets(t *testing.T, dir string, putValues []string) {
	for _, c := range ex.containers() {
		for _, e := range c.Env {
			if e.ValueFrom != nil {
				t.Errorf("container %s: %s comes from %v; the examples keep values out of Kubernetes", c.Name, e.Name, e.ValueFrom)
			}
			if sensitiveEnv.MatchString(e.Name) && (!strings.HasSuffix(e.Name, "_FILE") || !strings.HasPrefix(e.Value, dir+"/")) {
				t.Errorf("container %s: %s=%q; name the file in %s instead (NAME_FILE)", c.Name, e.Name, e.Value, dir)
			}
		}
		if len(c.EnvFrom) > 0 {
			t.Errorf("container %s takes its environment from %v", c.Name, c.EnvFrom)
		}
	}
	for what, re := range secretShapes {
		if loc := re.FindString(ex.raw); loc != "" {
			t.Errorf("%s holds what looks like %s: %q", ex.file, what, loc)
		}
	}
	for _, v := range putValues {
		if len(v) >= 6 && strings.Contains(ex.raw, v) {
			t.Errorf("%s holds %q, a value the README stores in Vigil", ex.file, v)
		}
	}
}

// TestDeployKubernetesDockerfile checks the image the manifests run: it
// builds ./cmd/vigil with the Go release go.mod names, without cgo, and
// runs as a numeric non-root user.
func TestDeployKubernetesDockerfile(t *testing.T) {
	df := mustReadFile(t, filepath.Join(deployDir, "Dockerfile"))
	gomod := mustReadFile(t, "../../go.mod")
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	if !regexp.MustCompile(`(?m)^FROM golang:` + regexp.QuoteMeta(m[1]) + `[-.\s]`).MatchString(df) {
		t.Errorf("the Dockerfile does not build with golang:%s (go.mod's release)", m[1])
	}
	if !strings.Contains(df, "CGO_ENABLED=0 go build") || !strings.Contains(df, "./cmd/vigil") {
		t.Error("the Dockerfile does not build ./cmd/vigil without cgo")
	}
	if uid := dockerfileUser(t); uid == 0 {
		t.Error("the image runs as root")
	}
	// What the Dockerfile copies is all the binary needs.
	copied := regexp.MustCompile(`(?m)^COPY (\w+)/ `).FindAllStringSubmatch(df, -1)
	var dirs []string
	for _, c := range copied {
		dirs = append(dirs, c[1])
	}
	for _, need := range []string{"api", "cmd", "internal"} {
		if !slices.Contains(dirs, need) {
			t.Errorf("the Dockerfile does not copy %s/", need)
		}
	}
}

// dockerfileUser returns the numeric user the image runs as.
func dockerfileUser(t *testing.T) int64 {
	t.Helper()
	df := mustReadFile(t, filepath.Join(deployDir, "Dockerfile"))
	users := regexp.MustCompile(`(?m)^USER (\d+)(?::\d+)?\s*$`).FindAllStringSubmatch(df, -1)
	if len(users) == 0 {
		t.Fatal("the Dockerfile sets no numeric USER: the kubelet cannot check runAsNonRoot")
	}
	uid, _ := strconv.ParseInt(users[len(users)-1][1], 10, 64)
	return uid
}

// mustReadFile returns a file's content; a missing file fails the test.
func mustReadFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readmeKV is one `vigil kv put PATH KEY=VALUE...` of a README.
type readmeKV struct {
	path string
	data map[string]string
}

// readmeKVPuts returns the kv puts of the README's shell blocks.
func readmeKVPuts(t *testing.T, readme string) []readmeKV {
	t.Helper()
	var out []readmeKV
	for _, b := range codeBlocks(readme, "sh") {
		for _, c := range shellCommands(b) {
			f := strings.Fields(c.line)
			if len(f) < 4 || (f[0] != "vigil" && f[0] != "./vigil") || f[1] != "kv" || f[2] != "put" {
				continue
			}
			kv := readmeKV{path: f[3], data: map[string]string{}}
			for _, a := range f[4:] {
				k, v, _ := strings.Cut(a, "=")
				kv.data[k] = v
			}
			out = append(out, kv)
		}
	}
	if len(out) == 0 {
		t.Fatal("the README stores no secret (no vigil kv put)")
	}
	return out
}

// kvAPIPath is where `vigil kv put secret/X` stores on the KV v2 mount
// at secret/: secret/data/X.
func kvAPIPath(p string) string { return "secret/data/" + strings.TrimPrefix(p, "secret/") }

// deployEnv is a real server set up by the README's and the ESO page's
// commands, as written, against a loopback Kubernetes API server.
type deployEnv struct {
	url   string
	root  *api.Client
	saKey *rsa.PrivateKey
	// puts are the README's kv puts: what they stored is version 1.
	puts []readmeKV
	// values is what the test then stored over it (version 2), by API
	// path and key.
	values map[string]map[string]string
}

// newDeployEnv starts the server and runs every shell block of the
// README, then of the ESO page, in order: vigil commands in-process, with
// the files the kubectl lines would have written put in place (the
// reviewer token, the cluster's CA), and the kubectl and docker lines
// left to the test. Then it stores a random value over every key the
// README stored. The test's working directory becomes a temporary one.
func newDeployEnv(t *testing.T) *deployEnv {
	t.Helper()
	readme := mustReadFile(t, filepath.Join(deployDir, "README.md"))
	page := mustReadFile(t, esoPage)
	env := &deployEnv{values: map[string]map[string]string{}, puts: readmeKVPuts(t, readme)}
	var err error
	if env.saKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	reviewer := "reviewer-" + rand.Text()
	kube, _ := fakeKubeAPI(t, env.saKey, reviewer)
	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	env.url, env.root = s.URL, apiClient(t, s.URL, s.RootToken)

	t.Chdir(t.TempDir())
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kube.Certificate().Raw})
	if err := os.WriteFile("k8s-ca.crt", caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("reviewer.jwt", []byte(reviewer+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := newDocShell(t, map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()},
		map[string]string{"https://k8s.internal:6443": kube.URL}, "kubectl", "docker")
	for _, b := range slices.Concat(codeBlocks(readme, "sh"), codeBlocks(page, "sh")) {
		admin.mustRun(b)
	}
	if admin.ran < 5 {
		t.Fatalf("the README and the ESO page ran %d vigil commands", admin.ran)
	}
	for _, kv := range env.puts {
		data := map[string]any{}
		p := kvAPIPath(kv.path)
		env.values[p] = map[string]string{}
		for k := range kv.data {
			v := "v2-" + rand.Text()
			data[k], env.values[p][k] = v, v
		}
		if _, err := env.root.Logical().Write(t.Context(), p, map[string]any{"data": data}); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

// podToken is the token the kubelet projects into a pod of the service
// account sa in ns, for aud.
func (env *deployEnv) podToken(t *testing.T, aud, ns, sa, pod string, ttl time.Duration) string {
	t.Helper()
	return saToken(t, env.saKey, k8sIssuer, aud, ns, sa, pod, ttl)
}

// tokenRequest is the token the Kubernetes API answers a TokenRequest
// with (as ESO makes one): of the service account sa in ns, for aud, bound
// to no pod.
func (env *deployEnv) tokenRequest(t *testing.T, aud, ns, sa string, ttl time.Duration) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: env.saKey}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "sa"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{
		"iss": k8sIssuer, "aud": []string{aud}, "sub": "system:serviceaccount:" + ns + ":" + sa,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
		"kubernetes.io": map[string]any{"namespace": ns, "serviceaccount": map[string]any{"name": sa, "uid": "uid-" + ns + "-" + sa}},
	})
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	templateSecretRE = regexp.MustCompile(`\bsecret\s+"([^"]+)"`)
	templateKeyRE    = regexp.MustCompile(`\.Data\.data\.(\w+)`)
)

// TestDeployKubernetesAgainstServer runs the README's server side as
// written, then does what each manifest's agent would: it logs in with
// the role and the token path of its configuration, with a token of the
// audience, namespace and service account the manifest names (a token for
// the API server is refused), renders every template of the
// configuration with that token, and finds the values the test stored.
// Each pod's token reads only its own workload's secrets. The sidecar's
// token may subscribe to change events, and a new version reaches it
// (path and version, not the value) and its next rendering.
func TestDeployKubernetesAgainstServer(t *testing.T) {
	examples := loadDeployExamples(t)
	env := newDeployEnv(t)
	ctx := t.Context()
	tokenFile := filepath.Join(t.TempDir(), "token")
	reads := map[*deployExample][]string{}
	for _, ex := range examples {
		for _, tpl := range ex.agent.Templates {
			for _, m := range templateSecretRE.FindAllStringSubmatch(tpl.Contents, -1) {
				reads[ex] = append(reads[ex], m[1])
			}
		}
	}

	for _, ex := range examples {
		t.Run(ex.file, func(t *testing.T) {
			m := ex.agent.AutoAuth.Method
			login := func(aud string) (auth.Token, error) {
				pod := ex.workload.Metadata.Name + "-6d5f8-q7x2k"
				if err := os.WriteFile(tokenFile, []byte(env.podToken(t, aud, ex.namespace(), ex.pod.ServiceAccountName, pod, ex.token.ttl)), 0o600); err != nil {
					t.Fatal(err)
				}
				method, err := auth.NewLogin(m.Type, m.MountPath, map[string]*auth.Credential{
					"role": auth.ValueCredential(secret.NewString(m.Kubernetes.Role)), "jwt": auth.FileCredential(tokenFile)})
				if err != nil {
					t.Fatal(err)
				}
				return method.Login(ctx, apiClient(t, env.url, ""))
			}
			if _, err := login(k8sIssuer); api.StatusCode(err) != 403 {
				t.Errorf("a login with the API server's audience: %v, want 403", err)
			}
			tok, err := login(ex.token.audience)
			if err != nil {
				t.Fatalf("the agent's login (role %s, audience %s, %s/%s): %v", m.Kubernetes.Role, ex.token.audience, ex.namespace(), ex.pod.ServiceAccountName, err)
			}
			pod := apiClient(t, env.url, tok.Value.Reveal())

			render := func(tpl config.Template) string {
				t.Helper()
				tm, err := template.Parse(tpl.Contents, template.Options{Name: tpl.Destination, ErrorOnMissingKey: tpl.ErrorOnMissingKey})
				if err != nil {
					t.Fatal(err)
				}
				res, err := tm.Render(ctx, source.New(pod))
				if err != nil {
					t.Fatalf("render %s with the pod's token: %v", tpl.Destination, err)
				}
				return string(res.Output)
			}
			for _, tpl := range ex.agent.Templates {
				paths := templateSecretRE.FindAllStringSubmatch(tpl.Contents, -1)
				keys := templateKeyRE.FindAllStringSubmatch(tpl.Contents, -1)
				if len(paths) != 1 || len(keys) != 1 {
					t.Fatalf("template %s: the test expects one secret and one key, found %v and %v", tpl.Destination, paths, keys)
				}
				want, ok := env.values[paths[0][1]][keys[0][1]]
				if !ok {
					t.Errorf("template %s reads %s#%s, which the README does not store", tpl.Destination, paths[0][1], keys[0][1])
					continue
				}
				if got := render(tpl); got != want {
					t.Errorf("%s holds %q, want %q", tpl.Destination, got, want)
				}
			}

			// Least privilege: the other workloads' secrets are refused.
			for other, ps := range reads {
				if other == ex {
					continue
				}
				for _, p := range ps {
					if _, err := pod.Logical().Read(ctx, p); api.StatusCode(err) != 403 {
						t.Errorf("%s's token reading %s (%s's): %v, want 403", ex.file, p, other.file, err)
					}
				}
			}

			runManifestAgent(t, env, ex, tokenFile)
			if !ex.sidecar {
				return
			}
			// A change reaches the sidecar as an event, then its file.
			stream, err := pod.Sys().SubscribeEvents(ctx, "*", api.SubscribeEventsOptions{})
			if err != nil {
				t.Fatalf("the sidecar's token may not subscribe to change events: %v", err)
			}
			defer stream.Close()
			tpl := ex.agent.Templates[0]
			p, key := templateSecretRE.FindStringSubmatch(tpl.Contents)[1], templateKeyRE.FindStringSubmatch(tpl.Contents)[1]
			rotated := "v3-" + rand.Text()
			if _, err := env.root.Logical().Write(ctx, p, map[string]any{"data": map[string]any{key: rotated}}); err != nil {
				t.Fatal(err)
			}
			ev := mustNextEvent(t, stream)
			raw, _ := json.Marshal(ev)
			if ev.DataPath() != p || strings.Contains(string(raw), rotated) {
				t.Errorf("the event: %s; want data_path %s and no value", raw, p)
			}
			if got := render(tpl); got != rotated {
				t.Errorf("after the rotation %s holds %q, want %q", tpl.Destination, got, rotated)
			}
		})
	}
}

// runManifestAgent runs `vigil agent` (in-process) with the manifest's
// configuration as the ConfigMap holds it, its pod paths moved into a
// temporary directory and the server's address given by VIGIL_ADDR, as
// the container's environment may: it logs in with the pod's token file
// and renders every template with the values the test stored. The
// sidecar then renders a new version again within moments (change
// events) and stops cleanly; the init container exits 0 on its own.
func runManifestAgent(t *testing.T, env *deployEnv, ex *deployExample, tokenFile string) {
	t.Helper()
	tmp := t.TempDir()
	caFile, err := filepath.Abs("k8s-ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	repl := []string{ex.agent.AutoAuth.Method.Kubernetes.TokenPath, tokenFile, ex.agent.Vault.CACert, caFile}
	moved := map[string]string{}
	for _, tpl := range ex.agent.Templates {
		dir := filepath.Dir(tpl.Destination)
		if _, ok := moved[dir]; !ok {
			moved[dir] = filepath.Join(tmp, dir)
			repl = append(repl, dir+"/", moved[dir]+"/")
		}
	}
	cfg, err := config.ParseAgent(ex.file, []byte(strings.NewReplacer(repl...).Replace(ex.hcl)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var log testlog.Buffer
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := agent.Run(ctx, agent.Options{
			Config: cfg,
			Getenv: func(k string) string { return map[string]string{"VIGIL_ADDR": env.url}[k] },
			Logger: slog.New(slog.NewTextHandler(&log, nil)),
		})
		done <- result{code, err}
	}()
	defer func() {
		if t.Failed() {
			t.Logf("the agent's log:\n%s", log.String())
		}
	}()
	fileOf := func(tpl config.Template) string { return tpl.Destination }
	want := func(tpl config.Template) string {
		return env.values[templateSecretRE.FindStringSubmatch(tpl.Contents)[1]][templateKeyRE.FindStringSubmatch(tpl.Contents)[1]]
	}
	for _, tpl := range cfg.Templates {
		waitFor(t, 30*time.Second, func() error {
			if b, _ := os.ReadFile(fileOf(tpl)); string(b) != want(tpl) {
				return fmt.Errorf("the agent's %s holds %q", tpl.Destination, b)
			}
			return nil
		})
	}
	if !ex.sidecar {
		select {
		case r := <-done:
			if r.code != 0 || r.err != nil {
				t.Fatalf("the init container's agent ended with %d, %v\n%s", r.code, r.err, log.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("the init container's agent (exit_after_auth) did not exit\n%s", log.String())
		}
		return
	}
	tpl := cfg.Templates[0]
	p, key := templateSecretRE.FindStringSubmatch(tpl.Contents)[1], templateKeyRE.FindStringSubmatch(tpl.Contents)[1]
	v := "v2b-" + rand.Text()
	if _, err := env.root.Logical().Write(t.Context(), p, map[string]any{"data": map[string]any{key: v}}); err != nil {
		t.Fatal(err)
	}
	env.values[p][key] = v
	waitFor(t, 10*time.Second, func() error {
		if b, _ := os.ReadFile(fileOf(tpl)); string(b) != v {
			return fmt.Errorf("after a new version the agent's %s holds %q", tpl.Destination, b)
		}
		return nil
	})
	cancel()
	if r := <-done; r.code != 0 || r.err != nil {
		t.Fatalf("the sidecar's agent ended with %d, %v\n%s", r.code, r.err, log.String())
	}
	if strings.Contains(log.String(), v) {
		t.Error("the agent's log holds a value")
	}
}

// esoObject is the part of the ESO page's objects the test reads.
type esoObject struct {
	APIVersion                   string `yaml:"apiVersion"`
	Kind                         string
	Metadata                     struct{ Name, Namespace string }
	AutomountServiceAccountToken *bool `yaml:"automountServiceAccountToken"`
	Spec                         struct {
		Provider struct {
			Vault *struct {
				Server, Path, Version string
				Auth                  struct {
					Kubernetes *struct {
						MountPath         string `yaml:"mountPath"`
						Role              string
						ServiceAccountRef *struct {
							Name, Namespace string
							Audiences       []string
						} `yaml:"serviceAccountRef"`
					}
				}
			}
		}
		RefreshInterval string                      `yaml:"refreshInterval"`
		SecretStoreRef  struct{ Kind, Name string } `yaml:"secretStoreRef"`
		Target          struct{ Name string }
		Data            []struct {
			SecretKey string                                  `yaml:"secretKey"`
			RemoteRef struct{ Key, Property, Version string } `yaml:"remoteRef"`
		}
	}
}

// TestExternalSecretsPage checks docs/external-secrets.md: its
// SecretStore points at the server the manifests use, at the KV v2 mount
// and the kubernetes mount the README sets up, with a role the page
// writes for the service account and audience the store names; its
// ExternalSecret uses that store. Then, with the official Vault client,
// it sends what ESO's Vault provider sends, in its order: the login with
// a token of the store's service account and audience, the token lookup
// whose fields ESO reads, the mount check, each key's read (and a pinned
// version's), a missing key, and the revocation at the end of a sync.
func TestExternalSecretsPage(t *testing.T) {
	examples := loadDeployExamples(t)
	page := mustReadFile(t, esoPage)
	var objs []esoObject
	for i, b := range codeBlocks(page, "yaml") {
		objs = append(objs, decodeYAML[esoObject](t, esoPage+" yaml block "+strconv.Itoa(i+1), []byte(b))...)
		for what, re := range secretShapes {
			if loc := re.FindString(b); loc != "" {
				t.Errorf("the ESO page's YAML holds what looks like %s: %q", what, loc)
			}
		}
	}
	var store, es *esoObject
	sas := map[string]*esoObject{}
	for i := range objs {
		switch o := &objs[i]; o.Kind {
		case "SecretStore", "ClusterSecretStore":
			store = o
		case "ExternalSecret":
			es = o
		case "ServiceAccount":
			sas[o.Metadata.Namespace+"/"+o.Metadata.Name] = o
		}
	}
	if store == nil || es == nil {
		t.Fatal("the ESO page has no SecretStore and ExternalSecret")
	}
	v := store.Spec.Provider.Vault
	if v == nil || v.Auth.Kubernetes == nil || v.Auth.Kubernetes.ServiceAccountRef == nil {
		t.Fatal("the SecretStore has no vault provider with kubernetes auth and a serviceAccountRef")
	}
	k := v.Auth.Kubernetes
	ref := k.ServiceAccountRef
	ns := store.Metadata.Namespace
	if store.Kind == "ClusterSecretStore" {
		ns = ref.Namespace
	}
	switch {
	case store.APIVersion != "external-secrets.io/v1" || es.APIVersion != "external-secrets.io/v1":
		t.Errorf("apiVersions %s and %s, want external-secrets.io/v1", store.APIVersion, es.APIVersion)
	case v.Server != examples[0].agent.Vault.Address:
		t.Errorf("the store's server %s is not the manifests' %s", v.Server, examples[0].agent.Vault.Address)
	case v.Path != "secret" || v.Version != "v2":
		t.Errorf("the store's path %q version %q, want the KV v2 mount: secret, v2", v.Path, v.Version)
	case k.MountPath != "kubernetes" || k.Role == "":
		t.Errorf("the store's mountPath %q role %q", k.MountPath, k.Role)
	case !slices.Equal(ref.Audiences, []string{"vigil"}):
		t.Errorf("the store's token audiences %v, want [vigil]", ref.Audiences)
	case es.Metadata.Namespace != store.Metadata.Namespace && store.Kind == "SecretStore":
		t.Errorf("the ExternalSecret is in %s, its SecretStore in %s", es.Metadata.Namespace, store.Metadata.Namespace)
	case es.Spec.SecretStoreRef.Name != store.Metadata.Name || es.Spec.SecretStoreRef.Kind != store.Kind:
		t.Errorf("the ExternalSecret uses %+v, not the store %s %s", es.Spec.SecretStoreRef, store.Kind, store.Metadata.Name)
	case len(es.Spec.Data) == 0 || es.Spec.Target.Name == "":
		t.Error("the ExternalSecret pulls no key or names no target Secret")
	}
	if sa := sas[ns+"/"+ref.Name]; sa == nil || sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("the page does not create the service account %s/%s (without an automounted token)", ns, ref.Name)
	}
	if d, err := time.ParseDuration(es.Spec.RefreshInterval); err != nil || d <= 0 {
		t.Errorf("refreshInterval %q: %v", es.Spec.RefreshInterval, err)
	}
	for _, want := range []string{"POST /v1/auth/" + k.MountPath + "/login", "GET /v1/" + v.Path + "/data/<key>", "PUT /v1/auth/token/revoke-self"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page's list of ESO's requests lacks %q", want)
		}
	}

	env := newDeployEnv(t)
	ctx := t.Context()
	vc := vaultClientAt(t, env.url, env.root.Token())
	mounts, err := vc.Sys().ListAuthWithContext(ctx)
	if err != nil || mounts[k.MountPath+"/"] == nil || mounts[k.MountPath+"/"].Type != "kubernetes" {
		t.Fatalf("no kubernetes auth method at %s/ after the README: %v", k.MountPath, err)
	}
	role, err := vc.Logical().ReadWithContext(ctx, "auth/"+k.MountPath+"/role/"+k.Role)
	if err != nil || role == nil {
		t.Fatalf("the store's role %s: %v", k.Role, err)
	}
	if role.Data["audience"] != "vigil" || !slices.Contains(role.Data["bound_service_account_names"].([]any), any(ref.Name)) ||
		!slices.Contains(role.Data["bound_service_account_namespaces"].([]any), any(ns)) {
		t.Errorf("the role the page writes does not bind %s/%s with audience vigil: %v", ns, ref.Name, role.Data)
	}

	// The login: a token of the store's service account (the TokenRequest
	// ESO makes, 600 seconds), for its audience.
	anon := vaultClientAt(t, env.url, "")
	anon.ClearToken()
	jwt := env.tokenRequest(t, ref.Audiences[0], ns, ref.Name, 600*time.Second)
	login, err := anon.Logical().WriteWithContext(ctx, "auth/"+k.MountPath+"/login", map[string]any{"role": k.Role, "jwt": jwt})
	if err != nil || login == nil || login.Auth == nil {
		t.Fatalf("ESO's login: %v", err)
	}
	eso := vaultClientAt(t, env.url, login.Auth.ClientToken)

	// The lookup: ESO reuses a token whose type is service, with a ttl
	// (a JSON number) and an RFC 3339 expire_time.
	self, err := eso.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil || self == nil {
		t.Fatalf("lookup-self: %v", err)
	}
	ttl, ttlErr := self.Data["ttl"].(json.Number).Int64()
	expire, _ := self.Data["expire_time"].(string)
	expiry, expErr := time.Parse(time.RFC3339, expire)
	if self.Data["type"] != "service" || ttlErr != nil || ttl < 60 || expErr != nil || !expiry.After(time.Now()) {
		t.Errorf("lookup-self: type %v ttl %v expire_time %v: ESO would not reuse the token", self.Data["type"], self.Data["ttl"], self.Data["expire_time"])
	}

	// The mount check of the store's validation.
	mnt, err := eso.Logical().ReadWithDataWithContext(ctx, "sys/internal/ui/mounts/"+v.Path, nil)
	if err != nil || mnt == nil {
		t.Fatalf("sys/internal/ui/mounts/%s with ESO's token: %v", v.Path, err)
	}
	if opts, _ := mnt.Data["options"].(map[string]any); mnt.Data["type"] != "kv" || opts["version"] != "2" {
		t.Errorf("the mount %s: type %v options %v; ESO wants kv version 2", v.Path, mnt.Data["type"], mnt.Data["options"])
	}

	// The reads: path/data/key, and a pinned version.
	first := map[string]map[string]string{}
	for _, kv := range env.puts {
		first[kvAPIPath(kv.path)] = kv.data
	}
	for _, d := range es.Spec.Data {
		p := v.Path + "/data/" + d.RemoteRef.Key
		want, ok := env.values[p][d.RemoteRef.Property]
		if !ok {
			t.Errorf("%s reads %s#%s, which the README does not store", d.SecretKey, p, d.RemoteRef.Property)
			continue
		}
		for version, want := range map[string]string{"": want, "1": first[p][d.RemoteRef.Property]} {
			var q map[string][]string
			if version != "" {
				q = map[string][]string{"version": {version}}
			}
			sec, err := eso.Logical().ReadWithDataWithContext(ctx, p, q)
			if err != nil || sec == nil {
				t.Fatalf("ESO's read of %s (version %q): %v", p, version, err)
			}
			data, _ := sec.Data["data"].(map[string]any)
			if data[d.RemoteRef.Property] != want {
				t.Errorf("%s (version %q) #%s: the value is not what was stored", p, version, d.RemoteRef.Property)
			}
		}
	}
	// A key that does not exist: no secret and no error, which ESO turns
	// into its NoSecretError.
	if sec, err := eso.Logical().ReadWithDataWithContext(ctx, path.Dir(v.Path+"/data/"+es.Spec.Data[0].RemoteRef.Key)+"/missing", nil); sec != nil || err != nil {
		t.Errorf("a missing key: %v %v, want nothing", sec, err)
	}

	// The revocation at the end of a sync.
	if err := eso.Auth().Token().RevokeSelfWithContext(ctx, ""); err != nil {
		t.Fatalf("revoke-self: %v", err)
	}
	var re *vault.ResponseError
	if _, err := eso.Auth().Token().LookupSelfWithContext(ctx); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Errorf("lookup-self after revoke-self: %v, want 403", err)
	}
}
