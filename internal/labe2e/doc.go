// Package labe2e proves the storage backends on a real kernel storage stack.
// Its packages run inside the storage lab (internal/lab: Debian's kernel
// under QEMU over the host's userland), one guest each, booted in parallel
// by go test: lvmlab (logical and thin pools on LVM and device-mapper, I/O
// faults under a PV), nfsmpathlab (netfs on a real NFS server, mpath on
// real multipath maps, the server stopped mid-operation), disklab (disk
// pools on virtio disks and loop devices, devices in use, the conformance
// suite) and diskdifflab (the disk scenarios against libvirtd). They drive our
// daemon with virsh and go-libvirt and compare with libvirtd 9.0 run in the
// same guest; labkit holds what they share. This package has no code.
package labe2e
