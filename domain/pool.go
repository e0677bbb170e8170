package domain

// Volume is a volume known to a running pool, with the job state that guards it:
// a volume is either being built, or used by one job that changes it (wipe, upload,
// resize, delete), or read by any number of jobs (clone source, download).
type Volume struct {
	// Def holds the volume's last known figures. Jobs work on copies and write back.
	Def       *VolDef
	bornAt    uint64 // the pool's change sequence when its build finished
	building  bool
	exclusive bool
	readers   int
}

// NewVolume returns an idle volume.
func NewVolume(def *VolDef) *Volume { return &Volume{Def: def} }

// Building reports whether the volume is still being created.
func (v *Volume) Building() bool { return v.building }

// Busy reports whether any job holds the volume.
func (v *Volume) Busy() bool { return v.building || v.exclusive || v.readers > 0 }

// AcquireExclusive takes the volume for a job that changes it.
func (v *Volume) AcquireExclusive() error {
	if v.building {
		return ErrVolBuilding(v.Def.Name)
	}
	if v.exclusive || v.readers > 0 {
		return ErrVolInUse(v.Def.Name)
	}
	v.exclusive = true
	return nil
}

// ReleaseExclusive ends a job taken with AcquireExclusive.
func (v *Volume) ReleaseExclusive() { v.exclusive = false }

// AcquireShared takes the volume for a job that only reads it. libvirt lets a
// download overlap a wipe; we do not, so nobody reads half-wiped data.
func (v *Volume) AcquireShared() error {
	if v.building {
		return ErrVolBuilding(v.Def.Name)
	}
	if v.exclusive {
		return ErrVolInUse(v.Def.Name)
	}
	v.readers++
	return nil
}

// ReleaseShared ends a job taken with AcquireShared.
func (v *Volume) ReleaseShared() {
	if v.readers > 0 {
		v.readers--
	}
}

// FinishBuild marks a created volume usable with its measured figures.
func (v *Volume) FinishBuild(def *VolDef) {
	v.building = false
	if def != nil {
		v.Def = def
	}
}

// Pool is a storage pool object: its definition, the pending definition of a
// redefined running pool, its lifecycle state, its capacity ledger and its volumes.
// It holds no lock and does no I/O; the service serialises access to it.
type Pool struct {
	def        *PoolDef
	newDef     *PoolDef
	active     bool
	persistent bool
	autostart  bool
	starting   bool
	stopping   bool
	// Ledger is the pool's capacity account while it runs; a stop replaces it, so
	// reservations of jobs that outlive a run cannot touch the next run's figures.
	Ledger *Ledger
	vols   []*Volume          // listing order
	byName map[string]*Volume // index of vols: lookups by name are the hot path
	// seq counts volume creations and deletions, so that a refresh that ran
	// concurrently can tell what changed after it looked (see ApplyRefreshSince).
	seq     uint64
	deleted map[string]deletion // only while refreshing > 0
	// refreshing counts refreshes in flight; deletions are remembered only
	// then, so that a daemon deleting volumes between refreshes keeps nothing.
	refreshing int
}

type deletion struct {
	seq        uint64
	allocation uint64
}

// NewPool returns an inactive pool object for def.
func NewPool(def *PoolDef, persistent bool) *Pool {
	return &Pool{def: def, persistent: persistent, Ledger: &Ledger{}}
}

// UpdateLive replaces the live definition with one a backend refreshed (the
// target's real permissions, free extents); it is ignored once the pool stopped.
func (p *Pool) UpdateLive(def *PoolDef) {
	if p.active && def != nil && def.Name == p.def.Name && def.UUID == p.def.UUID {
		p.def = def
	}
}

// Def returns the live definition.
func (p *Pool) Def() *PoolDef { return p.def }

// Name returns the pool's name.
func (p *Pool) Name() string { return p.def.Name }

// Handle returns the pool's wire handle.
func (p *Pool) Handle() PoolHandle { return p.def.Handle() }

