package testkit

import (
	"sync/atomic"

	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.Progress = (*Progress)(nil)

// Progress is a ports.Progress that adds up what it is told; a test hands it
// to a backend with ports.WithProgress and reads Done afterwards.
type Progress struct{ n atomic.Int64 }

// Advance adds n bytes.
func (p *Progress) Advance(n int64) { p.n.Add(n) }

// Done returns the bytes advanced so far.
func (p *Progress) Done() int64 { return p.n.Load() }
