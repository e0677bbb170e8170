// Package lab is the storage lab: it boots Debian's stock kernel under QEMU
// (software emulation; no KVM needed) over the host's own userland and runs a
// package's tests inside, where device-mapper, LVM, nfsd, iSCSI, SCSI and
// multipath are real. docs/lab.md (in the shared docs) has what was measured.
//
// # The guest
//
// One guest per test package, booted by the package's TestMain. It runs the
// newest kernel in /boot that has its modules in /lib/modules (FindKernel:
// no version is written anywhere), unpacked once into the cache directory so
// that QEMU boots its ELF image directly (UnpackedKernel), with an initramfs
// built by this package, also cached, keyed by kernel version and a hash of
// init.sh, busybox and the modules (Initramfs). Both live in CacheDir
// ($VIRTSTORAGED_LAB_CACHE, else ~/.cache/virtstoraged-lab).
//
// init.sh mounts the host's / read-only over virtio-9p with a tmpfs overlay on
// top (so the guest may write anywhere; nothing reaches the host), mounts
// /proc, /sys, /dev, /run, brings up the loopback interface (the only
// network), starts systemd-udevd and replays the block devices' events. The
// host's files are the guest's: the test binary, the daemon built on the
// host, virsh, lvm2, QEMU's own tools, all run unchanged. Kernel modules load
// on demand from the host's /lib/modules (modprobe, or udev for new devices).
//
// The guest has 1 vCPU and 1.5 GiB by default (Options.CPUs, MemoryMiB).
//
// # Opting in
//
// A package becomes a lab package with a TestMain and a Require at the top of
// every test:
//
//	func TestMain(m *testing.M) {
//		lab.Main(m, lab.Options{Disks: 4})
//	}
//
//	func TestSomething(t *testing.T) {
//		lab.Require(t)
//		dev := lab.Disk(t) // /dev/vdX, fresh and sparse, this test's alone
//		...
//	}
//
// On the host, Main boots the guest and runs the same test binary in it with
// the same flags (-test.run, -test.v, ...), in the same directory, with the
// host's environment plus VIRTSTORAGED_LAB_GUEST=1 and Options.Prepare's
// variables; the output streams back through a read-write 9p share (/lab in
// the guest) as it is written, and the binary exits with the guest's exit
// status. When -test.run selects no test of the package, no guest boots.
//
// Everything that is faster on the host (building a binary) belongs in
// Options.Prepare, which runs there before the boot and hands its results to
// the guest as environment variables. A package that drives our daemon uses
// internal/labe2e/labkit: labkit.PrepareDaemon as its Prepare, and its
// helpers for the daemon, go-libvirt, checksummed data, LVM reports and the
// differential runs against libvirtd (labkit.RunBoth). Each package is one
// guest, and go test boots packages in parallel: a long package is better
// split in two than given more vCPUs (under TCG on a busy 2-core machine a
// second vCPU made the guest slower).
//
// # Inside the guest
//
// A lab test runs as root in a Debian system whose files are the host's:
//
//   - Disk(t) hands out the next fresh disk (/dev/vdX: Options.Disks of them,
//     serials lab0, lab1, ... under /dev/disk/by-id/virtio-labN), each to one
//     test only.
//   - Run, Try and Sh run commands (LC_ALL=C, bounded); Modprobe loads modules
//     from the host's /lib/modules; WaitFor polls, with a bound, for what the
//     kernel or a daemon does asynchronously (a map built after a uevent).
//   - Services start once per guest, at the first test asking, and live until
//     the power-off: StartNFSServer and NFSExport (nfsd on a tmpfs, NFSv3 and
//     NFSv4 with fsid=0 as NFSv4's root, no grace periods to wait out) and
//     StopNFSServer; ISCSITarget (tgtd) and ISCSILogin (open-iscsi's iscsid),
//     which returns the LUN's /dev/disk/by-path link; ScsiDebug (scsi_debug
//     hosts, several paths to one LU) and StartMultipathd (every SCSI disk a
//     map, friendly names) with MultipathMaps. The guest's /etc is writable
//     (the overlay), so a service's configuration is simply written there.
//   - NewFaultyDisk puts a device-mapper device over a disk whose table the
//     test changes: ErrorFrom (dm-error from an offset on), Suspend/Resume (I/O
//     waits), Heal.
//   - The network is loopback only: every server listens on 127.0.0.1.
//   - The daemon and libvirtd run as on any host (testkit.StartDaemon,
//     testkit.StartAnchor: libvirtd 9.0 is on the host, so in the guest).
//
// A new service belongs in services.go with the others: a starter run once
// (service.start), bounded waits for its sockets (poll), and nothing that
// needs systemd. init.sh's stage 2 is where the guest's system is set up.
//
// # Systemd as PID 1
//
// Options.Systemd (Machine.Systemd) replaces stage 2 with systemd, for tests
// of units, socket activation and sd_notify (internal/labe2e/systemdlab).
// Stage 1 and the exchange share are as in every guest; the host writes
// systemd.sh as /lab/systemd.sh, which stage 2 execs as PID 1: it writes
// lab.target (the default target: basic.target, then lab-run.service, which
// runs /lab/run.sh as stage 2 does and powers off), empties the host's fstab,
// keeps /tmp (where go test put the binary) from being cleared, limits udev's
// coldplug to block devices, masks what cannot work or is of no use in the
// guest (networking beyond loopback, gettys, time sync, the host's storage
// daemons, timers, first-boot caches), and turns emergency mode into a
// power-off that prints the failed units. The guest is up in about the time
// of a stage-2 boot plus half a minute under TCG; systemd's own status lines
// are in the console tail of a failure.
//
// # Bounds and failures
//
// The whole guest run, boot and power-off included, is bound by
// Options.Timeout (15 minutes by default) and never outlives the binary's
// -test.timeout; inside, the tests get a -test.timeout 90 s shorter, so that a
// hung test panics with its goroutines before the guest is killed. A guest
// that crashes (a kernel panic ends QEMU: panic=-1, -no-reboot), hangs past
// its bound (QEMU is killed) or ends without the tests' exit status fails the
// package with the tail of the guest's serial console (GuestError). QEMU is
// killed with the test binary whatever kills it (Pdeathsig).
//
// # When the lab cannot run
//
// Not root, no qemu-system-x86_64, or no kernel: the tests run on the host
// instead and Require skips each of them with the reason. Under CI=true that
// is a failure instead (Main exits 1), so CI cannot pass without the lab
// having run. Anything else missing (busybox-static, udev, a tool a test
// needs) is a failure, not a skip: `make test` installs all of it (the
// Makefile's DEB_PKGS). `make lab` runs the lab packages alone.
//
// # Lower level
//
// Machine runs any /bin/sh script in a guest (PrepareImage gives its Image),
// for tests that need a guest without a Go test binary inside, or several
// guests; RunScript builds the script that runs a program with an exact
// environment.
package lab
