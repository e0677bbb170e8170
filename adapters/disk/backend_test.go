package disk_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/disk"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// fakeDevice is a regular file standing in for a block device named loop0
// (so that its partitions are loop0pN), filled with 0xaa so that zeroing
// shows.
func fakeDevice(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "loop0")
	if err := os.WriteFile(p, bytes.Repeat([]byte{0xaa}, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pool(dev, format string) *domain.PoolDef {
	return &domain.PoolDef{
		Type: domain.PoolDisk, Name: "dp",
		Source: domain.PoolSource{Devices: []domain.SourceDevice{{Path: dev}}, Format: format},
		Target: domain.PoolTarget{Path: "/dev"},
	}
}

func newBackend(f *testkit.FakeRunner, sysfs string) *disk.Backend {
	return disk.New(f, disk.Config{SysfsRoot: sysfs, ProcDevices: "/nonexistent"}, nil)
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

func untouched(t *testing.T, dev string) {
	t.Helper()
	b, _ := os.ReadFile(dev)
	if b[0] != 0xaa || b[len(b)-1] != 0xaa {
		t.Error("a refused operation wrote to the device")
	}
}

// listing is a parted listing of the fake device: the capture's, with its
// path.
func listing(t *testing.T, capture, dev string) string {
	return strings.ReplaceAll(string(readTestdata(t, "parted-"+capture+".txt")), "/dev/loop0", dev)
}

func TestBuildPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("blank device: zero both ends, mklabel (unknown is dos)", func(t *testing.T) {
		dev := fakeDevice(t)
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: blockdev.BlkidArgv(dev), Exit: 2},
			testkit.FakeCall{Argv: disk.MklabelArgv(dev, "msdos")},
		)
		if err := newBackend(f, t.TempDir()).BuildPool(ctx, pool(dev, "unknown"), 0); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(dev)
		if !bytes.Equal(b[:1<<20], make([]byte, 1<<20)) || !bytes.Equal(b[2<<20:], make([]byte, 1<<20)) || b[1<<20] != 0xaa {
			t.Error("build did not zero exactly the first and last MiB")
		}
	})
	t.Run("overwrite skips the probe", func(t *testing.T) {
		dev := fakeDevice(t)
		f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: disk.MklabelArgv(dev, "gpt")})
		if err := newBackend(f, t.TempDir()).BuildPool(ctx, pool(dev, "gpt"), domain.PoolBuildOverwrite); err != nil {
			t.Fatal(err)
		}
	})

	refused := []struct {
		name     string
		format   string
		flags    uint32
		calls    func(dev string) []testkit.FakeCall
		wantKind domain.Kind
		wantErr  string
	}{
		{"the same label", "dos", domain.PoolBuildNoOverwrite, func(dev string) []testkit.FakeCall {
			return []testkit.FakeCall{{Argv: blockdev.BlkidArgv(dev), Stdout: "PTTYPE=dos\n"}}
		}, domain.KindStoragePoolBuilt, "Storage pool already built: Device '%s' already formatted using 'dos'"},
		{"a label of another format", "gpt", 0, func(dev string) []testkit.FakeCall {
			return []testkit.FakeCall{{Argv: blockdev.BlkidArgv(dev), Stdout: "PTTYPE=dos\n"}}
		}, domain.KindStoragePoolBuilt, "Storage pool already built: Format of device '%s' does not match the expected format 'gpt', forced overwrite is necessary"},
		{"a file system", "dos", 0, func(dev string) []testkit.FakeCall {
			return []testkit.FakeCall{{Argv: blockdev.BlkidArgv(dev), Stdout: string(readTestdata(t, "blkid-ext4.txt"))}}
		}, domain.KindStoragePoolBuilt, "does not match the expected format 'dos', forced overwrite is necessary"},
		{"the default format probes for 'unknown'", "", 0, func(dev string) []testkit.FakeCall {
			return []testkit.FakeCall{{Argv: blockdev.BlkidArgv(dev), Stdout: "PTTYPE=dos\n"}}
		}, domain.KindStoragePoolBuilt, "does not match the expected format 'unknown'"},
		{"pc98 through parted", "pc98", 0, func(dev string) []testkit.FakeCall {
			return []testkit.FakeCall{
				{Argv: blockdev.BlkidArgv(dev), Stdout: "PTTYPE=dos\n"},
				{Argv: disk.LabelArgv(dev), Stdout: string(readTestdata(t, "parted-print-pc98.stdout"))},
			}
		}, domain.KindOperationInvalid, "Requested operation is not valid: Disk label already formatted using 'pc98'"},
		{"blkid output unreadable", "dos", 0, func(dev string) []testkit.FakeCall {
			return []testkit.FakeCall{{Argv: blockdev.BlkidArgv(dev), Stdout: "no equals sign\n"}}
		}, domain.KindStorageProbeFailed, "Failed to probe for format type 'dos'"},
		{"both overwrite flags", "dos", domain.PoolBuildOverwrite | domain.PoolBuildNoOverwrite, func(string) []testkit.FakeCall { return nil },
			domain.KindInvalidArg, "mutually exclusive"},
		{"an unknown flag", "dos", 1, func(string) []testkit.FakeCall { return nil },
			domain.KindInvalidArg, "unsupported flags (0x1) in function virStorageBackendDiskBuildPool"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			dev := fakeDevice(t)
			f := testkit.NewFakeRunner(t, tt.calls(dev)...)
			err := newBackend(f, t.TempDir()).BuildPool(ctx, pool(dev, tt.format), tt.flags)
			wantErr(t, err, tt.wantKind, strings.ReplaceAll(tt.wantErr, "%s", dev))
			untouched(t, dev)
		})
	}
	t.Run("missing device", func(t *testing.T) {
		f := testkit.NewFakeRunner(t)
		err := newBackend(f, t.TempDir()).BuildPool(ctx, pool("/dev/nonexistent-disk", "dos"), 0)
		wantErr(t, err, domain.KindStorageProbeFailed, "Storage pool probe failed: Failed to create filesystem probe for device /dev/nonexistent-disk")
	})
}

func TestStartPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	settle := testkit.FakeCall{Argv: disk.SettleArgv()}
	t.Run("missing device", func(t *testing.T) {
		f := testkit.NewFakeRunner(t, settle)
		err := newBackend(f, t.TempDir()).StartPool(ctx, pool("/dev/nonexistent-disk", "dos"))
		wantErr(t, err, domain.KindInvalidArg, "invalid argument: device path '/dev/nonexistent-disk' doesn't exist")
	})
	tests := []struct {
		name     string
		format   string
		probe    testkit.FakeCall
		wantKind domain.Kind
		wantErr  string
	}{
		{"its label", "unknown", testkit.FakeCall{Stdout: "PTTYPE=dos\n"}, 0, ""},
		{"no label", "gpt", testkit.FakeCall{Exit: 2}, domain.KindStorageProbeFailed, "Storage pool probe failed: Device '%s' is unrecognized, requires build"},
		{"another label", "gpt", testkit.FakeCall{Stdout: "PTTYPE=dos\n"}, domain.KindOperationInvalid, "Requested operation is not valid: Format of device '%s' does not match the expected format 'gpt'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := fakeDevice(t)
			probe := tt.probe
			probe.Argv = blockdev.BlkidArgv(dev)
			f := testkit.NewFakeRunner(t, settle, probe)
			err := newBackend(f, t.TempDir()).StartPool(ctx, pool(dev, tt.format))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tt.wantKind, strings.ReplaceAll(tt.wantErr, "%s", dev))
		})
	}
	t.Run("dvh through parted: no label", func(t *testing.T) {
		dev := fakeDevice(t)
		f := testkit.NewFakeRunner(t, settle,
			testkit.FakeCall{Argv: blockdev.BlkidArgv(dev), Exit: 2},
			testkit.FakeCall{Argv: disk.LabelArgv(dev), Exit: 1, Stderr: "Error: " + dev + ": unrecognised disk label\n"},
		)
		err := newBackend(f, t.TempDir()).StartPool(ctx, pool(dev, "dvh"))
		wantErr(t, err, domain.KindOperationFailed, "operation failed: Unrecognized disk label found, requires build")
	})
}

