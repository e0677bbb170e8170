package rpc

import (
	"context"
	"sync"
)

// gate is a counting semaphore whose limits can change while it is in use (admin
// srv-threadpool-set, srv-clients-set). Waiters are woken by closing a broadcast
// channel, so that a waiter can also give up when its connection goes away, which
// sync.Cond cannot do.
type gate struct {
	mu       sync.Mutex
	max      int // ordinary slots
	prio     int // extra slots only priority holders may take
	busy     int
	busyPrio int
	waiting  int
	changed  chan struct{}
}

func newGate(max, prio int) *gate {
	return &gate{max: max, prio: prio, changed: make(chan struct{})}
}

// acquire blocks until a slot is free or ctx ends. A priority caller may also take
// one of the reserved slots, so that quick calls keep flowing while slow ones hold
// every ordinary worker (libvirt's prio_workers).
func (g *gate) acquire(ctx context.Context, priority bool) (release func(), err error) {
	g.mu.Lock()
	for {
		if g.busy < g.max {
			g.busy++
			g.mu.Unlock()
			return g.releaseFunc(false), nil
		}
		if priority && g.busyPrio < g.prio {
			g.busyPrio++
			g.mu.Unlock()
			return g.releaseFunc(true), nil
		}
		ch := g.changed
		g.waiting++
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			g.mu.Lock()
			g.waiting--
			g.mu.Unlock()
			return nil, ctx.Err()
		}
		g.mu.Lock()
		g.waiting--
	}
}

// tryAcquire takes a slot only if one is free now.
func (g *gate) tryAcquire(priority bool) (release func(), ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.busy < g.max {
		g.busy++
		return g.releaseFunc(false), true
	}
	if priority && g.busyPrio < g.prio {
		g.busyPrio++
		return g.releaseFunc(true), true
	}
	return nil, false
}

func (g *gate) releaseFunc(prio bool) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			if prio {
				g.busyPrio--
			} else {
				g.busy--
			}
			if g.waiting > 0 {
				g.wakeLocked()
			}
			g.mu.Unlock()
		})
	}
}

func (g *gate) wakeLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// setLimits changes the limits; holders above a lowered limit keep their slot.
func (g *gate) setLimits(max, prio int) {
	g.mu.Lock()
	g.max, g.prio = max, prio
	g.wakeLocked()
	g.mu.Unlock()
}

type gateStats struct {
	max, prio, busy, busyPrio, waiting int
}

func (g *gate) stats() gateStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return gateStats{max: g.max, prio: g.prio, busy: g.busy, busyPrio: g.busyPrio, waiting: g.waiting}
}
