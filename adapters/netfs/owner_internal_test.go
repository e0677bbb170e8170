package netfs

import (
	"errors"
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

// The owner's supplementary groups count as in libvirt's child: a directory
// writable only through one of them (root:5555, 0770) takes the owner's file
// when 5555 is among its groups, and refuses it otherwise. Afterwards the
// daemon's threads are root again: a create in a root-only directory works.
func TestAsUserSupplementaryGroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("taking another uid needs root (CI runs as root)")
	}
	const owner, shared = 4321, 5555
	tmp := t.TempDir()
	for _, d := range []string{filepath.Dir(tmp), tmp} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	groupDir := filepath.Join(tmp, "group")
	if err := os.Mkdir(groupDir, 0o770); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(groupDir, 0, shared); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(groupDir, 0o770); err != nil {
		t.Fatal(err)
	}
	create := func(name string) func() error {
		return func() error {
			fd, err := unix.Open(filepath.Join(groupDir, name), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}
	}
	if err := asUserWithGroups(owner, owner, []uint32{owner, shared}, create("member")); err != nil {
		t.Fatalf("create through a supplementary group: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(groupDir, "member"), &st); err != nil || st.Uid != owner {
		t.Fatalf("file made as uid %d (%v), want %d", st.Uid, err, owner)
	}
	if err := asUserWithGroups(owner, owner, []uint32{owner}, create("outsider")); !errors.Is(err, unix.EACCES) {
		t.Fatalf("create without the group: %v, want EACCES", err)
	}
	rootOnly := filepath.Join(tmp, "root")
	if err := os.Mkdir(rootOnly, 0o700); err != nil {
		t.Fatal(err)
	}
	for range 20 { // the switched threads went back to the daemon's identity
		if err := asUserWithGroups(owner, owner, []uint32{owner, shared}, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		f, err := os.CreateTemp(rootOnly, "x")
		if err != nil {
			t.Fatalf("the daemon lost root's rights after asUser: %v", err)
		}
		f.Close()
	}
}
