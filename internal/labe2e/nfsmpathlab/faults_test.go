package nfsmpathlab_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestNFSServerStopped stops the NFS server under two mounted netfs pools:
// one mounted as libvirt does (hard: calls wait for the server), one soft
// with a short timeout given in the pool's mount options. The soft pool's
// upload fails with a clear error within that bound; the hard pool's upload
// waits, while other pools keep answering, and completes once the server is
// back.
func TestNFSServerStopped(t *testing.T) {
	lab.Require(t)
	hardExp, softExp := lab.NFSExport(t, "hard"), lab.NFSExport(t, "soft")
	d := labkit.StartDaemon(t)
	define := func(name, dir, opts string) string {
		target := filepath.Join(t.TempDir(), "mnt")
		testkit.VirshOK(t, d, "pool-define", labkit.WriteTemp(t, name+".xml", fmt.Sprintf(`<pool type='netfs' xmlns:fs='http://libvirt.org/schemas/storagepool/fs/1.0'>
  <name>%s</name>
  <source><host name='127.0.0.1'/><dir path='%s'/><format type='nfs'/><protocol ver='3'/></source>
  <target><path>%s</path></target>%s
</pool>`, name, dir, target, opts)))
		testkit.VirshOK(t, d, "pool-build", name)
		testkit.VirshOK(t, d, "pool-start", name)
		t.Cleanup(func() { lab.Try("umount", "-f", "-l", target) })
		testkit.VirshOK(t, d, "vol-create-as", name, "v.img", "4M", "--format", "raw")
		return target
	}
	define("hard", hardExp.Dir, "")
	// timeo is in tenths of a second: a call fails after about two
	// seconds without an answer.
	define("soft", softExp.Dir, "\n  <fs:mount_opts><fs:option name='soft'/><fs:option name='timeo=10'/><fs:option name='retrans=1'/></fs:mount_opts>")
	other := t.TempDir()
	testkit.VirshOK(t, d, "pool-create-as", "other", "dir", "--target", other)
	testkit.VirshOK(t, d, "vol-create-as", "other", "o.img", "1M")
	data := labkit.Patterned(t, 4*labkit.MiB, 11)

	restart := lab.StopNFSServer(t)
	hard := labkit.VirshAsync(d, "vol-upload", "--pool", "hard", "v.img", data)
	errOut := testkit.VirshErr(t, d, []string{"Input/output error"}, "vol-upload", "--pool", "soft", "v.img", data)
	t.Logf("upload into the soft pool with the server stopped: %s", errOut)
	testkit.VirshOK(t, d, "vol-list", "other")
	testkit.VirshOK(t, d, "vol-upload", "--pool", "other", "o.img", labkit.Patterned(t, labkit.MiB, 12))
	testkit.VirshOK(t, d, "pool-list", "--all", "--details")
	if r, finished := labkit.Done(hard); finished {
		t.Errorf("the upload into the hard-mounted pool finished (rc=%d, %s) with the server stopped", r.Code, r.ErrOut)
	}

	restart()
	if r := <-hard; r.Code != 0 {
		t.Errorf("the upload into the hard-mounted pool, once the server was back: rc=%d, %s", r.Code, r.ErrOut)
	}
	if labkit.Sum(t, filepath.Join(hardExp.Dir, "v.img"), -1) != labkit.Sum(t, data, -1) {
		t.Error("the hard pool's upload, finished after the server came back, did not write the data")
	}
	testkit.VirshOK(t, d, "vol-upload", "--pool", "soft", "v.img", data)
	for _, p := range []string{"hard", "soft"} {
		testkit.VirshOK(t, d, "pool-refresh", p)
		testkit.VirshOK(t, d, "pool-destroy", p)
		testkit.VirshOK(t, d, "pool-undefine", p)
	}
}
