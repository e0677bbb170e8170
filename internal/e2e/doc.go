// Package e2e holds end-to-end tests of the whole virtstoraged binary driven by
// real clients (virsh, virt-admin, libvirt-python, go-libvirt), and
// differential tests that run the same virsh scenario against libvirt's own
// libvirtd and compare the normalised outputs. It has no non-test code.
package e2e