func TestRefreshPool(t *testing.T) {
	t.Parallel()
	dev := fakeDevice(t)
	f := testkit.NewFakeRunner(t,
		testkit.FakeCall{Argv: disk.SettleArgv()},
		testkit.FakeCall{Argv: disk.ListArgv(dev), Stdout: listing(t, "msdos-mixed", dev)},
	)
	def := pool(dev, "unknown")
	stats, vols, err := newBackend(f, t.TempDir()).RefreshPool(context.Background(), def)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Capacity != 209679360 || stats.Available != 145965056 || stats.Allocation != 63712256 {
		t.Errorf("stats = %+v", stats)
	}
	if len(def.Source.Devices[0].FreeExtents) != 2 || def.Source.Format != "dos" {
		t.Errorf("live definition: free extents %v, format %q", def.Source.Devices[0].FreeExtents, def.Source.Format)
	}
	var names []string
	for _, v := range vols {
		names = append(names, v.Name)
		if v.Key != v.Target.Path || v.Target.Path != filepath.Join(filepath.Dir(dev), v.Name) || v.SourceDevice != dev || v.Type != domain.VolBlock {
			t.Errorf("volume %+v", v)
		}
	}
	if strings.Join(names, " ") != "loop0p1 loop0p2 loop0p3 loop0p5 loop0p4" {
		t.Errorf("volumes %v", names)
	}
}

// afterCreate is msdos-empty with libvirt's first partition added.
func afterCreate(dev string) string {
	return "BYT;\n" + dev + ":409600s:loopback:512:512:msdos:Loopback device:cylinder_alignment;\n" +
		"1:2s:20909s:20908s:::;\n1:20910s:409529s:388620s:free;\n"
}

func TestBuildVol(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	calls := func(t *testing.T, dev string) []testkit.FakeCall {
		return []testkit.FakeCall{
			{Argv: disk.ListArgv(dev), Stdout: listing(t, "msdos-empty", dev)},
			{Argv: disk.GeometryArgv(dev), Stdout: string(readTestdata(t, "parted-chs-msdos.txt"))},
			{Argv: disk.MkpartArgv(dev, "primary ext2", 1024, 10705919)},
			{Argv: disk.SettleArgv()},
			{Argv: disk.ListArgv(dev), Stdout: afterCreate(dev)},
		}
	}
	t.Run("makes libvirt's partition and reads it back", func(t *testing.T) {
		dev := fakeDevice(t)
		f := testkit.NewFakeRunner(t, calls(t, dev)...)
		b := newBackend(f, t.TempDir())
		vol := &domain.VolDef{Name: "loop0p1", Capacity: 10 << 20, HasCapacity: true}
		if err := b.PrepareVol(pool(dev, "dos"), vol); err != nil {
			t.Fatal(err)
		}
		if vol.Allocation != 0 || !vol.HasAllocation {
			t.Errorf("PrepareVol reserved %d bytes: the partition table is the admission check", vol.Allocation)
		}
		if err := b.BuildVol(ctx, pool(dev, "dos"), vol, 0); err != nil {
			t.Fatal(err)
		}
		if vol.Target.Path != dev+"p1" || vol.Key != vol.Target.Path || vol.Capacity != 10704896 || vol.Allocation != vol.Capacity ||
			len(vol.Extents) != 1 || vol.Extents[0] != (domain.Extent{Start: 1024, End: 10705920}) || vol.Target.Format != "none" {
			t.Errorf("volume %+v", vol)
		}
	})
	t.Run("a name that is not the partition's removes it", func(t *testing.T) {
		dev := fakeDevice(t)
		f := testkit.NewFakeRunner(t, append(calls(t, dev),
			testkit.FakeCall{Argv: disk.RmArgv(dev, 1)},
			testkit.FakeCall{Argv: disk.SettleArgv()},
		)...)
		vol := &domain.VolDef{Name: "p1", Capacity: 10 << 20, HasCapacity: true}
		err := newBackend(f, t.TempDir()).BuildVol(ctx, pool(dev, "dos"), vol, 0)
		wantErr(t, err, domain.KindInvalidArg, "invalid argument: invalid partition name 'p1', expected 'loop0p1'")
	})
	t.Run("parted fails", func(t *testing.T) {
		dev := fakeDevice(t)
		c := calls(t, dev)[:3]
		c[2].Exit, c[2].Stderr = 1, "Error: Can't have overlapping partitions.\n"
		f := testkit.NewFakeRunner(t, c...)
		vol := &domain.VolDef{Name: "loop0p1", Capacity: 10 << 20, HasCapacity: true}
		err := newBackend(f, t.TempDir()).BuildVol(ctx, pool(dev, "dos"), vol, 0)
		wantErr(t, err, domain.KindInternal, "Child process (parted "+dev+" mkpart --script 'primary ext2' 1024B 10705919B) unexpected exit status 1: Error: Can't have overlapping partitions.")
	})
	t.Run("no capacity", func(t *testing.T) {
		err := newBackend(testkit.NewFakeRunner(t), t.TempDir()).PrepareVol(pool("/dev/loop0", "dos"), &domain.VolDef{Name: "loop0p1"})
		wantErr(t, err, domain.KindNoSupport, "volume capacity required for this storage pool")
	})
	t.Run("encryption", func(t *testing.T) {
		vol := &domain.VolDef{Name: "loop0p1", Capacity: 1, Target: domain.VolTarget{Encryption: domain.VolEncryption{Format: "qcow"}}}
		err := newBackend(testkit.NewFakeRunner(t), t.TempDir()).PrepareVol(pool("/dev/loop0", "dos"), vol)
		wantErr(t, err, domain.KindConfigUnsupported, "storage pool only supports LUKS encrypted volumes")
	})
}

