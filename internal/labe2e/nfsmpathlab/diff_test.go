package nfsmpathlab_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// The differential tests run one virsh scenario against libvirtd 9.0 and
// against our daemon, both inside the guest, and compare the transcripts
// step by step (labkit.RunBoth, labkit.CompareTranscripts).

// TestDifferential runs the netfs and mpath scenarios on libvirtd and on our
// daemon (one of each for both: libvirtd takes seconds to start under
// emulation).
func TestDifferential(t *testing.T) {
	a := labkit.StartAnchor(t)
	d := labkit.StartDaemon(t)
	t.Run("netfs v3", func(t *testing.T) { diffNetfs(t, a, d, "3") })
	t.Run("netfs v4", func(t *testing.T) { diffNetfs(t, a, d, "4") })
	t.Run("mpath", func(t *testing.T) { diffMpath(t, a, d) })
}

// diffNetfs runs an NFS pool's life (protocol version ver) on one export,
// which each side leaves empty for the other.
func diffNetfs(t *testing.T, a *testkit.Anchor, d *testkit.Daemon, ver string) {
	exp := lab.NFSExport(t, "diff"+ver)
	source := exp.Dir
	if ver == "4" {
		source = exp.V4Path
	}
	steps := []labkit.Step{
		labkit.Vsh("find-storage-pool-sources-as", "netfs", "127.0.0.1"),
		labkit.Vsh("pool-define", "{DIR}/pool.xml"),
		labkit.Vsh("pool-build", "dnfs"),
		labkit.Vsh("pool-start", "dnfs"),
		labkit.Vsh("pool-dumpxml", "--inactive", "dnfs"),
		labkit.Vsh("vol-create-as", "dnfs", "r.img", "4M", "--format", "raw"),
		labkit.Vsh("vol-create-as", "dnfs", "q.qcow2", "16M", "--format", "qcow2"),
		labkit.Vsh("vol-create-as", "dnfs", "s.img", "4M", "--allocation", "0"),
		labkit.Vsh("vol-list", "dnfs", "--details"),
		labkit.Vsh("vol-info", "--pool", "dnfs", "q.qcow2"),
		labkit.Vsh("vol-dumpxml", "--pool", "dnfs", "q.qcow2"),
		labkit.Vsh("vol-dumpxml", "--pool", "dnfs", "r.img"),
		labkit.Vsh("vol-upload", "--pool", "dnfs", "r.img", "{DATA}"),
		labkit.Vsh("vol-download", "--pool", "dnfs", "r.img", "{DIR}/back"),
		{Check: func(t *testing.T, s *labkit.Side) string {
			same := labkit.Sum(t, filepath.Join(s.Vars["DIR"], "back"), -1) == labkit.Sum(t, s.Vars["DATA"], -1)
			return fmt.Sprintf("downloaded what was uploaded: %v", same)
		}},
		labkit.Vsh("vol-clone", "--pool", "dnfs", "q.qcow2", "q2.qcow2"),
		labkit.Vsh("vol-resize", "--pool", "dnfs", "q2.qcow2", "32M"),
		labkit.Vsh("vol-info", "--pool", "dnfs", "q2.qcow2"),
		{Check: func(t *testing.T, s *labkit.Side) string {
			err := os.WriteFile(filepath.Join(exp.Dir, "server-side.img"), make([]byte, labkit.MiB), 0o644)
			return fmt.Sprintf("server wrote a file: %v", err)
		}},
		labkit.Vsh("pool-refresh", "dnfs"),
		labkit.Vsh("vol-list", "dnfs"),
		labkit.Vsh("vol-delete", "--pool", "dnfs", "server-side.img"),
		labkit.Vsh("vol-delete", "--pool", "dnfs", "r.img"),
		labkit.Vsh("vol-delete", "--pool", "dnfs", "q.qcow2"),
		labkit.Vsh("vol-delete", "--pool", "dnfs", "q2.qcow2"),
		labkit.Vsh("vol-delete", "--pool", "dnfs", "s.img"),
		labkit.Vsh("pool-destroy", "dnfs"),
		{Check: func(t *testing.T, s *labkit.Side) string {
			_, _, _, mounted := labkit.NFSMount(t, filepath.Join(s.Vars["DIR"], "mnt"))
			return fmt.Sprintf("mounted after destroy: %v", mounted)
		}},
		labkit.Vsh("pool-start", "dnfs"),
		labkit.Vsh("pool-destroy", "dnfs"),
		labkit.Vsh("pool-undefine", "dnfs"),
	}
	data := labkit.Patterned(t, 4*labkit.MiB, 8)
	runs := labkit.RunBoth(t, a, d, steps, func(t *testing.T, s *labkit.Side) func() {
		s.Vars["DATA"], s.Vars["EXPORT"] = data, source
		labkit.WriteSideFile(t, s, "pool.xml", fmt.Sprintf(`<pool type='netfs'><name>dnfs</name>
  <source><host name='127.0.0.1'/><dir path='{EXPORT}'/><format type='nfs'/><protocol ver='%s'/></source>
  <target><path>{DIR}/mnt</path></target></pool>`, ver))
		return func() {
			lab.Try("umount", "-l", filepath.Join(s.Vars["DIR"], "mnt"))
			s.V.Virsh("pool-destroy", "dnfs")
			s.V.Virsh("pool-undefine", "dnfs")
			ents, _ := os.ReadDir(exp.Dir)
			for _, e := range ents {
				os.Remove(filepath.Join(exp.Dir, e.Name()))
			}
		}
	})
	labkit.CompareTranscripts(t, steps, runs[0], runs[1], nil)
}

