// Package labe2e proves the storage backends on a real kernel storage stack.
// Its packages run inside the storage lab (internal/lab: Debian's kernel
// under QEMU over the host's userland), one guest each, booted in parallel
// by go test: lvmlab (logical and thin pools on LVM and device-mapper, I/O
// faults under a PV) and nfsmpathlab (netfs on a real NFS server, mpath on
// real multipath maps, the server stopped mid-operation). Both drive our
// daemon with virsh and go-libvirt and compare with libvirtd 9.0 run in the
// same guest; labkit holds what they share. systemdlab boots its guest with
// systemd as PID 1 and proves the Debian package there: dpkg -i, socket
// activation, sd_notify, reload, stop and the idle timeout. This package has
// no code.
package labe2e
