package mpath_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/mpath"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func pool() *domain.PoolDef {
	return &domain.PoolDef{Type: domain.PoolMpath, Name: "mp", Target: domain.PoolTarget{Path: "/dev/mapper"}}
}

func TestRefreshPool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveDevs  []testkit.FakeDM
		wantNames []string
		wantPaths []string
		wantCaps  []uint64
		wantStats domain.PoolStats
	}{
		{name: "empty"},
		{
			name: "multipath maps only, ordered by minor",
			giveDevs: []testkit.FakeDM{
				{Minor: 10, Name: "mpathb", UUID: "mpath-3600140512345678", Sectors: 2048},
				{Minor: 2, Name: "mpatha", UUID: "mpath-36001405abcdef", Sectors: 204800},
				{Minor: 3, Name: "vg-lv", UUID: "LVM-abcdef", Sectors: 4096},
				{Minor: 4, Name: "crypt", UUID: "CRYPT-LUKS2-x", Sectors: 8},
				{Minor: 5, NoDM: true, Sectors: 8},
			},
			wantNames: []string{"dm-2", "dm-10"},
			wantPaths: []string{"/dev/mapper/mpatha", "/dev/mapper/mpathb"},
			wantCaps:  []uint64{204800 * 512, 2048 * 512},
			wantStats: domain.PoolStats{Capacity: 206848 * 512, Allocation: 206848 * 512},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := mpath.New(testkit.NewFakeRunner(t), testkit.NewFakeSysfs(t, tt.giveDevs...), nil)
			stats, vols, err := b.RefreshPool(context.Background(), pool())
			if err != nil {
				t.Fatal(err)
			}
			if stats != tt.wantStats {
				t.Errorf("stats = %+v, want %+v", stats, tt.wantStats)
			}
			if len(vols) != len(tt.wantNames) {
				t.Fatalf("got %d vols, want %d", len(vols), len(tt.wantNames))
			}
			for i, v := range vols {
				if v.Name != tt.wantNames[i] || v.Target.Path != tt.wantPaths[i] || v.Key != tt.wantPaths[i] {
					t.Errorf("vol %d = %s %s key %s, want %s %s", i, v.Name, v.Target.Path, v.Key, tt.wantNames[i], tt.wantPaths[i])
				}
				if v.Type != domain.VolBlock || v.Capacity != tt.wantCaps[i] || v.Allocation != tt.wantCaps[i] {
					t.Errorf("vol %d = type %v cap %d alloc %d, want block %d", i, v.Type, v.Capacity, v.Allocation, tt.wantCaps[i])
				}
			}
		})
	}
}

func TestRefreshPoolMissingSysfs(t *testing.T) {
	t.Parallel()
	b := mpath.New(testkit.NewFakeRunner(t), filepath.Join(t.TempDir(), "nosys"), nil)
	_, _, err := b.RefreshPool(context.Background(), pool())
	if domain.KindOf(err) != domain.KindSystem {
		t.Fatalf("err = %v, want a system error", err)
	}
}

func TestRefreshVol(t *testing.T) {
	t.Parallel()
	root := testkit.NewFakeSysfs(t, testkit.FakeDM{Minor: 7, Name: "mpathc", UUID: "mpath-x", Sectors: 100})
	b := mpath.New(testkit.NewFakeRunner(t), root, nil)
	vol := &domain.VolDef{Name: "dm-7"}
	if err := b.RefreshVol(context.Background(), pool(), vol); err != nil {
		t.Fatal(err)
	}
	if vol.Capacity != 51200 || vol.Target.Path != "/dev/mapper/mpathc" {
		t.Errorf("vol = %+v", vol)
	}
	err := b.RefreshVol(context.Background(), pool(), &domain.VolDef{Name: "dm-8"})
	if domain.KindOf(err) != domain.KindNoStorageVol {
		t.Errorf("missing map: err = %v", err)
	}
}

func TestUnsupported(t *testing.T) {
	t.Parallel()
	b := mpath.New(testkit.NewFakeRunner(t), testkit.NewFakeSysfs(t), nil)
	ctx := context.Background()
	p, v := pool(), &domain.VolDef{Name: "dm-0"}
	tests := []struct {
		name    string
		give    func() error
		wantErr string
	}{
		{"delete pool", func() error { return b.DeletePool(ctx, p, 0) }, "pool does not support pool deletion"},
		{"find sources", func() error { _, err := b.FindPoolSources(ctx, nil, 0); return err }, "pool type 'mpath' does not support source discovery"},
		{"prepare vol", func() error { return b.PrepareVol(p, v) }, "storage pool does not support volume creation"},
		{"build vol", func() error { return b.BuildVol(ctx, p, v, 0) }, "storage pool does not support volume creation"},
		{"build vol from", func() error { return b.BuildVolFrom(ctx, p, v, p, v, 0) }, "storage pool does not support volume creation from an existing volume"},
		{"delete vol", func() error { return b.DeleteVol(ctx, p, v, 0) }, "storage pool does not support vol deletion"},
		{"resize vol", func() error { return b.ResizeVol(ctx, p, v, 1, 0) }, "storage pool does not support changing of volume capacity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give()
			if domain.KindOf(err) != domain.KindNoSupport {
				t.Fatalf("kind = %v (%v), want NoSupport", domain.KindOf(err), err)
			}
			if want := domain.KindNoSupport.Prefix() + tt.wantErr; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
		})
	}
}

func TestNoops(t *testing.T) {
	t.Parallel()
	b := mpath.New(testkit.NewFakeRunner(t), testkit.NewFakeSysfs(t), nil)
	ctx := context.Background()
	p := &domain.PoolDef{Type: domain.PoolMpath, Name: "mp"}
	if err := b.ValidatePool(p); err != nil || p.Target.Path != "/dev/mapper" {
		t.Errorf("ValidatePool: %v, target %q", err, p.Target.Path)
	}
	for name, err := range map[string]error{
		"build": b.BuildPool(ctx, p, domain.PoolBuildOverwrite),
		"start": b.StartPool(ctx, p),
		"stop":  b.StopPool(ctx, p),
	} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	b.CheckDir = filepath.Join(t.TempDir(), "mpath")
	if ok, _ := b.CheckPool(ctx, p); ok {
		t.Error("CheckPool without the legacy dir reported active")
	}
	if err := os.Mkdir(b.CheckDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.CheckPool(ctx, p); !ok {
		t.Error("CheckPool with the legacy dir reported inactive")
	}
}

func TestStreamsOnDevice(t *testing.T) {
	t.Parallel()
	dev := filepath.Join(t.TempDir(), "mpatha")
	if err := os.WriteFile(dev, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	b := mpath.New(testkit.NewFakeRunner(t), testkit.NewFakeSysfs(t), nil)
	ctx := context.Background()
	vol := &domain.VolDef{Name: "dm-0", Target: domain.VolTarget{Path: dev}}
	w, err := b.UploadVol(ctx, pool(), vol, 4096, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("multipath")); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := b.DownloadVol(ctx, pool(), vol, 4096, 9, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 64)
	n, _, err := r.Next(buf)
	if err != nil || string(buf[:n]) != "multipath" {
		t.Fatalf("download = %q, %v", buf[:n], err)
	}
	if err := b.WipeVol(ctx, pool(), vol, domain.WipeZero, 0); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(dev)
	for _, c := range data {
		if c != 0 {
			t.Fatal("wipe left non-zero bytes")
		}
	}
}
