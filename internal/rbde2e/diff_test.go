package rbde2e_test

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// step is one virsh call of the differential script. When differs is set,
// our answer is a deliberate improvement on libvirt's: it is checked against
// wantOurs instead of libvirt's answer (which is logged).
type step struct {
	args     []string
	differs  string
	wantOurs string // a regexp of our normalised answer
}

// behind is a step run on the cluster directly, between virsh steps.
type behind func(ctx context.Context) error

var snapNumber = regexp.MustCompile(`libvirt-\d+`)

// answer runs one step and normalises what may rightly differ from run to
// run (the number libvirt picks for a clone's snapshot).
func answer(d virsher, args []string) string {
	out, errOut, code := d.Virsh(args...)
	s := strings.TrimSpace(out) + "\n" + strings.TrimSpace(errOut)
	if code != 0 {
		s = "FAILED\n" + s
	}
	return snapNumber.ReplaceAllString(s, "libvirt-N")
}

// TestAgainstLibvirtd runs one script on libvirtd 9.0's rbd driver and on
// our daemon, one after the other on the same images of a cluster that
// requires cephx: both pools connect as client.libvirt, whose key libvirtd's
// secret driver holds and our daemon reads from it. Every answer is
// compared.
func TestAgainstLibvirtd(t *testing.T) {
	needLab(t)
	ctx := context.Background()
	newCephPool(t, "cmp")
	t0 := time.Now()
	a := startSecrets(t)
	t.Logf("libvirtd up after %v", time.Since(t0))
	t.Cleanup(func() { a.CleanupPools("cmp") })

	dir := t.TempDir()
	auth := cephAuth

	pool := []string{"--pool", "cmp"}
	steps := []any{
		// rbd has no build step: libvirt's build does nothing and succeeds.
		step{args: []string{"pool-build", "cmp"}},
		step{args: []string{"pool-start", "cmp"}},
		step{args: []string{"vol-create-as", "cmp", "v1", "12M"}},
		step{args: []string{"vol-create-as", "cmp", "q", "1M", "--format", "qcow2"}},
		step{args: []string{"vol-create-as", "cmp", "z", "0"}},
		step{args: []string{"vol-create-as", "cmp", "v1", "1M"}},
		// Thin: larger than the whole (2 GiB) cluster.
		step{args: []string{"vol-create-as", "cmp", "huge", "8G"}},
		step{args: append([]string{"vol-delete"}, append(pool, "huge")...)},
		step{args: append([]string{"vol-dumpxml"}, append(pool, "v1")...)},
		step{args: append([]string{"vol-info"}, append(pool, "v1")...)},
		step{args: []string{"vol-list", "cmp", "--details"}},
		step{args: append([]string{"vol-path"}, append(pool, "v1")...)},
		step{args: []string{"vol-key", "--pool", "cmp", "v1"}},
		step{args: append([]string{"vol-wipe"}, append(pool, "v1", "--algorithm", "dod")...)},
		step{args: append([]string{"vol-wipe"}, append(pool, "v1")...)},
		step{args: append([]string{"vol-info"}, append(pool, "v1")...)},
		step{args: append([]string{"vol-resize"}, append(pool, "v1", "16M")...)},
		step{args: append([]string{"vol-resize"}, append(pool, "v1", "--delta", "1M")...)},
		step{args: append([]string{"vol-resize"}, append(pool, "v1", "5M", "--shrink")...)},
		step{args: append([]string{"vol-info"}, append(pool, "v1")...)},
		step{args: append([]string{"vol-clone"}, append(pool, "v1", "c1")...)},
		step{args: append([]string{"vol-dumpxml"}, append(pool, "c1")...)},
		step{args: append([]string{"vol-delete"}, append(pool, "v1")...),
			differs: "libvirt reports a stale errno", wantOurs: `^FAILED\n\nerror: Failed to delete vol v1\nerror: failed to remove volume 'cmp/v1': Directory not empty$`},
		step{args: append([]string{"vol-delete"}, append(pool, "v1", "--delete-snapshots")...),
			differs: "libvirt reports a stale errno", wantOurs: `^FAILED\n\nerror: Failed to delete vol v1\nerror: failed to unprotect snapshot 'cmp/v1@libvirt-N': Device or resource busy$`},
		step{args: append([]string{"vol-delete"}, append(pool, "c1")...)},
		step{args: append([]string{"vol-delete"}, append(pool, "v1", "--delete-snapshots")...)},
		behind(func(ctx context.Context) error {
			_, err := lab.Rbd(ctx, "create", "--size", "6M", "cmp/behind")
			return err
		}),
		step{args: []string{"pool-refresh", "cmp"}},
		step{args: []string{"vol-list", "cmp", "--details"}},
		step{args: append([]string{"vol-upload"}, append(pool, "behind", "/dev/null")...),
			differs: "libvirt's rbd backend has no upload", wantOurs: `^\n$`},
		step{args: append([]string{"vol-download"}, append(pool, "behind", filepath.Join(dir, "dl"))...),
			differs: "libvirt's rbd backend has no download", wantOurs: `^\n$`},
		step{args: append([]string{"vol-delete"}, append(pool, "behind")...)},
		step{args: []string{"pool-destroy", "cmp"}},
	}
	run := func(d virsher) []string {
		var got []string
		for _, s := range steps {
			switch s := s.(type) {
			case step:
				got = append(got, answer(d, s.args))
			case behind:
				if err := s(ctx); err != nil {
					t.Fatal(err)
				}
				got = append(got, "")
			}
		}
		return got
	}

	t0 = time.Now()
	definePoolOnly(t, a, "cmp", poolXML("cmp", "cmp", auth, ""))
	theirs := run(a)
	must(t, a, "pool-undefine", "cmp")
	t1 := time.Now()
	d := startDaemon(t, a, "")
	definePoolOnly(t, d, "cmp", poolXML("cmp", "cmp", auth, ""))
	ours := run(d)
	t.Logf("script: libvirtd %v, ours %v", t1.Sub(t0), time.Since(t1))

	for i, s := range steps {
		st, ok := s.(step)
		if !ok {
			continue
		}
		name := strings.Join(st.args, " ")
		if st.differs != "" {
			t.Logf("%s: libvirt (%s):\n%s", name, st.differs, theirs[i])
			if !regexp.MustCompile(st.wantOurs).MatchString(ours[i]) {
				t.Errorf("%s: ours\n%s\nwant /%s/", name, ours[i], st.wantOurs)
			}
			continue
		}
		if ours[i] != theirs[i] {
			t.Errorf("%s:\n--- ours\n%s\n--- libvirtd\n%s", name, ours[i], theirs[i])
		}
	}

	// The pool-capabilities entry of rbd is libvirt's.
	capsOf := func(d virsher) string {
		out := must(t, d, "pool-capabilities")
		return regexp.MustCompile(`(?s)<pool type='rbd'.*?</pool>`).FindString(out)
	}
	if o, l := capsOf(d), capsOf(a); o != l || o == "" {
		t.Errorf("pool-capabilities rbd entry:\n--- ours\n%s\n--- libvirtd\n%s", o, l)
	}
}
