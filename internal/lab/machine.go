package lab

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine is one QEMU guest running the stock kernel over the host's own
// userland. Fill it in and call Run; a Machine runs once.
type Machine struct {
	// Image is what boots (see PrepareImage).
	Image Image
	// Dir is the exchange directory, shared read-write with the guest at
	// /lab: run.sh, out, rc and console.log live there, and the disk
	// images under Dir/disks. It must exist and should be empty.
	Dir string
	// Disks are the sizes in bytes of fresh sparse disk images, attached as
	// virtio disks with serials lab0, lab1, ... (/dev/disk/by-id/virtio-labN).
	Disks []int64
	// MemoryMiB and CPUs size the guest (1536 and 1 when zero).
	MemoryMiB int
	CPUs      int
	// QEMU is the emulator binary (qemu-system-x86_64 from PATH when empty).
	QEMU string
	// Systemd boots the guest's userland with systemd as PID 1 instead of
	// init.sh's stage 2: the script runs from a unit once basic.target is
	// reached, and the unit powers the guest off (systemd.sh says what is
	// masked and why). Off, the guest is as it always was.
	Systemd bool
}

// systemdStage is written as /lab/systemd.sh for a Systemd machine; init.sh's
// stage 2 execs it when it is there. Being a file of the run rather than of
// the initramfs, it changes without a new initramfs.
//
//go:embed systemd.sh
var systemdStage []byte

// GuestError is a run that ended without the command's exit status: the
// guest crashed, hung past its bound, or QEMU could not start. Console holds
// the tail of the guest's serial console, where the kernel and init.sh say
// what went wrong.
type GuestError struct {
	Reason  string
	Console string
}

func (e *GuestError) Error() string {
	return fmt.Sprintf("lab: %s\n--- guest console (tail) ---\n%s--- end of guest console ---", e.Reason, e.Console)
}

// consoleTail is how much of the console a failure shows: enough for a
// kernel oops with its stack, or init.sh's last steps.
const consoleTail = 12 * 1024

// Run boots the guest, runs script with /bin/sh inside it once the machine
// is up (mounts, loopback, udev), copies everything the script writes to out
// as it comes, and returns the script's exit status once the guest has
// powered off. The whole run, boot included, is bound by ctx: past it QEMU is
// killed. An error means the exit status never came back (*GuestError) or
// the run could not be prepared.
func (m *Machine) Run(ctx context.Context, script string, out io.Writer) (int, error) {
	if err := m.prepare(script); err != nil {
		return -1, err
	}
	args := m.qemuArgs()
	qemu := m.QEMU
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	var qemuOut bytes.Buffer
	cmd := exec.Command(qemu, args...)
	cmd.Stdout, cmd.Stderr = &qemuOut, &qemuOut
	// QEMU must not outlive the test binary, whatever kills it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("lab: start %s: %w", qemu, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	outPath := filepath.Join(m.Dir, "out")
	f, err := os.Open(outPath)
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return -1, fmt.Errorf("lab: %w", err)
	}
	defer f.Close()
	// The guest writes out through 9p, so the host sees each write as it
	// happens; polling the file is the whole streaming protocol.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var waitErr error
	killed := false
loop:
	for {
		if _, err := io.Copy(out, f); err != nil {
			return -1, fmt.Errorf("lab: copy the guest's output: %w", err)
		}
		select {
		case waitErr = <-exited:
			break loop
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			waitErr = <-exited
			killed = true
			break loop
		case <-tick.C:
		}
	}
	if _, err := io.Copy(out, f); err != nil {
		return -1, fmt.Errorf("lab: copy the guest's output: %w", err)
	}
	if killed {
		return -1, m.guestError(fmt.Sprintf("the guest did not power off within its bound (%v): killed", context.Cause(ctx)))
	}
	rc, err := os.ReadFile(filepath.Join(m.Dir, "rc"))
	if err != nil {
		reason := "the guest powered off without the command's exit status (crashed?)"
		if waitErr != nil {
			reason = fmt.Sprintf("QEMU failed (%v) before the command's exit status came back: %s",
				waitErr, strings.TrimSpace(qemuOut.String()))
		}
		return -1, m.guestError(reason)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(rc)))
	if err != nil {
		return -1, m.guestError(fmt.Sprintf("unreadable exit status %q", rc))
	}
	return code, nil
}