// InactiveDef returns the definition the next start will use: the pending one of a
// redefined running pool, else the live one.
func (p *Pool) InactiveDef() *PoolDef {
	if p.newDef != nil {
		return p.newDef
	}
	return p.def
}

// PendingDef returns the pending definition, nil when there is none.
func (p *Pool) PendingDef() *PoolDef { return p.newDef }

// Active reports whether the pool runs.
func (p *Pool) Active() bool { return p.active }

// Persistent reports whether the pool has a config.
func (p *Pool) Persistent() bool { return p.persistent }

// Autostart reports the autostart flag (always false for transient pools).
func (p *Pool) Autostart() bool { return p.persistent && p.autostart }

// Starting reports whether a start or build is under way.
func (p *Pool) Starting() bool { return p.starting }

// ListAttrs returns what the LIST_ALL filter looks at.
func (p *Pool) ListAttrs() PoolListAttrs {
	return PoolListAttrs{Type: p.def.Type, Active: p.active, Persistent: p.persistent, Autostart: p.Autostart()}
}

// Info returns virStoragePoolGetInfo's answer: running pools report the ledger,
// inactive ones zeros.
func (p *Pool) Info() PoolInfo {
	if !p.active {
		return PoolInfo{State: PoolInactive}
	}
	s := p.Ledger.Stats()
	return PoolInfo{State: PoolRunning, Capacity: s.Capacity, Allocation: s.Allocation, Available: s.Available}
}

// SetAutostart changes the autostart flag; transient pools have none to change.
func (p *Pool) SetAutostart(on bool) error {
	if !p.persistent {
		return ErrNoConfigFile()
	}
	p.autostart = on
	return nil
}

// Redefine records a new persistent definition (pool-define of a known pool): a
// running or starting pool keeps its live definition and the new one waits for
// the next start.
func (p *Pool) Redefine(def *PoolDef) {
	p.persistent = true
	if p.active || p.starting {
		p.newDef = def
		return
	}
	p.def = def
	p.newDef = nil
}

// ReplaceLive installs def as the live definition of a pool about to be started
// by pool-create over an inactive persistent pool; the persistent definition is
// kept as the pending one so that it returns after the pool stops.
func (p *Pool) ReplaceLive(def *PoolDef) {
	if p.persistent && p.newDef == nil {
		p.newDef = p.def
	}
	p.def = def
}

// BeginStart checks that the pool may start (or be built) and marks it starting.
func (p *Pool) BeginStart() error {
	if p.starting {
		return ErrPoolStarting(p.def.Name)
	}
	if p.active {
		return ErrPoolActive(p.def.Name)
	}
	p.starting = true
	return nil
}

// AbortStart clears the starting mark after a build (or a start that failed
// before changing anything); a definition redefined meanwhile takes effect, as
// the pool is still inactive.
func (p *Pool) AbortStart() {
	p.starting = false
	if !p.active && p.newDef != nil {
		p.def = p.newDef
		p.newDef = nil
	}
}

// FinishStart makes the pool active with a refresh's results.
func (p *Pool) FinishStart(stats PoolStats, vols []*VolDef) {
	p.starting = false
	p.active = true
	p.setVols(nil)
	p.ApplyRefresh(stats, vols)
}

// CheckActive fails unless the pool runs (and is not being stopped).
func (p *Pool) CheckActive() error {
	if p.starting {
		return ErrPoolStarting(p.def.Name)
	}
	if !p.active || p.stopping {
		return ErrPoolNotActive(p.def.Name)
	}
	return nil
}

// CheckInactive fails unless the pool is stopped (delete, undefine).
func (p *Pool) CheckInactive() error {
	if p.starting {
		return ErrPoolStarting(p.def.Name)
	}
	if p.active {
		return ErrPoolStillActive(p.def.Name)
	}
	return nil
}

// BeginStop checks that the pool runs and no volume job holds it, and marks it
// stopping so that no new volume job starts while the backend stops it.
func (p *Pool) BeginStop() error {
	if err := p.CheckActive(); err != nil {
		return err
	}
	if p.HasJobs() {
		return ErrPoolAsyncJobs(p.def.Name)
	}
	p.stopping = true
	return nil
}

