#!/bin/sh
# Stage 2 of a lab guest booted with systemd as PID 1 (Machine.Systemd). The
# host writes this file as /lab/systemd.sh; init.sh's stage 2 execs it, as
# PID 1, in the host's userland right after switch_root (stage 1 and the
# exchange share are as in every guest). It sets the guest's systemd up in the
# overlay's /etc (nothing reaches the host) and execs /lib/systemd/systemd,
# which boots to lab.target: basic.target, then lab-run.service, which runs
# /lab/run.sh as stage 2 does (output in /lab/out, exit status in /lab/rc) and
# powers off. Every line here goes to the console, whose tail a failing run
# shows.

fail() {
	echo "lab-systemd: $*" >/dev/console
	# PID 1's exit: panic=-1 and QEMU's -no-reboot end the run.
	exit 1
}

systemd=/lib/systemd/systemd
[ -x "$systemd" ] || systemd=/usr/lib/systemd/systemd
[ -x "$systemd" ] || fail "no /lib/systemd/systemd (apt-get install systemd)"
etc=/etc/systemd/system
mkdir -p "$etc" || fail "mkdir $etc"

# The host's fstab names the host's disks: their device units would wait
# out their timeouts and fail local-fs.target. The guest's mounts are made.
: >/etc/fstab || fail "empty /etc/fstab"

# Debian clears /tmp at boot (tmp.conf's D line). The guest's /tmp is the
# host's under the overlay, with the test binary go test built there: its
# removal would whiteout every file of the host's /tmp (tens of seconds over
# 9p) and the binary the run is about to exec.
mkdir -p /etc/tmpfiles.d
echo 'd /tmp 1777 root root -' >/etc/tmpfiles.d/tmp.conf || fail "tmpfiles.d/tmp.conf"

# What cannot work or is of no use in the guest, each costing seconds under
# TCG: networking beyond loopback (which PID 1 brings up itself), logins,
# time sync, the host's storage daemons (a test starts its own), timers, and
# the caches a first boot would rebuild.
for unit in \
	getty.target getty@.service serial-getty@.service console-getty.service autovt@.service \
	systemd-networkd.service systemd-networkd.socket systemd-networkd-wait-online.service \
	systemd-resolved.service networking.service ifupdown-pre.service \
	systemd-timesyncd.service systemd-pstore.service timers.target \
	multipathd.service multipathd.socket open-iscsi.service iscsid.service iscsid.socket \
	rpcbind.service rpcbind.socket lvm2-monitor.service blk-availability.service \
	nvmefc-boot-connections.service nvmf-autoconnect.service \
	systemd-remount-fs.service systemd-fsck-root.service systemd-firstboot.service \
	systemd-hwdb-update.service ldconfig.service systemd-update-done.service \
	systemd-journal-catalog-update.service systemd-machine-id-commit.service; do
	ln -sf /dev/null "$etc/$unit" || fail "mask $unit"
done

# Only the block devices' coldplug events (the disks' by-id links), as in
# init.sh: the rest would have udev load modules for the emulated chipset.
mkdir -p "$etc/systemd-udev-trigger.service.d"
cat >"$etc/systemd-udev-trigger.service.d/lab.conf" <<'EOF' || fail "udev trigger drop-in"
[Service]
ExecStart=
ExecStart=-/bin/udevadm trigger --type=devices --action=add --subsystem-match=block
EOF

# A boot that falls into emergency mode would sit there until the host's
# bound: say why on the console and power off instead.
cat >"$etc/emergency.service" <<'EOF' || fail "emergency.service"
[Unit]
Description=Lab emergency: power off
DefaultDependencies=no
SuccessAction=poweroff-immediate
FailureAction=poweroff-immediate
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "lab-systemd: emergency mode, failed units:" >/dev/console; systemctl --failed --no-pager >/dev/console 2>&1; journalctl -b -p warning --no-pager -n 40 >/dev/console 2>&1'
EOF

cat >/lab-systemd-run <<'EOF' || fail "write /lab-systemd-run"
#!/bin/sh
echo "lab-init: up after $(cut -d' ' -f1 /proc/uptime) s (systemd)" >/dev/console
sh /lab/run.sh >/lab/out 2>&1 </dev/null
echo $? >/lab/rc.tmp && mv /lab/rc.tmp /lab/rc
echo "lab-init: done after $(cut -d' ' -f1 /proc/uptime) s, powering off" >/dev/console
sync
# reboot(2) as init.sh's stage 2 ends: /lab/rc is written and nothing is
# left to stop cleanly.
/bin/busybox poweroff -f
EOF

cat >"$etc/lab-run.service" <<'EOF' || fail "lab-run.service"
[Unit]
Description=The lab's /lab/run.sh
# Should the wrapper fail before its own power-off.
FailureAction=poweroff-immediate
[Service]
Type=oneshot
ExecStart=/bin/sh /lab-systemd-run
TimeoutStartSec=infinity
StandardOutput=journal+console
StandardError=journal+console
EOF

cat >"$etc/lab.target" <<'EOF' || fail "lab.target"
[Unit]
Description=The lab's run under systemd
Requires=basic.target lab-run.service
After=basic.target
AllowIsolate=yes
EOF
ln -sf "$etc/lab.target" "$etc/default.target" || fail "default.target"

echo "lab-systemd: exec $systemd" >/dev/console
exec "$systemd"
fail "exec $systemd"