func (m *Machine) guestError(reason string) *GuestError {
	b, _ := os.ReadFile(m.ConsolePath())
	return &GuestError{Reason: reason, Console: string(tail(b, consoleTail))}
}

// ConsolePath is the file QEMU writes the guest's serial console to.
func (m *Machine) ConsolePath() string { return filepath.Join(m.Dir, "console.log") }

func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	b = b[len(b)-n:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b
}

// prepare writes run.sh, an empty out and the disk images.
func (m *Machine) prepare(script string) error {
	if err := os.WriteFile(filepath.Join(m.Dir, "run.sh"), []byte(script), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.WriteFile(filepath.Join(m.Dir, "out"), nil, 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	stage := filepath.Join(m.Dir, "systemd.sh")
	if m.Systemd {
		if err := os.WriteFile(stage, systemdStage, 0o644); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	} else if err := os.Remove(stage); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("lab: %w", err)
	}
	for _, p := range []string{"rc", "console.log"} {
		if err := os.Remove(filepath.Join(m.Dir, p)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("lab: %w", err)
		}
	}
	if len(m.Disks) > 0 {
		if err := os.MkdirAll(filepath.Join(m.Dir, "disks"), 0o755); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	for i, size := range m.Disks {
		f, err := os.Create(m.diskPath(i))
		if err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		err = f.Truncate(size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("lab: disk image %d: %w", i, err)
		}
	}
	return nil
}

func (m *Machine) diskPath(i int) string {
	return filepath.Join(m.Dir, "disks", fmt.Sprintf("lab%d.img", i))
}

// kernelArgs: quiet keeps the console to warnings and init.sh's lines;
// panic=-1 with -no-reboot ends QEMU on a crash instead of rebooting; the
// rest skip probes a lab guest has no use for, which cost seconds under TCG.
const kernelArgs = "console=ttyS0 quiet panic=-1 mitigations=off i8042.noaux i8042.nokbd 8250.nr_uarts=1 tsc=reliable no_timer_check"

func (m *Machine) qemuArgs() []string {
	mem, cpus := m.MemoryMiB, m.CPUs
	if mem == 0 {
		mem = 1536
	}
	if cpus == 0 {
		cpus = 1
	}
	accel := "tcg"
	if cpus > 1 {
		accel = "tcg,thread=multi"
	}
	args := []string{
		// No default devices: no NIC (the guest's network is loopback), no
		// VGA, no monitor; the serial console goes to a file.
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		// /dev/kvm does not run guests on the machines the lab was built on
		// (a Firecracker VM): software emulation it is.
		// qemu64, TCG's default model: SSE2 only. "max" offers AVX and AVX2,
		// whose emulation is new in QEMU 7.2 and which the kernel and glibc
		// then use: a module's signature check failed once under it (a
		// miscomputed hash), never under qemu64. Go binaries need no more.
		"-accel", accel, "-cpu", "qemu64",
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-kernel", m.Image.Boot, "-initrd", m.Image.Initramfs, "-append", kernelArgs,
		"-chardev", "file,id=con,path=" + qemuEscape(m.ConsolePath()), "-serial", "chardev:con",
		"-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
		"-fsdev", "local,id=lab,path=" + qemuEscape(m.Dir) + ",security_model=none,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=lab,mount_tag=lab",
	}
	for i := range m.Disks {
		// cache=unsafe: the images are thrown away with the run, so the
		// host need not flush them.
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,if=none,id=disk%d,format=raw,cache=unsafe,discard=unmap", qemuEscape(m.diskPath(i)), i),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=disk%d,serial=lab%d", i, i))
	}
	return args
}

// qemuEscape doubles the commas of a path that goes into a QEMU option list.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }
