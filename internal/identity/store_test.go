package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// countingStorage counts writes, to show which logins write.
type countingStorage struct {
	*logicaltest.Storage
	mu   sync.Mutex
	puts int
}

func (s *countingStorage) Put(ctx context.Context, k string, v []byte) error {
	s.mu.Lock()
	s.puts++
	s.mu.Unlock()
	return s.Storage.Put(ctx, k, v)
}

func (s *countingStorage) writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts
}

func newTestStore(t *testing.T) (*Store, *countingStorage, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	st := &countingStorage{Storage: logicaltest.New()}
	s := NewStore(st, clk.Now)
	if err := s.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, st, clk
}

func podLogin(ns, sa, pod string) Login {
	return Login{
		MountAccessor: "auth_kubernetes_0a1b2c3d", MountPath: "auth/kubernetes/", MountType: "kubernetes",
		Name:     "uid-" + ns + "-" + sa,
		Metadata: map[string]string{"service_account_namespace": ns, "service_account_name": sa, "pod_name": pod},
	}
}

func TestForLoginCreatesOneEntityPerPrincipal(t *testing.T) {
	s, st, clk := newTestStore(t)
	ctx := t.Context()
	e1, err := s.ForLogin(ctx, podLogin("ml-serving", "llm-gateway", "p1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e1.Name, "entity_") || len(e1.Name) != len("entity_")+8 || e1.ID == "" {
		t.Errorf("new entity id %q name %q", e1.ID, e1.Name)
	}
	if len(e1.Aliases) != 1 {
		t.Fatalf("aliases = %d, want 1", len(e1.Aliases))
	}
	a := e1.Aliases[0]
	if a.CanonicalID != e1.ID || a.Name != "uid-ml-serving-llm-gateway" || a.MountAccessor != "auth_kubernetes_0a1b2c3d" ||
		a.MountPath != "auth/kubernetes/" || a.MountType != "kubernetes" || a.Metadata["pod_name"] != "p1" {
		t.Errorf("alias = %+v", a)
	}
	if !e1.CreationTime.Equal(t0) || !a.CreationTime.Equal(t0) {
		t.Errorf("creation times %v %v, want %v", e1.CreationTime, a.CreationTime, t0)
	}
	writes := st.writes()

	// The same login again: the same entity, nothing written.
	again, err := s.ForLogin(ctx, podLogin("ml-serving", "llm-gateway", "p1"))
	if err != nil {
		t.Fatal(err)
	}
	if again != e1 || st.writes() != writes {
		t.Errorf("repeated login: entity %p (want %p), writes %d → %d", again, e1, writes, st.writes())
	}

	// New metadata (another pod): the same entity, updated, a new revision.
	clk.Advance(time.Minute)
	upd, err := s.ForLogin(ctx, podLogin("ml-serving", "llm-gateway", "p2"))
	if err != nil {
		t.Fatal(err)
	}
	if upd.ID != e1.ID || upd.Revision() == e1.Revision() || upd.Aliases[0].Metadata["pod_name"] != "p2" {
		t.Errorf("update: id %s rev %d→%d metadata %v", upd.ID, e1.Revision(), upd.Revision(), upd.Aliases[0].Metadata)
	}
	if e1.Aliases[0].Metadata["pod_name"] != "p1" {
		t.Error("the earlier copy of the entity changed in place")
	}
	if !upd.LastUpdateTime.Equal(t0.Add(time.Minute)) || !upd.CreationTime.Equal(t0) {
		t.Errorf("times after update: created %v updated %v", upd.CreationTime, upd.LastUpdateTime)
	}

	// Another principal, and the same name on another mount: new entities.
	other, _ := s.ForLogin(ctx, podLogin("ml-serving", "trainer", "p3"))
	l := podLogin("ml-serving", "llm-gateway", "p1")
	l.MountAccessor = "auth_kubernetes_99999999"
	otherMount, _ := s.ForLogin(ctx, l)
	if other.ID == e1.ID || otherMount.ID == e1.ID || other.ID == otherMount.ID {
		t.Errorf("entities not distinct: %s %s %s", e1.ID, other.ID, otherMount.ID)
	}
	if got := len(s.Entities()); got != 3 {
		t.Errorf("entities = %d, want 3", got)
	}
}

func TestLoadRestoresEntities(t *testing.T) {
	s, st, _ := newTestStore(t)
	ctx := t.Context()
	e, err := s.ForLogin(ctx, podLogin("ml-serving", "llm-gateway", "p1"))
	if err != nil {
		t.Fatal(err)
	}
	s2 := NewStore(st, time.Now)
	if err := s2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	got := s2.Entity(e.ID)
	if got == nil || got.Name != e.Name || s2.EntityByName(e.Name) != got {
		t.Fatalf("after load: %+v", got)
	}
	if a, owner := s2.Alias(e.Aliases[0].ID); a == nil || owner != got || a.Metadata["service_account_namespace"] != "ml-serving" {
		t.Errorf("alias after load: %+v", a)
	}
	if s2.AliasByName("auth_kubernetes_0a1b2c3d", "uid-ml-serving-llm-gateway") != got {
		t.Error("alias index not restored")
	}
	// A restored entity's login writes nothing.
	n := st.writes()
	if _, err := s2.ForLogin(ctx, podLogin("ml-serving", "llm-gateway", "p1")); err != nil || st.writes() != n {
		t.Errorf("login after load: err %v, writes %d → %d", err, n, st.writes())
	}
}

func TestConcurrentFirstLoginsMakeOneEntity(t *testing.T) {
	s, _, _ := newTestStore(t)
	var wg sync.WaitGroup
	ids := make([]string, 16)
	for i := range ids {
		wg.Go(func() {
			e, err := s.ForLogin(t.Context(), podLogin("ml-serving", "llm-gateway", "p1"))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = e.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent logins made several entities: %v", ids)
		}
	}
	if n := len(s.Entities()); n != 1 {
		t.Errorf("entities = %d, want 1", n)
	}
}

func TestDeleteAliasAndEntity(t *testing.T) {
	s, st, _ := newTestStore(t)
	ctx := t.Context()
	e, _ := s.ForLogin(ctx, podLogin("ml-serving", "llm-gateway", "p1"))
	aliasID := e.Aliases[0].ID
	if err := s.DeleteAlias(ctx, aliasID); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Alias(aliasID); a != nil {
		t.Error("alias still found")
	}
	kept := s.Entity(e.ID)
	if kept == nil || len(kept.Aliases) != 0 {
		t.Fatalf("entity after alias delete: %+v", kept)
	}
	// The principal's next login makes a new entity.
	e2, _ := s.ForLogin(ctx, podLogin("ml-serving", "llm-gateway", "p1"))
	if e2.ID == e.ID {
		t.Error("login after alias delete reused the entity")
	}
	if err := s.DeleteEntity(ctx, e2.ID); err != nil {
		t.Fatal(err)
	}
	if s.Entity(e2.ID) != nil || s.EntityByName(e2.Name) != nil || s.AliasByName(e2.Aliases[0].MountAccessor, e2.Aliases[0].Name) != nil {
		t.Error("deleted entity still indexed")
	}
	if _, err := st.Get(ctx, entityPrefix+e2.ID); err == nil {
		t.Error("deleted entity still stored")
	}
	// Unknown ids are not errors.
	if err := s.DeleteEntity(ctx, "nope"); err != nil {
		t.Error(err)
	}
	if err := s.DeleteAlias(ctx, "nope"); err != nil {
		t.Error(err)
	}
}

func TestForLoginRefusesBadAliases(t *testing.T) {
	s, st, _ := newTestStore(t)
	big := map[string]string{}
	for i := range maxMetadataPairs + 1 {
		big[strings.Repeat("k", i+1)] = "v"
	}
	for name, l := range map[string]Login{
		"no name":         {MountAccessor: "auth_jwt_1"},
		"no accessor":     {Name: "x"},
		"long name":       {MountAccessor: "auth_jwt_1", Name: strings.Repeat("n", maxAliasName+1)},
		"many pairs":      {MountAccessor: "auth_jwt_1", Name: "x", Metadata: big},
		"large metadata":  {MountAccessor: "auth_jwt_1", Name: "x", Metadata: map[string]string{"k": strings.Repeat("v", maxMetadataBytes)}},
		"name at limit+1": {MountAccessor: "auth_jwt_1", Name: strings.Repeat("é", maxAliasName/2+1)},
	} {
		if _, err := s.ForLogin(t.Context(), l); !errors.Is(err, ErrInvalidLogin) {
			t.Errorf("%s: err = %v, want ErrInvalidLogin", name, err)
		}
	}
	if st.writes() != 0 {
		t.Errorf("refused logins wrote %d entries", st.writes())
	}
}

func TestTemplate(t *testing.T) {
	e := &Entity{
		ID: "ent-1", Name: "entity_0011aabb",
		Metadata: map[string]string{"team": "search"},
		Aliases: []*Alias{
			{ID: "al-k8s", MountAccessor: "auth_kubernetes_1", Name: "uid-1",
				Metadata: map[string]string{"service_account_namespace": "ml-serving"}},
			{ID: "al-jwt", MountAccessor: "auth_jwt_2", Name: "repo:acme/train:ref:refs/heads/main",
				Metadata: map[string]string{"repository": "acme/train"}},
		},
	}
	for expr, want := range map[string]string{
		"identity.entity.id":            "ent-1",
		"identity.entity.name":          "entity_0011aabb",
		"identity.entity.metadata.team": "search",
		"identity.entity.aliases.auth_kubernetes_1.metadata.service_account_namespace": "ml-serving",
		"identity.entity.aliases.auth_jwt_2.metadata.repository":                       "acme/train",
		"identity.entity.aliases.auth_jwt_2.name":                                      "repo:acme/train:ref:refs/heads/main",
		"identity.entity.aliases.auth_jwt_2.id":                                        "al-jwt",
	} {
		if got, ok := e.Template(expr); !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", expr, got, ok, want)
		}
	}
	for _, expr := range []string{
		"identity.entity.metadata.missing",
		"identity.entity.aliases.auth_other_3.name",
		"identity.entity.aliases.auth_jwt_2.metadata.missing",
		"identity.entity.aliases.auth_jwt_2",
		"identity.entity.aliases.auth_jwt_2.mount_accessor",
		"identity.groups.ids.x.name",
		"identity.entity",
		"entity.id",
	} {
		if got, ok := e.Template(expr); ok {
			t.Errorf("%s resolved to %q, want unresolved", expr, got)
		}
	}
	var none *Entity
	if _, ok := none.Template("identity.entity.id"); ok {
		t.Error("a nil entity resolved a template")
	}
}

func TestConcurrentLoginsOfManyPrincipals(t *testing.T) {
	s, _, _ := newTestStore(t)
	var wg sync.WaitGroup
	const n = 200
	for i := range n {
		wg.Go(func() {
			if _, err := s.ForLogin(t.Context(), podLogin("ns", fmt.Sprintf("sa-%d", i), "p")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	names := map[string]bool{}
	for _, e := range s.Entities() {
		names[e.Name] = true
		if s.EntityByName(e.Name) != e || s.AliasByName(e.Aliases[0].MountAccessor, e.Aliases[0].Name) != e {
			t.Fatalf("entity %s not indexed", e.ID)
		}
	}
	if len(names) != n || len(s.reserved) != 0 {
		t.Errorf("%d distinct names for %d principals; %d names still reserved", len(names), n, len(s.reserved))
	}
}

// gatedStorage holds every Put until the test lets it through, to show
// what logins do while a write is under way.
type gatedStorage struct {
	*logicaltest.Storage
	entered chan string   // a Put began (its key)
	gate    chan struct{} // a Put may finish
}

func (g *gatedStorage) Put(ctx context.Context, k string, v []byte) error {
	g.entered <- k
	<-g.gate
	return g.Storage.Put(ctx, k, v)
}

// gatedStore returns a store over gated storage holding the entity of
// one pod's service account (stored before the gate), the gate, the
// storage behind it, and the entity.
func gatedStore(t *testing.T) (*Store, *gatedStorage, *logicaltest.Storage, *Entity) {
	t.Helper()
	base := logicaltest.New()
	first, err := NewStore(base, time.Now).ForLogin(t.Context(), podLogin("ml-serving", "llm-gateway", "p0"))
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedStorage{Storage: base, entered: make(chan string, 16), gate: make(chan struct{})}
	s := NewStore(g, time.Now)
	if err := s.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, g, base, first
}

func TestUpdatesOfOnePrincipalAreCoalesced(t *testing.T) {
	ctx := t.Context()
	s, g, base, first := gatedStore(t)

	// p1's login changes the alias and starts the write, held at the gate.
	done := make(chan error, 1)
	go func() {
		_, err := s.ForLogin(ctx, podLogin("ml-serving", "llm-gateway", "p1"))
		done <- err
	}()
	<-g.entered
	// Meanwhile p2 and p3 log in: they return at once, and the entity in
	// memory is the latest login's.
	for _, pod := range []string{"p2", "p3"} {
		e, err := s.ForLogin(ctx, podLogin("ml-serving", "llm-gateway", pod))
		if err != nil || e.ID != first.ID || e.Aliases[0].Metadata["pod_name"] != pod {
			t.Fatalf("login of %s during a write: %+v %v", pod, e, err)
		}
	}
	if got := s.Entity(first.ID).Aliases[0].Metadata["pod_name"]; got != "p3" {
		t.Fatalf("entity in memory names pod %q, want p3", got)
	}
	// The writer stores p1's state, then once more the latest (p3's):
	// two writes for three logins.
	g.gate <- struct{}{}
	<-g.entered
	g.gate <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case k := <-g.entered:
		t.Fatalf("a third write of %s", k)
	default:
	}
	reloaded := NewStore(base, time.Now)
	if err := reloaded.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got := reloaded.Entity(first.ID).Aliases[0].Metadata["pod_name"]; got != "p3" {
		t.Errorf("stored entity names pod %q, want p3", got)
	}
}

func TestDeleteDuringAWriteDoesNotResurrect(t *testing.T) {
	ctx := t.Context()
	s, g, base, first := gatedStore(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.ForLogin(ctx, podLogin("ml-serving", "llm-gateway", "p1"))
		done <- err
	}()
	<-g.entered
	// A login during the write marks it dirty; then the entity is deleted.
	if _, err := s.ForLogin(ctx, podLogin("ml-serving", "llm-gateway", "p2")); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- s.DeleteEntity(ctx, first.ID) }()
	// The writer stores p1's state, then p2's; the delete waits for it.
	g.gate <- struct{}{}
	<-g.entered
	g.gate <- struct{}{}
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := base.Get(ctx, entityPrefix+first.ID); err == nil {
		t.Error("the deleted entity was stored again")
	}
	if s.Entity(first.ID) != nil {
		t.Error("the deleted entity is still indexed")
	}
}
