package testkit

import "runtime"

// AllocatedBytes returns how many heap bytes were allocated while fn ran: the
// measure of the tests that bound what a decoder or frame reader may allocate
// for its input. Allocations of other goroutines in that window count too,
// which only makes a bound stricter.
func AllocatedBytes(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
