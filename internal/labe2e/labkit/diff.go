package labkit

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

// DumpEnv, when set, has every step's outcome on both sides and its
// duration logged, differing or not.
const DumpEnv = "LAB_DIFF_DUMP"

// Step is one step of a scenario: virsh arguments, or a check of the
// storage itself (run on the side's own devices) whose text joins the
// transcript.
type Step struct {
	Args  []string
	Check func(t *testing.T, s *Side) string
}

// Vsh is a step running virsh with args ({KEY}s expanded).
func Vsh(args ...string) Step { return Step{Args: args} }

// Side is one server and the names its run uses: each {KEY} in a step
// becomes the value, and the value becomes {KEY} again in the output.
type Side struct {
	Name string
	V    testkit.Virsher
	Vars map[string]string
}

// Expand puts the side's values in place of the {KEY}s of a.
func (s *Side) Expand(a string) string {
	for k, v := range s.Vars {
		a = strings.ReplaceAll(a, "{"+k+"}", v)
	}
	return a
}

var (
	poolUUIDRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	lvmUUIDRE  = regexp.MustCompile(`\b[0-9A-Za-z]{6}(-[0-9A-Za-z]{4}){5}-[0-9A-Za-z]{6}\b`)
	timeRE     = regexp.MustCompile(`<(atime|mtime|ctime|btime)>[0-9.]+</`)
	dmRE       = regexp.MustCompile(`\bdm-[0-9]+\b`)
	// ifaceRE is an iSCSI interface libvirt made for an initiator IQN,
	// named at random.
	ifaceRE = regexp.MustCompile(`\blibvirt-iface-[0-9a-f]{8}\b`)
)

// Normalize makes a side's output comparable: its own values become their
// {KEY}s (longest first, so that a path is replaced before its directory),
// and UUIDs, LVM UUIDs, times, dm minors and libvirt's iSCSI interface
// names placeholders.
func (s *Side) Normalize(out string) string {
	keys := make([]string, 0, len(s.Vars))
	for k := range s.Vars {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(s.Vars[keys[i]]) > len(s.Vars[keys[j]]) })
	for _, k := range keys {
		out = strings.ReplaceAll(out, s.Vars[k], "{"+k+"}")
	}
	out = poolUUIDRE.ReplaceAllString(out, "{UUID}")
	out = lvmUUIDRE.ReplaceAllString(out, "{LVUUID}")
	out = timeRE.ReplaceAllString(out, "<$1>{TIME}</")
	out = ifaceRE.ReplaceAllString(out, "libvirt-iface-{ID}")
	return dmRE.ReplaceAllString(out, "dm-{N}")
}

// Transcript runs the steps on one side and returns each one's normalised
// outcome.
func Transcript(t *testing.T, s *Side, steps []Step) []string {
	t.Helper()
	var out []string
	for _, st := range steps {
		if st.Check != nil {
			out = append(out, s.Normalize(st.Check(t, s)))
			continue
		}
		args := make([]string, len(st.Args))
		for i, a := range st.Args {
			args[i] = s.Expand(a)
		}
		start := time.Now()
		o, e, code := s.V.Virsh(args...)
		if os.Getenv(DumpEnv) != "" {
			t.Logf("%s took %v: %v", s.Name, time.Since(start), args)
		}
		out = append(out, fmt.Sprintf("rc=%d\nstdout:\n%s\nstderr:\n%s", code, s.Normalize(o), s.Normalize(e)))
	}
	return out
}

// stepName is how a step is called in a failure.
func stepName(st Step, i int) string {
	if st.Check != nil {
		return fmt.Sprintf("step %d (check)", i)
	}
	return fmt.Sprintf("step %d: virsh %s", i, strings.Join(st.Args, " "))
}

// CompareTranscripts reports every step whose outcome differs, except those
// listed in known (by step index) as deliberate differences, which must
// still differ: a difference that went away is stale documentation.
func CompareTranscripts(t *testing.T, steps []Step, ref, ours []string, known map[int]string) {
	t.Helper()
	for i, st := range steps {
		if os.Getenv(DumpEnv) != "" {
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

// StartAnchor starts libvirtd 9.0 in the guest (it is on the host, so
// there too), private to the test.
func StartAnchor(t *testing.T) *testkit.Anchor {
	t.Helper()
	lab.Require(t)
	return testkit.StartAnchor(t)
}

// FirstBytes describes a device's first bytes for a transcript.
func FirstBytes(t *testing.T, path string, n int) string {
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

// RunBoth runs steps on libvirtd and then on our daemon and returns both
// transcripts; before each run, prepare gives the side's names (its own
// disk, say) and returns its clean-up, which runs before the next side
// starts. Each side's {DIR} is a fresh directory.
func RunBoth(t *testing.T, a *testkit.Anchor, d *testkit.Daemon, steps []Step, prepare func(t *testing.T, s *Side) (cleanup func())) [2][]string {
	t.Helper()
	var runs [2][]string
	for i, v := range []testkit.Virsher{a, d} {
		s := &Side{Name: []string{"libvirtd", "virtstoraged"}[i], V: v, Vars: map[string]string{"DIR": t.TempDir()}}
		cleanup := prepare(t, s)
		runs[i] = Transcript(t, s, steps)
		cleanup()
	}
	return runs
}

// WriteSideFile writes a file of the side's, names expanded, into its DIR.
func WriteSideFile(t *testing.T, s *Side, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.Vars["DIR"], name), []byte(s.Expand(text)), 0o644); err != nil {
		t.Fatal(err)
	}
}
