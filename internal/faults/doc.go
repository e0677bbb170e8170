// Package faults checks that virtstoraged stays consistent when things go
// wrong: an external command failing at any step of a multi-step operation, a
// filesystem running out of space, and the daemon being killed in the middle
// of a call. The non-test files hold the fault-injection tools the tests share
// (a CommandRunner that fails chosen calls, a stateful LVM simulator); the
// tests drive the real service, backends, codec and state files through them.
package faults
