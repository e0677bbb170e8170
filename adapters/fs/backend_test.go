package fs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/fs"
	"github.com/virtstoraged-go/virtstoraged/adapters/lib/blockdev"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// fsPool is the domain form of libvirt's storagepoolxml2argvdata/pool-fs.xml
// style definition: one device, a format, a target.
func fsPool(dev, format, target string, opts ...string) *domain.PoolDef {
	return &domain.PoolDef{
		Type: domain.PoolFS, Name: "fs",
		Source:    domain.PoolSource{Devices: []domain.SourceDevice{{Path: dev}}, Format: format},
		Target:    domain.PoolTarget{Path: target, Perms: domain.UnsetPerms()},
		MountOpts: opts,
	}
}

func TestStartStopArgv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveDef  *domain.PoolDef
		wantName string
	}{
		{name: "pool-fs", giveDef: fsPool("/dev/sda6", "vfat", "/mnt")},
		{name: "pool-fs-auto", giveDef: fsPool("/dev/sda6", "", "/mnt")},
		{name: "pool-fs-ext4", giveDef: fsPool("/dev/disk/by-label/images", "ext4", "/var/lib/libvirt/images")},
		{name: "pool-fs-ns-mountopts", giveDef: fsPool("/dev/sda6", "xfs", "/mnt", "sync", "lazytime")},
		{name: "pool-fs-space", giveDef: fsPool("/dev/sda6", "ext3", "/srv/my images")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mt := newMountTable(t)
			f := testkit.NewFakeRunner(t)
			b := fs.New(f, mt.Path, testkit.QuietLog())
			def := tt.giveDef
			dev, target := def.Source.Devices[0].Path, def.Target.Path
			f.Expect(fs.MountArgv(def)...).Do = mt.Mounting(target, "ext4", dev)
			f.Expect("umount", target).Do = mt.Unmounting(target)
			ctx := context.Background()
			if err := b.StartPool(ctx, def); err != nil {
				t.Fatal(err)
			}
			// Already mounted: a second start runs nothing.
			if err := b.StartPool(ctx, def); err != nil {
				t.Fatal(err)
			}
			if err := b.StopPool(ctx, def); err != nil {
				t.Fatal(err)
			}
			// Not mounted: a second stop runs nothing.
			if err := b.StopPool(ctx, def); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.name, f.RunLog())
		})
	}
}

