package lab

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// GuestEnv is set to 1 in the environment of the test binary the guest runs.
const GuestEnv = "VIRTSTORAGED_LAB_GUEST"

// disksEnv tells the guest's test binary how many disks it was given.
const disksEnv = "VIRTSTORAGED_LAB_DISKS"

// Options shape a package's guest. The zero value is a guest with 1 vCPU,
// 1.5 GiB of memory, no disks and a 15-minute bound.
type Options struct {
	// Disks is how many fresh sparse disk images to attach, each DiskSize
	// bytes (1 GiB when zero); Disk hands them out.
	Disks    int
	DiskSize int64
	// MemoryMiB and CPUs size the guest (1536 and 1 when zero).
	MemoryMiB int
	CPUs      int
	// Timeout bounds the whole guest, boot and power-off included (15
	// minutes when zero, and never past the test binary's -test.timeout).
	Timeout time.Duration
	// Prepare runs on the host before the boot, for what is better done
	// there than under emulation (building a binary, say). The variables
	// it returns ("K=V") join the guest's environment; cleanup, when not
	// nil, runs after the guest is gone.
	Prepare func() (env []string, cleanup func(), err error)
	// Systemd boots the guest with systemd as PID 1 (Machine.Systemd), for
	// tests of units, socket activation and sd_notify. The tests run from a
	// unit once basic.target is up; services.go's starters are not meant
	// for such a guest (systemd starts what it is asked to).
	Systemd bool
}

// skipReason is why this host cannot run the lab; set by Main when it runs
// the tests on the host after all.
var skipReason string

// Main is the TestMain of a lab package:
//
//	func TestMain(m *testing.M) { lab.Main(m, lab.Options{Disks: 4}) }
//
// On the host it boots one guest and runs this same test binary inside it
// with the same flags, copying its output to stdout as it comes, and exits
// with its exit status; inside the guest it runs the tests. When the host
// cannot run the lab (not root, no QEMU, no kernel) the tests run on the
// host, where Require skips each of them saying why; under CI=true that is
// a failure instead.
func Main(m *testing.M, opts Options) {
	os.Exit(mainCode(m, opts))
}

func mainCode(m *testing.M, opts Options) int {
	flag.Parse()
	if InGuest() || flagString("test.list") != "" {
		return m.Run()
	}
	if reason := unavailable(); reason != "" {
		if ciRequiresLab() {
			fmt.Fprintf(os.Stderr, "%s; CI=true, so this is a failure: the lab must run in CI\n", reason)
			return 1
		}
		skipReason = reason
		return m.Run()
	}
	selected, err := anyTestSelected()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if !selected {
		return m.Run()
	}
	code, err := runInGuest(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return code
}

// InGuest reports whether this process runs inside a lab guest.
func InGuest() bool { return os.Getenv(GuestEnv) == "1" }

func ciRequiresLab() bool { return os.Getenv("CI") == "true" }

// unavailable says why this host cannot boot the lab, or "" when it can.
func unavailable() string {
	if os.Geteuid() != 0 {
		return "lab: needs root (the guest shares the host's / read-only and the tests run as root inside it)"
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return "lab: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
	}
	if _, err := FindKernel("/boot", "/lib/modules"); err != nil {
		return err.Error()
	}
	return ""
}

// Require makes t a lab test: it returns at once inside the guest; on a
// host that cannot run the lab it skips t with the reason (fails it under
// CI=true). Every test of a lab package calls it first, as do the
// guest-side helpers of this package.
func Require(t testing.TB) {
	t.Helper()
	switch {
	case InGuest():
	case skipReason != "" && ciRequiresLab():
		t.Fatalf("%s; CI=true, so this is a failure", skipReason)
	case skipReason != "":
		t.Skip(skipReason)
	default:
		t.Fatal("lab: not inside a lab guest: the package's TestMain must call lab.Main")
	}
}

func flagString(name string) string {
	if f := flag.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

func flagDuration(name string) time.Duration {
	if f := flag.Lookup(name); f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			if d, ok := g.Get().(time.Duration); ok {
				return d
			}
		}
	}
	return 0
}

// anyTestSelected asks this test binary (-test.list) whether -test.run
// matches any test, so that `go test -run Other ./...` does not boot a guest
// to run nothing.
func anyTestSelected() (bool, error) {
	pattern := flagString("test.run")
	if pattern == "" {
		return true, nil
	}
	top, _, _ := strings.Cut(pattern, "/")
	if _, err := regexp.Compile(top); err != nil {
		return true, nil // m.Run reports a bad pattern better than we would
	}
	exe, err := os.Executable()
	if err != nil {
		return false, fmt.Errorf("lab: %w", err)
	}
	out, err := exec.Command(exe, "-test.list", top).Output()
	if err != nil {
		return false, fmt.Errorf("lab: %s -test.list: %w", exe, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Test") {
			return true, nil
		}
	}
	return false, nil
}

const (
	defaultTimeout  = 15 * time.Minute
	defaultDiskSize = 1 << 30
	// guestOverhead is what the bound keeps beyond the tests' own
	// -test.timeout: the boot, the power-off, and under a loaded 2-core
	// machine some more. The inner timeout firing first gives a goroutine
	// dump of the hung test instead of a bare kill.
	guestOverhead = 90 * time.Second
)

