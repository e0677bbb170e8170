package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// TestRestartPersistence stops and starts the real daemon and checks that each
// kind of pool comes back in the right state.
func TestRestartPersistence(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, testkit.DaemonOptions{})
	base := poolBase(t, "s")
	ok(t, d, "pool-define-as", "e2e-def", "dir", "--target", filepath.Join(base, "def"))
	ok(t, d, "pool-define-as", "e2e-auto", "dir", "--target", filepath.Join(base, "auto"))
	ok(t, d, "pool-build", "e2e-auto")
	ok(t, d, "pool-autostart", "e2e-auto")
	ok(t, d, "pool-start", "e2e-auto")
	ok(t, d, "vol-create-as", "e2e-auto", "a.img", "1M")
	ok(t, d, "pool-create-as", "e2e-tr", "dir", "--target", filepath.Join(base, "tr"), "--build")
	ok(t, d, "vol-create-as", "e2e-tr", "t.qcow2", "1M", "--format", "qcow2")
	ok(t, d, "pool-define-as", "e2e-run", "dir", "--target", filepath.Join(base, "run"))
	ok(t, d, "pool-start", "e2e-run", "--build")
	uuids := map[string]string{}
	for _, p := range []string{"e2e-def", "e2e-auto", "e2e-tr", "e2e-run"} {
		uuids[p] = strings.TrimSpace(ok(t, d, "pool-uuid", p))
	}
	if _, err := os.Stat(filepath.Join(d.StorageDir(), "e2e-def.xml")); err != nil {
		t.Errorf("no config file for a defined pool: %v", err)
	}
	if l, err := os.Readlink(filepath.Join(d.StorageDir(), "autostart", "e2e-auto.xml")); err != nil || l != filepath.Join(d.StorageDir(), "e2e-auto.xml") {
		t.Errorf("autostart link: %q %v", l, err)
	}
	for _, p := range []string{"e2e-auto", "e2e-tr", "e2e-run"} {
		if _, err := os.Stat(filepath.Join(d.StatusDir(), p+".xml")); err != nil {
			t.Errorf("no status file for running pool %s: %v", p, err)
		}
	}

	d.Restart(t)

	for _, c := range []struct{ pool, state, autostart, persistent string }{
		{"e2e-def", "inactive", "no", "yes"},
		{"e2e-auto", "running", "yes", "yes"},
		{"e2e-run", "running", "no", "yes"},
		{"e2e-tr", "running", "no", "no"},
	} {
		wantContains(t, d, []string{"pool-info", c.pool}, "State:          "+c.state+"\n",
			"Persistent:     "+c.persistent+"\n", "Autostart:      "+c.autostart+"\n")
	}
	for p, u := range uuids {
		wantOut(t, d, u+"\n\n", "pool-uuid", p)
	}
	wantContains(t, d, []string{"vol-list", "e2e-auto"}, " a.img   "+filepath.Join(base, "auto", "a.img"))
	wantContains(t, d, []string{"vol-dumpxml", "t.qcow2", "--pool", "e2e-tr"}, "<format type='qcow2'/>")
	ok(t, d, "pool-destroy", "e2e-tr")
	ok(t, d, "pool-destroy", "e2e-run")
	d.Restart(t)
	if out := ok(t, d, "pool-list", "--all", "--name"); strings.Contains(out, "e2e-tr") {
		t.Errorf("a destroyed transient pool came back after restart:\n%s", out)
	}
}

