// Package labe2e proves the storage backends on a real kernel storage stack:
// its tests run inside the storage lab (internal/lab: Debian's kernel under
// QEMU over the host's userland), where they drive our daemon with virsh and
// go-libvirt against real LVM and device-mapper, a real NFS server and real
// multipath maps, and compare with libvirtd 9.0 run in the same guest. It has
// no non-test code.
package labe2e
