package labe2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// The differential tests run one virsh scenario against libvirtd 9.0 and
// against our daemon, both inside the guest on the same kind of devices,
// and compare the transcripts step by step, as internal/e2e does on the
// host for dir pools. The two runs take turns on the devices (a VG name or
// an NFS export cannot serve both at once), so a scenario leaves nothing
// behind.

// dumpEnv, when set, has every step's outcome on both sides and its duration
// logged, differing or not.
const dumpEnv = "LAB_DIFF_DUMP"

// diffStep is one step of a scenario: virsh arguments, or a check of the
// storage itself (run on the side's own devices) whose text joins the
// transcript.
type diffStep struct {
	args  []string
	check func(t *testing.T, s *diffSide) string
}

func vsh(args ...string) diffStep { return diffStep{args: args} }

// diffSide is one server and the names its run uses: each {KEY} in a step
// becomes the value, and the value becomes {KEY} again in the output.
type diffSide struct {
	name string
	v    testkit.Virsher
	vars map[string]string
}

func (s *diffSide) expand(a string) string {
	for k, v := range s.vars {
		a = strings.ReplaceAll(a, "{"+k+"}", v)
	}
	return a
}

var (
	poolUUIDRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	lvmUUIDRE  = regexp.MustCompile(`\b[0-9A-Za-z]{6}(-[0-9A-Za-z]{4}){5}-[0-9A-Za-z]{6}\b`)
	timeRE     = regexp.MustCompile(`<(atime|mtime|ctime|btime)>[0-9.]+</`)
	dmRE       = regexp.MustCompile(`\bdm-[0-9]+\b`)
)

// normalize makes a side's output comparable: its own names become their
// keys (longest value first, so that a path is replaced before its
// directory), and UUIDs, LVM UUIDs, times and dm minors placeholders.
func (s *diffSide) normalize(out string) string {
	keys := make([]string, 0, len(s.vars))
	for k := range s.vars {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(s.vars[keys[i]]) > len(s.vars[keys[j]]) })
	for _, k := range keys {
		out = strings.ReplaceAll(out, s.vars[k], "{"+k+"}")
	}
	out = poolUUIDRE.ReplaceAllString(out, "{UUID}")
	out = lvmUUIDRE.ReplaceAllString(out, "{LVUUID}")
	out = timeRE.ReplaceAllString(out, "<$1>{TIME}</")
	return dmRE.ReplaceAllString(out, "dm-{N}")
}

// transcript runs the steps on one side.
func transcript(t *testing.T, s *diffSide, steps []diffStep) []string {
	t.Helper()
	var out []string
	for _, st := range steps {
		if st.check != nil {
			out = append(out, s.normalize(st.check(t, s)))
			continue
		}
		args := make([]string, len(st.args))
		for i, a := range st.args {
			args[i] = s.expand(a)
		}
		t0 := time.Now()
		o, e, code := s.v.Virsh(args...)
		if os.Getenv(dumpEnv) != "" {
			t.Logf("%s took %v: %v", s.name, time.Since(t0), args)
		}
		out = append(out, fmt.Sprintf("rc=%d\nstdout:\n%s\nstderr:\n%s", code, s.normalize(o), s.normalize(e)))
	}
	return out
}

// stepName is how a step is called in a failure.
func stepName(st diffStep, i int) string {
	if st.check != nil {
		return fmt.Sprintf("step %d (check)", i)
	}
	return fmt.Sprintf("step %d: virsh %s", i, strings.Join(st.args, " "))
}

// compareTranscripts reports every step whose outcome differs, except those
// listed in known (by step index) as deliberate differences, which must
// still differ: a difference that went away is stale documentation.
func compareTranscripts(t *testing.T, steps []diffStep, ref, ours []string, known map[int]string) {
	t.Helper()
	for i, st := range steps {
		if os.Getenv(dumpEnv) != "" {
			t.Logf("%s\n=== libvirtd:\n%s\n=== ours:\n%s", stepName(st, i), ref[i], ours[i])
		}
		why, deliberate := known[i]
		switch {
		case ref[i] != ours[i] && !deliberate:
			t.Errorf("%s\n--- libvirtd:\n%s\n--- virtstoraged:\n%s", stepName(st, i), ref[i], ours[i])
		case ref[i] == ours[i] && deliberate:
			t.Errorf("%s: listed as a deliberate difference (%s) but both give:\n%s", stepName(st, i), why, ref[i])
		}
	}
}

