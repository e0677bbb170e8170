// Package labe2e proves the storage backends on a real kernel storage stack.
// Its packages run inside the storage lab (internal/lab: Debian's kernel
// under QEMU over the host's userland), one guest each, booted in parallel
// by go test: lvmlab (logical and thin pools on LVM and device-mapper, I/O
// faults under a PV), nfsmpathlab (netfs on a real NFS server, mpath on
// real multipath maps, the server stopped mid-operation) and lukslab
// (LUKS-encrypted LVs with passphrases from libvirtd's secret driver) drive
// our daemon with virsh and go-libvirt and compare with libvirtd 9.0 run in
// the same guest; conformlvmlab and conformnfsmpathlab run the backends'
// conformance suite (internal/backendtest) for logical, netfs and mpath on
// the same real stacks. labkit holds what they share. This package has no
// code.
package labe2e
