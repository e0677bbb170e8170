package rpc

import (
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Storage pool event IDs (virStoragePoolEventID).
const (
	eventIDLifecycle int32 = 0
	eventIDRefresh   int32 = 1

	procEventLifecycle int32 = 370
	procEventRefresh   int32 = 373

	// eventSerial is the serial libvirt 9.0 puts on every event message.
	eventSerial uint32 = 1
)

// EventHub fans storage pool events out to the callbacks clients registered. It
// implements ports.EventSink; publishing never blocks on a client.
type EventHub struct {
	log *logrus.Entry

	mu     sync.Mutex
	nextID int32
	cbs    map[int32]*eventCallback
}

var _ ports.EventSink = (*EventHub)(nil)

type eventCallback struct {
	id      int32
	eventID int32
	pool    *domain.UUID // nil = every pool
	c       *conn
}

// NewEventHub returns an empty hub.
func NewEventHub(log *logrus.Entry) *EventHub {
	return &EventHub{log: log, cbs: map[int32]*eventCallback{}}
}

// register adds a callback of c; ids are daemon-wide and start at 0, as libvirt's.
func (h *EventHub) register(c *conn, eventID int32, pool *domain.UUID) (int32, error) {
	if eventID < 0 || eventID > eventIDRefresh {
		return 0, internalError(fromRPC, "unsupported storage pool event ID %d", eventID)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.nextID
	h.nextID++
	h.cbs[id] = &eventCallback{id: id, eventID: eventID, pool: pool, c: c}
	return id, nil
}

// deregister removes a callback c registered.
func (h *EventHub) deregister(c *conn, id int32) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	cb := h.cbs[id]
	if cb == nil || cb.c != c {
		return internalError(fromRPC, "storage pool event callback %d not registered", id)
	}
	delete(h.cbs, id)
	return nil
}

// removeConn drops every callback of a closed connection.
func (h *EventHub) removeConn(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, cb := range h.cbs {
		if cb.c == c {
			delete(h.cbs, id)
		}
	}
}

// PoolLifecycle delivers a lifecycle event (proc 370) to every matching callback.
func (h *EventHub) PoolLifecycle(pool domain.PoolHandle, event domain.PoolEvent, detail int32) {
	h.publish(eventIDLifecycle, pool, func(cbID int32) ([]byte, error) {
		return encodeLifecycleEvent(cbID, pool, int32(event), detail)
	})
}

// PoolRefreshed delivers a refresh event (proc 373) to every matching callback.
func (h *EventHub) PoolRefreshed(pool domain.PoolHandle) {
	h.publish(eventIDRefresh, pool, func(cbID int32) ([]byte, error) {
		return encodeRefreshEvent(cbID, pool)
	})
}

func (h *EventHub) publish(eventID int32, pool domain.PoolHandle, encode func(int32) ([]byte, error)) {
	h.mu.Lock()
	var targets []*eventCallback
	for _, cb := range h.cbs {
		if cb.eventID == eventID && (cb.pool == nil || *cb.pool == pool.UUID) {
			targets = append(targets, cb)
		}
	}
	h.mu.Unlock()
	for _, cb := range targets {
		frame, err := encode(cb.id)
		if err != nil {
			h.log.WithError(err).WithField("pool", pool.Name).Error("rpc: cannot encode pool event")
			return
		}
		// One log line per run of drops: a client that stopped reading would
		// otherwise flood the log with a line per event.
		if !cb.c.sendEvent(frame) {
			if cb.c.eventDrops.Add(1) == 1 {
				cb.c.log.WithFields(logrus.Fields{"pool": pool.Name, "callback": cb.id}).
					Warn("rpc: client event queue full or closed, event dropped (further drops counted)")
			}
		} else if n := cb.c.eventDrops.Swap(0); n > 0 {
			cb.c.log.WithField("callback", cb.id).Warnf("rpc: client reading events again after %d were dropped", n)
		}
	}
}
