// Package rbde2e holds end-to-end tests of rbd pools: the real virtstoraged
// binary, driven by real virsh, on a real single-node Ceph cluster that
// TestMain starts once for the package (internal/cephlab) and stops at the
// end; the same scripts through libvirtd 9.0's rbd driver, compared; two
// daemons sharing one cluster; and faults (an OSD stopped mid-upload, the
// monitor stopped, a wrong key). The tests need root and the Ceph packages
// and skip, saying why, without them (they fail instead under CI=true). It
// has no non-test code.
package rbde2e