// diffMpath lists the guest's multipath maps, which both sides see alike.
func diffMpath(t *testing.T, a *testkit.Anchor, d *testkit.Daemon) {
	paths := lab.ScsiDebug(t, 2, 16)
	lab.StartMultipathd(t)
	lab.WaitFor(t, "a multipath map", mapBound, func() bool { return len(lab.MultipathMaps()) > 0 })
	lab.Run(t, "udevadm", "settle")
	steps := []labkit.Step{
		labkit.Vsh("pool-define-as", "dmp", "mpath"),
		labkit.Vsh("pool-define-as", "dmp", "mpath", "--target", "/dev/mapper"),
		labkit.Vsh("pool-build", "dmp"),
		labkit.Vsh("pool-start", "dmp"),
		labkit.Vsh("pool-info", "dmp"),
		labkit.Vsh("pool-dumpxml", "dmp"),
		labkit.Vsh("vol-list", "dmp", "--details"),
		labkit.Vsh("vol-create-as", "dmp", "new", "4M"),
		labkit.Vsh("pool-refresh", "dmp"),
		{Check: func(t *testing.T, s *labkit.Side) string { return setPathState(paths[0], "offline") }},
		labkit.Vsh("pool-refresh", "dmp"),
		labkit.Vsh("vol-list", "dmp", "--details"),
		{Check: func(t *testing.T, s *labkit.Side) string { return setPathState(paths[0], "running") }},
		labkit.Vsh("pool-delete", "dmp"),
		labkit.Vsh("find-storage-pool-sources", "mpath"),
		labkit.Vsh("pool-destroy", "dmp"),
		labkit.Vsh("pool-undefine", "dmp"),
	}
	// Every map's volume, described by both.
	var maps []string
	for _, dm := range lab.MultipathMaps() {
		maps = append(maps, dm)
	}
	sort.Strings(maps)
	for _, dm := range maps {
		steps = append(steps[:6], append([]labkit.Step{
			labkit.Vsh("vol-dumpxml", "--pool", "dmp", dm),
			labkit.Vsh("vol-info", "--pool", "dmp", dm),
		}, steps[6:]...)...)
	}
	runs := labkit.RunBoth(t, a, d, steps, func(t *testing.T, s *labkit.Side) func() {
		return func() {
			s.V.Virsh("pool-destroy", "dmp")
			s.V.Virsh("pool-undefine", "dmp")
		}
	})
	labkit.CompareTranscripts(t, steps, runs[0], runs[1], nil)
}

// setPathState sets a SCSI device's state in sysfs (the kernel takes it only
// with its newline) and says how that went, for a transcript.
func setPathState(hctl, state string) string {
	err := os.WriteFile(filepath.Join("/sys/class/scsi_device", hctl, "device/state"), []byte(state+"\n"), 0o644)
	return fmt.Sprintf("path %s: %s (%v)", hctl, state, err)
}