// kernelPartition returns a fake sysfs tree in which the kernel still lists
// partition number of loop0, starting at sector start: what decides whether a
// delete must also run partx -d.
func kernelPartition(t *testing.T, number int, start uint64) string {
	t.Helper()
	sysfs := t.TempDir()
	part := filepath.Join(sysfs, "class", "block", "loop0", "loop0p"+strconv.Itoa(number))
	if err := os.MkdirAll(part, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"partition": strconv.Itoa(number) + "\n",
		"start":     strconv.FormatUint(start, 10) + "\n",
	}
	for file, content := range files {
		if err := os.WriteFile(filepath.Join(part, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return sysfs
}

func TestDeleteVol(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("the partition number comes from the table, not the name", func(t *testing.T) {
		dev := fakeDevice(t)
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: disk.ListArgv(dev), Stdout: listing(t, "msdos-mixed", dev)},
			testkit.FakeCall{Argv: disk.RmArgv(dev, 5)},
			testkit.FakeCall{Argv: disk.SettleArgv()},
		)
		vol := &domain.VolDef{Name: "loop0p5", Target: domain.VolTarget{Path: dev + "p5"}}
		if err := newBackend(f, t.TempDir()).DeleteVol(ctx, pool(dev, "dos"), vol, 0); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the kernel still lists the partition: partx -d", func(t *testing.T) {
		dev := fakeDevice(t)
		// Partition 5 still starts where the removed one did (sector 62222).
		sysfs := kernelPartition(t, 5, 62222)
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: disk.ListArgv(dev), Stdout: listing(t, "msdos-mixed", dev)},
			testkit.FakeCall{Argv: disk.RmArgv(dev, 5)},
			testkit.FakeCall{Argv: disk.SettleArgv()},
			testkit.FakeCall{Argv: disk.PartxDeleteArgv(dev, 5)},
			testkit.FakeCall{Argv: disk.SettleArgv()},
		)
		vol := &domain.VolDef{Name: "loop0p5"}
		if err := newBackend(f, sysfs).DeleteVol(ctx, pool(dev, "dos"), vol, 0); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a logical partition renumbered into the removed one's number stays", func(t *testing.T) {
		dev := fakeDevice(t)
		sysfs := kernelPartition(t, 5, 90000)
		f := testkit.NewFakeRunner(t,
			testkit.FakeCall{Argv: disk.ListArgv(dev), Stdout: listing(t, "msdos-mixed", dev)},
			testkit.FakeCall{Argv: disk.RmArgv(dev, 5)},
			testkit.FakeCall{Argv: disk.SettleArgv()},
		)
		if err := newBackend(f, sysfs).DeleteVol(ctx, pool(dev, "dos"), &domain.VolDef{Name: "loop0p5"}, 0); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a volume the table does not hold", func(t *testing.T) {
		dev := fakeDevice(t)
		f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: disk.ListArgv(dev), Stdout: listing(t, "msdos-empty", dev)})
		err := newBackend(f, t.TempDir()).DeleteVol(ctx, pool(dev, "dos"), &domain.VolDef{Name: "loop0p1"}, 0)
		wantErr(t, err, domain.KindNoStorageVol, "no storage vol with matching name 'loop0p1'")
	})
	t.Run("flags", func(t *testing.T) {
		err := newBackend(testkit.NewFakeRunner(t), t.TempDir()).DeleteVol(ctx, pool("/dev/loop0", "dos"), &domain.VolDef{Name: "loop0p1"}, 1)
		wantErr(t, err, domain.KindInvalidArg, "unsupported flags (0x1) in function virStorageBackendDiskDeleteVol")
	})
}

