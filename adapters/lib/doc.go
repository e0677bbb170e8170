// Package lib groups the libraries that the port implementations of
// adapters/ share (block devices, image formats, qcow2, the mount table,
// pool mounts, libvirt's system and command errors, the RelaxNG check of
// pool and volume XML). A library imports
// ports, domain and other libraries, never a port implementation or the
// daemon's plumbing (internal/archtest), so that sharing it ties no backend
// to another.
package lib
