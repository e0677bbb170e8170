// Package packaging holds the tests of what installs the daemon: `make
// install` (scripts/install.sh) and `make deb` (scripts/deb.sh, dist/deb),
// run for real into temporary trees and a throwaway dpkg root. The checks a
// booted systemd host runs on the installed package are in
// scripts/systemd-check.sh, which internal/labe2e/systemdlab runs in the
// storage lab under systemd as PID 1.
package packaging