// runInGuest boots the guest and runs this test binary in it.
func runInGuest(opts Options) (int, error) {
	start := time.Now()
	img, err := PrepareImage(CacheDir())
	if err != nil {
		return -1, err
	}
	env := guestEnv(opts)
	if opts.Prepare != nil {
		extra, cleanup, err := opts.Prepare()
		if cleanup != nil {
			defer cleanup()
		}
		if err != nil {
			return -1, fmt.Errorf("lab: prepare: %w", err)
		}
		env = append(env, extra...)
	}
	bound := opts.Timeout
	if bound == 0 {
		bound = defaultTimeout
	}
	if d := flagDuration("test.timeout"); d > 0 && d < bound {
		bound = d
	}
	inner := bound - guestOverhead
	if inner < bound/2 {
		inner = bound / 2
	}
	exe, err := os.Executable()
	if err != nil {
		return -1, fmt.Errorf("lab: %w", err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return -1, fmt.Errorf("lab: %w", err)
	}
	dir, err := os.MkdirTemp("", "lab-")
	if err != nil {
		return -1, fmt.Errorf("lab: %w", err)
	}
	defer os.RemoveAll(dir)
	disks := make([]int64, opts.Disks)
	for i := range disks {
		disks[i] = opts.DiskSize
		if disks[i] == 0 {
			disks[i] = defaultDiskSize
		}
	}
	m := &Machine{Image: img, Dir: dir, Disks: disks, MemoryMiB: opts.MemoryMiB, CPUs: opts.CPUs, Systemd: opts.Systemd}
	ctx, cancel := context.WithTimeoutCause(context.Background(), bound-time.Since(start),
		fmt.Errorf("the lab's bound of %v", bound))
	defer cancel()
	script := RunScript(cwd, env, exe, guestArgs(os.Args[1:], inner))
	code, err := m.Run(ctx, script, os.Stdout)
	if flagString("test.v") != "false" && flagString("test.v") != "" {
		fmt.Fprintf(os.Stdout, "lab: kernel %s, %s; %s\n", img.Kernel.Version, bootTime(m), time.Since(start).Round(100*time.Millisecond))
	}
	return code, err
}

// guestEnv is the host's environment as the guest's test binary sees it.
func guestEnv(opts Options) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, GuestEnv+"=") || strings.HasPrefix(kv, disksEnv+"=") {
			continue
		}
		if strings.HasPrefix(kv, "PATH=") {
			kv = "PATH=" + withSbin(strings.TrimPrefix(kv, "PATH="))
		}
		env = append(env, kv)
	}
	return append(env, GuestEnv+"=1", disksEnv+"="+strconv.Itoa(opts.Disks))
}

// withSbin adds the sbin directories, where the storage tools live.
func withSbin(path string) string {
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if !strings.Contains(":"+path+":", ":"+d+":") {
			path += ":" + d
		}
	}
	return path
}

// guestArgs are the host's test flags for the guest: the same, with the
// tests' own timeout set inside the guest's bound.
func guestArgs(args []string, inner time.Duration) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "test.timeout" {
			if !hasValue && i+1 < len(args) {
				i++
			}
			continue
		}
		out = append(out, a)
	}
	return append(out, "-test.timeout="+inner.String())
}

// RunScript is a /bin/sh script that runs argv in dir with exactly env.
func RunScript(dir string, env []string, exe string, args []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cd %s || exit 125\nexec /usr/bin/env -i", shellQuote(dir))
	for _, kv := range env {
		b.WriteString(" \\\n\t" + shellQuote(kv))
	}
	b.WriteString(" \\\n\t" + shellQuote(exe))
	for _, a := range args {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString("\n")
	return b.String()
}

// shellQuote quotes s for /bin/sh: inside single quotes only the quote
// itself needs care.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var bootLine = regexp.MustCompile(`lab-init: up after ([0-9.]+) s`)

// bootTime reads how long the guest took to come up from its console.
func bootTime(m *Machine) string {
	b, err := os.ReadFile(m.ConsolePath())
	if err != nil {
		return "no console"
	}
	if s := bootLine.FindSubmatch(b); s != nil {
		return "guest up after " + string(s[1]) + " s"
	}
	return "guest never came up"
}

var (
	diskMu   sync.Mutex
	nextDisk int
)

// Disk hands the test a fresh disk of the guest (/dev/vdX) that no other
// test of the package has had, and fails the test when all of those
// lab.Main was asked for are taken.
func Disk(t testing.TB) string {
	t.Helper()
	Require(t)
	n, _ := strconv.Atoi(os.Getenv(disksEnv))
	diskMu.Lock()
	i := nextDisk
	if i < n {
		nextDisk++
	}
	diskMu.Unlock()
	if i >= n {
		t.Fatalf("lab: all %d disks of this guest are taken: ask lab.Main for more (Options.Disks)", n)
	}
	link := fmt.Sprintf("/dev/disk/by-id/virtio-lab%d", i)
	dev, err := filepath.EvalSymlinks(link)
	if err != nil {
		t.Fatalf("lab: disk %d: %v (did udev run?)", i, err)
	}
	return dev
}
