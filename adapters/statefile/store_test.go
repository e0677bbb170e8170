package statefile_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/virtstoraged-go/virtstoraged/adapters/statefile"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

type dirs struct{ config, autostart, status string }

func newStore(t *testing.T) (*statefile.Store, dirs, *test.Hook) {
	t.Helper()
	root := t.TempDir()
	d := dirs{
		config:    filepath.Join(root, "etc", "libvirt", "storage"),
		autostart: filepath.Join(root, "etc", "libvirt", "storage", "autostart"),
		status:    filepath.Join(root, "run", "libvirt", "storage"),
	}
	logger, hook := test.NewNullLogger()
	s, err := statefile.New(d.config, d.autostart, d.status, logrus.NewEntry(logger))
	if err != nil {
		t.Fatal(err)
	}
	return s, d, hook
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// body returns the pool document of a libvirtd file, without its comment.
func body(file string) string { return file[strings.Index(file, "-->\n\n")+5:] }

func noTemps(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Errorf("temp file %s left in %s", e.Name(), d)
			}
		}
	}
}

// TestSaveConfigMatchesLibvirtd writes the document libvirtd wrote and expects
// the same bytes and mode, comment included.
func TestSaveConfigMatchesLibvirtd(t *testing.T) {
	t.Parallel()
	s, d, _ := newStore(t)
	for _, name := range []string{"axdir", "axnet"} {
		want := readFile(t, filepath.Join("testdata", "libvirtd", "storage", name+".xml"))
		if err := s.SaveConfig(name, body(want)); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(d.config, name+".xml")
		if got := readFile(t, path); got != want {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", name, got, want)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", st.Mode().Perm())
		}
	}
	noTemps(t, d.config)
}

func TestSaveStatusMatchesLibvirtd(t *testing.T) {
	t.Parallel()
	s, d, _ := newStore(t)
	want := readFile(t, filepath.Join("testdata", "libvirtd", "status-axdir.xml"))
	if err := s.SaveStatus("axdir", body(want)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(d.status, "axdir.xml")); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	got, err := s.LoadStatus()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "axdir" || got[0].XML != want || got[0].Autostart {
		t.Errorf("LoadStatus = %+v", got)
	}
	if err := s.DeleteStatus("axdir"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStatus("axdir"); err != nil {
		t.Errorf("deleting a missing status file: %v", err)
	}
	if got, _ := s.LoadStatus(); len(got) != 0 {
		t.Errorf("status left after delete: %+v", got)
	}
}

func TestWarningUsesUUIDForUnsafeNames(t *testing.T) {
	t.Parallel()
	s, d, _ := newStore(t)
	doc := "<pool type='dir'>\n  <name>a b</name>\n  <uuid>ed64bab8-6e61-45b8-965f-eee7fbfcf3ed</uuid>\n</pool>\n"
	if err := s.SaveConfig("a b", doc); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, filepath.Join(d.config, "a b.xml"))
	if !strings.Contains(got, "  virsh pool-edit ed64bab8-6e61-45b8-965f-eee7fbfcf3ed\n") || !strings.HasSuffix(got, doc) {
		t.Errorf("got\n%s", got)
	}
}

