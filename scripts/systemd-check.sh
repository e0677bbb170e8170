#!/bin/bash
# systemd-check.sh PACKAGE.deb: installs the package on a booted system whose
# PID 1 is systemd (the storage lab's guest) and checks it behaves as a
# system daemon should: units enabled, sockets with their units' modes and
# group, the first client starting the daemon by activation, READY=1 seen by
# systemd, reload (SIGHUP), stop, the idle timeout (-t) and the next client
# starting it again, then removal and purge. internal/labe2e/systemdlab runs it
# in the lab under systemd as PID 1. Run as root; it changes the
# system it runs on (meant for a throwaway guest). Prints "ok ..." or
# "FAIL ..." per check and exits 1 if any failed, 2 if it cannot run.
set -uo pipefail

deb=${1:?usage: systemd-check.sh PACKAGE.deb}
failed=0
ok() { echo "ok   $*"; }
bad() {
	echo "FAIL $*"
	failed=1
}
# expect WHAT WANT COMMAND...: the command's output, trimmed, equals WANT.
expect() {
	local what=$1 want=$2 got
	shift 2
	got=$("$@" 2>&1 | tr -s '\n' ' ' | sed 's/ *$//')
	if [ "$got" = "$want" ]; then ok "$what"; else bad "$what: got '$got', want '$want'"; fi
}
# succeed WHAT COMMAND...: the command exits 0.
succeed() {
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$what"; else bad "$what: $* failed: $out"; fi
}
# within SECONDS WHAT COMMAND...: the command comes to exit 0 within SECONDS.
within() {
	local limit=$1 what=$2 end
	shift 2
	# A deadline, not a count of tries: one try (a virsh) takes a second
	# or more under emulation.
	end=$((SECONDS + limit))
	while [ "$SECONDS" -le "$end" ]; do
		if "$@" >/dev/null 2>&1; then
			ok "$what"
			return 0
		fi
		sleep 0.1
	done
	bad "$what (not within ${limit} s)"
	return 1
}
prop() { systemctl show -p "$2" --value "$1"; }
mainpid() { prop virtstoraged.service MainPID; }

if [ "$(id -u)" != 0 ] || [ "$(cat /proc/1/comm 2>/dev/null)" != systemd ] || [ ! -d /run/systemd/system ]; then
	echo "systemd-check.sh: needs root on a system booted with systemd as PID 1" >&2
	exit 2
fi

SOCKETS=(virtstoraged.socket virtstoraged-ro.socket virtstoraged-admin.socket)
URI=storage:///system
ADMIN_URI=virtstoraged:///system

# Debian 12's libvirt clients are built for the monolithic libvirtd
# (remote_default_mode=legacy): told nothing, they send storage:///system to
# /run/libvirt/libvirt-sock. README ("Install") has the administrator set
# direct mode; so does this check, and puts the file back at the end.
conf=/etc/libvirt/libvirt.conf
backup=$(mktemp)
had_conf=0
if [ -e "$conf" ]; then
	cp -p "$conf" "$backup"
	had_conf=1
fi
restore() {
	if [ "$had_conf" = 1 ]; then cp -p "$backup" "$conf"; else rm -f "$conf"; fi
	rm -f "$backup"
}
trap restore EXIT
mkdir -p /etc/libvirt
grep -q '^remote_mode *= *"direct"' "$conf" 2>/dev/null || echo 'remote_mode = "direct"' >>"$conf"

# --- install -----------------------------------------------------------------
succeed "dpkg -i $deb" dpkg -i "$deb"
for unit in virtstoraged.service "${SOCKETS[@]}"; do
	expect "$unit enabled" enabled systemctl is-enabled "$unit"
done
# The postinst starts the sockets, unless a policy-rc.d forbids it (a
# container image's, exit 101).
if [ ! -x /usr/sbin/policy-rc.d ]; then
	for unit in "${SOCKETS[@]}"; do
		expect "$unit started by the package" active systemctl is-active "$unit"
	done
fi
# As libvirt's, the read-only and admin sockets are units of their own
# (sockets.target starts all three at boot; the service Requires= them, so a
# client of the main socket would bring them up too): started together here,
# so that their files are checked before any client came.
succeed "systemctl start virtstoraged.socket and -ro, -admin" systemctl start "${SOCKETS[@]}"
for unit in "${SOCKETS[@]}"; do
	expect "$unit listening" active systemctl is-active "$unit"
done
expect "the daemon waits for its first client" inactive systemctl is-active virtstoraged.service

