package service_test

import (
	"context"
	"slices"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/domain/service"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// A pool redefined with another type (libvirt 9.0 accepts dir -> netfs for
// a defined pool) is run by the new type's backend from its next start,
// whether the definition comes through pool-define or a config file read
// again on SIGHUP; a running pool keeps its backend until it stops, as it
// keeps its live definition.
func TestRedefineWithAnotherType(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name     string
		running  bool
		redefine func(t *testing.T, svc *service.Service, store *testkit.MemoryStore, def *domain.PoolDef)
	}{
		{name: "define", redefine: defineAgain},
		{name: "reload", redefine: reloadAgain},
		{name: "define while running", running: true, redefine: defineAgain},
		{name: "reload while running", running: true, redefine: reloadAgain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := testkit.NewMemoryBackend(gib)
			netfs := &testkit.MemoryBackend{PoolType: domain.PoolNetFS, Capacity: gib}
			store := testkit.NewMemoryStore()
			svc, err := service.New(service.Config{}, []ports.PoolBackend{dir, netfs}, testkit.FakeCodec{}, store, &testkit.RecordingSink{}, testLog())
			must(t, err)
			must(t, svc.Start(ctx))
			def := dirDef("p", 1)
			h, err := svc.PoolDefineXML(ctx, testkit.PoolXML(def), 0)
			must(t, err)
			must(t, svc.PoolBuild(ctx, h, 0))
			if tt.running {
				must(t, svc.PoolCreate(ctx, h, 0))
			}

			nfs := def.Clone()
			nfs.Type = domain.PoolNetFS
			nfs.Source = domain.PoolSource{Hosts: []domain.SourceHost{{Name: "nfs.example.com"}}, Dir: "/export/p"}
			tt.redefine(t, svc, store, nfs)
			if tt.running {
				must(t, svc.PoolRefresh(ctx, h, 0))
				must(t, svc.PoolDestroy(ctx, h))
				calls := dir.Calls()
				equalSlice(t, "the running pool's last calls", calls[len(calls)-2:], []string{"RefreshPool p", "StopPool p"})
			}
			before := len(dir.Calls())
			must(t, svc.PoolCreate(ctx, h, domain.PoolCreateWithBuild))
			equalSlice(t, "calls to the new type's backend", netfs.Calls(), []string{"BuildPool p", "StartPool p", "RefreshPool p"})
			equalSlice(t, "calls to the old type's backend", dir.Calls()[before:], nil)
			if tt.running {
				return
			}
			if slices.Contains(dir.Calls(), "StartPool p") {
				t.Errorf("the old type's backend started the pool: %q", dir.Calls())
			}
		})
	}
}

func defineAgain(t *testing.T, svc *service.Service, store *testkit.MemoryStore, def *domain.PoolDef) {
	t.Helper()
	_, err := svc.PoolDefineXML(context.Background(), testkit.PoolXML(def), 0)
	must(t, err)
}

func reloadAgain(t *testing.T, svc *service.Service, store *testkit.MemoryStore, def *domain.PoolDef) {
	t.Helper()
	must(t, store.SaveConfig(def.Name, testkit.PoolXML(def)))
	must(t, svc.Reload(context.Background()))
}
