package rbd

import "time"

// SetSnapNumber fixes the number of the next clone snapshots (libvirt-N).
func (b *Backend) SetSnapNumber(n int) { b.snapNumber = func() int { return n } }

// SetClock replaces the clock that ages pool listings.
func (b *Backend) SetClock(now func() time.Time) { b.now = now }

// NewDiffReader exposes the diff stream reader to the tests.
func NewDiffReader(r interface{ Read([]byte) (int, error) }, offset, length uint64, sparse bool) interface {
	Next([]byte) (int, int64, error)
} {
	return readerFunc(newDiffReader(r, offset, length, sparse).next)
}

type readerFunc func([]byte) (int, int64, error)

func (f readerFunc) Next(b []byte) (int, int64, error) { return f(b) }
