package service_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// within runs fn, which must return quickly: the call must not wait for the
// volume job held open. fn runs on the test goroutine (so it may call t.Fatal); a
// hang is reported by a panic, which also dumps every goroutine's stack.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	timer := time.AfterFunc(5*time.Second, func() {
		panic(what + " blocked behind a running volume job")
	})
	defer timer.Stop()
	fn()
}

func TestLongBuildDoesNotBlockThePool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, 100*mib)
	s := f.svc
	started := make(chan struct{})
	release := make(chan struct{})
	f.backend.BeforeBuildVol = func(ctx context.Context, vol *domain.VolDef) error {
		if vol.Name != "slow" {
			return nil
		}
		close(started)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h := f.startedPool(t, "p1", 1)
	other, err := s.VolCreateXML(ctx, h, rawVol("other", mib), 0)
	must(t, err)

	var wg sync.WaitGroup
	var slowErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, slowErr = s.VolCreateXML(ctx, h, rawVol("slow", 50*mib), 0)
	}()
	<-started
	slow := domain.VolHandle{Pool: "p1", Name: "slow", Key: "/srv/p1/slow"}

	within(t, "pool info", func() {
		info, err := s.PoolGetInfo(ctx, h)
		must(t, err)
		equal(t, "state", info.State, domain.PoolRunning)
	})
	within(t, "refresh", func() { must(t, s.PoolRefresh(ctx, h, 0)) })
	within(t, "lookup of the building volume after refresh", func() {
		_, err := s.VolLookupByName(ctx, h, "slow")
		must(t, err)
	})
	within(t, "info of the building volume", func() {
		vi, err := s.VolGetInfo(ctx, slow, 0)
		must(t, err)
		equal(t, "building capacity", vi.Capacity, uint64(50*mib))
	})
	within(t, "jobs on the building volume", func() {
		want := "Requested operation is not valid: volume 'slow' is still being allocated."
		wantErr(t, s.VolDelete(ctx, slow, 0), want, domain.KindOperationInvalid)
		wantErr(t, s.VolWipe(ctx, slow, 0, 0), want, domain.KindOperationInvalid)
		wantErr(t, s.VolResize(ctx, slow, 60*mib, 0), want, domain.KindOperationInvalid)
		_, err := s.VolUpload(ctx, slow, 0, 0, 0)
		wantErr(t, err, want, domain.KindOperationInvalid)
		_, err = s.VolCreateXMLFrom(ctx, h, testkit.VolXML(&domain.VolDef{Name: "c"}), slow, 0)
		wantErr(t, err, want, domain.KindOperationInvalid)
	})
	within(t, "another volume's jobs", func() {
		must(t, s.VolWipe(ctx, other, 0, 0))
		_, err := s.VolCreateXML(ctx, h, rawVol("fast", mib), 0)
		must(t, err)
	})
	within(t, "admission counts the running build", func() {
		_, err := s.VolCreateXML(ctx, h, rawVol("slow2", 49*mib), 0)
		wantErr(t, err, "operation failed: Not enough space left in storage pool 'p1' for volume 'slow2' (needs 51380224 bytes, 50331648 available)", domain.KindOperationFailed)
		_, err = s.VolCreateXML(ctx, h, rawVol("slow", mib), 0)
		wantErr(t, err, "storage volume 'slow' exists already", domain.KindStorageVolExist)
	})
	within(t, "destroy", func() {
		wantErr(t, s.PoolDestroy(ctx, h), "internal error: pool 'p1' has asynchronous jobs running.", domain.KindInternal)
	})
	within(t, "lookups", func() {
		_, err := s.VolLookupByKey(ctx, "/srv/p1/other")
		must(t, err)
		_, err = s.PoolListAllVolumes(ctx, h, 0)
		must(t, err)
	})

	close(release)
	wg.Wait()
	must(t, slowErr)
	vi, err := s.VolGetInfo(ctx, slow, 0)
	must(t, err)
	equal(t, "allocation after build", vi.Allocation, uint64(50*mib))
	info, _ := s.PoolGetInfo(ctx, h)
	equal(t, "pool allocation", info.Allocation, uint64(52*mib))
	must(t, s.PoolDestroy(ctx, h))
}

func TestConcurrentCreatesCannotOverbook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, 100*mib)
	gate := make(chan struct{})
	f.backend.BeforeBuildVol = func(ctx context.Context, vol *domain.VolDef) error {
		<-gate
		return nil
	}
	h := f.startedPool(t, "p1", 1)
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.VolCreateXML(ctx, h, rawVol(string(rune('a'+i)), 30*mib), 0)
			errs <- err
		}()
	}
	// Let every create reach admission before the builds may finish.
	deadline := time.Now().Add(5 * time.Second)
	for {
		failed := len(errs)
		if failed == n-3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
			continue
		}
		if domain.KindOf(err) != domain.KindOperationFailed {
			t.Fatalf("unexpected error: %v", err)
		}
	}
	equal(t, "creates admitted", ok, 3)
	info, _ := f.svc.PoolGetInfo(ctx, h)
	equal(t, "pool allocation", info.Allocation, uint64(90*mib))
}

func TestParallelMixedCalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, gib)
	s := f.svc
	h := f.startedPool(t, "p1", 1)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := string(rune('a' + i))
			for range 20 {
				vh, err := s.VolCreateXML(ctx, h, rawVol(name, mib), 0)
				if err != nil {
					t.Errorf("create %s: %v", name, err)
					return
				}
				if _, err := s.VolGetInfo(ctx, vh, 0); err != nil {
					t.Errorf("info %s: %v", name, err)
				}
				if err := s.VolDelete(ctx, vh, 0); err != nil {
					t.Errorf("delete %s: %v", name, err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			if err := s.PoolRefresh(ctx, h, 0); err != nil {
				t.Errorf("refresh: %v", err)
			}
			if _, err := s.ListAllPools(ctx, 0); err != nil {
				t.Errorf("list: %v", err)
			}
		}
	}()
	wg.Wait()
	must(t, s.PoolRefresh(ctx, h, 0))
	info, _ := s.PoolGetInfo(ctx, h)
	equal(t, "allocation after all deletes", info.Allocation, uint64(0))
	must(t, s.Shutdown(ctx))
}

func TestRefreshRacingCreateAndDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, 100*mib)
	s := f.svc
	h := f.startedPool(t, "p1", 1)
	old, err := s.VolCreateXML(ctx, h, rawVol("old", 10*mib), 0)
	must(t, err)

	listed := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	f.backend.AfterListPool = func(ctx context.Context, def *domain.PoolDef) {
		once.Do(func() {
			close(listed)
			<-release
		})
	}
	refreshErr := make(chan error, 1)
	go func() { refreshErr <- s.PoolRefresh(ctx, h, 0) }()
	<-listed
	// The refresh has looked; now the volumes change under it.
	_, err = s.VolCreateXML(ctx, h, rawVol("new", 20*mib), 0)
	must(t, err)
	must(t, s.VolDelete(ctx, old, 0))
	close(release)
	must(t, <-refreshErr)

	names, err := s.PoolListVolumes(ctx, h, -1)
	must(t, err)
	equalSlice(t, "volumes after racing refresh", names, []string{"new"})
	info, _ := s.PoolGetInfo(ctx, h)
	equal(t, "allocation after racing refresh", info.Allocation, uint64(20*mib))
	equal(t, "available after racing refresh", info.Available, uint64(80*mib))

	// The next quiet refresh agrees.
	must(t, s.PoolRefresh(ctx, h, 0))
	info2, _ := s.PoolGetInfo(ctx, h)
	equal(t, "figures after quiet refresh", info2, info)
}
