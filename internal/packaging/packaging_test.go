package packaging_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

// requireTools skips (fails under CI) when a program the packaging needs is
// missing; make deps installs them (python3-docutils, dpkg-dev).
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			testkit.SkipOrFailInCI(t, n+" not installed (make deps installs python3-docutils and dpkg-dev)")
		}
	}
}

// sysPath is a PATH with the system directories dpkg and its helpers need.
const sysPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// run runs a command in dir and returns its stdout; it fails the test on a
// non-zero exit.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(ownEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// ownEnv is the test's environment without what an enclosing make (make
// test) passes its children: a nested make must not take its variables nor
// look for its job server.
func ownEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// entry is one path of an installed tree: a file or directory and its mode.
type entry struct {
	dir  bool
	mode fs.FileMode
}

func file(mode fs.FileMode) entry { return entry{mode: mode} }
func dir() entry                  { return entry{dir: true, mode: 0o755} }

// tree lists every file and directory under root, relative to it.
func tree(t *testing.T, root string) map[string]entry {
	t.Helper()
	got := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		got[rel] = entry{dir: d.IsDir(), mode: info.Mode().Perm()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// withParents adds every parent directory of the paths, as 0755 directories.
func withParents(want map[string]entry) map[string]entry {
	for p := range want {
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			if _, ok := want[d]; !ok {
				want[d] = dir()
			}
		}
	}
	return want
}

func compareTrees(t *testing.T, what string, got, want map[string]entry) {
	t.Helper()
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		g, inGot := got[p]
		w, inWant := want[p]
		switch {
		case !inGot:
			t.Errorf("%s: %s missing", what, p)
		case !inWant:
			t.Errorf("%s: %s not expected", what, p)
		case g != w:
			t.Errorf("%s: %s is %+v, want %+v", what, p, g, w)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var units = []string{"virtstoraged.service", "virtstoraged.socket", "virtstoraged-ro.socket", "virtstoraged-admin.socket"}

// checkUnits checks that the installed units are the shipped ones with the
// daemon's installed path in ExecStart.
func checkUnits(t *testing.T, root, unitDir, sbin string) {
	t.Helper()
	src := testkit.ModuleRoot(t)
	for _, u := range units {
		want := readFile(t, filepath.Join(src, "dist/systemd", u))
		want = strings.ReplaceAll(want, "/usr/sbin/virtstoraged", sbin+"/virtstoraged")
		if got := readFile(t, filepath.Join(root, unitDir, u)); got != want {
			t.Errorf("%s/%s differs from dist/systemd/%s with ExecStart=%s/virtstoraged:\n%s", unitDir, u, u, sbin, got)
		}
	}
	if got := readFile(t, filepath.Join(root, unitDir, "virtstoraged.service")); !strings.Contains(got, "\nExecStart="+sbin+"/virtstoraged $VIRTSTORAGED_ARGS\n") {
		t.Errorf("service ExecStart does not run %s/virtstoraged:\n%s", sbin, got)
	}
}

// TestMakeInstall installs into a DESTDIR with the default PREFIX and checks
// the whole tree: every file where it belongs, with its mode, and nothing else.
func TestMakeInstall(t *testing.T) {
	t.Parallel()
	requireTools(t, "make", "rst2man")
	src := testkit.ModuleRoot(t)
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "root")
	bin := filepath.Join(tmp, "virtstoraged")
	out := run(t, src, nil, "make", "--no-print-directory", "install", "DESTDIR="+dest, "BIN="+bin)
	if !strings.Contains(out, "installing into "+dest+" (PREFIX=/usr/local)") {
		t.Errorf("make install said:\n%s", out)
	}

	want := withParents(map[string]entry{
		"usr/local/sbin/virtstoraged":                            file(0o755),
		"usr/local/lib/systemd/system/virtstoraged.service":      file(0o644),
		"usr/local/lib/systemd/system/virtstoraged.socket":       file(0o644),
		"usr/local/lib/systemd/system/virtstoraged-ro.socket":    file(0o644),
		"usr/local/lib/systemd/system/virtstoraged-admin.socket": file(0o644),
		"usr/local/share/man/man8/virtstoraged.8":                file(0o644),
		"usr/local/share/doc/virtstoraged-go/README.md":          file(0o644),
		"usr/local/share/doc/virtstoraged-go/metrics.md":         file(0o644),
		"usr/local/share/doc/virtstoraged-go/logical-thin.md":    file(0o644),
		"etc/libvirt/virtstoraged.conf":                          file(0o644),
		"etc/default/virtstoraged":                               file(0o644),
		"etc/libvirt/storage/autostart":                          dir(),
		"var/lib/libvirt/images":                                 dir(),
		"var/log/libvirt":                                        dir(),
	})
	compareTrees(t, "make install", tree(t, dest), want)
	checkUnits(t, dest, "usr/local/lib/systemd/system", "/usr/local/sbin")
	if got, want := readFile(t, filepath.Join(dest, "etc/libvirt/virtstoraged.conf")), readFile(t, filepath.Join(src, "dist/virtstoraged.conf")); got != want {
		t.Error("installed virtstoraged.conf differs from dist/virtstoraged.conf")
	}
	man := readFile(t, filepath.Join(dest, "usr/local/share/man/man8/virtstoraged.8"))
	if !strings.Contains(man, `.TH "VIRTSTORAGED" 8 "" "" "Virtualization Support"`) || !strings.Contains(man, "metrics_listen") {
		t.Errorf("man page is not the rendered docs/virtstoraged.8.rst:\n%.400s", man)
	}
	if out := run(t, "", nil, filepath.Join(dest, "usr/local/sbin/virtstoraged"), "--version"); !regexp.MustCompile(`^virtstoraged \(virtstoraged-go\) \d+\.\d+\.\d+\n$`).MatchString(out) {
		t.Errorf("installed daemon --version: %q", out)
	}
}

// TestInstallOverARunningSystem runs scripts/install.sh as `make install`
// runs it without DESTDIR, on a system tree under a temporary directory: an
// edited config and a directory with another mode are left alone.
func TestInstallOverARunningSystem(t *testing.T) {
	t.Parallel()
	requireTools(t, "rst2man")
	src := testkit.ModuleRoot(t)
	sys := t.TempDir()
	env := []string{
		"BIN=" + testkit.BuildDaemon(t), "DESTDIR=",
		"PREFIX=" + sys + "/usr", "SBINDIR=" + sys + "/usr/sbin", "UNITDIR=" + sys + "/usr/lib/systemd/system",
		"MANDIR=" + sys + "/usr/share/man", "DOCDIR=" + sys + "/usr/share/doc/virtstoraged-go",
		"SYSCONFDIR=" + sys + "/etc", "LOCALSTATEDIR=" + sys + "/var", "RST2MAN=rst2man",
	}
	run(t, src, env, "./scripts/install.sh")
	conf := filepath.Join(sys, "etc/libvirt/virtstoraged.conf")
	edited := "max_clients = 10\n"
	if err := os.WriteFile(conf, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	images := filepath.Join(sys, "var/lib/libvirt/images")
	if err := os.Chmod(images, 0o711); err != nil {
		t.Fatal(err)
	}
	out := run(t, src, env, "./scripts/install.sh")
	if got := readFile(t, conf); got != edited {
		t.Errorf("a second install replaced the edited config with:\n%.200s", got)
	}
	if !strings.Contains(out, "kept "+conf) {
		t.Errorf("install did not say it kept the config:\n%s", out)
	}
	if st, err := os.Stat(images); err != nil || st.Mode().Perm() != 0o711 {
		t.Errorf("install changed the mode of an existing %s: %v %v", images, st.Mode(), err)
	}
	checkUnits(t, sys, "usr/lib/systemd/system", sys+"/usr/sbin")
}

// builtDeb is the package TestDeb builds once for its subtests.
type builtDeb struct {
	path string
	ctrl string // its control files, extracted
	data string // its files, extracted
}

func buildDeb(t *testing.T) builtDeb {
	t.Helper()
	requireTools(t, "make", "rst2man", "dpkg-deb", "dpkg-shlibdeps")
	src := testkit.ModuleRoot(t)
	tmp := t.TempDir()
	out := run(t, src, nil, "make", "--no-print-directory", "deb", "DEB_OUT="+tmp, "BIN="+filepath.Join(tmp, "virtstoraged"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	d := builtDeb{path: lines[len(lines)-1], ctrl: filepath.Join(tmp, "control"), data: filepath.Join(tmp, "data")}
	if !strings.HasPrefix(d.path, tmp+"/virtstoraged-go_") || !strings.HasSuffix(d.path, ".deb") {
		t.Fatalf("make deb did not end with the package's path:\n%s", out)
	}
	run(t, "", nil, "dpkg-deb", "-e", d.path, d.ctrl)
	run(t, "", nil, "dpkg-deb", "-x", d.path, d.data)
	return d
}

func TestDeb(t *testing.T) {
	t.Parallel()
	d := buildDeb(t)
	arch := strings.TrimSpace(run(t, "", nil, "dpkg", "--print-architecture"))

	t.Run("control", func(t *testing.T) {
		field := func(name string) string {
			return strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-f", d.path, name))
		}
		for name, want := range map[string]string{
			"Package": "virtstoraged-go", "Architecture": arch, "Section": "admin", "Priority": "optional",
			"Conflicts": "libvirt-daemon-driver-storage", "Replaces": "libvirt-daemon-driver-storage",
		} {
			if got := field(name); got != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
		if got := field("Version"); !regexp.MustCompile(`^\d+\.\d+\.\d+-1$`).MatchString(got) {
			t.Errorf("Version %q", got)
		}
		// dpkg-shlibdeps finds libc, and only libc: the daemon links
		// nothing else.
		if got := field("Depends"); !regexp.MustCompile(`^libc6 \(>= 2\.\d+\)$`).MatchString(got) {
			t.Errorf("Depends %q, want libc6 (>= 2.x) from dpkg-shlibdeps", got)
		}
		recommends := field("Recommends")
		for _, p := range []string{"libvirt-clients", "qemu-utils", "lvm2", "nfs-common"} {
			if !strings.Contains(recommends, p) {
				t.Errorf("Recommends %q lacks %s", recommends, p)
			}
		}
		suggests := field("Suggests")
		for _, p := range []string{"scrub", "multipath-tools"} {
			if !strings.Contains(suggests, p) {
				t.Errorf("Suggests %q lacks %s", suggests, p)
			}
		}
		if got := field("Installed-Size"); !regexp.MustCompile(`^\d+$`).MatchString(got) {
			t.Errorf("Installed-Size %q", got)
		}
	})

	t.Run("control files", func(t *testing.T) {
		if got := readFile(t, filepath.Join(d.ctrl, "conffiles")); got != "/etc/default/virtstoraged\n/etc/libvirt/virtstoraged.conf\n" {
			t.Errorf("conffiles:\n%s", got)
		}
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			st, err := os.Stat(filepath.Join(d.ctrl, s))
			if err != nil || st.Mode().Perm() != 0o755 {
				t.Errorf("%s: %v %v", s, st, err)
			}
			run(t, "", nil, "sh", "-n", filepath.Join(d.ctrl, s))
		}
		// md5sums lists every file of the package with its sum.
		listed := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(readFile(t, filepath.Join(d.ctrl, "md5sums"))), "\n") {
			sum, path, ok := strings.Cut(line, "  ")
			if !ok {
				t.Fatalf("md5sums line %q", line)
			}
			listed[path] = sum
		}
		for p, e := range tree(t, d.data) {
			if e.dir {
				continue
			}
			b, err := os.ReadFile(filepath.Join(d.data, p))
			if err != nil {
				t.Fatal(err)
			}
			sum := md5.Sum(b)
			if listed[p] != hex.EncodeToString(sum[:]) {
				t.Errorf("md5sums: %s listed as %q", p, listed[p])
			}
			delete(listed, p)
		}
		if len(listed) > 0 {
			t.Errorf("md5sums lists files the package lacks: %v", listed)
		}
	})

	t.Run("files", func(t *testing.T) {
		want := withParents(map[string]entry{
			"usr/sbin/virtstoraged":                             file(0o755),
			"lib/systemd/system/virtstoraged.service":           file(0o644),
			"lib/systemd/system/virtstoraged.socket":            file(0o644),
			"lib/systemd/system/virtstoraged-ro.socket":         file(0o644),
			"lib/systemd/system/virtstoraged-admin.socket":      file(0o644),
			"usr/share/man/man8/virtstoraged.8.gz":              file(0o644),
			"usr/share/doc/virtstoraged-go/README.md":           file(0o644),
			"usr/share/doc/virtstoraged-go/metrics.md":          file(0o644),
			"usr/share/doc/virtstoraged-go/logical-thin.md":     file(0o644),
			"usr/share/doc/virtstoraged-go/copyright":           file(0o644),
			"usr/share/doc/virtstoraged-go/changelog.Debian.gz": file(0o644),
			"etc/libvirt/virtstoraged.conf":                     file(0o644),
			"etc/default/virtstoraged":                          file(0o644),
			"etc/libvirt/storage/autostart":                     dir(),
			"var/lib/libvirt/images":                            dir(),
			"var/log/libvirt":                                   dir(),
		})
		compareTrees(t, "package", tree(t, d.data), want)
		checkUnits(t, d.data, "lib/systemd/system", "/usr/sbin")
		// Every entry belongs to root, as dpkg would install it.
		for _, line := range strings.Split(strings.TrimSpace(run(t, "", nil, "dpkg-deb", "-c", d.path)), "\n") {
			if f := strings.Fields(line); len(f) < 2 || f[1] != "root/root" {
				t.Errorf("package entry not root/root: %s", line)
			}
		}
	})

	t.Run("dpkg root", func(t *testing.T) {
		dpkgRootTests(t, d)
	})
}

// TestSystemdCheckScript checks what can be checked of scripts/systemd-check.sh
// outside the lab: it parses, and it refuses to run on a system without
// systemd as PID 1 before it changes anything. On such a system (a real CI
// host) the refusal is not tried: the script would install the package.
func TestSystemdCheckScript(t *testing.T) {
	t.Parallel()
	script := filepath.Join(testkit.ModuleRoot(t), "scripts/systemd-check.sh")
	run(t, "", nil, "bash", "-n", script)
	if comm, _ := os.ReadFile("/proc/1/comm"); strings.TrimSpace(string(comm)) == "systemd" {
		t.Skip("PID 1 is systemd: the script would run for real")
	}
	cmd := exec.Command(script, "/nonexistent.deb")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "needs root on a system booted with systemd as PID 1") {
		t.Errorf("outside systemd: %v\n%s", err, out)
	}
}