func TestBuildArgv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		giveFmt   string
		giveFlags uint32
		giveBlkid string // adapters/lib/blockdev/testdata file with blkid's answer; "" = nothing found (exit 2)
		giveMkfs  string // mkfs's stderr when it is to fail (exit 1)
		wantKind  domain.Kind
		wantErr   string // with DEV for the device path
	}{
		{name: "build-plain", giveFmt: "ext4"},
		{name: "build-overwrite-ext2", giveFmt: "ext2", giveFlags: domain.PoolBuildOverwrite},
		{name: "build-overwrite-ext3", giveFmt: "ext3", giveFlags: domain.PoolBuildOverwrite},
		{name: "build-overwrite-ext4", giveFmt: "ext4", giveFlags: domain.PoolBuildOverwrite},
		{name: "build-overwrite-xfs", giveFmt: "xfs", giveFlags: domain.PoolBuildOverwrite},
		{name: "build-overwrite-vfat", giveFmt: "vfat", giveFlags: domain.PoolBuildOverwrite},
		{name: "build-overwrite-gfs2", giveFmt: "gfs2", giveFlags: domain.PoolBuildOverwrite},
		{name: "build-nooverwrite-empty", giveFmt: "ext4", giveFlags: domain.PoolBuildNoOverwrite},
		{
			name: "build-nooverwrite-ext4", giveFmt: "ext4", giveFlags: domain.PoolBuildNoOverwrite, giveBlkid: "blkid-ext4.txt",
			wantKind: domain.KindStoragePoolBuilt, wantErr: "Storage pool already built: Device 'DEV' already formatted using 'ext4'",
		},
		{
			// libvirt compares with the literal "auto" (checked on the anchor).
			name: "build-nooverwrite-auto-ext4", giveFmt: "", giveFlags: domain.PoolBuildNoOverwrite, giveBlkid: "blkid-ext4.txt",
			wantKind: domain.KindStoragePoolBuilt,
			wantErr:  "Storage pool already built: Format of device 'DEV' does not match the expected format 'auto', forced overwrite is necessary",
		},
		{
			name: "build-nooverwrite-xfs-on-ext4", giveFmt: "xfs", giveFlags: domain.PoolBuildNoOverwrite, giveBlkid: "blkid-ext4.txt",
			wantKind: domain.KindStoragePoolBuilt,
			wantErr:  "Storage pool already built: Format of device 'DEV' does not match the expected format 'xfs', forced overwrite is necessary",
		},
		{
			name: "build-nooverwrite-gpt", giveFmt: "ext4", giveFlags: domain.PoolBuildNoOverwrite, giveBlkid: "blkid-gpt.txt",
			wantKind: domain.KindStoragePoolBuilt,
			wantErr:  "Storage pool already built: Format of device 'DEV' does not match the expected format 'ext4', forced overwrite is necessary",
		},
		{
			name: "build-nooverwrite-lvm", giveFmt: "ext4", giveFlags: domain.PoolBuildNoOverwrite, giveBlkid: "blkid-lvm2.txt",
			wantKind: domain.KindStoragePoolBuilt,
			wantErr:  "Storage pool already built: Format of device 'DEV' does not match the expected format 'ext4', forced overwrite is necessary",
		},
		{
			// libvirt runs mkfs -t auto, and reports its failure (anchor).
			name: "build-overwrite-auto", giveFmt: "", giveFlags: domain.PoolBuildOverwrite,
			giveMkfs: "mkfs: failed to execute mkfs.auto: No such file or directory\n",
			wantKind: domain.KindInternal,
			wantErr:  "internal error: Child process (mkfs -t auto DEV) unexpected exit status 1: mkfs: failed to execute mkfs.auto: No such file or directory\n",
		},
		{
			name: "build-both-flags", giveFmt: "ext4", giveFlags: domain.PoolBuildOverwrite | domain.PoolBuildNoOverwrite,
			wantKind: domain.KindInvalidArg,
			wantErr:  "Flags 'VIR_STORAGE_POOL_BUILD_OVERWRITE' and 'VIR_STORAGE_POOL_BUILD_NO_OVERWRITE' are mutually exclusive",
		},
		{
			name: "build-bad-flag", giveFmt: "ext4", giveFlags: domain.PoolBuildRepair,
			wantKind: domain.KindInvalidArg, wantErr: "unsupported flags (0x1) in function virStorageBackendFileSystemBuild",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmp, dev := deviceFile(t)
			target := filepath.Join(tmp, "pool")
			def := fsPool(dev, tt.giveFmt, target)
			f := testkit.NewFakeRunner(t)
			f.ExactOrder = false
			b := fs.New(f, newMountTable(t).Path, testkit.QuietLog())
			probing := tt.giveFlags == domain.PoolBuildNoOverwrite
			if probing {
				call := f.Expect(blockdev.BlkidArgv(dev)...)
				if tt.giveBlkid == "" {
					call.Exit = 2
				} else {
					// The captured answers live with the parser.
					out, err := os.ReadFile(filepath.Join("..", "lib", "blockdev", "testdata", tt.giveBlkid))
					if err != nil {
						t.Fatal(err)
					}
					call.Stdout = string(out)
				}
			}
			if tt.giveMkfs != "" {
				c := f.Expect("mkfs", testkit.AnyRest)
				c.Exit, c.Stderr = 1, tt.giveMkfs
			} else if tt.wantErr == "" && tt.giveFlags != 0 {
				f.Expect("mkfs", testkit.AnyRest)
			}
			err := b.BuildPool(context.Background(), def, tt.giveFlags)
			if tt.wantErr != "" {
				wantErrText(t, err, tt.wantKind, strings.ReplaceAll(tt.wantErr, "DEV", dev))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(target)
			if err != nil || !st.IsDir() || st.Mode().Perm() != 0o711 {
				t.Errorf("target: %v, %v", st, err)
			}
			checkGolden(t, tt.name, f.RunLog(), dev, "/dev/sdb1")
		})
	}
}

// TestBuildProbeFails pins the texts of a blkid that fails or answers what
// cannot be read: the shared probe leaves their wording to fs.
func TestBuildProbeFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveCall testkit.FakeCall
		wantKind domain.Kind
		wantErr  string // with DEV for the device path
	}{
		{
			name:     "unreadable output",
			giveCall: testkit.FakeCall{Stdout: "UUID=1\nno equals sign\n"},
			wantKind: domain.KindStorageProbeFailed,
			wantErr:  `Storage pool probe failed: Failed to probe for format type 'ext4': fs: malformed blkid line "no equals sign"`,
		},
		{
			name:     "blkid fails",
			giveCall: testkit.FakeCall{Exit: 4, Stderr: "blkid: DEV: No such device\n"},
			wantKind: domain.KindStorageProbeFailed,
			wantErr:  "Storage pool probe failed: Failed to probe for format type 'ext4': Child process (blkid -p -o export DEV) unexpected exit status 4: blkid: DEV: No such device\n",
		},
		{
			name:     "cancelled",
			giveCall: testkit.FakeCall{Err: context.Canceled},
			wantKind: domain.KindInternal,
			wantErr:  "internal error: context canceled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmp, dev := deviceFile(t)
			call := tt.giveCall
			call.Argv = blockdev.BlkidArgv(dev)
			call.Stderr = strings.ReplaceAll(call.Stderr, "DEV", dev)
			b := fs.New(testkit.NewFakeRunner(t, call), newMountTable(t).Path, testkit.QuietLog())
			err := b.BuildPool(context.Background(), fsPool(dev, "ext4", filepath.Join(tmp, "pool")), domain.PoolBuildNoOverwrite)
			wantErrText(t, err, tt.wantKind, strings.ReplaceAll(tt.wantErr, "DEV", dev))
		})
	}
}

