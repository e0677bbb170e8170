// Package adapters holds everything that touches the world, in three roles
// that DESIGN.md's dependency rule (imports point inward) tells apart and
// internal/archtest enforces:
//
//   - port implementations, one package each directly under adapters/: the
//     pool backends (dir, fs, netfs, logical, disk, iscsi, scsi, mpath, rbd),
//     rpc (the driving side), statefile, xmldef, osexec, metrics, polkit,
//     secretclient. They import ports, domain, gen and the libraries, not
//     each other: what two of them share goes into a library. The exceptions
//     are a backend built on another as libvirt's are (fs and netfs on dir's
//     file volumes, iscsi on scsi's LUN scan), and luks and statefile's
//     atomic write, libraries still to move under lib/.
//   - libraries the port implementations share, under lib/ (blockdev,
//     fsmount, imgformat, mountinfo, oserr, qcow2, relaxng): they import no
//     port implementation and no plumbing.
//   - daemon plumbing, under daemon/ (conffile, logconf, process, sockets):
//     what makes the program a daemon (its config file, log setup,
//     daemonizing, listening sockets), imported by cmd alone.
package adapters
