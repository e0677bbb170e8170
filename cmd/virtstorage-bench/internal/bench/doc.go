// Package bench measures a libvirt-compatible storage daemon from the outside, the way
// /work/shared/bench/storbench.py does, but through the generated client (gen/remote over
// xdr/rpcconn) instead of libvirt's C library: it is the proof that gen/ serves other
// tools, and its client costs far less CPU per call than Python, so a fast daemon is not
// hidden behind the harness.
//
// A Runner runs scenarios against one or two Targets, interleaved over several rounds;
// the Report holds every sample and prints as a table of medians [min-max] with the
// ratio B/A per metric.
package bench
