package process

import "runtime/debug"

// MemoryLimit applies memory_limit to the Go runtime's soft memory limit.
// It remembers the limit the process started with (GOMEMLIMIT, else none),
// so that a reload that no longer sets memory_limit goes back to it.
type MemoryLimit struct {
	initial int64
}

// NewMemoryLimit records the limit in force now as the one to go back to.
func NewMemoryLimit() *MemoryLimit {
	return &MemoryLimit{initial: debug.SetMemoryLimit(-1)}
}

// Set makes bytes the limit, or restores the starting one when bytes is 0,
// and returns the limit now in force.
func (m *MemoryLimit) Set(bytes int64) int64 {
	if bytes <= 0 {
		bytes = m.initial
	}
	debug.SetMemoryLimit(bytes)
	return bytes
}
