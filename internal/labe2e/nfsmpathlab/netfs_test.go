package nfsmpathlab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestNetfsPool mounts real NFS exports served inside the guest, over
// NFSv3 and NFSv4 (<protocol ver=>), and runs volumes through them: raw and
// qcow2 creation, upload and download, a file the server side adds showing
// on refresh, and the unmount at destroy.
func TestNetfsPool(t *testing.T) {
	lab.Require(t)
	v3, v4 := lab.NFSExport(t, "netfs3"), lab.NFSExport(t, "netfs4")
	d := labkit.StartDaemon(t)

	found := testkit.VirshOK(t, d, "find-storage-pool-sources-as", "netfs", "127.0.0.1")
	for _, dir := range []string{v3.Dir, v4.Dir} {
		if !strings.Contains(found, "<dir path='"+dir+"'/>") {
			t.Errorf("find-storage-pool-sources-as netfs 127.0.0.1 lacks %s:\n%s", dir, found)
		}
	}

	for _, tc := range []struct {
		ver, dir, server, fstype string
	}{
		{"3", v3.Dir, v3.Dir, "nfs"},
		{"4", v4.V4Path, v4.Dir, "nfs4"},
	} {
		t.Run("NFSv"+tc.ver, func(t *testing.T) {
			pool := "nfs" + tc.ver
			target := filepath.Join(t.TempDir(), "mnt")
			testkit.VirshOK(t, d, "pool-define", labkit.WriteTemp(t, "pool.xml", fmt.Sprintf(`<pool type='netfs'>
  <name>%s</name>
  <source><host name='127.0.0.1'/><dir path='%s'/><format type='nfs'/><protocol ver='%s'/></source>
  <target><path>%s</path></target>
</pool>`, pool, tc.dir, tc.ver, target)))
			testkit.VirshOK(t, d, "pool-build", pool)
			testkit.VirshOK(t, d, "pool-start", pool)
			t.Cleanup(func() { lab.Try("umount", "-l", target) })
			fstype, source, opts, ok := labkit.NFSMount(t, target)
			if !ok || fstype != tc.fstype || source != "127.0.0.1:"+tc.dir || !strings.Contains(","+opts+",", ",vers="+tc.ver) {
				t.Fatalf("after pool-start, %s has %q from %q (%s), mounted %v; want %s from 127.0.0.1:%s, vers=%s",
					target, fstype, source, opts, ok, tc.fstype, tc.dir, tc.ver)
			}

			testkit.VirshOK(t, d, "vol-create-as", pool, "r.img", "8M", "--format", "raw")
			testkit.VirshOK(t, d, "vol-create-as", pool, "q.qcow2", "16M", "--format", "qcow2")
			data := labkit.Patterned(t, 8*labkit.MiB, 6)
			testkit.VirshOK(t, d, "vol-upload", "--pool", pool, "r.img", data)
			if labkit.Sum(t, filepath.Join(tc.server, "r.img"), -1) != labkit.Sum(t, data, -1) {
				t.Error("the server's copy of r.img does not hold what was uploaded")
			}
			back := filepath.Join(t.TempDir(), "back")
			testkit.VirshOK(t, d, "vol-download", "--pool", pool, "r.img", back)
			if labkit.Sum(t, back, -1) != labkit.Sum(t, data, -1) {
				t.Error("vol-download r.img differs from what was uploaded")
			}
			q := labkit.DumpVol(t, d, pool, "q.qcow2")
			if q.Capacity != 16*labkit.MiB || q.Target.Path != filepath.Join(target, "q.qcow2") {
				t.Errorf("vol-dumpxml q.qcow2: capacity %d path %s; want 16 MiB at %s", q.Capacity, q.Target.Path, filepath.Join(target, "q.qcow2"))
			}
			if out := lab.Run(t, "qemu-img", "info", filepath.Join(tc.server, "q.qcow2")); !strings.Contains(out, "file format: qcow2") {
				t.Errorf("the server's q.qcow2 is no qcow2:\n%s", out)
			}

			// A file added on the server shows after a refresh.
			if err := os.WriteFile(filepath.Join(tc.server, "server-side.img"), make([]byte, labkit.MiB), 0o644); err != nil {
				t.Fatal(err)
			}
			testkit.VirshOK(t, d, "pool-refresh", pool)
			if row, ok := testkit.VolList(t, d, pool)["server-side.img"]; !ok || row.Capacity != "1.00 MiB" {
				t.Errorf("after pool-refresh, the file the server added: %+v, listed %v", row, ok)
			}
			testkit.VirshOK(t, d, "vol-delete", "--pool", pool, "r.img")
			if _, err := os.Stat(filepath.Join(tc.server, "r.img")); err == nil {
				t.Error("vol-delete r.img: the server still has it")
			}

			testkit.VirshOK(t, d, "pool-destroy", pool)
			if _, _, _, ok := labkit.NFSMount(t, target); ok {
				t.Errorf("after pool-destroy %s is still mounted", target)
			}
			testkit.VirshOK(t, d, "pool-undefine", pool)
		})
	}
}
