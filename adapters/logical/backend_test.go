package logical_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/adapters/logical"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// fakeDevice is a regular file standing in for a block device: the backend
// only seeks, reads and writes it.
func fakeDevice(t *testing.T, size int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dev")
	if err := os.WriteFile(p, bytes.Repeat([]byte{0xaa}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func capvgPool(devs ...string) *domain.PoolDef {
	def := &domain.PoolDef{Type: domain.PoolLogical, Name: "capvg", Source: domain.PoolSource{Name: "capvg"}, Target: domain.PoolTarget{Path: "/dev/capvg"}}
	for _, d := range devs {
		def.Source.Devices = append(def.Source.Devices, domain.SourceDevice{Path: d})
	}
	return def
}

// blkidCapture is a real blkid answer; the captures live with the parser.
func blkidCapture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "lib", "blockdev", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantErr(t *testing.T, err error, kind domain.Kind, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", text)
	}
	if domain.KindOf(err) != kind {
		t.Errorf("kind = %v, want %v (%v)", domain.KindOf(err), kind, err)
	}
	if !strings.Contains(err.Error(), text) {
		t.Errorf("err = %q, want it to contain %q", err, text)
	}
}

func TestBuildPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("probes, zeroes both ends, pvcreate each, vgcreate", func(t *testing.T) {
		d1, d2 := fakeDevice(t, 3<<20), fakeDevice(t, 3<<20)
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: blockdev.BlkidArgv(d1), Exit: 2},
			testkit.FakeCall{Argv: logical.PVCreateArgv(d1)},
			testkit.FakeCall{Argv: blockdev.BlkidArgv(d2), Exit: 2},
			testkit.FakeCall{Argv: logical.PVCreateArgv(d2)},
			testkit.FakeCall{Argv: logical.VGCreateArgv("capvg", []string{d1, d2})},
		)
		if err := logical.New(f, nil).BuildPool(ctx, capvgPool(d1, d2), 0); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(d1)
		if !allZero(data[:1<<20]) || !allZero(data[2<<20:]) || data[1<<20] != 0xaa {
			t.Error("build did not zero exactly the first and last MiB")
		}
	})
	t.Run("overwrite skips the probe", func(t *testing.T) {
		d := fakeDevice(t, 1<<20)
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: logical.PVCreateArgv(d)},
			testkit.FakeCall{Argv: logical.VGCreateArgv("capvg", []string{d})},
		)
		if err := logical.New(f, nil).BuildPool(ctx, capvgPool(d), domain.PoolBuildOverwrite); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("vgcreate failure removes the PVs", func(t *testing.T) {
		d1, d2 := fakeDevice(t, 1<<20), fakeDevice(t, 1<<20)
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: logical.PVCreateArgv(d1)},
			testkit.FakeCall{Argv: logical.PVCreateArgv(d2)},
			testkit.FakeCall{Argv: logical.VGCreateArgv("capvg", []string{d1, d2}), Exit: 5, Stderr: string(readTestdata(t, "vgcreate-inuse.stderr"))},
			testkit.FakeCall{Argv: logical.PVRemoveArgv(d1)},
			testkit.FakeCall{Argv: logical.PVRemoveArgv(d2)},
		)
		err := logical.New(f, nil).BuildPool(ctx, capvgPool(d1, d2), domain.PoolBuildOverwrite)
		wantErr(t, err, domain.KindOperationFailed, "A volume group called capvg already exists.")
	})
	t.Run("pvcreate failure removes only the PVs done", func(t *testing.T) {
		d1, d2 := fakeDevice(t, 1<<20), fakeDevice(t, 1<<20)
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: logical.PVCreateArgv(d1)},
			testkit.FakeCall{Argv: logical.PVCreateArgv(d2), Exit: 5, Stderr: "  Cannot use " + d2 + ": device is too small (pv_min_size)"},
			testkit.FakeCall{Argv: logical.PVRemoveArgv(d1)},
		)
		err := logical.New(f, nil).BuildPool(ctx, capvgPool(d1, d2), domain.PoolBuildOverwrite)
		wantErr(t, err, domain.KindInternal, "Child process (pvcreate "+d2+") unexpected exit status 5:   Cannot use")
	})

	tests := []struct {
		name      string
		giveBlkid string
		giveFlags uint32
		wantKind  domain.Kind
		wantErr   string
	}{
		{"already a PV", "blkid-lvm2.txt", domain.PoolBuildNoOverwrite, domain.KindStoragePoolBuilt, "Storage pool already built: Device '%s' already formatted using 'LVM2_member'"},
		{"another filesystem", "blkid-ext4-loop2.txt", 0, domain.KindStoragePoolBuilt, "Storage pool already built: Format of device '%s' does not match the expected format 'LVM2_member', forced overwrite is necessary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := fakeDevice(t, 1<<20)
			f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: blockdev.BlkidArgv(d), Stdout: blkidCapture(t, tt.giveBlkid)})
			err := logical.New(f, nil).BuildPool(ctx, capvgPool(d), tt.giveFlags)
			wantErr(t, err, tt.wantKind, strings.ReplaceAll(tt.wantErr, "%s", d))
			data, _ := os.ReadFile(d)
			if data[0] != 0xaa {
				t.Error("a refused build touched the device")
			}
		})
	}
	// The shared probe leaves the wording of its failures to the backend.
	probeFails := []struct {
		name     string
		giveCall testkit.FakeCall
		wantKind domain.Kind
		wantErr  string
	}{
		{"unreadable blkid output", testkit.FakeCall{Stdout: "UUID=1\nno equals sign\n"}, domain.KindStorageProbeFailed,
			"Storage pool probe failed: Failed to probe for format type 'LVM2_member'"},
		{"blkid fails", testkit.FakeCall{Exit: 4, Stderr: "blkid: error: no such device\n"}, domain.KindInternal,
			"internal error: Child process (blkid -p -o export %s) unexpected exit status 4: blkid: error: no such device\n"},
	}
	for _, tt := range probeFails {
		t.Run(tt.name, func(t *testing.T) {
			d := fakeDevice(t, 1<<20)
			call := tt.giveCall
			call.Argv = blockdev.BlkidArgv(d)
			err := logical.New(testkit.NewFakeRunner(t, call), nil).BuildPool(ctx, capvgPool(d), domain.PoolBuildNoOverwrite)
			want := strings.ReplaceAll(tt.wantErr, "%s", d)
			wantErr(t, err, tt.wantKind, want)
			if err.Error() != want {
				t.Errorf("err = %q, want exactly %q", err, want)
			}
		})
	}
	t.Run("flags", func(t *testing.T) {
		b := logical.New(testkit.NewFakeRunner(t), nil)
		err := b.BuildPool(ctx, capvgPool(), domain.PoolBuildOverwrite|domain.PoolBuildNoOverwrite)
		wantErr(t, err, domain.KindInvalidArg, "are mutually exclusive")
		err = b.BuildPool(ctx, capvgPool(), domain.PoolBuildRepair)
		wantErr(t, err, domain.KindInvalidArg, "unsupported flags (0x1) in function virStorageBackendLogicalBuildPool")
	})
	t.Run("thin pool in an existing VG", func(t *testing.T) {
		def := capvgPool()
		def.Source.Name = "capvg/tpool"
		f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: logical.ThinPoolCreateArgv(logical.Source{VG: "capvg", ThinPool: "tpool"})})
		if err := logical.New(f, nil).BuildPool(ctx, def, 0); err != nil {
			t.Fatal(err)
		}
	})
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func TestStartCheckStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pvs := string(readTestdata(t, "pvs-orphan.txt"))
	scan := func() []testkit.FakeCall {
		return []testkit.FakeCall{{Argv: logical.VGScanArgv()}, {Argv: logical.PVSArgv(), Stdout: pvs}}
	}
	tests := []struct {
		name      string
		givePool  *domain.PoolDef
		wantErr   string
		wantCheck bool
	}{
		{name: "VG without devices listed", givePool: capvgPool(), wantCheck: true},
		{name: "matching device", givePool: capvgPool("/dev/loop1", "/dev/sdz"), wantCheck: true},
		{name: "no such VG", givePool: &domain.PoolDef{Name: "novg", Source: domain.PoolSource{Name: "novg"}}, wantErr: "unsupported configuration: cannot find logical volume group name 'novg'"},
		{name: "orphan PV is not the VG", givePool: capvgPool("/dev/loop2"), wantErr: "cannot find any matching source devices for logical volume group 'capvg'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := scan()
			if tt.wantErr == "" {
				calls = append(calls, testkit.FakeCall{Argv: logical.VGChangeArgv(tt.givePool.Source.Name, true)})
			}
			calls = append(calls, scan()...)
			f := testkit.NewFakeRunner(t, calls...)
			b := logical.New(f, nil)
			err := b.StartPool(ctx, tt.givePool)
			if tt.wantErr != "" {
				wantErr(t, err, domain.KindConfigUnsupported, tt.wantErr)
			} else if err != nil {
				t.Fatal(err)
			}
			active, err := b.CheckPool(ctx, tt.givePool)
			if err != nil || active != tt.wantCheck {
				t.Errorf("CheckPool = %v, %v; want %v", active, err, tt.wantCheck)
			}
		})
	}
	t.Run("stop", func(t *testing.T) {
		f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: logical.VGChangeArgv("capvg", false), Exit: 5, Stderr: "  Logical volume capvg/lv1 contains a filesystem in use."})
		err := logical.New(f, nil).StopPool(ctx, capvgPool())
		wantErr(t, err, domain.KindOperationInvalid, "contains a filesystem in use")
	})
}

func TestRefreshPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lvs := string(readTestdata(t, "lvs-mixed.txt"))
	t.Run("VG", func(t *testing.T) {
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: logical.LVSArgv(logical.Source{VG: "capvg"}), Stdout: lvs},
			testkit.FakeCall{Argv: logical.VGSArgv("capvg"), Stdout: string(readTestdata(t, "vgs.txt"))},
		)
		stats, vols, err := logical.New(f, nil).RefreshPool(ctx, capvgPool())
		if err != nil {
			t.Fatal(err)
		}
		if want := (domain.PoolStats{Capacity: 125829120, Available: 67108864, Allocation: 125829120 - 67108864}); stats != want {
			t.Errorf("stats = %+v, want %+v", stats, want)
		}
		if len(vols) != 7 {
			t.Errorf("got %d volumes, want 7", len(vols))
		}
	})
	t.Run("thin pool", func(t *testing.T) {
		def := capvgPool()
		def.Source.Name = "capvg/tpool"
		f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: logical.LVSArgv(logical.Source{VG: "capvg", ThinPool: "tpool"}), Stdout: string(readTestdata(t, "lvs-mixed-thin.txt"))})
		stats, vols, err := logical.New(f, nil).RefreshPool(ctx, def)
		if err != nil {
			t.Fatal(err)
		}
		if want := (domain.PoolStats{Capacity: 16 << 20, Available: 16 << 20, Thin: true}); stats != want {
			t.Errorf("stats = %+v, want %+v", stats, want)
		}
		if len(vols) != 2 || vols[0].Target.Path != "/dev/capvg/thin1" {
			t.Errorf("vols = %+v", vols)
		}
	})
	t.Run("missing VG", func(t *testing.T) {
		f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: logical.LVSArgv(logical.Source{VG: "capvg"}), Exit: 5, Stderr: string(readTestdata(t, "vgs-missing.stderr"))})
		_, _, err := logical.New(f, nil).RefreshPool(ctx, capvgPool())
		wantErr(t, err, domain.KindOperationFailed, `Volume group "nosuchvg" not found`)
	})
}

