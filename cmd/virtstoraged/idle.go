package main

import (
	"sync"
	"time"
)

// idleCheckInterval is how often the idle timer looks at the daemon; the timeout
// is honoured to within this much.
const idleCheckInterval = 250 * time.Millisecond

// busyReporter tells whether anything is going on that must keep the daemon alive:
// a connected client or a running job.
type busyReporter interface {
	busy() bool
}

// idleTimer implements -t/--timeout and virt-admin daemon-timeout: the daemon
// exits after the timeout passes with no client connection and no running job.
type idleTimer struct {
	mu      sync.Mutex
	timeout time.Duration // 0 = never
	quit    chan struct{}
}

func newIdleTimer(d time.Duration) *idleTimer { return &idleTimer{timeout: d} }

// set changes the timeout at runtime (virt-admin daemon-timeout).
func (t *idleTimer) set(d time.Duration) {
	t.mu.Lock()
	t.timeout = d
	t.mu.Unlock()
}

func (t *idleTimer) get() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.timeout
}

// start watches r and returns a channel closed once the daemon has been idle for
// the timeout.
func (t *idleTimer) start(r busyReporter) <-chan struct{} {
	fired := make(chan struct{})
	t.quit = make(chan struct{})
	quit := t.quit
	go func() {
		tick := time.NewTicker(idleCheckInterval)
		defer tick.Stop()
		idleSince := time.Now()
		for {
			select {
			case <-quit:
				return
			case now := <-tick.C:
				if r.busy() {
					idleSince = now
					continue
				}
				if d := t.get(); d > 0 && now.Sub(idleSince) >= d {
					close(fired)
					return
				}
			}
		}
	}()
	return fired
}

func (t *idleTimer) stop() {
	if t.quit != nil {
		close(t.quit)
		t.quit = nil
	}
}