func TestWipeExtended(t *testing.T) {
	t.Parallel()
	dev := fakeDevice(t)
	f := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: disk.ListArgv(dev), Stdout: listing(t, "msdos-mixed", dev)})
	vol := &domain.VolDef{Name: "loop0p3", Target: domain.VolTarget{Path: dev + "p3"}, Extents: []domain.Extent{{Start: 31856640, End: 84602880}}}
	err := newBackend(f, t.TempDir()).WipeVol(context.Background(), pool(dev, "dos"), vol, domain.WipeZero, 0)
	wantErr(t, err, domain.KindNoSupport, "this function is not supported by the connection driver: cannot wipe extended partition '"+dev+"p3'")
}

func TestDeletePool(t *testing.T) {
	t.Parallel()
	dev := fakeDevice(t)
	b := newBackend(testkit.NewFakeRunner(t), t.TempDir())
	wantErr(t, b.DeletePool(context.Background(), pool(dev, "dos"), 1), domain.KindInvalidArg, "virStorageBackendDiskDeletePool")
	untouched(t, dev)
	if err := b.DeletePool(context.Background(), pool(dev, "dos"), 0); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(dev)
	if !bytes.Equal(data[:1<<20], make([]byte, 1<<20)) || !bytes.Equal(data[2<<20:], make([]byte, 1<<20)) {
		t.Error("pool-delete did not zero the label areas")
	}
}

func TestUnsupported(t *testing.T) {
	t.Parallel()
	b := newBackend(testkit.NewFakeRunner(t), t.TempDir())
	_, err := b.FindPoolSources(context.Background(), &domain.PoolSource{}, 0)
	wantErr(t, err, domain.KindNoSupport, "pool type 'disk' does not support source discovery")
	err = b.ResizeVol(context.Background(), pool("/dev/loop0", "dos"), &domain.VolDef{}, 1, 0)
	wantErr(t, err, domain.KindNoSupport, "storage pool does not support changing of volume capacity")
}

// TestRefreshVol: a partition keeps its figures, is still there while the
// kernel lists it without a node yet (udev makes it after parted returns),
// or while neither is there but the table holds it (udev re-reading the
// table), and is reported gone once the table does not hold it either.
func TestRefreshVol(t *testing.T) {
	sysfs := t.TempDir()
	nodes := t.TempDir()
	dev := fakeDevice(t)
	def := pool(dev, "gpt")
	vol := &domain.VolDef{Name: "loop0p2", Capacity: 1 << 20, Target: domain.VolTarget{Path: filepath.Join(nodes, "loop0p2")},
		Extents: []domain.Extent{{Start: 20514 * 512, End: 40994 * 512}}}
	if err := os.MkdirAll(filepath.Join(sysfs, "class", "block", "loop0p2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := newBackend(testkit.NewFakeRunner(t), sysfs).RefreshVol(context.Background(), def, vol); err != nil || vol.Capacity != 1<<20 {
		t.Fatalf("listed by the kernel, no node yet: %v, capacity %d", err, vol.Capacity)
	}
	if err := os.WriteFile(vol.Target.Path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(sysfs, "class", "block", "loop0p2")); err != nil {
		t.Fatal(err)
	}
	if err := newBackend(testkit.NewFakeRunner(t), sysfs).RefreshVol(context.Background(), def, vol); err != nil {
		t.Fatalf("a node (a device-mapper partition): %v", err)
	}
	if err := os.Remove(vol.Target.Path); err != nil {
		t.Fatal(err)
	}
	inTable := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: disk.ListArgv(dev), Stdout: listing(t, "gpt", dev)})
	if err := newBackend(inTable, sysfs).RefreshVol(context.Background(), def, vol); err != nil {
		t.Fatalf("neither node nor sysfs entry, but in the table: %v", err)
	}
	gone := testkit.NewFakeRunner(t, testkit.FakeCall{Argv: disk.ListArgv(dev), Stdout: listing(t, "gpt", dev)})
	vol.Extents[0].Start = 512
	wantErr(t, newBackend(gone, sysfs).RefreshVol(context.Background(), def, vol), domain.KindNoStorageVol, "no storage vol with matching name 'loop0p2'")
}
