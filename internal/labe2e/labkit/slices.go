package labkit

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/internal/lab"
)

// The conformance suite (internal/backendtest) makes a pool of its own for
// almost every test, more pools than the lab has disks: Slicer cuts real
// disks into device-mapper linear devices, one per pool, and Multipath
// builds real dm-multipath maps over such slices.

// sliceStart keeps every slice past the disk's first MiB, so that a PV label
// at a slice's start never sits where LVM would also find it on the whole
// disk (it would refuse the VG as a duplicate).
const sliceStart = 1 << 20

// Slicer hands out slices of the guest's disks, taking a fresh disk (for
// the test it was made for) when the current one is full.
type Slicer struct {
	t      *testing.T
	prefix string

	mu        sync.Mutex
	disk      string
	next, end int64
	n         int
}

// NewSlicer makes a slicer for t whose devices are /dev/mapper/PREFIXn.
func NewSlicer(t *testing.T, prefix string) *Slicer {
	return &Slicer{t: t, prefix: prefix}
}

// Slice makes a linear device of size bytes (a multiple of 512) over the
// next free part of a disk, removed when t ends.
func (s *Slicer) Slice(t *testing.T, size int64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disk == "" || s.next+size > s.end {
		s.disk = lab.Disk(s.t)
		n, err := strconv.ParseInt(strings.TrimSpace(lab.Run(t, "blockdev", "--getsize64", s.disk)), 10, 64)
		if err != nil {
			return "", fmt.Errorf("labkit: size of %s: %v", s.disk, err)
		}
		s.next, s.end = sliceStart, n
		if size > n-sliceStart {
			return "", fmt.Errorf("labkit: a slice of %d bytes does not fit on %s", size, s.disk)
		}
	}
	name := fmt.Sprintf("%s%d", s.prefix, s.n)
	table := fmt.Sprintf("0 %d linear %s %d", size/512, s.disk, s.next/512)
	s.n++
	s.next += size
	if out, err := lab.Try("dmsetup", "create", name, "--table", table); err != nil {
		return "", fmt.Errorf("labkit: dmsetup create %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { lab.Try("dmsetup", "remove", "--retry", name) })
	lab.Run(t, "udevadm", "settle")
	return "/dev/mapper/" + name, nil
}

// Devices is the slicer as a harness.Devices: a slice of size bytes for
// each pool.
func (s *Slicer) Devices(size int64) func(t *testing.T) (string, error) {
	return func(t *testing.T) (string, error) { return s.Slice(t, size) }
}

// Multipath makes real dm-multipath maps (one path each, a slice of a
// disk) as an administrator's multipath would, for the mpath harness
// (harness.Maps): the kernel's multipath target, its uuid mpath-NAME, as
// multipathd names its maps.
type Multipath struct {
	T      *testing.T
	Slices *Slicer
}

// Add makes a map called name of size bytes and returns its dm-N.
func (m *Multipath) Add(name string, size uint64) (string, error) {
	path, err := m.Slices.Slice(m.T, int64(size))
	if err != nil {
		return "", err
	}
	// queue_mode bio: request-based multipath (the default) stacks only on
	// request-based devices, which a linear slice is not.
	table := fmt.Sprintf("0 %d multipath 2 queue_mode bio 0 1 1 round-robin 0 1 1 %s 1000", size/512, path)
	if out, err := lab.Try("dmsetup", "create", name, "--uuid", "mpath-lab"+name, "--table", table); err != nil {
		return "", fmt.Errorf("labkit: dmsetup create %s: %v: %s", name, err, out)
	}
	m.T.Cleanup(func() { lab.Try("dmsetup", "remove", "--retry", name) })
	lab.Run(m.T, "udevadm", "settle")
	dm, err := filepath.EvalSymlinks("/dev/mapper/" + name)
	if err != nil {
		return "", err
	}
	return filepath.Base(dm), nil
}

// Remove removes the map listed as dm (its slice stays until the test
// ends).
func (m *Multipath) Remove(dm string) error {
	name, err := os.ReadFile(filepath.Join("/sys/block", dm, "dm", "name"))
	if err != nil {
		return err
	}
	if out, err := lab.Try("dmsetup", "remove", "--retry", strings.TrimSpace(string(name))); err != nil {
		return fmt.Errorf("labkit: dmsetup remove %s: %v: %s", name, err, out)
	}
	lab.Run(m.T, "udevadm", "settle")
	return nil
}
