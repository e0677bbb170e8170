package testkit

import (
	"fmt"
	"sync"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.EventSink = (*RecordingSink)(nil)

// Event is one recorded pool event.
type Event struct {
	Pool    string
	Event   domain.PoolEvent
	Refresh bool // a refresh event rather than a lifecycle one
}

// String formats the event as "pool:name" for compact assertions.
func (e Event) String() string {
	if e.Refresh {
		return e.Pool + ":refresh"
	}
	return fmt.Sprintf("%s:%s", e.Pool, EventName(e.Event))
}

// EventName names a lifecycle event as virsh pool-event prints it.
func EventName(ev domain.PoolEvent) string {
	names := []string{"Defined", "Undefined", "Started", "Stopped", "Created", "Deleted"}
	if int(ev) < 0 || int(ev) >= len(names) {
		return fmt.Sprintf("event(%d)", ev)
	}
	return names[ev]
}

// RecordingSink records the events it receives.
type RecordingSink struct {
	mu     sync.Mutex
	events []Event
}

// PoolLifecycle records a lifecycle event.
func (r *RecordingSink) PoolLifecycle(pool domain.PoolHandle, event domain.PoolEvent, detail int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, Event{Pool: pool.Name, Event: event})
}

// PoolRefreshed records a refresh event.
func (r *RecordingSink) PoolRefreshed(pool domain.PoolHandle) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, Event{Pool: pool.Name, Refresh: true})
}

// Events returns the events so far as strings ("p1:Started", "p1:refresh").
func (r *RecordingSink) Events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, e := range r.events {
		out[i] = e.String()
	}
	return out
}

// Reset forgets the recorded events.
func (r *RecordingSink) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}