// deviceFile returns a temporary directory and an empty file in it, the
// "device" of a pool whose commands are scripted.
func deviceFile(t *testing.T) (tmp, dev string) {
	t.Helper()
	tmp = t.TempDir()
	dev = filepath.Join(tmp, "disk")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return tmp, dev
}

func TestBuildMissingDevice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		giveDev string
		wantErr string
	}{
		{name: "absent", giveDev: "/dev/does-not-exist", wantErr: "Requested operation is not valid: Source device does not exist when formatting pool 'fs'"},
		{name: "none", giveDev: "", wantErr: "Requested operation is not valid: No source device specified when formatting pool 'fs'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := testkit.NewFakeRunner(t)
			b := fs.New(f, newMountTable(t).Path, testkit.QuietLog())
			def := fsPool(tt.giveDev, "ext4", filepath.Join(t.TempDir(), "pool"))
			if tt.giveDev == "" {
				def.Source.Devices = nil
			}
			err := b.BuildPool(context.Background(), def, domain.PoolBuildOverwrite)
			wantErrText(t, err, domain.KindOperationInvalid, tt.wantErr)
		})
	}
}

func TestValidatePool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		giveDef *domain.PoolDef
		wantErr string
	}{
		{name: "ok", giveDef: fsPool("/dev/sdb1", "ext4", "/mnt")},
		{name: "no device", giveDef: &domain.PoolDef{Type: domain.PoolFS, Name: "fs", Target: domain.PoolTarget{Path: "/mnt"}},
			wantErr: "XML error: missing storage pool source device name"},
		{name: "no target", giveDef: fsPool("/dev/sdb1", "ext4", ""), wantErr: "XML error: missing storage pool target path"},
	}
	b := fs.New(testkit.NewFakeRunner(t), "", testkit.QuietLog())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := b.ValidatePool(tt.giveDef)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErrText(t, err, domain.KindXMLError, tt.wantErr)
		})
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveDevs []domain.SourceDevice
		giveRun  func(f *testkit.FakeRunner, def *domain.PoolDef)
		wantKind domain.Kind
		wantErr  string
	}{
		{
			name: "mount fails", giveDevs: []domain.SourceDevice{{Path: "/dev/sdb1"}},
			giveRun: func(f *testkit.FakeRunner, def *domain.PoolDef) {
				c := f.Expect(fs.MountArgv(def)...)
				c.Exit, c.Stderr = 32, "mount: /nonexistent: mount point does not exist.\n"
			},
			wantKind: domain.KindInternal,
			wantErr:  "internal error: Child process (mount -o nodev,nosuid,noexec -t ext4 /dev/sdb1 /nonexistent) unexpected exit status 32: mount: /nonexistent: mount point does not exist.\n",
		},
		{name: "no device", wantKind: domain.KindInternal, wantErr: "internal error: missing source device"},
		{
			name: "two devices", giveDevs: []domain.SourceDevice{{Path: "/dev/sdb1"}, {Path: "/dev/sdc1"}},
			wantKind: domain.KindInternal, wantErr: "internal error: expected exactly 1 device for the storage pool",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := testkit.NewFakeRunner(t)
			b := fs.New(f, newMountTable(t).Path, testkit.QuietLog())
			def := fsPool("", "ext4", "/nonexistent")
			def.Source.Devices = tt.giveDevs
			if tt.giveRun != nil {
				tt.giveRun(f, def)
			}
			wantErrText(t, b.StartPool(context.Background(), def), tt.wantKind, tt.wantErr)
		})
	}
}