// startAnchor starts libvirtd 9.0 in the guest.
func startAnchor(t *testing.T) *testkit.Anchor {
	t.Helper()
	lab.Require(t)
	return testkit.StartAnchor(t)
}

// firstBytes describes a device's first bytes for a transcript.
func firstBytes(t *testing.T, path string, n int) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return "open: " + err.Error()
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil {
		return "read: " + err.Error()
	}
	return fmt.Sprintf("%q", b)
}

// TestDifferential runs the logical, netfs and mpath scenarios on libvirtd
// and on our daemon (one of each for all three: libvirtd takes seconds to
// start under emulation).
func TestDifferential(t *testing.T) {
	a := startAnchor(t)
	d := startDaemon(t)
	t.Run("logical", func(t *testing.T) { diffLogical(t, a, d) })
	t.Run("netfs", func(t *testing.T) { diffNetfs(t, a, d) })
	t.Run("mpath", func(t *testing.T) { diffMpath(t, a, d) })
}

// runBoth runs steps on libvirtd and then on our daemon; before each run,
// prepare gives the side's names (its own disk, say) and registers its
// clean-up, which runs before the next side starts.
func runBoth(t *testing.T, a *testkit.Anchor, d *testkit.Daemon, steps []diffStep, prepare func(t *testing.T, s *diffSide) (cleanup func())) [2][]string {
	t.Helper()
	var runs [2][]string
	for i, v := range []testkit.Virsher{a, d} {
		s := &diffSide{name: []string{"libvirtd", "virtstoraged"}[i], v: v, vars: map[string]string{"DIR": t.TempDir()}}
		cleanup := prepare(t, s)
		runs[i] = transcript(t, s, steps)
		cleanup()
	}
	return runs
}

