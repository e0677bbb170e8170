// Package labe2e proves the storage backends on a real kernel storage stack.
// Its packages run inside the storage lab (internal/lab: Debian's kernel
// under QEMU over the host's userland), one guest each, booted in parallel
// by go test:
//
//   - lvmlab: logical and thin pools on LVM and device-mapper, I/O faults
//     under a PV;
//   - nfsmpathlab: netfs on a real NFS server, mpath on real multipath maps,
//     the server stopped mid-operation;
//   - lukslab: LUKS-encrypted LVs with passphrases from libvirtd's secret
//     driver;
//   - sanlab: iscsi on tgt targets with CHAP, scsi on scsi_debug hosts;
//     sandifflab: the same against libvirtd 9.0;
//   - disklab: disk pools on virtio disks and loop devices, devices in use,
//     the conformance suite; diskdifflab: the disk scenarios against
//     libvirtd 9.0;
//   - conformlvmlab, conformnfsmpathlab and sanconformlab: the backends'
//     conformance suite (internal/backendtest) for logical, netfs, mpath,
//     iscsi and scsi on the same real stacks;
//   - systemdlab: its guest boots with systemd as PID 1 and proves the Debian
//     package there: dpkg -i, socket activation, sd_notify, reload, stop and
//     the idle timeout.
//
// They drive our daemon with virsh and go-libvirt and compare with libvirtd
// 9.0 run in the same guest; labkit holds what they share. A long package is
// split rather than grown, since go test runs two guests at a time. This
// package has no code.
package labe2e