// AbortStop clears the stopping mark after the backend failed to stop the pool.
func (p *Pool) AbortStop() { p.stopping = false }

// CheckUndefinable fails unless the pool is stopped and persistent.
func (p *Pool) CheckUndefinable() error {
	if err := p.CheckInactive(); err != nil {
		return err
	}
	if !p.persistent {
		return Errorf(KindInternal, "no config file for %s", p.def.Name)
	}
	return nil
}

// Stop makes the pool inactive, forgets its volumes and installs a pending
// definition. It reports whether the pool should vanish (it was transient).
func (p *Pool) Stop() (remove bool) {
	p.active = false
	p.starting = false
	p.stopping = false
	p.setVols(nil)
	p.deleted, p.refreshing = nil, 0
	p.Ledger = &Ledger{}
	if p.newDef != nil {
		p.def = p.newDef
		p.newDef = nil
	}
	return !p.persistent
}

// Undefine drops the config side of the pool; the object should be removed.
func (p *Pool) Undefine() {
	p.persistent = false
	p.autostart = false
}

// HasJobs reports whether any volume job runs.
func (p *Pool) HasJobs() bool {
	for _, v := range p.vols {
		if v.Busy() {
			return true
		}
	}
	return false
}

// Volumes returns the volumes in listing order.
func (p *Pool) Volumes() []*Volume { return p.vols }

// Stats returns the pool's figures as its XML shows them. A thin pool's
// provisioned total is summed from its volumes here rather than kept in the
// ledger, so that no create, delete or resize path can leave it stale.
func (p *Pool) Stats() PoolStats {
	st := p.Ledger.Stats()
	if st.Thin {
		st.Provisioned = 0
		for _, v := range p.vols {
			st.Provisioned += v.Def.Capacity
		}
	}
	return st
}

// Volume returns the named volume, or nil.
func (p *Pool) Volume(name string) *Volume { return p.byName[name] }

func (p *Pool) setVols(vols []*Volume) {
	p.vols = vols
	p.byName = make(map[string]*Volume, len(vols))
	for _, v := range vols {
		p.byName[v.Def.Name] = v
	}
}

func (p *Pool) appendVol(v *Volume) {
	p.vols = append(p.vols, v)
	if p.byName == nil {
		p.byName = map[string]*Volume{}
	}
	p.byName[v.Def.Name] = v
}

// LookupVolume returns the named volume or libvirt's not-found error.
func (p *Pool) LookupVolume(name string) (*Volume, error) {
	if v := p.Volume(name); v != nil {
		return v, nil
	}
	return nil, ErrVolNotFoundName(name)
}

// VolumeByKey returns the volume with the key, or nil.
func (p *Pool) VolumeByKey(key string) *Volume {
	for _, v := range p.vols {
		if v.Def.Key == key {
			return v
		}
	}
	return nil
}

// VolumeByPath returns the volume at path (compared after cleaning), or nil.
func (p *Pool) VolumeByPath(path string) *Volume {
	want := CleanPath(path)
	for _, v := range p.vols {
		if v.Def.Target.Path != "" && CleanPath(v.Def.Target.Path) == want {
			return v
		}
	}
	return nil
}

// AddBuilding adds a volume in the building state, refusing a taken name, key or
// path (another job may have created it since the caller looked).
func (p *Pool) AddBuilding(def *VolDef) (*Volume, error) {
	if p.Volume(def.Name) != nil {
		return nil, ErrVolExists(def.Name)
	}
	if def.Key != "" && p.VolumeByKey(def.Key) != nil {
		return nil, Errorf(KindOperationInvalid, "volume key '%s' is already in use", def.Key)
	}
	v := &Volume{Def: def, building: true}
	p.appendVol(v)
	return v, nil
}

