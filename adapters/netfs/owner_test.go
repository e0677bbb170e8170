package netfs_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/adapters/netfs"
	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Volumes are created as their owner, as on an NFS export with root_squash
// where root may not write: a directory only the owner may write shows it.
func TestBuildVolAsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("taking another uid needs root (CI runs as root): skipping the create-as-owner test")
	}
	const owner = 4321
	tests := []struct {
		name       string
		giveDirUID int
		giveFormat string
		giveOwner  int64
		wantOwner  int
		wantErr    bool
	}{
		{name: "raw in the owner's dir", giveDirUID: owner, giveFormat: "raw", giveOwner: owner, wantOwner: owner},
		{name: "dir in the owner's dir", giveDirUID: owner, giveFormat: "dir", giveOwner: owner, wantOwner: owner},
		// Only the owner's identity is used: a root-only dir refuses it.
		{name: "raw in a root-only dir", giveDirUID: 0, giveFormat: "raw", giveOwner: owner, wantErr: true},
		// virDirCreate retries a refused owner as the daemon, then chowns.
		{name: "dir in a root-only dir", giveDirUID: 0, giveFormat: "dir", giveOwner: owner, wantOwner: owner},
		{name: "no owner", giveDirUID: 0, giveFormat: "raw", giveOwner: -1, wantOwner: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			// The owner must be able to reach the pool through the temp dirs.
			for _, d := range []string{filepath.Dir(tmp), tmp} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			target := filepath.Join(tmp, "pool")
			if err := os.Mkdir(target, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(target, tt.giveDirUID, tt.giveDirUID); err != nil {
				t.Fatal(err)
			}
			b := netfs.New(testkit.NewFakeRunner(t), "", testkit.QuietLog())
			pool := netfsPool("h", "/e", "nfs", target, nil)
			perms := domain.UnsetPerms()
			perms.Owner, perms.Group = tt.giveOwner, tt.giveOwner
			vol := &domain.VolDef{Name: "v", Capacity: 1 << 20, HasCapacity: true, Target: domain.VolTarget{Format: tt.giveFormat, Perms: perms}}
			if err := b.PrepareVol(pool, vol); err != nil {
				t.Fatal(err)
			}
			err := b.BuildVol(context.Background(), pool, vol, 0)
			if tt.wantErr {
				wantErrText(t, err, domain.KindSystem, "Failed to create file '"+vol.Target.Path+"': Permission denied")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Stat(vol.Target.Path, &st); err != nil {
				t.Fatal(err)
			}
			if int(st.Uid) != tt.wantOwner || int(st.Gid) != tt.wantOwner {
				t.Errorf("owner %d:%d, want %d", st.Uid, st.Gid, tt.wantOwner)
			}
		})
	}
	// The daemon's own identity is intact afterwards: root still writes a
	// root-only directory.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "after"), nil, 0o600); err != nil {
		t.Fatalf("root lost its rights: %v", err)
	}
}

func statOwner(t *testing.T, path string) (uid, gid, mode uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid, st.Mode & 0o7777
}

// A raw clone is created as its owner, while the source is read by the
// daemon: here only root may read it, so reading it as the owner would fail.
func TestBuildVolFromAsOwner(t *testing.T) {
	testkit.RequireRoot(t)
	const owner = 4321
	ctx := context.Background()
	srcPool := netfsPool("h", "/e", "nfs", testkit.OwnedDir(t, 0), nil)
	b0 := netfs.New(testkit.NewFakeRunner(t), "", testkit.QuietLog())
	src := &domain.VolDef{Name: "src", Capacity: 1 << 16, HasCapacity: true, Target: domain.VolTarget{Format: "raw", Perms: domain.UnsetPerms()}}
	if err := b0.PrepareVol(srcPool, src); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src.Target.Path, []byte("payload"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name       string
		giveDirUID int
		wantErr    bool
	}{
		{name: "into the owner's dir", giveDirUID: owner},
		{name: "into a root-only dir", giveDirUID: 0, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := netfs.New(testkit.NewFakeRunner(t), "", testkit.QuietLog())
			pool := netfsPool("h", "/e", "nfs", testkit.OwnedDir(t, tt.giveDirUID), nil)
			perms := domain.Perms{Mode: 0o640, Owner: owner, Group: owner}
			vol := &domain.VolDef{Name: "clone", Target: domain.VolTarget{Format: "raw", Perms: perms}}
			if err := b.PrepareVol(pool, vol); err != nil {
				t.Fatal(err)
			}
			err := b.BuildVolFrom(ctx, pool, vol, srcPool, src, 0)
			if tt.wantErr {
				wantErrText(t, err, domain.KindSystem, "Failed to create file '"+vol.Target.Path+"': Permission denied")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if uid, gid, mode := statOwner(t, vol.Target.Path); uid != owner || gid != owner || mode != 0o640 {
				t.Errorf("clone is %d:%d %04o, want %d:%d 0640", uid, gid, mode, owner, owner)
			}
			if got, err := os.ReadFile(vol.Target.Path); err != nil || string(got[:7]) != "payload" {
				t.Errorf("clone holds %q, %v", got, err)
			}
		})
	}
}

