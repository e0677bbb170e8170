package mountinfo_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/lib/mountinfo"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func parseFile(t testing.TB, name string) []mountinfo.Mount {
	t.Helper()
	ms, err := mountinfo.ParseFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestParseHost(t *testing.T) {
	t.Parallel()
	// Captured on the CI machine with a loop device mounted on a path with a
	// space.
	ms := parseFile(t, "mountinfo-host.txt")
	if len(ms) != 21 {
		t.Fatalf("%d mounts, want 21", len(ms))
	}
	want := mountinfo.Mount{
		ID: 41, ParentID: 26, Major: 7, Minor: 0, Root: "/", MountPoint: "/tmp/fsprobe/mnt dir",
		Options: "rw,nosuid,nodev,noexec,relatime", FSType: "ext4", Source: "/dev/loop0", SuperOptions: "rw",
	}
	if got := ms[len(ms)-1]; !reflect.DeepEqual(got, want) {
		t.Errorf("last mount\n got %+v\nwant %+v", got, want)
	}
	if ms[0].MountPoint != "/proc" || ms[0].FSType != "proc" {
		t.Errorf("first mount %+v", ms[0])
	}
}

func TestParseLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		give    string
		want    []mountinfo.Mount
		wantErr bool
	}{
		{
			name: "proc(5) example",
			give: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
			want: []mountinfo.Mount{{ID: 36, ParentID: 35, Major: 98, Minor: 0, Root: "/mnt1", MountPoint: "/mnt2",
				Options: "rw,noatime", Optional: []string{"master:1"}, FSType: "ext3", Source: "/dev/root", SuperOptions: "rw,errors=continue"}},
		},
		{
			name: "several optional fields and escapes",
			give: "64 22 7:3 / /srv/a\\040b\\011c\\012d\\134e rw shared:35 master:2 unbindable - ext4 /dev/loop3 rw\n",
			want: []mountinfo.Mount{{ID: 64, ParentID: 22, Major: 7, Minor: 3, Root: "/", MountPoint: "/srv/a b\tc\nd\\e",
				Options: "rw", Optional: []string{"shared:35", "master:2", "unbindable"}, FSType: "ext4", Source: "/dev/loop3", SuperOptions: "rw"}},
		},
		{
			name: "no super options (old kernels)",
			give: "1 0 0:1 / / rw - rootfs rootfs\n",
			want: []mountinfo.Mount{{ID: 1, Major: 0, Minor: 1, Root: "/", MountPoint: "/", Options: "rw", FSType: "rootfs", Source: "rootfs"}},
		},
		{name: "blank lines", give: "\n\n"},
		{name: "no separator", give: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw\n", wantErr: true},
		{name: "short", give: "36 35 98:0 /mnt1\n", wantErr: true},
		{name: "bad id", give: "x 35 98:0 / /m rw - ext3 /dev/root rw\n", wantErr: true},
		{name: "bad device", give: "36 35 98 / /m rw - ext3 /dev/root rw\n", wantErr: true},
		{name: "nothing after separator", give: "36 35 98:0 / /m rw - ext3\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := mountinfo.Parse(strings.NewReader(tt.give))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestIsMounted(t *testing.T) {
	t.Parallel()
	ms := parseFile(t, "mountinfo-nfs.txt")
	// A symlink to a target, as /dev/disk/by-id links are to devices.
	tmp := t.TempDir()
	real, link := filepath.Join(tmp, "real"), filepath.Join(tmp, "link")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	ms = append(ms, mountinfo.Mount{MountPoint: real, FSType: "nfs4", Source: "nfs.example.com:/export/linked"})
	tests := []struct {
		name       string
		giveSource string
		giveTarget string
		want       bool
	}{
		{name: "nfs", giveSource: "nfs.example.com:/export/images", giveTarget: "/var/lib/libvirt/images/nfs", want: true},
		{name: "nfs trailing slashes", giveSource: "nfs.example.com:/export/images/", giveTarget: "/var/lib/libvirt/images/nfs/", want: true},
		{name: "nfs other export", giveSource: "nfs.example.com:/export/other", giveTarget: "/var/lib/libvirt/images/nfs"},
		{name: "nfs other target", giveSource: "nfs.example.com:/export/images", giveTarget: "/var/lib/libvirt/images"},
		{name: "cifs", giveSource: "//fileserver/vmshare", giveTarget: "/var/lib/libvirt/images/cifs", want: true},
		{name: "cifs is not a path", giveSource: "/fileserver/vmshare", giveTarget: "/var/lib/libvirt/images/cifs"},
		{name: "gluster", giveSource: "gluster1:/gv0", giveTarget: "/var/lib/libvirt/images/gluster", want: true},
		{name: "escaped target", giveSource: "/dev/loop3", giveTarget: "/srv/my images\\x", want: true},
		{name: "through a symlink", giveSource: "nfs.example.com:/export/linked", giveTarget: link, want: true},
		{name: "root", giveSource: "/dev/sda1", giveTarget: "/", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mountinfo.IsMounted(ms, tt.giveSource, tt.giveTarget); got != tt.want {
				t.Errorf("IsMounted(%q, %q) = %v, want %v", tt.giveSource, tt.giveTarget, got, tt.want)
			}
		})
	}
	if !mountinfo.MountedAt(ms, "/mnt2") || mountinfo.MountedAt(ms, "/mnt1") {
		t.Error("MountedAt")
	}
}

func TestCheckReal(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(mountinfo.DefaultPath); err != nil {
		t.Skipf("no %s here: %v", mountinfo.DefaultPath, err)
	}
	ms, err := mountinfo.ParseFile("")
	if err != nil {
		t.Fatal(err)
	}
	if !mountinfo.MountedAt(ms, "/") {
		t.Errorf("nothing mounted on / in %d mounts", len(ms))
	}
	if _, err := mountinfo.Check(filepath.Join(t.TempDir(), "missing"), "a", "/b"); err == nil {
		t.Error("Check of a missing table: no error")
	}
}

func TestUnescape(t *testing.T) {
	t.Parallel()
	tests := []struct{ give, want string }{
		{give: `plain`, want: "plain"},
		{give: `a\040b`, want: "a b"},
		{give: `\134\134`, want: `\\`},
		{give: `trailing\04`, want: `trailing\04`},
		{give: `\999`, want: `\999`},
	}
	for _, tt := range tests {
		if got := mountinfo.Unescape(tt.give); got != tt.want {
			t.Errorf("Unescape(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// Fuzzing measured at most 35 bytes per input byte (short lines, each a Mount
// of split fields) and 10 KB for a small input; the minimal line
// "1 0 0:1 / / rw - - - -" repeated costs 23. Twice the worst.
const (
	mountinfoAllocPerByte = 80
	mountinfoAllocSlack   = 32 << 10
)

func FuzzParseMountinfo(f *testing.F) {
	for _, name := range []string{"mountinfo-host.txt", "mountinfo-nfs.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue")
	f.Add("1 0 0:1 / / rw - - - -")
	f.Fuzz(func(t *testing.T, s string) {
		var ms []mountinfo.Mount
		var err error
		n := testkit.AllocatedBytes(func() { ms, err = mountinfo.Parse(strings.NewReader(s)) })
		if limit := mountinfoAllocPerByte*uint64(len(s)) + mountinfoAllocSlack; n > limit {
			t.Fatalf("Parse of %d bytes allocated %d, bound %d", len(s), n, limit)
		}
		if err != nil {
			return
		}
		for _, m := range ms {
			// Whatever parsed must be usable: a mount point found again by
			// IsMounted with its own source (no path on disk is involved
			// unless the fuzzer names one).
			if m.FSType == "" || m.Source == "" {
				t.Fatalf("parsed mount without type or source: %+v", m)
			}
		}
	})
}
