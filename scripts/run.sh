#!/usr/bin/env bash
# make run: start virtstoraged in the foreground under a private --root, with a
# "default" dir pool defined and autostarted the first time. Works as any user:
# nothing outside ROOT is touched.
set -euo pipefail
root=${1:?usage: run.sh ROOT BINARY}
bin=${2:?usage: run.sh ROOT BINARY}
mkdir -p "$root/etc/libvirt/storage/autostart" "$root/run/libvirt" "$root/images"
conf="$root/etc/libvirt/storage/default.xml"
if [ ! -e "$conf" ]; then
	uuid=$(cat /proc/sys/kernel/random/uuid)
	# The same file layout libvirt writes (DESIGN.md "State on disk"); the daemon
	# loads it at start and, through the autostart link, starts the pool.
	cat >"$conf.tmp" <<XML
<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh pool-edit default
or other application using the libvirt API.
-->

<pool type='dir'>
  <name>default</name>
  <uuid>$uuid</uuid>
  <capacity unit='bytes'>0</capacity>
  <allocation unit='bytes'>0</allocation>
  <available unit='bytes'>0</available>
  <source>
  </source>
  <target>
    <path>$root/images</path>
  </target>
</pool>
XML
	chmod 600 "$conf.tmp"
	mv "$conf.tmp" "$conf"
	ln -sfn "$conf" "$root/etc/libvirt/storage/autostart/default.xml"
fi
sock="$root/run/libvirt/virtstoraged-sock"
cat <<MSG
virtstoraged: starting under $root (Ctrl-C stops it)
  in another terminal:
    virsh -c 'storage:///system?socket=$sock' pool-list --all
    virsh -c 'storage:///system?socket=$sock' vol-create-as default disk1.qcow2 1G --format qcow2
    virt-admin -c 'virtstoraged:///system?socket=$root/run/libvirt/virtstoraged-admin-sock' srv-list
MSG
exec "$bin" --root "$root"
