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
			b := netfs.New(testkit.NewFakeRunner(t), "", quietLog())
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