func TestRoundTripAndOverwrite(t *testing.T) {
	t.Parallel()
	s, d, _ := newStore(t)
	if err := s.SaveConfig("p1", "<pool type='dir'><name>p1</name></pool>"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveConfig("p1", "<pool type='dir'><name>p1</name><uuid>x</uuid></pool>\n"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveConfig("p0", "<pool type='dir'><name>p0</name></pool>\n"); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadConfigs()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "p0" || got[1].Name != "p1" {
		t.Fatalf("LoadConfigs = %+v", got)
	}
	if !strings.HasSuffix(got[1].XML, "<uuid>x</uuid></pool>\n") || !strings.HasPrefix(got[1].XML, "<!--\nWARNING") {
		t.Errorf("p1 = %q", got[1].XML)
	}
	noTemps(t, d.config)
}

func TestAutostart(t *testing.T) {
	t.Parallel()
	s, d, _ := newStore(t)
	if err := s.SaveConfig("p", "<pool/>\n"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second call must be a no-op
		if err := s.SetAutostart("p", true); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(d.autostart, "p.xml")
	target, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(d.config, "p.xml"); target != want || !filepath.IsAbs(target) {
		t.Errorf("link -> %q, want %q", target, want)
	}
	got, err := s.LoadConfigs()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Autostart {
		t.Errorf("LoadConfigs = %+v", got)
	}
	noTemps(t, d.autostart)

	if err := s.SetAutostart("p", false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAutostart("p", false); err != nil {
		t.Errorf("disabling twice: %v", err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("link still there: %v", err)
	}

	if err := s.SetAutostart("p", true); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConfig("p"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, filepath.Join(d.config, "p.xml")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s survives DeleteConfig: %v", p, err)
		}
	}
}

// TestLeftoverTempFiles simulates a crash between the temp write and the
// rename: the temp file is neither loaded nor kept.
func TestLeftoverTempFiles(t *testing.T) {
	t.Parallel()
	s, d, hook := newStore(t)
	if err := s.SaveConfig("p", "<pool/>\n"); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveStatus("p", "<poolstate/>\n"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d.autostart, 0o755); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{
		filepath.Join(d.config, ".p.xml.12345.tmp"),
		filepath.Join(d.status, ".p.xml.999.tmp"),
		filepath.Join(d.autostart, ".p.xml.1.tmp"),
	}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("<pool torn"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgs, err := s.LoadConfigs()
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.LoadStatus()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 1 || cfgs[0].XML == "<pool torn" || len(st) != 1 {
		t.Errorf("loaded %+v / %+v", cfgs, st)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s not cleaned: %v", p, err)
		}
	}
	if len(hook.AllEntries()) == 0 {
		t.Error("cleaning was not logged")
	}
}

func TestBadFilesAreSkipped(t *testing.T) {
	t.Parallel()
	s, d, hook := newStore(t)
	if err := s.SaveConfig("good", "<pool/>\n"); err != nil {
		t.Fatal(err)
	}
	// ".xml" has an empty pool name; a dangling link and a directory are not
	// regular files; "notes.txt" is not a config.
	if err := os.WriteFile(filepath.Join(d.config, ".xml"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent", filepath.Join(d.config, "dangling.xml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(d.config, "dir.xml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.config, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadConfigs()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "good" {
		t.Errorf("LoadConfigs = %+v", got)
	}
	if hook.LastEntry() == nil || hook.LastEntry().Level != logrus.WarnLevel {
		t.Error("the invalid file name was not reported")
	}
}

func TestMissingDirectoriesLoadEmpty(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	cfgs, err := s.LoadConfigs()
	if err != nil || len(cfgs) != 0 {
		t.Errorf("LoadConfigs = %+v, %v", cfgs, err)
	}
	st, err := s.LoadStatus()
	if err != nil || len(st) != 0 {
		t.Errorf("LoadStatus = %+v, %v", st, err)
	}
}

func TestInvalidNames(t *testing.T) {
	t.Parallel()
	s, d, _ := newStore(t)
	for _, name := range []string{"", ".", "..", "../escape", "a/b", "/abs", "nul\x00"} {
		ops := map[string]func() error{
			"SaveConfig":   func() error { return s.SaveConfig(name, "<pool/>") },
			"SaveStatus":   func() error { return s.SaveStatus(name, "<pool/>") },
			"DeleteConfig": func() error { return s.DeleteConfig(name) },
			"DeleteStatus": func() error { return s.DeleteStatus(name) },
			"SetAutostart": func() error { return s.SetAutostart(name, true) },
		}
		for op, f := range ops {
			if err := f(); err == nil || !strings.HasPrefix(err.Error(), "statefile: ") {
				t.Errorf("%s(%q) = %v, want a statefile error", op, name, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(d.config), "escape.xml")); !os.IsNotExist(err) {
		t.Error("a file escaped the config directory")
	}
}

// TestLoadsLibvirtdConfigDir loads a config directory as libvirtd 9.0 left it
// (files copied from /etc/libvirt/storage, the autostart link re-pointed).
func TestLoadsLibvirtdConfigDir(t *testing.T) {
	t.Parallel()
	s, d, _ := newStore(t)
	if err := os.MkdirAll(d.autostart, 0o755); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, name := range []string{"axdir", "axnet"} {
		data := readFile(t, filepath.Join("testdata", "libvirtd", "storage", name+".xml"))
		if err := os.WriteFile(filepath.Join(d.config, name+".xml"), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		want[name] = data
	}
	if err := os.Symlink(filepath.Join(d.config, "axdir.xml"), filepath.Join(d.autostart, "axdir.xml")); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadConfigs()
	if err != nil {
		t.Fatal(err)
	}
	wantPools := []ports.StoredPool{
		{Name: "axdir", XML: want["axdir"], Autostart: true},
		{Name: "axnet", XML: want["axnet"]},
	}
	if len(got) != len(wantPools) {
		t.Fatalf("LoadConfigs = %+v", got)
	}
	for i := range got {
		if got[i] != wantPools[i] {
			t.Errorf("pool %d = %+v, want %+v", i, got[i], wantPools[i])
		}
	}
}

func TestNewRequiresDirectories(t *testing.T) {
	t.Parallel()
	if _, err := statefile.New("", "a", "b", nil); err == nil {
		t.Error("New accepted an empty config dir")
	}
}

// The status directory exists from the start, as libvirt's does, and only it:
// the config directories wait for the first define, as in libvirt.
func TestCreateStatusDir(t *testing.T) {
	s, d, _ := newStore(t)
	if err := s.CreateStatusDir(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(d.status)
	if err != nil || !st.IsDir() {
		t.Fatalf("status directory: %v", err)
	}
	if got, want := st.Mode().Perm(), os.FileMode(0o755)&^processUmask(t); got != want {
		t.Errorf("mode %o, want %o", got, want)
	}
	if _, err := os.Stat(d.config); !os.IsNotExist(err) {
		t.Errorf("config directory made too: %v", err)
	}
	// Again on a daemon restart.
	if err := s.CreateStatusDir(); err != nil {
		t.Error(err)
	}
}

// processUmask reads the umask from /proc without changing it (Umask would
// change it for the parallel tests too).
func processUmask(t *testing.T) os.FileMode {
	t.Helper()
	for _, l := range strings.Split(readFile(t, "/proc/self/status"), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			return os.FileMode(m)
		}
	}
	t.Fatal("no Umask in /proc/self/status")
	return 0
}