// RemoveVolume forgets v.
func (p *Pool) RemoveVolume(v *Volume) {
	if p.byName[v.Def.Name] == v {
		delete(p.byName, v.Def.Name)
	}
	for i, o := range p.vols {
		if o == v {
			p.vols = append(p.vols[:i:i], p.vols[i+1:]...)
			return
		}
	}
}

// BeginRefresh marks the start of a refresh and returns the token that
// ApplyRefreshSince takes; a refresh that fails ends with AbortRefresh.
func (p *Pool) BeginRefresh() uint64 {
	p.refreshing++
	return p.seq
}

// AbortRefresh ends a refresh that produced no result.
func (p *Pool) AbortRefresh() { p.endRefresh() }

func (p *Pool) endRefresh() {
	if p.refreshing > 0 {
		p.refreshing--
	}
	if p.refreshing == 0 {
		p.deleted = nil
	}
}

// VolumeCreated marks a built volume usable with its measured figures and
// charges the reservation with what it really allocated.
func (p *Pool) VolumeCreated(v *Volume, def *VolDef, res *Reservation) {
	v.FinishBuild(def)
	p.seq++
	v.bornAt = p.seq
	res.Commit(v.Def.Allocation)
}

// VolumeDeleted forgets a deleted volume and credits its allocation back.
func (p *Pool) VolumeDeleted(v *Volume) {
	if p.Volume(v.Def.Name) != v {
		return
	}
	p.RemoveVolume(v)
	p.Ledger.Remove(v.Def.Allocation)
	p.seq++
	if p.refreshing == 0 {
		return // no refresh in flight needs to know
	}
	if p.deleted == nil {
		p.deleted = map[string]deletion{}
	}
	p.deleted[v.Def.Name] = deletion{seq: p.seq, allocation: v.Def.Allocation}
}

// ApplyRefreshSince installs the results of a refresh that began at token while
// volume jobs went on: volumes created after the refresh looked are kept (with
// their allocation charged), and volumes deleted after it looked stay deleted.
// Refreshes of one pool must not overlap (the service serialises them).
func (p *Pool) ApplyRefreshSince(token uint64, stats PoolStats, listed []*VolDef) {
	keep := make([]*VolDef, 0, len(listed))
	var gone uint64
	for _, d := range listed {
		if del, ok := p.deleted[d.Name]; ok && del.seq > token {
			gone += d.Allocation
			continue
		}
		keep = append(keep, d)
	}
	var born []*Volume
	listedNames := make(map[string]bool, len(keep))
	for _, d := range keep {
		listedNames[d.Name] = true
	}
	for _, v := range p.vols {
		if v.bornAt > token && !v.Busy() && !listedNames[v.Def.Name] {
			born = append(born, v)
		}
	}
	p.ApplyRefresh(stats, keep)
	for _, v := range born {
		p.appendVol(v)
		p.Ledger.Add(v.Def.Allocation)
	}
	p.Ledger.Remove(gone)
	p.endRefresh()
}

// ApplyRefresh installs a refresh's results. Volumes a job holds survive even
// when the listing misses them: a volume being built keeps its object and figures,
// a busy one keeps its object (so its job's release still finds it) with the
// listed figures.
func (p *Pool) ApplyRefresh(stats PoolStats, listed []*VolDef) {
	p.Ledger.Reset(stats)
	old := make(map[string]*Volume, len(p.vols))
	for _, v := range p.vols {
		old[v.Def.Name] = v
	}
	seen := make(map[string]bool, len(listed))
	vols := make([]*Volume, 0, len(listed)+len(old))
	for _, d := range listed {
		if seen[d.Name] {
			continue
		}
		seen[d.Name] = true
		if o := old[d.Name]; o != nil && o.Busy() {
			if !o.building {
				o.Def = d
			}
			vols = append(vols, o)
			continue
		}
		vols = append(vols, &Volume{Def: d})
	}
	for _, v := range p.vols {
		if !seen[v.Def.Name] && v.Busy() {
			vols = append(vols, v)
		}
	}
	p.setVols(vols)
}