// A mount that never returns must not hang the daemon: it fails after the
// bound, whether the runner honours ctx (it kills mount) or not (mount is
// stuck in the kernel and survives the kill).
func TestMountTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		giveIgnoreCtx bool
		giveStop      bool
		wantErr       string
	}{
		{name: "mount killed", wantErr: "operation failed: cannot mount /dev/sdb1 on /mnt: timed out after 100ms"},
		{name: "mount unkillable", giveIgnoreCtx: true, wantErr: "operation failed: cannot mount /dev/sdb1 on /mnt: timed out after 100ms"},
		{name: "umount killed", giveStop: true, wantErr: "operation failed: cannot unmount /mnt: timed out after 100ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mt := newMountTable(t)
			r := newBlockingRunner(t, tt.giveIgnoreCtx)
			b := fs.New(r, mt.Path, testkit.QuietLog())
			b.MountTimeout = 100 * time.Millisecond
			def := fsPool("/dev/sdb1", "ext4", "/mnt")
			start := time.Now()
			var err error
			if tt.giveStop {
				mt.Add("/mnt", "ext4", "/dev/sdb1")
				err = b.StopPool(context.Background(), def)
			} else {
				err = b.StartPool(context.Background(), def)
			}
			wantErrText(t, err, domain.KindOperationFailed, tt.wantErr)
			// The bound, plus the grace given to a runner killing its child.
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestMountCancelled(t *testing.T) {
	t.Parallel()
	r := newBlockingRunner(t, false)
	b := fs.New(r, newMountTable(t).Path, testkit.QuietLog())
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	err := b.StartPool(ctx, fsPool("/dev/sdb1", "ext4", "/mnt"))
	wantErrText(t, err, domain.KindOperationFailed, "operation failed: cannot mount /dev/sdb1 on /mnt: context canceled")
}

func TestRefreshAndCheck(t *testing.T) {
	t.Parallel()
	mt := newMountTable(t)
	f := testkit.NewFakeRunner(t)
	b := fs.New(f, mt.Path, testkit.QuietLog())
	target := t.TempDir()
	def := fsPool("/dev/sdb1", "ext4", target)
	if err := os.WriteFile(filepath.Join(target, "a.img"), make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	active, err := b.CheckPool(ctx, def)
	if err != nil || active {
		t.Fatalf("CheckPool unmounted = %v, %v", active, err)
	}
	_, _, err = b.RefreshPool(ctx, def)
	wantErrText(t, err, domain.KindOperationInvalid, "Requested operation is not valid: storage pool 'fs' is not mounted on '"+target+
		"': the filesystem was unmounted behind our back")

	mt.Add(target, "ext4", "/dev/sdb1")
	active, err = b.CheckPool(ctx, def)
	if err != nil || !active {
		t.Fatalf("CheckPool mounted = %v, %v", active, err)
	}
	stats, vols, err := b.RefreshPool(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || vols[0].Name != "a.img" || vols[0].Capacity != 4096 {
		t.Errorf("vols = %+v", vols)
	}
	if stats.Capacity == 0 {
		t.Errorf("stats = %+v", stats)
	}

	// Another device on the same target is not our pool.
	mt.Remove(target)
	mt.Add(target, "ext4", "/dev/sdc1")
	if active, _ := b.CheckPool(ctx, def); active {
		t.Error("CheckPool with another device mounted = true")
	}
}

func TestDeletePool(t *testing.T) {
	t.Parallel()
	b := fs.New(testkit.NewFakeRunner(t), "", testkit.QuietLog())
	target := filepath.Join(t.TempDir(), "p")
	if err := os.MkdirAll(filepath.Join(target, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	def := fsPool("/dev/sdb1", "ext4", target)
	wantErrText(t, b.DeletePool(context.Background(), def, 0), domain.KindSystem,
		"failed to remove pool '"+target+"': Directory not empty")
	wantErrText(t, b.DeletePool(context.Background(), def, 1), domain.KindInvalidArg,
		"unsupported flags (0x1) in function virStorageBackendDeleteLocal")
	if err := os.Remove(filepath.Join(target, "x")); err != nil {
		t.Fatal(err)
	}
	if err := b.DeletePool(context.Background(), def, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("target still there: %v", err)
	}
}

func TestFindPoolSourcesUnsupported(t *testing.T) {
	t.Parallel()
	b := fs.New(testkit.NewFakeRunner(t), "", testkit.QuietLog())
	_, err := b.FindPoolSources(context.Background(), &domain.PoolSource{}, 0)
	wantErrText(t, err, domain.KindNoSupport, "this function is not supported by the connection driver: pool type 'fs' does not support source discovery")
	if b.Type() != domain.PoolFS || b.DefaultVolFormat() != "raw" {
		t.Errorf("type %v, default format %q", b.Type(), b.DefaultVolFormat())
	}
}