// TestLoadLibvirtConfigs defines pools in libvirtd, copies their config files
// (and autostart links) into our daemon's root and checks that it loads them.
func TestLoadLibvirtConfigs(t *testing.T) {
	t.Parallel() // StartAnchor serialises the libvirtd tests among themselves
	a := testkit.StartAnchor(t)
	a.CleanupPools("e2e")
	t.Cleanup(func() { a.CleanupPools("e2e") })
	base := poolBase(t, "l")
	ok(t, a, "pool-define-as", "e2e-lv1", "dir", "--target", filepath.Join(base, "lv1"))
	ok(t, a, "pool-define-as", "e2e-lv2", "dir", "--target", filepath.Join(base, "lv2"))
	ok(t, a, "pool-build", "e2e-lv2")
	ok(t, a, "pool-autostart", "e2e-lv2")
	uuid1 := strings.TrimSpace(ok(t, a, "pool-uuid", "e2e-lv1"))
	uuid2 := strings.TrimSpace(ok(t, a, "pool-uuid", "e2e-lv2"))

	d := startDaemon(t, testkit.DaemonOptions{})
	d.Stop(t)
	if err := os.MkdirAll(filepath.Join(d.StorageDir(), "autostart"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"e2e-lv1", "e2e-lv2"} {
		b, err := os.ReadFile(filepath.Join(a.ConfigDir(), p+".xml"))
		if err != nil {
			t.Fatalf("libvirtd's config of %s: %v", p, err)
		}
		if err := os.WriteFile(filepath.Join(d.StorageDir(), p+".xml"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Lstat(filepath.Join(a.ConfigDir(), "autostart", "e2e-lv2.xml")); err != nil {
		t.Errorf("libvirtd made no autostart link: %v", err)
	}
	if err := os.Symlink(filepath.Join(d.StorageDir(), "e2e-lv2.xml"), filepath.Join(d.StorageDir(), "autostart", "e2e-lv2.xml")); err != nil {
		t.Fatal(err)
	}
	ok(t, a, "pool-undefine", "e2e-lv1")
	ok(t, a, "pool-undefine", "e2e-lv2")

	d.Start(t)
	wantOut(t, d, uuid1+"\n\n", "pool-uuid", "e2e-lv1")
	wantOut(t, d, uuid2+"\n\n", "pool-uuid", "e2e-lv2")
	wantContains(t, d, []string{"pool-info", "e2e-lv1"}, "State:          inactive\n", "Persistent:     yes\n", "Autostart:      no\n")
	wantContains(t, d, []string{"pool-info", "e2e-lv2"}, "State:          running\n", "Persistent:     yes\n", "Autostart:      yes\n")
	wantContains(t, d, []string{"pool-dumpxml", "--inactive", "e2e-lv1"}, "<path>"+filepath.Join(base, "lv1")+"</path>")
}

// TestDifferentialRestart puts pools in every state on both daemons, restarts
// both and compares what comes back (libvirt revives a destroyed dir pool whose
// directory exists, and keeps a running transient one).
func TestDifferentialRestart(t *testing.T) {
	t.Parallel() // StartAnchor serialises the libvirtd tests among themselves
	a := testkit.StartAnchor(t)
	d := startDaemon(t, testkit.DaemonOptions{})
	sides := []struct {
		tg      target
		base    string
		restart func()
	}{
		{a, poolBase(t, "a"), func() { a.Restart(t) }},
		{d, poolBase(t, "o"), func() { d.Restart(t) }},
	}
	var lists [2][]string
	for i, s := range sides {
		for _, step := range [][]string{
			{"pool-define-as", "e2e-def", "dir", "--target", s.base + "/def"},
			{"pool-define-as", "e2e-auto", "dir", "--target", s.base + "/auto"},
			{"pool-build", "e2e-auto"},
			{"pool-autostart", "e2e-auto"},
			{"pool-define-as", "e2e-autoin", "dir", "--target", s.base + "/autoin"},
			{"pool-build", "e2e-autoin"},
			{"pool-autostart", "e2e-autoin"},
			{"pool-start", "e2e-auto"},
			{"pool-create-as", "e2e-tr", "dir", "--target", s.base + "/tr", "--build"},
			{"pool-create-as", "e2e-trd", "dir", "--target", s.base + "/trd", "--build"},
			{"pool-destroy", "e2e-trd"},
			{"pool-define-as", "e2e-run", "dir", "--target", s.base + "/run"},
			{"pool-start", "e2e-run", "--build"},
			{"pool-define-as", "e2e-dst", "dir", "--target", s.base + "/dst"},
			{"pool-start", "e2e-dst", "--build"},
			{"pool-destroy", "e2e-dst"},
			{"pool-define-as", "e2e-gone", "dir", "--target", s.base + "/gone"},
			{"pool-start", "e2e-gone", "--build"},
		} {
			ok(t, s.tg, step...)
		}
		// a running pool whose directory vanishes while the daemon is down
		s.restart()
		if err := os.RemoveAll(filepath.Join(s.base, "gone")); err != nil {
			t.Fatal(err)
		}
		s.restart()
		out := ok(t, s.tg, "pool-list", "--all", "--details")
		lists[i] = strings.Split(normalize(out, s.base, true), "\n")
	}
	t.Logf("libvirtd after restarts:\n%s", strings.Join(lists[0], "\n"))
	if len(lists[0]) < 9 {
		t.Fatalf("libvirtd lost its pools across the restart")
	}
	if strings.Join(lists[0], "\n") != strings.Join(lists[1], "\n") {
		t.Errorf("pools after a restart:\n--- libvirtd:\n%s\n--- virtstoraged:\n%s", strings.Join(lists[0], "\n"), strings.Join(lists[1], "\n"))
	}
}