// TestRefreshReadsTheNodes: a volume and a snapshot's backing store carry
// what libvirt reads from their nodes (owner, group, mode and times). The
// pool's target is a directory of regular files here; the lab proves it on
// real LVs, with their sizes (internal/labe2e).
func TestRefreshReadsTheNodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mtimes := map[string]time.Time{"lv1": time.Unix(1700000000, 5), "snap1": time.Unix(1700000100, 0)}
	for name, mtime := range mtimes {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	def := capvgPool()
	def.Target.Path = dir
	f := testkit.NewFakeRunner(t,
		testkit.FakeCall{Argv: logical.LVSArgv(logical.Source{VG: "capvg"}), Stdout: string(readTestdata(t, "lvs-mixed.txt"))},
		testkit.FakeCall{Argv: logical.VGSArgv("capvg"), Stdout: string(readTestdata(t, "vgs.txt"))},
	)
	_, vols, err := logical.New(f, nil).RefreshPool(context.Background(), def)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*domain.VolDef{}
	for _, v := range vols {
		byName[v.Name] = v
	}
	perms := domain.Perms{Mode: 0o640, Owner: int64(os.Getuid()), Group: int64(os.Getgid())}
	lv1, snap := byName["lv1"], byName["snap1"]
	if lv1 == nil || lv1.Target.Perms != perms || lv1.Target.Timestamps == nil || !lv1.Target.Timestamps.Mtime.Equal(mtimes["lv1"]) {
		t.Errorf("lv1 = %+v; want perms %+v and its node's mtime", lv1, perms)
	}
	if snap == nil || snap.Backing == nil {
		t.Fatalf("snap1 = %+v, want a backing store", snap)
	}
	if b := snap.Backing; b.Path != filepath.Join(dir, "lv1") || b.Perms != perms || b.Timestamps == nil || !b.Timestamps.Mtime.Equal(mtimes["lv1"]) {
		t.Errorf("snap1's backing store = %+v; want lv1's node: perms %+v and its mtime", b, perms)
	}
	if snap.Target.Timestamps == nil || !snap.Target.Timestamps.Mtime.Equal(mtimes["snap1"]) {
		t.Errorf("snap1's times = %+v, want its own node's", snap.Target.Timestamps)
	}
	if byName["striped"] == nil || byName["striped"].Target.Timestamps != nil {
		t.Errorf("striped, which has no node: %+v; want no times", byName["striped"])
	}
}

func TestVolumeLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lvs := string(readTestdata(t, "lvs-mixed.txt"))
	b := func(t *testing.T, calls ...testkit.FakeCall) *logical.Backend {
		return logical.New(testkit.NewFakeRunner(t, calls...), nil)
	}

	t.Run("prepare", func(t *testing.T) {
		tests := []struct {
			name     string
			givePool string
			giveVol  *domain.VolDef
			wantKind domain.Kind
			wantErr  string
		}{
			{name: "ok", givePool: "capvg", giveVol: vol("v", gib, gib)},
			{name: "slash", givePool: "capvg", giveVol: vol("a/b", gib, gib), wantKind: domain.KindOperationInvalid, wantErr: "volume name 'a/b' cannot contain '/'"},
			{name: "no capacity", givePool: "capvg", giveVol: vol("v", 0, 0), wantKind: domain.KindNoSupport, wantErr: "volume capacity required for this storage pool"},
			{name: "thin with backing", givePool: "capvg/tpool", giveVol: &domain.VolDef{Name: "v", Capacity: 1, Backing: &domain.BackingStore{Path: "/dev/capvg/lv1"}}, wantKind: domain.KindConfigUnsupported, wantErr: "backing store not supported"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				def := capvgPool()
				def.Source.Name = tt.givePool
				err := b(t).PrepareVol(def, tt.giveVol)
				if tt.wantErr != "" {
					wantErr(t, err, tt.wantKind, tt.wantErr)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if tt.giveVol.Type != domain.VolBlock || tt.giveVol.Target.Path != "/dev/capvg/v" {
					t.Errorf("prepared vol = %+v", tt.giveVol)
				}
			})
		}
	})

	t.Run("create then refresh fills the key", func(t *testing.T) {
		pool := capvgPool()
		v := vol("lv1", 8<<20, 8<<20)
		v.Target.Perms = domain.UnsetPerms()
		be := b(t,
			testkit.FakeCall{Argv: logical.LVCreateArgv(logical.Source{VG: "capvg"}, v)},
			testkit.FakeCall{Argv: logical.LVSArgv(logical.Source{VG: "capvg"}), Stdout: lvs},
		)
		if err := be.PrepareVol(pool, v); err != nil {
			t.Fatal(err)
		}
		if err := be.BuildVol(ctx, pool, v, 0); err != nil {
			t.Fatal(err)
		}
		if err := be.RefreshVol(ctx, pool, v); err != nil {
			t.Fatal(err)
		}
		if v.Key != "dzt8WR-HlMe-Cfbu-oqKB-GumG-NsoO-QhthVP" || v.Capacity != 8<<20 {
			t.Errorf("refreshed vol = %+v", v)
		}
	})

	t.Run("create sets the node's mode, 0600 by default", func(t *testing.T) {
		// udev makes dm nodes 0660 root:disk; libvirt narrows a new LV's
		// node to 0600 unless the XML gives a mode.
		for _, tt := range []struct {
			name string
			mode int64
			want os.FileMode
		}{{"no mode", -1, 0o600}, {"mode given", 0o640, 0o640}} {
			t.Run(tt.name, func(t *testing.T) {
				pool := capvgPool()
				pool.Target.Path = t.TempDir()
				v := vol("lv1", 8<<20, 8<<20)
				v.Target.Perms = domain.UnsetPerms()
				v.Target.Perms.Mode = tt.mode
				be := b(t, testkit.FakeCall{Argv: logical.LVCreateArgv(logical.Source{VG: "capvg"}, v)})
				if err := be.PrepareVol(pool, v); err != nil {
					t.Fatal(err)
				}
				node := filepath.Join(pool.Target.Path, "lv1")
				if err := os.WriteFile(node, nil, 0o660); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(node, 0o660); err != nil {
					t.Fatal(err)
				}
				if err := be.BuildVol(ctx, pool, v, 0); err != nil {
					t.Fatal(err)
				}
				if fi, err := os.Stat(node); err != nil || fi.Mode().Perm() != tt.want {
					t.Errorf("node mode after BuildVol: %v (%v), want %v", fi.Mode().Perm(), err, tt.want)
				}
			})
		}
	})

	t.Run("thin volume reserves nothing", func(t *testing.T) {
		// vol-create-as gives no <allocation>: the service would reserve
		// the whole capacity, refusing any overcommit of the thin pool.
		pool := capvgPool()
		pool.Source.Name = "capvg/tp"
		v := vol("th", 1<<40, 0)
		v.HasAllocation = false
		if err := b(t).PrepareVol(pool, v); err != nil {
			t.Fatal(err)
		}
		if got := domain.InitialAllocation(v, 0); got != 0 || v.Capacity != 1<<40 {
			t.Errorf("thin vol: initial allocation %d capacity %d, want 0 and %d", got, v.Capacity, uint64(1<<40))
		}
	})

	t.Run("create failure classified", func(t *testing.T) {
		v := vol("big", 1<<30, 1<<30)
		v.Target.Perms = domain.UnsetPerms()
		be := b(t, testkit.FakeCall{Argv: logical.LVCreateArgv(logical.Source{VG: "capvg"}, v), Exit: 5, Stderr: string(readTestdata(t, "lvcreate-nospace.stderr"))})
		err := be.BuildVol(ctx, capvgPool(), v, 0)
		wantErr(t, err, domain.KindOperationFailed, "insufficient free space (16 extents): 256 required")
	})

	t.Run("perms failure removes the LV", func(t *testing.T) {
		v := vol("v", gib, gib)
		v.Target.Path = filepath.Join(t.TempDir(), "missing-node")
		v.Target.Perms = domain.Perms{Mode: 0o600, Owner: -1, Group: -1}
		be := b(t,
			testkit.FakeCall{Argv: logical.LVCreateArgv(logical.Source{VG: "capvg"}, v)},
			testkit.FakeCall{Argv: logical.LVRemoveArgv(v.Target.Path)},
		)
		err := be.BuildVol(ctx, capvgPool(), v, 0)
		wantErr(t, err, domain.KindSystem, "cannot set file mode")
	})

	t.Run("delete retries after deactivation", func(t *testing.T) {
		v := &domain.VolDef{Name: "lv1", Target: domain.VolTarget{Path: "/dev/capvg/lv1"}}
		be := b(t,
			testkit.FakeCall{Argv: logical.LVRemoveArgv("/dev/capvg/lv1"), Exit: 5, Stderr: "  Logical volume capvg/lv1 in use."},
			testkit.FakeCall{Argv: logical.LVChangeDeactivateArgv("/dev/capvg/lv1")},
			testkit.FakeCall{Argv: logical.LVRemoveArgv("/dev/capvg/lv1")},
		)
		if err := be.DeleteVol(ctx, capvgPool(), v, 0); err != nil {
			t.Fatal(err)
		}
		wantErr(t, be.DeleteVol(ctx, capvgPool(), v, 1), domain.KindInvalidArg, "unsupported flags (0x1) in function virStorageBackendLogicalDeleteVol")
	})

	t.Run("delete of a missing LV", func(t *testing.T) {
		v := &domain.VolDef{Name: "nosuch", Target: domain.VolTarget{Path: "capvg/nosuch"}}
		stderr := string(readTestdata(t, "lvremove-missing.stderr"))
		be := b(t,
			testkit.FakeCall{Argv: logical.LVRemoveArgv("capvg/nosuch"), Exit: 5, Stderr: stderr},
			testkit.FakeCall{Argv: logical.LVChangeDeactivateArgv("capvg/nosuch"), Exit: 5, Stderr: stderr},
		)
		wantErr(t, be.DeleteVol(ctx, capvgPool(), v, 0), domain.KindNoStorageVol, `Failed to find logical volume "capvg/nosuch"`)
	})

	t.Run("resize", func(t *testing.T) {
		tests := []struct {
			name      string
			giveVol   string
			giveCap   uint64
			giveFlags uint32
			wantResz  []string
			wantKind  domain.Kind
			wantErr   string
		}{
			{name: "grow", giveVol: "lv1", giveCap: 16 << 20, wantResz: logical.LVResizeArgv("capvg", "lv1", 16<<20, false)},
			{name: "shrink", giveVol: "lv1", giveCap: 4 << 20, giveFlags: domain.VolResizeShrink, wantResz: logical.LVResizeArgv("capvg", "lv1", 4<<20, true)},
			{name: "same size", giveVol: "lv1", giveCap: 8 << 20},
			{name: "shrink without flag", giveVol: "lv1", giveCap: 4 << 20, wantKind: domain.KindInvalidArg, wantErr: "unless shrink flag explicitly specified"},
			{name: "snapshot", giveVol: "snap1", giveCap: 16 << 20, wantKind: domain.KindOperationUnsupported, wantErr: "cannot resize snapshot logical volume"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				calls := []testkit.FakeCall{{Argv: logical.LVSArgv(logical.Source{VG: "capvg"}), Stdout: lvs}}
				if tt.wantResz != nil {
					calls = append(calls, testkit.FakeCall{Argv: tt.wantResz})
				}
				v := &domain.VolDef{Name: tt.giveVol, Target: domain.VolTarget{Path: "/dev/capvg/" + tt.giveVol}}
				err := b(t, calls...).ResizeVol(ctx, capvgPool(), v, tt.giveCap, tt.giveFlags)
				if tt.wantErr != "" {
					wantErr(t, err, tt.wantKind, tt.wantErr)
				} else if err != nil {
					t.Fatal(err)
				}
			})
		}
	})

	t.Run("wipe refuses sparse LVs", func(t *testing.T) {
		v := &domain.VolDef{Name: "sparse1", Target: domain.VolTarget{Path: "/dev/capvg/sparse1"}}
		err := b(t, testkit.FakeCall{Argv: logical.LVSArgv(logical.Source{VG: "capvg"}), Stdout: lvs}).WipeVol(ctx, capvgPool(), v, domain.WipeZero, 0)
		wantErr(t, err, domain.KindNoSupport, "logical volume '/dev/capvg/sparse1' is sparse, volume wipe not supported")
	})

	t.Run("wipe with scrub", func(t *testing.T) {
		dev := fakeDevice(t, 4096)
		v := &domain.VolDef{Name: "lv1", Target: domain.VolTarget{Path: dev}}
		be := b(t,
			testkit.FakeCall{Argv: logical.LVSArgv(logical.Source{VG: "capvg"}), Stdout: lvs},
			testkit.FakeCall{Argv: []string{"scrub", "-f", "-p", "dod", dev}},
		)
		if err := be.WipeVol(ctx, capvgPool(), v, domain.WipeDOD, 0); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDeletePoolAndFindSources(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("delete", func(t *testing.T) {
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: logical.VGRemoveArgv("capvg")},
			testkit.FakeCall{Argv: logical.PVRemoveArgv("/dev/loop0"), Exit: 5, Stderr: "  Device /dev/loop0 is busy."},
			testkit.FakeCall{Argv: logical.PVRemoveArgv("/dev/loop1")},
		)
		err := logical.New(f, nil).DeletePool(ctx, capvgPool("/dev/loop0", "/dev/loop1"), 0)
		wantErr(t, err, domain.KindInternal, "Child process (pvremove /dev/loop0) unexpected exit status 5:   Device /dev/loop0 is busy.")
	})
	// A label already gone (a partly failed earlier delete) lets the delete finish.
	t.Run("delete resumed", func(t *testing.T) {
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: logical.VGRemoveArgv("capvg"), Exit: 5, Stderr: "  Volume group \"capvg\" not found"},
			testkit.FakeCall{Argv: logical.PVRemoveArgv("/dev/loop0"), Exit: 5, Stderr: "  No PV found on device /dev/loop0."},
			testkit.FakeCall{Argv: logical.PVRemoveArgv("/dev/loop1")},
		)
		if err := logical.New(f, nil).DeletePool(ctx, capvgPool("/dev/loop0", "/dev/loop1"), 0); err != nil {
			t.Fatalf("resumed delete: %v", err)
		}
	})
	t.Run("delete thin pool", func(t *testing.T) {
		def := capvgPool("/dev/loop0")
		def.Source.Name = "capvg/tpool"
		f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: logical.LVRemoveArgv("capvg/tpool")})
		if err := logical.New(f, nil).DeletePool(ctx, def, 0); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("find sources", func(t *testing.T) {
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: logical.VGScanArgv()},
			testkit.FakeCall{Argv: logical.PVSArgv(), Stdout: string(readTestdata(t, "pvs.txt"))},
		)
		srcs, err := logical.New(f, nil).FindPoolSources(ctx, &domain.PoolSource{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(srcs) != 1 || srcs[0].Name != "capvg" || len(srcs[0].Devices) != 2 || srcs[0].Format != "lvm2" {
			t.Errorf("sources = %+v", srcs)
		}
	})
}