// qemu-img runs as the volume's owner with a umask giving the asked mode,
// as libvirt's virStorageBackendCreateExecCommand does on netfs: when the
// volume's owner is not root, or its group is not the daemon's. Otherwise
// the daemon runs it.
func TestQemuImgAsOwner(t *testing.T) {
	testkit.RequireRoot(t)
	const owner, group = 4321, 4322
	// The fake makes the file as qemu-img run with the command's ids would.
	made := func(cmd ports.Command) error {
		path := cmd.Args[len(cmd.Args)-1]
		if cmd.Args[0] == "create" {
			path = cmd.Args[len(cmd.Args)-2]
		}
		if err := os.WriteFile(path, []byte("QFI\xfb"), 0o600); err != nil {
			return err
		}
		if cmd.Cred == nil {
			return nil
		}
		return os.Chown(path, int(cmd.Cred.UID), int(cmd.Cred.GID))
	}
	createArgv := func(p string) []string {
		return []string{"qemu-img", "create", "-f", "qcow2", "-o", "compat=0.10", p, "1024K"}
	}
	tests := []struct {
		name      string
		giveOwner int64
		giveGroup int64
		giveFrom  bool
		wantCred  *ports.Credential
		wantUmask uint32
		wantArgv  func(path string) []string
	}{
		// uid 4321 has no passwd entry: its only group is the volume's.
		{name: "create as the owner", giveOwner: owner, giveGroup: group, wantCred: &ports.Credential{UID: owner, GID: group, Groups: []uint32{group}},
			wantUmask: 0o177, wantArgv: createArgv},
		{name: "convert as the owner", giveOwner: owner, giveGroup: group, giveFrom: true, wantCred: &ports.Credential{UID: owner, GID: group, Groups: []uint32{group}},
			wantUmask: 0o177, wantArgv: func(p string) []string {
				return []string{"qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "compat=0.10", "/src.img", p}
			}},
		{name: "owner without group", giveOwner: owner, giveGroup: -1, wantCred: &ports.Credential{UID: owner, GID: 0, Groups: []uint32{0}},
			wantUmask: 0o177, wantArgv: createArgv},
		{name: "root's volume", giveOwner: 0, giveGroup: -1, wantArgv: createArgv},
		{name: "no owner", giveOwner: -1, giveGroup: -1, wantArgv: createArgv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := testkit.NewFakeRunner(t)
			b := netfs.New(f, "", testkit.QuietLog())
			b.QemuImgOnly = true
			pool := netfsPool("h", "/e", "nfs", testkit.OwnedDir(t, owner), nil)
			perms := domain.Perms{Mode: 0o600, Owner: tt.giveOwner, Group: tt.giveGroup}
			vol := &domain.VolDef{Name: "v", Capacity: 1 << 20, HasCapacity: true, Target: domain.VolTarget{Format: "qcow2", Perms: perms}}
			if err := b.PrepareVol(pool, vol); err != nil {
				t.Fatal(err)
			}
			f.Expect(tt.wantArgv(vol.Target.Path)...).As(tt.wantCred, tt.wantUmask).Do = made
			var err error
			if tt.giveFrom {
				src := &domain.VolDef{Name: "src", Type: domain.VolFile, Capacity: 1 << 20, Target: domain.VolTarget{Path: "/src.img", Format: "raw", Perms: domain.UnsetPerms()}}
				err = b.BuildVolFrom(context.Background(), pool, vol, nil, src, 0)
			} else {
				err = b.BuildVol(context.Background(), pool, vol, 0)
			}
			if err != nil {
				t.Fatal(err)
			}
			wantUID, wantGID := uint32(max(tt.giveOwner, 0)), uint32(max(tt.giveGroup, 0))
			if uid, gid, mode := statOwner(t, vol.Target.Path); uid != wantUID || gid != wantGID || mode != 0o600 {
				t.Errorf("image is %d:%d %04o, want %d:%d 0600", uid, gid, mode, wantUID, wantGID)
			}
		})
	}
}

// The pool's target is made as the pool's owner, mode 0711 unless asked;
// an existing one gets that mode too (libvirt's netfs rule).
func TestBuildPoolAsOwner(t *testing.T) {
	testkit.RequireRoot(t)
	const owner = 4321
	b := netfs.New(testkit.NewFakeRunner(t), "", testkit.QuietLog())
	target := filepath.Join(testkit.OwnedDir(t, owner), "pool")
	def := netfsPool("h", "/e", "nfs", target, func(d *domain.PoolDef) {
		d.Target.Perms.Owner, d.Target.Perms.Group = owner, owner
	})
	if err := b.BuildPool(context.Background(), def, 0); err != nil {
		t.Fatal(err)
	}
	if uid, gid, mode := statOwner(t, target); uid != owner || gid != owner || mode != 0o711 {
		t.Errorf("target is %d:%d %04o, want %d:%d 0711", uid, gid, mode, owner, owner)
	}
	if err := os.Chmod(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.BuildPool(context.Background(), def, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, mode := statOwner(t, target); mode != 0o711 {
		t.Errorf("rebuilt target mode %04o, want 0711", mode)
	}
}
