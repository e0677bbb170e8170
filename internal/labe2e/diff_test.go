package labe2e_test

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// The differential tests run one virsh scenario against libvirtd 9.0 and
// against our daemon, both inside the guest on the same kind of devices,
// and compare the transcripts step by step, as internal/e2e does on the
// host for dir pools. The two runs take turns on the devices (a VG name or
// an NFS export cannot serve both at once), so a scenario leaves nothing
// behind.

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
		o, e, code := s.v.Virsh(args...)
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

// TestDifferentialLogical runs a logical pool's life on libvirtd and on our
// daemon, each on its own fresh disk under the same VG name.
func TestDifferentialLogical(t *testing.T) {
	a := startAnchor(t)
	d := startDaemon(t)
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
	var runs [2][]string
	for i, v := range []testkit.Virsher{a, d} {
		dir := t.TempDir()
		s := &diffSide{name: []string{"libvirtd", "virtstoraged"}[i], v: v,
			vars: map[string]string{"DEV": lab.Disk(t), "DIR": dir, "DATA": data}}
		pool := s.expand(`<pool type='logical'><name>dvg</name><source><device path='{DEV}'/><name>dvg</name><format type='lvm2'/></source><target><path>/dev/dvg</path></target></pool>`)
		if err := os.WriteFile(dir+"/pool.xml", []byte(pool), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lab.Try("vgremove", "-f", "dvg") })
		runs[i] = transcript(t, s, steps)
		// Whatever the run left (a failed step) must not meet the next.
		lab.Try("vgremove", "-f", "dvg")
		lab.Try("pvremove", "-ff", "-y", s.vars["DEV"])
		v.Virsh("pool-destroy", "dvg")
		v.Virsh("pool-undefine", "dvg")
	}
	const resize = "logical volumes resize (lvresize); libvirt 9.0 has no resize for logical pools"
	compareTranscripts(t, steps, runs[0], runs[1], map[int]string{
		18: resize, 26: resize, 27: resize, 28: resize,
		24: "scrub wipes the device, not the /dev/VG/LV link it skips",
	})
}