// writeSideFile writes a file of the side's, names expanded, into its DIR.
func writeSideFile(t *testing.T, s *diffSide, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.vars["DIR"], name), []byte(s.expand(text)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// diffLogical runs a logical pool's life, each side on its own fresh disk
// under the same VG name.
func diffLogical(t *testing.T, a *testkit.Anchor, d *testkit.Daemon) {
	steps := []diffStep{
		vsh("pool-define", "{DIR}/pool.xml"),
		vsh("find-storage-pool-sources", "logical"),
		vsh("pool-build", "dvg"),
		vsh("pool-build", "dvg"),
		vsh("pool-start", "dvg"),
		vsh("pool-info", "dvg"),
		vsh("pool-dumpxml", "dvg"),
		vsh("vol-create-as", "dvg", "lv1", "8M"),
		vsh("vol-create-as", "dvg", "lv1", "4M"),
		vsh("vol-list", "dvg", "--details"),
		vsh("vol-info", "--pool", "dvg", "lv1"),
		vsh("vol-dumpxml", "--pool", "dvg", "lv1"),
		vsh("vol-upload", "--pool", "dvg", "lv1", "{DATA}"),
		vsh("vol-download", "--pool", "dvg", "lv1", "{DIR}/back"),
		vsh("vol-clone", "--pool", "dvg", "lv1", "lv2"),
		vsh("vol-create-as", "dvg", "snap1", "4M", "--backing-vol", "/dev/dvg/lv1"),
		vsh("vol-dumpxml", "--pool", "dvg", "snap1"),
		vsh("vol-info", "--pool", "dvg", "snap1"),
		vsh("vol-resize", "--pool", "dvg", "snap1", "16M"),
		vsh("vol-wipe", "--pool", "dvg", "snap1"),
		vsh("vol-delete", "--pool", "dvg", "snap1"),
		vsh("vol-wipe", "--pool", "dvg", "lv2"),
		{check: func(t *testing.T, s *diffSide) string { return firstBytes(t, "/dev/dvg/lv2", 16) }},
		vsh("vol-wipe", "--pool", "dvg", "--algorithm", "bsi", "lv2"),
		{check: func(t *testing.T, s *diffSide) string { return firstBytes(t, "/dev/dvg/lv2", 16) }},
		vsh("vol-wipe", "--pool", "dvg", "--algorithm", "trim", "lv2"),
		vsh("vol-resize", "--pool", "dvg", "lv1", "16M"),
		vsh("vol-resize", "--pool", "dvg", "lv1", "8M"),
		vsh("vol-resize", "--pool", "dvg", "--shrink", "lv1", "8M"),
		vsh("vol-info", "--pool", "dvg", "lv1"),
		{check: func(t *testing.T, s *diffSide) string {
			return lab.Run(t, "lvcreate", "--yes", "-q", "-L", "4M", "-n", "outside", "dvg")
		}},
		vsh("pool-refresh", "dvg"),
		vsh("vol-list", "dvg"),
		vsh("pool-info", "dvg"),
		vsh("vol-delete", "--pool", "dvg", "lv2"),
		vsh("vol-delete", "--pool", "dvg", "nosuch"),
		vsh("pool-destroy", "dvg"),
		vsh("vol-list", "dvg"),
		vsh("pool-delete", "dvg"),
		vsh("pool-undefine", "dvg"),
	}
	data := patterned(t, 8*mib, 7)
	runs := runBoth(t, a, d, steps, func(t *testing.T, s *diffSide) func() {
		s.vars["DEV"], s.vars["DATA"] = lab.Disk(t), data
		writeSideFile(t, s, "pool.xml", `<pool type='logical'><name>dvg</name><source><device path='{DEV}'/><name>dvg</name><format type='lvm2'/></source><target><path>/dev/dvg</path></target></pool>`)
		t.Cleanup(func() { lab.Try("vgremove", "-f", "dvg") })
		return func() {
			// Whatever the run left (a failed step) must not meet the next.
			lab.Try("vgremove", "-f", "dvg")
			lab.Try("pvremove", "-ff", "-y", s.vars["DEV"])
			s.v.Virsh("pool-destroy", "dvg")
			s.v.Virsh("pool-undefine", "dvg")
		}
	})
	const resize = "logical volumes resize (lvresize); libvirt 9.0 has no resize for logical pools"
	compareTranscripts(t, steps, runs[0], runs[1], map[int]string{
		18: resize, 26: resize, 27: resize, 28: resize,
		24: "scrub wipes the device, not the /dev/VG/LV link it skips",
	})
}

// diffNetfs runs an NFSv3 pool's life on one export, which each side leaves
// empty for the other.
func diffNetfs(t *testing.T, a *testkit.Anchor, d *testkit.Daemon) {
	exp := lab.NFSExport(t, "diff")
	steps := []diffStep{
		vsh("find-storage-pool-sources-as", "netfs", "127.0.0.1"),
		vsh("pool-define", "{DIR}/pool.xml"),
		vsh("pool-build", "dnfs"),
		vsh("pool-start", "dnfs"),
		vsh("pool-dumpxml", "--inactive", "dnfs"),
		vsh("vol-create-as", "dnfs", "r.img", "4M", "--format", "raw"),
		vsh("vol-create-as", "dnfs", "q.qcow2", "16M", "--format", "qcow2"),
		vsh("vol-create-as", "dnfs", "s.img", "4M", "--allocation", "0"),
		vsh("vol-list", "dnfs", "--details"),
		vsh("vol-info", "--pool", "dnfs", "q.qcow2"),
		vsh("vol-dumpxml", "--pool", "dnfs", "q.qcow2"),
		vsh("vol-dumpxml", "--pool", "dnfs", "r.img"),
		vsh("vol-upload", "--pool", "dnfs", "r.img", "{DATA}"),
		vsh("vol-download", "--pool", "dnfs", "r.img", "{DIR}/back"),
		{check: func(t *testing.T, s *diffSide) string {
			same := sum(t, filepath.Join(s.vars["DIR"], "back"), -1) == sum(t, s.vars["DATA"], -1)
			return fmt.Sprintf("downloaded what was uploaded: %v", same)
		}},
		vsh("vol-clone", "--pool", "dnfs", "q.qcow2", "q2.qcow2"),
		vsh("vol-resize", "--pool", "dnfs", "q2.qcow2", "32M"),
		vsh("vol-info", "--pool", "dnfs", "q2.qcow2"),
		{check: func(t *testing.T, s *diffSide) string {
			err := os.WriteFile(filepath.Join(exp.Dir, "server-side.img"), make([]byte, mib), 0o644)
			return fmt.Sprintf("server wrote a file: %v", err)
		}},
		vsh("pool-refresh", "dnfs"),
		vsh("vol-list", "dnfs"),
		vsh("vol-delete", "--pool", "dnfs", "server-side.img"),
		vsh("vol-delete", "--pool", "dnfs", "r.img"),
		vsh("vol-delete", "--pool", "dnfs", "q.qcow2"),
		vsh("vol-delete", "--pool", "dnfs", "q2.qcow2"),
		vsh("vol-delete", "--pool", "dnfs", "s.img"),
		vsh("pool-destroy", "dnfs"),
		{check: func(t *testing.T, s *diffSide) string {
			_, _, _, mounted := nfsMount(t, filepath.Join(s.vars["DIR"], "mnt"))
			return fmt.Sprintf("mounted after destroy: %v", mounted)
		}},
		vsh("pool-start", "dnfs"),
		vsh("pool-destroy", "dnfs"),
		vsh("pool-undefine", "dnfs"),
	}
	data := patterned(t, 4*mib, 8)
	runs := runBoth(t, a, d, steps, func(t *testing.T, s *diffSide) func() {
		s.vars["DATA"], s.vars["EXPORT"] = data, exp.Dir
		writeSideFile(t, s, "pool.xml", `<pool type='netfs'><name>dnfs</name>
  <source><host name='127.0.0.1'/><dir path='{EXPORT}'/><format type='nfs'/><protocol ver='3'/></source>
  <target><path>{DIR}/mnt</path></target></pool>`)
		return func() {
			lab.Try("umount", "-l", filepath.Join(s.vars["DIR"], "mnt"))
			s.v.Virsh("pool-destroy", "dnfs")
			s.v.Virsh("pool-undefine", "dnfs")
			ents, _ := os.ReadDir(exp.Dir)
			for _, e := range ents {
				os.Remove(filepath.Join(exp.Dir, e.Name()))
			}
		}
	})
	compareTranscripts(t, steps, runs[0], runs[1], nil)
}

// diffMpath lists the guest's multipath maps, which both sides see alike.
func diffMpath(t *testing.T, a *testkit.Anchor, d *testkit.Daemon) {
	lab.ScsiDebug(t, 2, 16)
	lab.StartMultipathd(t)
	lab.WaitFor(t, "a multipath map", mapBound, func() bool { return len(lab.MultipathMaps()) > 0 })
	lab.Run(t, "udevadm", "settle")
	steps := []diffStep{
		vsh("pool-define-as", "dmp", "mpath"),
		vsh("pool-define-as", "dmp", "mpath", "--target", "/dev/mapper"),
		vsh("pool-build", "dmp"),
		vsh("pool-start", "dmp"),
		vsh("pool-info", "dmp"),
		vsh("pool-dumpxml", "dmp"),
		vsh("vol-list", "dmp", "--details"),
		vsh("vol-create-as", "dmp", "new", "4M"),
		vsh("pool-refresh", "dmp"),
		vsh("pool-delete", "dmp"),
		vsh("find-storage-pool-sources", "mpath"),
		vsh("pool-destroy", "dmp"),
		vsh("pool-undefine", "dmp"),
	}
	// Every map's volume, described by both.
	var maps []string
	for _, dm := range lab.MultipathMaps() {
		maps = append(maps, dm)
	}
	sort.Strings(maps)
	for _, dm := range maps {
		steps = append(steps[:6], append([]diffStep{
			vsh("vol-dumpxml", "--pool", "dmp", dm),
			vsh("vol-info", "--pool", "dmp", dm),
		}, steps[6:]...)...)
	}
	runs := runBoth(t, a, d, steps, func(t *testing.T, s *diffSide) func() {
		return func() {
			s.v.Virsh("pool-destroy", "dmp")
			s.v.Virsh("pool-undefine", "dmp")
		}
	})
	compareTranscripts(t, steps, runs[0], runs[1], nil)
}
