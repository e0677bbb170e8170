package logical_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/adapters/logical"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/backendtest/harness"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// loopDevice attaches a fresh 64 MiB file to a free loop device. Its callers
// run only as root (how CI runs), where a loop device that cannot be attached
// fails the test: skipping would let a broken runner pass.
func loopDevice(t *testing.T) string {
	t.Helper()
	dev, err := harness.LoopDevices(64 << 20)(t)
	if err != nil {
		t.Fatal(err)
	}
	return dev
}

// TestIntegrationLVM builds a real logical pool on two loop devices and runs a
// volume through it. It needs root (CI runs as root) and lvm2.
func TestIntegrationLVM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the LVM integration test needs root for loop devices and pvcreate: skipping")
	}
	r, err := harness.LVMRunner(t)
	if err != nil {
		t.Fatal(err)
	}
	d1, d2 := loopDevice(t), loopDevice(t)
	vg := fmt.Sprintf("vstest%d", os.Getpid())
	t.Cleanup(func() {
		// Best effort if the test failed half way; harmless when all is gone.
		for _, argv := range [][]string{{"vgremove", "-f", vg}, {"pvremove", "-ff", "-y", d1, d2}} {
			_, _ = r.Run(context.Background(), ports.Command{Path: argv[0], Args: argv[1:]})
		}
	})

	l := logrus.New()
	l.SetLevel(logrus.WarnLevel)
	b := logical.New(r, logrus.NewEntry(l))
	ctx := context.Background()
	def := &domain.PoolDef{Type: domain.PoolLogical, Name: vg}
	for _, d := range []string{d1, d2} {
		def.Source.Devices = append(def.Source.Devices, domain.SourceDevice{Path: d})
	}
	if err := b.ValidatePool(def); err != nil {
		t.Fatal(err)
	}

	if err := b.BuildPool(ctx, def, domain.PoolBuildNoOverwrite); err != nil {
		t.Fatalf("build: %v", err)
	}
	err = b.BuildPool(ctx, def, domain.PoolBuildNoOverwrite)
	if domain.KindOf(err) != domain.KindStoragePoolBuilt {
		t.Errorf("second build: %v, want 'already formatted'", err)
	}
	if err := b.StartPool(ctx, def); err != nil {
		t.Fatalf("start: %v", err)
	}
	if ok, err := b.CheckPool(ctx, def); !ok || err != nil {
		t.Errorf("check = %v, %v; want active", ok, err)
	}
	srcs, err := b.FindPoolSources(ctx, &domain.PoolSource{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range srcs {
		found = found || (s.Name == vg && len(s.Devices) == 2)
	}
	if !found {
		t.Errorf("find sources %+v lacks %s on two devices", srcs, vg)
	}

	stats, vols, err := b.RefreshPool(ctx, def)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if len(vols) != 0 || stats.Capacity == 0 || stats.Available != stats.Capacity {
		t.Errorf("fresh pool: stats %+v, %d vols", stats, len(vols))
	}

	vol := &domain.VolDef{Name: "v1", Capacity: 8 << 20, Allocation: 8 << 20, HasCapacity: true}
	vol.Target.Perms = domain.UnsetPerms()
	if err := b.PrepareVol(def, vol); err != nil {
		t.Fatal(err)
	}
	if err := b.BuildVol(ctx, def, vol, 0); err != nil {
		t.Fatalf("create vol: %v", err)
	}
	if err := b.RefreshVol(ctx, def, vol); err != nil {
		t.Fatalf("refresh vol: %v", err)
	}
	if vol.Key == "" || vol.Capacity != 8<<20 || vol.Target.Path != "/dev/"+vg+"/v1" {
		t.Errorf("created vol = %+v", vol)
	}
	if err := b.ResizeVol(ctx, def, vol, 16<<20, 0); err != nil {
		t.Fatalf("resize: %v", err)
	}
	stats, vols, err = b.RefreshPool(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || vols[0].Key != vol.Key || vols[0].Capacity != 16<<20 {
		t.Fatalf("refresh after create: %+v", vols)
	}
	if stats.Allocation != 16<<20 {
		t.Errorf("pool allocation = %d, want 16 MiB", stats.Allocation)
	}
	if err := b.DeleteVol(ctx, def, vol, 0); err != nil {
		t.Fatalf("delete vol: %v", err)
	}
	if _, vols, err = b.RefreshPool(ctx, def); err != nil || len(vols) != 0 {
		t.Errorf("refresh after delete: %d vols, %v", len(vols), err)
	}
	if err := b.StopPool(ctx, def); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := b.DeletePool(ctx, def, 0); err != nil {
		t.Fatalf("delete pool: %v", err)
	}
	if ok, _ := b.CheckPool(ctx, def); ok {
		t.Error("pool still found after delete")
	}
}

// A sparse LV's capacity comes from its device, as in libvirt: lvs (without
// -a, libvirt's command line) sizes only its 4 MiB COW area and does not list
// the hidden virtual origin. The device here is a 64 MiB loop device that the
// pool's target directory links as the LV's node.
func TestRefreshTakesCapacityFromTheDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("attaching a loop device needs root (CI runs as root)")
	}
	def := capvgPool()
	def.Target.Path = t.TempDir()
	if err := os.Symlink(loopDevice(t), filepath.Join(def.Target.Path, "sp1")); err != nil {
		t.Fatal(err)
	}
	lvs := "  sp1#[sp1_vorigin]#Uq3x1c-pB1d-Fy3e-0w1T-yc7A-2nOE-bE0mQa#/dev/loop9(0)#linear#1#4194304#4194304#4194304#swi-aos---\n"
	f := testkit.NewFakeRunner(t,
		testkit.FakeCall{Argv: logical.LVSArgv(logical.Source{VG: "capvg"}), Stdout: lvs},
		testkit.FakeCall{Argv: logical.VGSArgv("capvg"), Stdout: "  125829120:67108864\n"},
	)
	_, vols, err := logical.New(f, testkit.QuietLog()).RefreshPool(context.Background(), def)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || vols[0].Capacity != 64<<20 || vols[0].Allocation != 4<<20 {
		t.Fatalf("vols = %+v, want sp1 with 64 MiB of capacity (the device) and 4 MiB allocated", vols)
	}
}