func TestValidatePool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		give       domain.PoolDef
		wantSource string
		wantTarget string
		wantErr    bool
	}{
		{name: "defaults", give: domain.PoolDef{Name: "vg0"}, wantSource: "vg0", wantTarget: "/dev/vg0"},
		{name: "thin", give: domain.PoolDef{Name: "p", Source: domain.PoolSource{Name: "vg0/tp"}}, wantSource: "vg0/tp", wantTarget: "/dev/vg0"},
		{name: "too many slashes", give: domain.PoolDef{Name: "p", Source: domain.PoolSource{Name: "a/b/c"}}, wantErr: true},
		{name: "trailing slash", give: domain.PoolDef{Name: "p", Source: domain.PoolSource{Name: "a/"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := tt.give
			err := logical.New(nil, nil).ValidatePool(&def)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && (def.Source.Name != tt.wantSource || def.Target.Path != tt.wantTarget) {
				t.Errorf("got source %q target %q", def.Source.Name, def.Target.Path)
			}
		})
	}
}

func TestBuildVolFrom(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	vg := logical.Source{VG: "capvg"}
	newVol := func(t *testing.T) *domain.VolDef {
		v := vol("copy", 2<<20, 2<<20)
		v.Target.Perms = domain.UnsetPerms()
		v.Target.Path = fakeDevice(t, 2<<20) // the LV's device node
		return v
	}
	t.Run("raw source is copied in process", func(t *testing.T) {
		v := newVol(t)
		src := &domain.VolDef{Name: "base", Target: domain.VolTarget{Path: filepath.Join(t.TempDir(), "base.img"), Format: "raw"}}
		if err := os.WriteFile(src.Target.Path, []byte("guest data"), 0o600); err != nil {
			t.Fatal(err)
		}
		f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: logical.LVCreateArgv(vg, v)})
		if err := logical.New(f, nil).BuildVolFrom(ctx, capvgPool(), v, nil, src, 0); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(v.Target.Path)
		if string(data[:10]) != "guest data" || data[10] != 0xaa {
			t.Errorf("device starts %q", data[:12])
		}
	})
	t.Run("qcow2 source goes through qemu-img", func(t *testing.T) {
		v := newVol(t)
		src := &domain.VolDef{Name: "base", Target: domain.VolTarget{Path: "/images/base.qcow2", Format: "qcow2"}}
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: logical.LVCreateArgv(vg, v)},
			testkit.FakeCall{Argv: logical.QemuImgConvertArgv("qcow2", "/images/base.qcow2", v.Target.Path), Exit: 1, Stderr: "qemu-img: Could not open '/images/base.qcow2'"},
			testkit.FakeCall{Argv: logical.LVRemoveArgv(v.Target.Path)},
		)
		err := logical.New(f, nil).BuildVolFrom(ctx, capvgPool(), v, nil, src, 0)
		wantErr(t, err, domain.KindInternal, "qemu-img: Could not open")
	})
	t.Run("metadata preallocation refused", func(t *testing.T) {
		err := logical.New(testkit.NewFakeRunner(t), nil).BuildVolFrom(ctx, capvgPool(), newVol(t), nil, &domain.VolDef{}, domain.VolCreatePreallocMetadata)
		wantErr(t, err, domain.KindOperationUnsupported, "metadata preallocation is not supported for block volumes")
	})
}
