package harness

import (
	"context"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Memory is the harness of testkit.MemoryBackend, the service tests' fake,
// whose pools hold capacity bytes each: it must pass the suite as dir does.
func Memory(capacity uint64) backendtest.HarnessMaker {
	return func(ctx context.Context, t *testing.T) (backendtest.Harness, error) {
		return &memory{b: testkit.NewMemoryBackend(capacity)}, nil
	}
}

type memory struct{ b *testkit.MemoryBackend }

func (m *memory) Backend() ports.PoolBackend { return m.b }

func (m *memory) Capabilities() backendtest.Capabilities {
	return backendtest.Capabilities{
		Type: domain.PoolDir, Build: true, Delete: true, Presence: backendtest.PresentWhenBuilt,
		Ops: fileOps, Allocation: backendtest.Sparse, Isolated: true,
	}
}

func (m *memory) MakePool(ctx context.Context, name string) (*domain.PoolDef, error) {
	return &domain.PoolDef{Type: domain.PoolDir, Name: name, Target: domain.PoolTarget{Path: "/memory/" + name, Perms: domain.UnsetPerms()}}, nil
}

func (m *memory) AddVolume(ctx context.Context, pool *domain.PoolDef, name string, size uint64) (string, error) {
	m.b.AddFile(pool.Name, name, size, 0)
	return name, nil
}

func (m *memory) RemoveVolume(ctx context.Context, pool *domain.PoolDef, name string) error {
	m.b.RemoveFile(pool.Name, name)
	return nil
}
