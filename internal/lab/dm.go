package lab

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// sectorSize is device-mapper's unit.
const sectorSize = 512

// dmOffset is where a FaultyDisk starts on its disk: past LVM's label
// sectors, so that LVM does not find the same PV on the disk and on the
// device-mapper device over it (it then refuses the VG as a duplicate).
const dmOffset = 1 << 20

// FaultyDisk is a device-mapper device over one of the guest's disks, whose
// table a test changes to make part of it fail (dm-error) or all of it
// wait (a suspended device queues its I/O): the storage under a PV, a
// filesystem or anything else, failing where and when the test says.
type FaultyDisk struct {
	// Path is /dev/mapper/NAME, what the test builds its storage on.
	Path string
	name string
	disk string
	// sectors is the device's size.
	sectors   int64
	suspended bool
}

// NewFaultyDisk makes a healthy device named name over a fresh disk of the
// guest; it is removed when the test ends (after the test's own clean-ups,
// which come later and run first).
func NewFaultyDisk(t testing.TB, name string) *FaultyDisk {
	t.Helper()
	disk := Disk(t)
	size, err := strconv.ParseInt(strings.TrimSpace(Run(t, "blockdev", "--getsz", disk)), 10, 64)
	if err != nil {
		t.Fatalf("lab: size of %s: %v", disk, err)
	}
	f := &FaultyDisk{Path: "/dev/mapper/" + name, name: name, disk: disk, sectors: size - dmOffset/sectorSize}
	Run(t, "dmsetup", "create", name, "--table", f.linear(0, f.sectors))
	t.Cleanup(func() {
		Try("dmsetup", "resume", name)
		Try("dmsetup", "remove", "--retry", name)
	})
	Run(t, "udevadm", "settle")
	return f
}

// Size is the device's size in bytes.
func (f *FaultyDisk) Size() int64 { return f.sectors * sectorSize }

func (f *FaultyDisk) linear(start, n int64) string {
	return fmt.Sprintf("%d %d linear %s %d", start, n, f.disk, dmOffset/sectorSize+start)
}

// ErrorFrom makes every read and write from byte offset (a multiple of 512)
// to the end fail with EIO at once, and what is before it work.
func (f *FaultyDisk) ErrorFrom(t testing.TB, offset int64) {
	t.Helper()
	at := offset / sectorSize
	table := fmt.Sprintf("%d %d error", at, f.sectors-at)
	if at > 0 {
		table = f.linear(0, at) + "\n" + table
	}
	f.swap(t, table)
}

// Heal makes the whole device work again (data the errors kept from being
// written is not there, of course). Writes still cached for the failing
// table are flushed against it first: failing later, once healed, their
// errors would surface in whichever program next syncs the device above
// (an LV, a filesystem) and not in the one whose writes were lost.
func (f *FaultyDisk) Heal(t testing.TB) {
	t.Helper()
	if !f.suspended {
		Try("sync")
	}
	f.swap(t, f.linear(0, f.sectors))
}

// Suspend makes I/O to the device wait (queued in the kernel) until Resume,
// ErrorFrom or Heal, which then completes it with the new table: an I/O
// that hangs, then fails or goes through, as the test decides.
func (f *FaultyDisk) Suspend(t testing.TB) {
	t.Helper()
	Run(t, "dmsetup", "suspend", "--noflush", f.name)
	f.suspended = true
	// A test that ends (fails) with the device suspended would leave its
	// I/O waiting for ever, and the clean-ups registered before (an LVM
	// command, the daemon's end) with it: this one runs before them.
	t.Cleanup(func() { Try("dmsetup", "resume", f.name) })
}

// Resume lets queued I/O go on with the device's current table.
func (f *FaultyDisk) Resume(t testing.TB) {
	t.Helper()
	Run(t, "dmsetup", "resume", f.name)
	f.suspended = false
}

// swap loads a new table and makes it live: I/O queued by a suspend goes
// to the new table.
func (f *FaultyDisk) swap(t testing.TB, table string) {
	t.Helper()
	Run(t, "dmsetup", "load", f.name, "--table", table)
	Run(t, "dmsetup", "resume", f.name)
	f.suspended = false
}
