package service_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/domain/service"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

const (
	mib = 1 << 20
	gib = 1 << 30
)

type fixture struct {
	svc     *service.Service
	backend *testkit.MemoryBackend
	store   *testkit.MemoryStore
	sink    *testkit.RecordingSink
}

func testLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func newFixture(t *testing.T, capacity uint64) *fixture {
	t.Helper()
	f := &fixture{backend: testkit.NewMemoryBackend(capacity), store: testkit.NewMemoryStore(), sink: &testkit.RecordingSink{}}
	f.svc = f.restart(t)
	return f
}

// restart builds a new service over the same backend and store and starts it.
func (f *fixture) restart(t *testing.T) *service.Service {
	t.Helper()
	f.sink = &testkit.RecordingSink{}
	svc, err := service.New(service.Config{}, []ports.PoolBackend{f.backend}, testkit.FakeCodec{}, f.store, f.sink, testLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return svc
}

func uuidOf(b byte) domain.UUID {
	var u domain.UUID
	u[0], u[15] = 0xab, b
	return u
}

func dirDef(name string, u byte) *domain.PoolDef {
	return &domain.PoolDef{Type: domain.PoolDir, Name: name, UUID: uuidOf(u), Target: domain.PoolTarget{Path: "/srv/" + name}}
}

func rawVol(name string, capacity uint64) string {
	return testkit.VolXML(&domain.VolDef{Name: name, Capacity: capacity, Target: domain.VolTarget{Format: "raw"}})
}

// definePool defines, builds and starts a dir pool.
func (f *fixture) startedPool(t *testing.T, name string, u byte) domain.PoolHandle {
	t.Helper()
	ctx := context.Background()
	h, err := f.svc.PoolDefineXML(ctx, testkit.PoolXML(dirDef(name, u)), 0)
	must(t, err)
	must(t, f.svc.PoolBuild(ctx, h, 0))
	must(t, f.svc.PoolCreate(ctx, h, 0))
	return h
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// wantErr checks the full message and the kind of err.
func wantErr(t *testing.T, err error, msg string, kind domain.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %q", msg)
	}
	if err.Error() != msg {
		t.Fatalf("error = %q\nwant    %q", err.Error(), msg)
	}
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v is not a domain error", err)
	}
	if de.Kind != kind {
		t.Fatalf("kind = %v, want %v", de.Kind, kind)
	}
}

func equal[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func equalSlice(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s = %q, want %q", what, got, want)
		}
	}
}
