// Package backende2e holds end-to-end tests of the fs, netfs, logical and
// mpath pool backends: the real virtstoraged binary, driven by real virsh,
// acting on real loop devices, real filesystems and real LVM metadata (or, for
// mpath, on a fake sysfs tree). The tests need root and the storage tools
// (e2fsprogs, util-linux, lvm2, nfs-common, libvirt-clients) and skip, saying
// why, without them. It has no non-test code.
package backende2e
