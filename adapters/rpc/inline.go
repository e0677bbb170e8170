package rpc

import (
	"time"

	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// Small read-only calls run on the connection's reader goroutine instead of a
// goroutine of their own, and their reply is written from there too. On a
// lockstep client that removes two goroutine hand-offs per call, which cost
// more than the call itself (see docs/performance.md).
//
// The reader must not stall behind a call that unexpectedly waits (on a lock,
// a slow disk): a watchdog per server looks at the running inline calls every
// tick, and when one is still the same call a tick later, it starts a new
// reader for the connection. The old goroutine finishes its call and exits.
// A ticker per server rather than a timer per call: a timer armed and stopped
// per call leaves stale entries that wake the idle scheduler, which cost more
// than the hand-offs saved.

// inlineTick bounds how long a running inline call can hold up its
// connection's other traffic: between one and two ticks.
const inlineTick = 5 * time.Millisecond

// watchdogIdleTicks is how many ticks without an inline call the watchdog
// waits before it stops, so that an idle daemon does not wake up.
const watchdogIdleTicks = 200

// inlineable reports whether a call may run on the reader. Read-only priority
// procedures answer from memory (or a stat at most) and never wait on a job.
// CONNECT_CLOSE is one too, but its reply must close the connection, which
// only the queued path does.
func inlineable(info *xdr.ProcInfo) bool {
	return info.ReadOnly && info.Priority && info.Stream == xdr.StreamNone && info.Proc != procConnectClose
}

// beginInline marks an inline call as running and returns its token.
func (c *conn) beginInline() uint64 {
	tok := c.inlineSeq.Add(1)
	// Store before the check below, and the watchdog clears its flag before
	// its last scan: either this call sees it stopped and starts it, or its
	// last scan sees this call.
	c.inlineTok.Store(tok)
	if !c.sv.watching.Load() && c.sv.watching.CompareAndSwap(false, true) {
		go c.sv.watchInline()
	}
	return tok
}

// endInline ends the inline call tok; false means the watchdog handed the
// reading to another goroutine meanwhile, and the caller must stop reading.
func (c *conn) endInline(tok uint64) bool {
	return c.inlineTok.CompareAndSwap(tok, 0)
}

// watchInline is the watchdog loop of one server.
func (sv *service) watchInline() {
	t := time.NewTicker(inlineTick)
	defer t.Stop()
	idle := 0
	for range t.C {
		if sv.sweepInline() {
			idle = 0
			continue
		}
		if idle++; idle < watchdogIdleTicks {
			continue
		}
		sv.watching.Store(false)
		if !sv.sweepInline() || !sv.watching.CompareAndSwap(false, true) {
			return
		}
		idle = 0
	}
}

// sweepInline hands off every connection whose inline call has run since the
// previous sweep, and reports whether any inline call is running.
func (sv *service) sweepInline() bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	busy := false
	for _, c := range sv.clients {
		tok := c.inlineTok.Load()
		if tok == 0 {
			continue
		}
		busy = true
		if c.inlineSeen != tok {
			c.inlineSeen = tok
			continue
		}
		if c.inlineTok.CompareAndSwap(tok, 0) {
			go c.readLoop()
		}
	}
	return busy
}
