package netfs

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// createDirAs makes the directory as the owner, and only falls back to the
// daemon when libvirt's virDirCreate would: no owner, an existing directory
// with allowExist, or the owner refused. A parent only root may write
// (0700 root) refuses the owner, since leaving fsuid 0 drops
// CAP_DAC_OVERRIDE; so reaching asDaemon there, and not in the owner's own
// 0700 parent, shows who did the mkdir.
func TestCreateDirAs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("taking another uid needs root (CI runs as root): skipping the create-as-owner test")
	}
	const owner = 4321
	ownerPerms := domain.Perms{Mode: -1, Owner: owner, Group: owner}
	tests := []struct {
		name          string
		giveParentUID int
		givePerms     domain.Perms
		giveExists    bool
		giveAllow     bool
		wantDaemon    bool
		wantErr       bool
	}{
		{name: "owner's parent", giveParentUID: owner, givePerms: ownerPerms},
		{name: "root-only parent: the owner is refused", giveParentUID: 0, givePerms: ownerPerms, wantDaemon: true},
		{name: "no owner", giveParentUID: owner, givePerms: domain.UnsetPerms(), wantDaemon: true},
		{name: "existing, allowed", giveParentUID: owner, givePerms: ownerPerms, giveExists: true, giveAllow: true, wantDaemon: true},
		{name: "existing, not allowed", giveParentUID: owner, givePerms: ownerPerms, giveExists: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			for _, d := range []string{filepath.Dir(tmp), tmp} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			parent := filepath.Join(tmp, "parent")
			if err := os.Mkdir(parent, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(parent, tt.giveParentUID, tt.giveParentUID); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(parent, "d")
			if tt.giveExists {
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			daemon := false
			err := createDirAs(path, 0o750, tt.givePerms, tt.giveAllow, func() error { daemon = true; return nil })
			if tt.wantErr {
				if err == nil || daemon {
					t.Fatalf("err = %v, daemon = %v: want the owner's mkdir to fail", err, daemon)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if daemon != tt.wantDaemon {
				t.Fatalf("fell back to the daemon = %v, want %v", daemon, tt.wantDaemon)
			}
			if daemon {
				return
			}
			var st unix.Stat_t
			if err := unix.Stat(path, &st); err != nil {
				t.Fatal(err)
			}
			if st.Uid != owner || st.Gid != owner || st.Mode&0o7777 != 0o750 {
				t.Errorf("made %d:%d %04o, want %d:%d 0750", st.Uid, st.Gid, st.Mode&0o7777, owner, owner)
			}
		})
	}
}

// groupList is libvirt's virGetGroupList: the user's groups, then gid.
func TestGroupList(t *testing.T) {
	if got := groupList(4321, 4322); len(got) != 1 || got[0] != 4322 {
		t.Errorf("unknown user: %v, want [4322]", got)
	}
	got := groupList(0, 4322) // root exists everywhere, in group 0 at least
	if len(got) < 2 || got[0] != 0 || got[len(got)-1] != 4322 {
		t.Errorf("root: %v, want root's groups then 4322", got)
	}
}