# The sockets carry the mode and group their units give them.
for unit in "${SOCKETS[@]}"; do
	path=$(prop "$unit" Listen | sed 's/ (Stream)$//')
	mode=$(prop "$unit" SocketMode)
	group=$(prop "$unit" SocketGroup)
	expect "$path mode and group from $unit" "$(printf '%o' "$((8#$mode))"):${group:-root}" stat -c '%a:%G' "$path"
done

# --- activation --------------------------------------------------------------
succeed "virsh -c $URI pool-list starts the daemon" virsh -c "$URI" pool-list --all
expect "service active (running) after READY=1" "active running" \
	sh -c 'systemctl show -p ActiveState --value virtstoraged.service; systemctl show -p SubState --value virtstoraged.service'
expect "service is Type=notify" notify prop virtstoraged.service Type
[ -n "$(prop virtstoraged.service ActiveEnterTimestamp)" ] && ok "systemd recorded when it became ready" ||
	bad "no ActiveEnterTimestamp"
pid=$(mainpid)
succeed "read-only socket answers" virsh -r -c "$URI" pool-list --all
succeed "admin socket answers" virt-admin -c "$ADMIN_URI" srv-list
expect "one daemon served all three sockets" "$pid" mainpid

# --- reload ------------------------------------------------------------------
cp -p /etc/libvirt/virtstoraged.conf /etc/libvirt/virtstoraged.conf.check
echo 'log_filters = "1:storage.dir"' >>/etc/libvirt/virtstoraged.conf
# SIGHUP rereads the pool definitions, as libvirtd's does: a definition put in
# /etc/libvirt/storage by hand is a defined pool after the reload.
POOL=systemdcheck
mkdir -p "/var/lib/$POOL"
cat >"/etc/libvirt/storage/$POOL.xml" <<XML
<pool type='dir'>
  <name>$POOL</name>
  <uuid>6f1c1e0e-7a51-4d0b-9a57-2f6e0c1d5a11</uuid>
  <target><path>/var/lib/$POOL</path></target>
</pool>
XML
# virsh pads the names it lists with spaces.
expect "$POOL not defined before the reload" "" sh -c "virsh -c $URI pool-list --all --name | grep '^$POOL *\$'"
succeed "systemctl reload" systemctl reload virtstoraged.service
# systemd 252 (Debian 12) ends the reload job when ExecReload's kill has
# sent SIGHUP, not when the daemon is done (Type=notify-reload, which waits
# for the daemon's READY=1, is systemd 253's): what the reload does is
# awaited, with a bound.
expect "reload kept the process" "$pid" mainpid
within 30 "reload defined $POOL from /etc/libvirt/storage" sh -c "virsh -c $URI pool-list --all --name | grep -q '^$POOL *\$'" ||
	journalctl -b --no-pager -n 30 -u virtstoraged.service
succeed "pool-undefine $POOL" virsh -c "$URI" pool-undefine "$POOL"
within 30 "reload applied the new log_filters" \
	sh -c "virt-admin -c $ADMIN_URI daemon-log-filters | grep -q 'storage\.dir'"
expect "active after reload" active systemctl is-active virtstoraged.service
mv /etc/libvirt/virtstoraged.conf.check /etc/libvirt/virtstoraged.conf

# --- stop, and activation again ----------------------------------------------
succeed "systemctl stop virtstoraged.service" systemctl stop virtstoraged.service
expect "stopped" inactive systemctl is-active virtstoraged.service
expect "stopped cleanly" "success 0" sh -c 'systemctl show -p Result --value virtstoraged.service; systemctl show -p ExecMainStatus --value virtstoraged.service'
expect "sockets still listening" active systemctl is-active virtstoraged.socket
succeed "the next client starts it again" virsh -c "$URI" pool-list --all
expect "running again" active systemctl is-active virtstoraged.service
[ "$(mainpid)" != "$pid" ] && ok "a new process" || bad "same pid $pid after stop and start"

# --- idle timeout ------------------------------------------------------------
cp -p /etc/default/virtstoraged /etc/default/virtstoraged.check
echo 'VIRTSTORAGED_ARGS="--timeout 5"' >>/etc/default/virtstoraged
systemctl daemon-reload
succeed "restart with --timeout 5" systemctl restart virtstoraged.service
pid=$(mainpid)
succeed "a client comes and goes" virsh -c "$URI" pool-list --all
# The daemon exits 5 s after the last client; 60 s bounds a slow guest.
within 60 "idle daemon exits by itself" sh -c '[ "$(systemctl is-active virtstoraged.service)" = inactive ]'
expect "idle exit is a clean one" "success 0" sh -c 'systemctl show -p Result --value virtstoraged.service; systemctl show -p ExecMainStatus --value virtstoraged.service'
succeed "the next client starts it again" virsh -c "$URI" pool-list --all
expect "running again after the idle exit" active systemctl is-active virtstoraged.service
[ "$(mainpid)" != "$pid" ] && ok "a new process after the idle exit" || bad "same pid $pid after the idle exit"
mv /etc/default/virtstoraged.check /etc/default/virtstoraged
systemctl daemon-reload

# --- stop everything, remove, purge -------------------------------------------
succeed "stop service and sockets" systemctl stop virtstoraged.service "${SOCKETS[@]}"
for unit in "${SOCKETS[@]}"; do
	path=$(prop "$unit" Listen | sed 's/ (Stream)$//')
	[ ! -e "$path" ] && ok "$path removed with its socket" || bad "$path left after stop"
done
succeed "dpkg -r virtstoraged-go" dpkg -r virtstoraged-go
[ ! -e /usr/sbin/virtstoraged ] && ok "daemon removed" || bad "/usr/sbin/virtstoraged left after remove"
[ -e /etc/libvirt/virtstoraged.conf ] && ok "config kept on remove" || bad "config removed before purge"
succeed "dpkg -P virtstoraged-go" dpkg -P virtstoraged-go
[ ! -e /etc/libvirt/virtstoraged.conf ] && ok "config purged" || bad "config left after purge"
[ -z "$(find /etc/systemd/system -name 'virtstoraged*' 2>/dev/null)" ] && ok "enablement purged" ||
	bad "enable links left after purge: $(find /etc/systemd/system -name 'virtstoraged*')"

exit "$failed"
