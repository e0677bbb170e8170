package domain

// Ledger is a pool's capacity account. A refresh measures the figures (Reset);
// between refreshes volume operations adjust them the way libvirt does (create and
// clone add the new volume's allocation, delete subtracts it, resize --allocate adds
// the delta). Beyond libvirt, creates reserve their initial allocation first
// (Reserve, then Commit or Release) so that two concurrent creates cannot both pass
// the admission check on the same free bytes. The ledger holds no lock: the service
// guards it with the pool's lock.
type Ledger struct {
	stats    PoolStats
	reserved uint64
}

// Reservation is capacity held for an operation in flight.
type Reservation struct {
	ledger *Ledger
	bytes  uint64
	done   bool
}

// Bytes is the amount reserved.
func (r *Reservation) Bytes() uint64 { return r.bytes }

// Reset replaces the figures with a refresh's measurement. Outstanding
// reservations stay held: their operations are still running.
func (l *Ledger) Reset(s PoolStats) { l.stats = s }

// Stats returns the current figures, as virStoragePoolGetInfo reports them.
func (l *Ledger) Stats() PoolStats { return l.stats }

// Reserved returns the bytes held by reservations in flight.
func (l *Ledger) Reserved() uint64 { return l.reserved }

// Free returns the available bytes not held by a reservation.
func (l *Ledger) Free() uint64 {
	if l.reserved >= l.stats.Available {
		return 0
	}
	return l.stats.Available - l.reserved
}

// ReserveVol holds bytes for creating volume vol in pool, or fails with our
// admission error when they do not fit. A pool whose refresh reports no capacity
// at all has unknown figures, and is not policed.
func (l *Ledger) ReserveVol(pool, vol string, bytes uint64) (*Reservation, error) {
	if bytes > l.Free() && l.stats.Capacity != 0 {
		return nil, NotEnoughSpaceError(pool, vol, bytes, l.Free())
	}
	return l.hold(bytes), nil
}

// ReserveResize holds the delta of a resize --allocate, failing with libvirt's
// text when the pool cannot hold it.
func (l *Ledger) ReserveResize(delta uint64) (*Reservation, error) {
	if delta > l.Free() {
		return nil, Errorf(KindOperationFailed, "Not enough space left in storage pool")
	}
	return l.hold(delta), nil
}

func (l *Ledger) hold(bytes uint64) *Reservation {
	l.reserved += bytes
	return &Reservation{ledger: l, bytes: bytes}
}

// Release gives the reservation back without charging anything (the operation
// failed). Releasing twice, or a nil reservation, is harmless.
func (r *Reservation) Release() {
	if r == nil || r.done {
		return
	}
	r.done = true
	if r.ledger.reserved >= r.bytes {
		r.ledger.reserved -= r.bytes
	} else {
		r.ledger.reserved = 0
	}
}

// Commit releases the reservation and charges what the operation really
// allocated, which may differ from the estimate.
func (r *Reservation) Commit(allocated uint64) {
	if r == nil || r.done {
		return
	}
	r.Release()
	r.ledger.Add(allocated)
}

// Add charges bytes to the pool: allocation grows and available shrinks.
func (l *Ledger) Add(bytes uint64) {
	l.stats.Allocation += bytes
	if bytes > l.stats.Available {
		l.stats.Available = 0
	} else {
		l.stats.Available -= bytes
	}
}

// Remove credits bytes back to the pool (a deleted volume's last known allocation).
func (l *Ledger) Remove(bytes uint64) {
	if bytes > l.stats.Allocation {
		l.stats.Allocation = 0
	} else {
		l.stats.Allocation -= bytes
	}
	l.stats.Available += bytes
	if l.stats.Capacity != 0 && l.stats.Available > l.stats.Capacity {
		l.stats.Available = l.stats.Capacity
	}
}

// InitialAllocation is what creating vol will allocate at once, the amount the
// admission check reserves. Raw files and block volumes allocate what <allocation>
// asks (all of the capacity when it is absent); formatted images (qcow2, ...) start
// with their metadata only unless metadata preallocation is asked; directories take
// nothing.
func InitialAllocation(vol *VolDef, flags uint32) uint64 {
	switch vol.Target.Format {
	case "", "raw", "none":
		if vol.HasAllocation {
			return vol.Allocation
		}
		return vol.Capacity
	case "dir":
		return 0
	}
	if flags&VolCreatePreallocMetadata != 0 {
		return vol.Capacity
	}
	return 0
}

// ResizePlan is a validated virStorageVolResize request.
type ResizePlan struct {
	Capacity uint64 // the absolute new capacity
	Delta    uint64 // bytes to allocate (ALLOCATE only)
	Flags    uint32 // flags for the backend (DELTA resolved away)
}

// PlanResize applies libvirt's storageVolResize rules to a volume's current
// figures and the caller's capacity and flags.
func PlanResize(vol *VolDef, capacity uint64, flags uint32) (ResizePlan, error) {
	abs := capacity
	if flags&VolResizeDelta != 0 {
		if flags&VolResizeShrink != 0 {
			abs = vol.Capacity - min(capacity, vol.Capacity)
		} else {
			abs = vol.Capacity + capacity
			if abs < vol.Capacity {
				return ResizePlan{}, Errorf(KindOverflow, "value too large: capacity %d + %d", vol.Capacity, capacity)
			}
		}
		flags &^= VolResizeDelta
	}
	// A file's allocation is what its blocks hold, and libvirt will not cut
	// into them. A block volume (an LV) is allocated whole, so the rule would
	// forbid every shrink; there the SHRINK flag alone decides, and the
	// allocation shrinks with the device.
	if abs < vol.Allocation && vol.Type != VolBlock {
		return ResizePlan{}, Errorf(KindInvalidArg, "can't shrink capacity below existing allocation")
	}
	if abs < vol.Capacity && flags&VolResizeShrink == 0 {
		return ResizePlan{}, Errorf(KindInvalidArg, "Can't shrink capacity below current capacity unless shrink flag explicitly specified")
	}
	p := ResizePlan{Capacity: abs, Flags: flags}
	if flags&VolResizeAllocate != 0 {
		p.Delta = abs - vol.Allocation
	}
	return p, nil
}
