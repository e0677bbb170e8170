#!/bin/sh
# The lab guest's init. The kernel runs it from the initramfs as PID 1 (stage
# 1); it then runs again as PID 1 in the host's userland (stage 2). Every line
# written to the console ends up in the tail a failing run shows.
#
# Stage 1 (initramfs, busybox only): load the modules listed in /modules (the
# ones the stock kernel has as modules but the root needs: virtio, 9p,
# overlay), mount the host's / read-only over 9p with a tmpfs overlay on top,
# mount the run's exchange directory at /lab, and switch to it.
#
# Stage 2 (the host's userland, as the new root): the mounts a Linux system
# expects, loopback network, udev; then /lab/run.sh with its output in
# /lab/out and its exit status in /lab/rc, and power off. A guest that never
# writes /lab/rc has crashed or hung, and the host says so. When the host asks
# for systemd as PID 1 (Machine.Systemd), it writes /lab/systemd.sh, which
# replaces stage 2: it sets up units that do the same and execs systemd.

fail() {
	echo "lab-init: $*" >/dev/console
	# panic=-1 and QEMU's -no-reboot turn PID 1's exit into a power-off.
	exit 1
}

stage1() {
	/bin/busybox --install -s /bin
	export PATH=/bin
	mount -t proc proc /proc || fail "mount /proc"
	mount -t sysfs sysfs /sys || fail "mount /sys"
	mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
	while read -r mod; do
		insmod "/$mod" || fail "insmod $mod"
	done </modules
	mkdir -p /host /rw /newroot
	# msize: 9p moves at most this much per request; 512 KiB makes reading
	# the host's binaries several times faster than the 8 KiB default.
	# cache=loose: the host's files do not change under a run.
	mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose hostroot /host ||
		fail "mount the host's / over 9p"
	mount -t tmpfs -o mode=0755 tmpfs /rw || fail "mount the overlay's tmpfs"
	mkdir -p /rw/upper /rw/work
	mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
		fail "mount the overlay"
	mkdir -p /newroot/lab
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 lab /newroot/lab ||
		fail "mount the exchange share"
	cp /init /newroot/lab-init || fail "copy init"
	mount --move /dev /newroot/dev || fail "move /dev"
	umount /proc /sys
	exec switch_root /newroot /bin/sh /lab-init stage2
	fail "switch_root"
}

stage2() {
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	if [ -e /lab/systemd.sh ]; then
		exec /bin/sh /lab/systemd.sh
		fail "exec /lab/systemd.sh"
	fi
	mount -t proc proc /proc || fail "mount /proc"
	mount -t sysfs sysfs /sys || fail "mount /sys"
	mkdir -p /dev/pts /dev/shm
	mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
	mount -t tmpfs tmpfs /dev/shm
	mount -t tmpfs -o mode=0755 tmpfs /run || fail "mount /run"
	mkdir -p /run/lock /run/user
	mount -t configfs configfs /sys/kernel/config 2>/dev/null
	echo 1 >/proc/sys/kernel/sysrq
	hostname lab
	ip link set lo up || fail "loopback up"
	udevd=/lib/systemd/systemd-udevd
	[ -x "$udevd" ] || udevd=/usr/lib/systemd/systemd-udevd
	[ -x "$udevd" ] || fail "no systemd-udevd (apt-get install udev)"
	"$udevd" --daemon || fail "start udevd"
	# Replay only the block devices' coldplug events (the disks' by-id
	# links): the rest would have udev load modules for the emulated
	# chipset and CPU, seconds under TCG for nothing a test uses. Devices
	# that appear later (device-mapper, scsi_debug, iSCSI) get their events
	# as usual.
	udevadm trigger --action=add --subsystem-match=block
	udevadm settle --timeout=60 || echo "lab-init: udevadm settle timed out" >/dev/console
	echo "lab-init: up after $(cut -d' ' -f1 /proc/uptime) s" >/dev/console
	sh /lab/run.sh >/lab/out 2>&1 </dev/null
	echo $? >/lab/rc.tmp && mv /lab/rc.tmp /lab/rc
	echo "lab-init: done after $(cut -d' ' -f1 /proc/uptime) s, powering off" >/dev/console
	sync
	# reboot(2) powers off before it returns; a failure falls through to
	# PID 1's exit, which panic=-1 and -no-reboot also end the run with.
	/bin/busybox poweroff -f
	fail "no power-off"
}

case "$1" in
stage2) stage2 ;;
*) stage1 ;;
esac
