package lvmlab_test

import (
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/labe2e/labkit"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// The differential tests run one virsh scenario against libvirtd 9.0 and
// against our daemon, both inside the guest, and compare the transcripts
// step by step (labkit.RunBoth, labkit.CompareTranscripts).

// TestDifferentialLogical runs a logical pool's life on libvirtd and on our
// daemon, each on its own fresh disk under the same VG name.
func TestDifferentialLogical(t *testing.T) {
	a := labkit.StartAnchor(t)
	d := labkit.StartDaemon(t)
	diffLogical(t, a, d)
}

// diffLogical runs a logical pool's life, each side on its own fresh disk
// under the same VG name.
func diffLogical(t *testing.T, a *testkit.Anchor, d *testkit.Daemon) {
	steps := []labkit.Step{
		labkit.Vsh("pool-define", "{DIR}/pool.xml"),
		labkit.Vsh("find-storage-pool-sources", "logical"),
		labkit.Vsh("pool-build", "dvg"),
		labkit.Vsh("pool-build", "dvg"),
		labkit.Vsh("pool-start", "dvg"),
		labkit.Vsh("pool-info", "dvg"),
		labkit.Vsh("pool-dumpxml", "dvg"),
		labkit.Vsh("vol-create-as", "dvg", "lv1", "8M"),
		labkit.Vsh("vol-create-as", "dvg", "lv1", "4M"),
		labkit.Vsh("vol-list", "dvg", "--details"),
		labkit.Vsh("vol-info", "--pool", "dvg", "lv1"),
		labkit.Vsh("vol-dumpxml", "--pool", "dvg", "lv1"),
		labkit.Vsh("vol-upload", "--pool", "dvg", "lv1", "{DATA}"),
		labkit.Vsh("vol-download", "--pool", "dvg", "lv1", "{DIR}/back"),
		labkit.Vsh("vol-clone", "--pool", "dvg", "lv1", "lv2"),
		labkit.Vsh("vol-create-as", "dvg", "snap1", "4M", "--backing-vol", "/dev/dvg/lv1"),
		labkit.Vsh("vol-dumpxml", "--pool", "dvg", "snap1"),
		labkit.Vsh("vol-info", "--pool", "dvg", "snap1"),
		labkit.Vsh("vol-resize", "--pool", "dvg", "snap1", "16M"),
		labkit.Vsh("vol-wipe", "--pool", "dvg", "snap1"),
		labkit.Vsh("vol-delete", "--pool", "dvg", "snap1"),
		labkit.Vsh("vol-wipe", "--pool", "dvg", "lv2"),
		{Check: func(t *testing.T, s *labkit.Side) string { return labkit.FirstBytes(t, "/dev/dvg/lv2", 16) }},
		labkit.Vsh("vol-wipe", "--pool", "dvg", "--algorithm", "bsi", "lv2"),
		{Check: func(t *testing.T, s *labkit.Side) string { return labkit.FirstBytes(t, "/dev/dvg/lv2", 16) }},
		labkit.Vsh("vol-wipe", "--pool", "dvg", "--algorithm", "trim", "lv2"),
		labkit.Vsh("vol-resize", "--pool", "dvg", "lv1", "16M"),
		labkit.Vsh("vol-resize", "--pool", "dvg", "lv1", "8M"),
		labkit.Vsh("vol-resize", "--pool", "dvg", "--shrink", "lv1", "8M"),
		labkit.Vsh("vol-info", "--pool", "dvg", "lv1"),
		{Check: func(t *testing.T, s *labkit.Side) string {
			return lab.Run(t, "lvcreate", "--yes", "-q", "-L", "4M", "-n", "outside", "dvg")
		}},
		labkit.Vsh("pool-refresh", "dvg"),
		labkit.Vsh("vol-list", "dvg"),
		labkit.Vsh("pool-info", "dvg"),
		labkit.Vsh("vol-delete", "--pool", "dvg", "lv2"),
		labkit.Vsh("vol-delete", "--pool", "dvg", "nosuch"),
		labkit.Vsh("pool-destroy", "dvg"),
		labkit.Vsh("vol-list", "dvg"),
		labkit.Vsh("pool-delete", "dvg"),
		labkit.Vsh("pool-undefine", "dvg"),
	}
	data := labkit.Patterned(t, 8*labkit.MiB, 7)
	runs := labkit.RunBoth(t, a, d, steps, func(t *testing.T, s *labkit.Side) func() {
		s.Vars["DEV"], s.Vars["DATA"] = lab.Disk(t), data
		labkit.WriteSideFile(t, s, "pool.xml", `<pool type='logical'><name>dvg</name><source><device path='{DEV}'/><name>dvg</name><format type='lvm2'/></source><target><path>/dev/dvg</path></target></pool>`)
		t.Cleanup(func() { lab.Try("vgremove", "-f", "dvg") })
		return func() {
			// Whatever the run left (a failed step) must not meet the next.
			lab.Try("vgremove", "-f", "dvg")
			lab.Try("pvremove", "-ff", "-y", s.Vars["DEV"])
			s.V.Virsh("pool-destroy", "dvg")
			s.V.Virsh("pool-undefine", "dvg")
		}
	})
	const resize = "logical volumes resize (lvresize); libvirt 9.0 has no resize for logical pools"
	labkit.CompareTranscripts(t, steps, runs[0], runs[1], map[int]string{
		18: resize, 26: resize, 27: resize, 28: resize,
		24: "scrub wipes the device, not the /dev/VG/LV link it skips",
	})
}
