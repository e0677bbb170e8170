package testkit

import (
	"bytes"
	"context"
	"io"
	"path"
	"sync"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var _ ports.PoolBackend = (*MemoryBackend)(nil)

// MemoryBackend is a ports.PoolBackend that keeps its pools in memory and behaves
// like the dir backend, as the conformance suite (internal/backendtest) checks:
// build creates the pool's storage, a pool is "active on the system" when its
// storage exists, volumes are sparse byte arrays with capacity and allocation
// figures, and space runs out at Capacity. Hooks let tests block or fail
// individual calls.
type MemoryBackend struct {
	// PoolType is the type served (dir when zero).
	PoolType domain.PoolType
	// Capacity is the size of every pool's storage.
	Capacity uint64

	// BeforeBuildVol, when set, runs at the start of BuildVol and BuildVolFrom; a
	// test blocks it on a channel to hold a build open, or returns an error.
	BeforeBuildVol func(ctx context.Context, vol *domain.VolDef) error
	// BeforeWipeVol, when set, runs at the start of WipeVol, as BeforeBuildVol.
	BeforeWipeVol func(ctx context.Context, vol *domain.VolDef) error
	// BeforeRefreshPool, when set, runs at the start of RefreshPool.
	BeforeRefreshPool func(ctx context.Context, def *domain.PoolDef) error
	// AfterListPool, when set, runs after RefreshPool has measured the pool and
	// before it returns; a test blocks it to let volume jobs finish meanwhile.
	AfterListPool func(ctx context.Context, def *domain.PoolDef)

	mu    sync.Mutex
	pools map[string]*memPool
	calls []string
}

type memPool struct {
	order []string
	vols  map[string]*memVol
}

// memVol is one volume: def.Capacity bytes, of which data holds the first
// ones written and the rest read as zeros, as in a sparse file.
type memVol struct {
	def  *domain.VolDef
	data []byte
}

// resize makes the volume size bytes long, dropping the data past the end.
func (v *memVol) resize(size uint64) {
	if uint64(len(v.data)) > size {
		v.data = v.data[:size]
	}
	v.def.Capacity, v.def.Physical = size, size
}

// write stores p at off, which the caller has bounded by the capacity.
func (v *memVol) write(off uint64, p []byte) {
	if end := off + uint64(len(p)); uint64(len(v.data)) < end {
		v.data = append(v.data, make([]byte, end-uint64(len(v.data)))...)
	}
	copy(v.data[off:], p)
	// Writing a sparse file allocates what it writes.
	v.def.Allocation = max(v.def.Allocation, min(off+uint64(len(p)), v.def.Capacity))
}

// NewMemoryBackend returns a dir-type backend whose pools hold capacity bytes.
func NewMemoryBackend(capacity uint64) *MemoryBackend {
	return &MemoryBackend{Capacity: capacity}
}

func (m *MemoryBackend) record(call string) {
	m.calls = append(m.calls, call)
}

// Calls returns the backend calls so far ("BuildPool p1", "BuildVol p1/v1", ...).
func (m *MemoryBackend) Calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...)
}

// Exists reports whether the pool's storage exists.
func (m *MemoryBackend) Exists(pool string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pools[pool] != nil
}

// Vanish removes a pool's storage behind the daemon's back.
func (m *MemoryBackend) Vanish(pool string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pools, pool)
}

// AddFile creates a volume behind the daemon's back (building the pool storage
// if needed).
func (m *MemoryBackend) AddFile(pool, name string, capacity, allocation uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pool(pool, true)
	p.add(&domain.VolDef{Name: name, Capacity: capacity, Allocation: allocation, Physical: capacity,
		Target: domain.VolTarget{Format: "raw"}})
}

// RemoveFile removes a volume behind the daemon's back.
func (m *MemoryBackend) RemoveFile(pool, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.pools[pool]; p != nil {
		p.remove(name)
	}
}

// VolumeData returns a volume's bytes up to the last one written; the rest
// of the volume reads as zeros.
func (m *MemoryBackend) VolumeData(pool, name string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.pools[pool]; p != nil && p.vols[name] != nil {
		return append([]byte(nil), p.vols[name].data...)
	}
	return nil
}

func (m *MemoryBackend) pool(name string, create bool) *memPool {
	if m.pools == nil {
		m.pools = map[string]*memPool{}
	}
	p := m.pools[name]
	if p == nil && create {
		p = &memPool{vols: map[string]*memVol{}}
		m.pools[name] = p
	}
	return p
}

func (p *memPool) add(def *domain.VolDef) {
	if _, ok := p.vols[def.Name]; !ok {
		p.order = append(p.order, def.Name)
	}
	p.vols[def.Name] = &memVol{def: def.Clone()}
}

func (p *memPool) remove(name string) {
	delete(p.vols, name)
	for i, n := range p.order {
		if n == name {
			p.order = append(p.order[:i:i], p.order[i+1:]...)
			break
		}
	}
}

func (m *MemoryBackend) available(p *memPool) uint64 {
	return m.Capacity - min(p.allocated(), m.Capacity)
}

func (p *memPool) allocated() uint64 {
	var sum uint64
	for _, v := range p.vols {
		sum += v.def.Allocation
	}
	return sum
}

func noDir(def *domain.PoolDef) error {
	return domain.SystemError(2, nil, "cannot open directory '%s': No such file or directory", def.Target.Path)
}

// noSpace is what a file system out of space makes dir report.
func noSpace(format string, args ...any) error {
	return domain.SystemError(28, nil, format+": No space left on device", args...)
}

// Type returns the served pool type.
func (m *MemoryBackend) Type() domain.PoolType { return m.PoolType }

// DefaultVolFormat is raw, as for file pools.
func (m *MemoryBackend) DefaultVolFormat() string { return "raw" }

// ValidatePool requires a target path.
func (m *MemoryBackend) ValidatePool(def *domain.PoolDef) error {
	if def.Target.Path == "" {
		return domain.Errorf(domain.KindXMLError, "missing storage pool target path")
	}
	return nil
}

// CheckPool reports whether the pool's storage exists (as dir does).
func (m *MemoryBackend) CheckPool(ctx context.Context, def *domain.PoolDef) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("CheckPool " + def.Name)
	return m.pools[def.Name] != nil, nil
}

// BuildPool creates the pool's storage. As dir does, it checks the flags
// first, then creates the storage, and only then refuses an overwrite flag,
// since a dir pool has no device to format.
func (m *MemoryBackend) BuildPool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("BuildPool " + def.Name)
	const overwrite = domain.PoolBuildOverwrite | domain.PoolBuildNoOverwrite
	if flags&^overwrite != 0 {
		return domain.ErrUnsupportedFlags(flags&^overwrite, "virStorageBackendFileSystemBuild")
	}
	if err := domain.CheckBuildFlags(flags); err != nil {
		return err
	}
	m.pool(def.Name, true)
	if flags != 0 {
		return domain.Errorf(domain.KindOperationInvalid, "No source device specified when formatting pool '%s'", def.Name)
	}
	return nil
}

// StartPool checks that the storage exists, as dir opens its directory.
func (m *MemoryBackend) StartPool(ctx context.Context, def *domain.PoolDef) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("StartPool " + def.Name)
	if m.pools[def.Name] == nil {
		return noDir(def)
	}
	return nil
}

// StopPool does nothing, as for dir.
func (m *MemoryBackend) StopPool(ctx context.Context, def *domain.PoolDef) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("StopPool " + def.Name)
	return nil
}

// DeletePool removes empty storage.
func (m *MemoryBackend) DeletePool(ctx context.Context, def *domain.PoolDef, flags uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("DeletePool " + def.Name)
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendDeleteLocal")
	}
	p := m.pools[def.Name]
	if p == nil {
		return domain.SystemError(2, nil, "failed to remove pool '%s': No such file or directory", def.Target.Path)
	}
	if len(p.vols) > 0 {
		return domain.SystemError(39, nil, "failed to remove pool '%s': Directory not empty", def.Target.Path)
	}
	delete(m.pools, def.Name)
	return nil
}

// RefreshPool measures the pool and lists its volumes.
func (m *MemoryBackend) RefreshPool(ctx context.Context, def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	if m.BeforeRefreshPool != nil {
		if err := m.BeforeRefreshPool(ctx, def); err != nil {
			return domain.PoolStats{}, nil, err
		}
	}
	stats, vols, err := m.listPool(def)
	if err == nil && m.AfterListPool != nil {
		m.AfterListPool(ctx, def)
	}
	return stats, vols, err
}

func (m *MemoryBackend) listPool(def *domain.PoolDef) (domain.PoolStats, []*domain.VolDef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("RefreshPool " + def.Name)
	p := m.pools[def.Name]
	if p == nil {
		return domain.PoolStats{}, nil, noDir(def)
	}
	alloc := min(p.allocated(), m.Capacity)
	stats := domain.PoolStats{Capacity: m.Capacity, Allocation: alloc, Available: m.Capacity - alloc}
	vols := make([]*domain.VolDef, 0, len(p.order))
	for _, n := range p.order {
		v := p.vols[n].def.Clone()
		v.Target.Path = path.Join(def.Target.Path, n)
		v.Key = v.Target.Path
		vols = append(vols, v)
	}
	return stats, vols, nil
}

// FindPoolSources is not supported, as for dir.
func (m *MemoryBackend) FindPoolSources(ctx context.Context, spec *domain.PoolSource, flags uint32) ([]domain.PoolSource, error) {
	return nil, domain.ErrNoSourceDiscovery(m.PoolType.String())
}

// PrepareVol derives key, path, type and format, and refuses a name taken
// in the storage, as dir refuses a path that exists.
func (m *MemoryBackend) PrepareVol(pool *domain.PoolDef, vol *domain.VolDef) error {
	vol.Target.Path = path.Join(pool.Target.Path, vol.Name)
	vol.Key = vol.Target.Path
	m.mu.Lock()
	p := m.pools[pool.Name]
	taken := p != nil && p.vols[vol.Name] != nil
	m.mu.Unlock()
	if taken {
		return domain.Errorf(domain.KindOperationInvalid, "volume target path '%s' already exists", vol.Target.Path)
	}
	if vol.Target.Format == "" {
		vol.Target.Format = "raw"
	}
	vol.Type = domain.VolFile
	if vol.Target.Format == "dir" {
		vol.Type = domain.VolDir
	}
	return nil
}

func (m *MemoryBackend) create(pool *domain.PoolDef, vol *domain.VolDef, alloc uint64) error {
	p := m.pools[pool.Name]
	if p == nil {
		return noDir(pool)
	}
	if _, ok := p.vols[vol.Name]; ok {
		return domain.Errorf(domain.KindOperationInvalid, "volume target path '%s' already exists", vol.Target.Path)
	}
	if alloc > m.available(p) {
		return noSpace("cannot allocate %d bytes in file '%s'", alloc, vol.Target.Path)
	}
	d := vol.Clone()
	d.Allocation = alloc
	d.Physical = vol.Capacity
	p.add(d)
	return nil
}

// BuildVol creates the volume; raw files allocate what they ask, images 192 KiB.
func (m *MemoryBackend) BuildVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	if m.BeforeBuildVol != nil {
		if err := m.BeforeBuildVol(ctx, vol); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("BuildVol " + pool.Name + "/" + vol.Name)
	alloc := domain.InitialAllocation(vol, flags)
	if alloc == 0 && vol.Target.Format != "raw" && vol.Target.Format != "dir" {
		alloc = 196608
	}
	return m.create(pool, vol, alloc)
}

// BuildVolFrom copies src's data into a new volume at least as large. A
// copy is a long job: a cancelled context ends it with its error, as dir's
// copy loop does, before anything is made.
func (m *MemoryBackend) BuildVolFrom(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, srcPool *domain.PoolDef, src *domain.VolDef, flags uint32) error {
	if m.BeforeBuildVol != nil {
		if err := m.BeforeBuildVol(ctx, vol); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("BuildVolFrom " + pool.Name + "/" + vol.Name + " " + srcPool.Name + "/" + src.Name)
	sp := m.pools[srcPool.Name]
	if sp == nil || sp.vols[src.Name] == nil {
		return domain.ErrVolNotFoundName(src.Name)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	v := vol.Clone()
	v.Capacity = max(v.Capacity, src.Capacity)
	if err := m.create(pool, v, domain.InitialAllocation(vol, flags)); err != nil {
		return err
	}
	dst := m.pools[pool.Name].vols[vol.Name]
	data := sp.vols[src.Name].data
	dst.write(0, data[:min(uint64(len(data)), dst.def.Capacity)])
	return nil
}

func (m *MemoryBackend) vol(pool *domain.PoolDef, name string) (*memVol, error) {
	p := m.pools[pool.Name]
	if p == nil {
		return nil, noDir(pool)
	}
	v := p.vols[name]
	if v == nil {
		return nil, domain.SystemError(2, nil, "cannot stat file '%s': No such file or directory", path.Join(pool.Target.Path, name))
	}
	return v, nil
}

// RefreshVol copies the stored figures into vol.
func (m *MemoryBackend) RefreshVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("RefreshVol " + pool.Name + "/" + vol.Name)
	v, err := m.vol(pool, vol.Name)
	if err != nil {
		return err
	}
	vol.Capacity, vol.Allocation, vol.Physical = v.def.Capacity, v.def.Allocation, v.def.Physical
	vol.Target.Format = v.def.Target.Format
	vol.Type = v.def.Type
	return nil
}

// DeleteVol removes the volume.
func (m *MemoryBackend) DeleteVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, flags uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("DeleteVol " + pool.Name + "/" + vol.Name)
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendVolDeleteLocal")
	}
	if p := m.pools[pool.Name]; p != nil {
		p.remove(vol.Name)
	}
	return nil
}

// ResizeVol changes capacity; ALLOCATE allocates it all, or fails and
// changes nothing when the pool cannot hold it (dir gives the file its old
// size back).
func (m *MemoryBackend) ResizeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, capacity uint64, flags uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("ResizeVol " + pool.Name + "/" + vol.Name)
	const known = domain.VolResizeAllocate | domain.VolResizeDelta | domain.VolResizeShrink
	if flags&^known != 0 {
		return domain.ErrUnsupportedFlags(flags&^known, "virStorageBackendVolResizeLocal")
	}
	v, err := m.vol(pool, vol.Name)
	if err != nil {
		return err
	}
	if flags&domain.VolResizeAllocate != 0 && capacity > v.def.Allocation {
		if capacity-v.def.Allocation > m.available(m.pools[pool.Name]) {
			return noSpace("Failed to pre-allocate space for file '%s'", vol.Target.Path)
		}
		v.def.Allocation = capacity
	}
	v.resize(capacity)
	v.def.Allocation = min(v.def.Allocation, capacity)
	return nil
}

// WipeVol zeroes the data, with dir's checks of the flags and algorithm;
// the algorithms scrub would run zero it too. A wipe is a long job: a
// cancelled context ends it with its error.
func (m *MemoryBackend) WipeVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, algorithm domain.WipeAlgorithm, flags uint32) error {
	if m.BeforeWipeVol != nil {
		if err := m.BeforeWipeVol(ctx, vol); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("WipeVol " + pool.Name + "/" + vol.Name)
	switch {
	case flags != 0:
		return domain.ErrUnsupportedFlags(flags, "virStorageBackendVolWipeLocal")
	case !algorithm.Valid():
		return domain.ErrWipeAlgorithm(algorithm)
	case algorithm == domain.WipeTrim:
		return domain.Errorf(domain.KindArgumentUnsupported, "'trim' algorithm not supported")
	}
	v, err := m.vol(pool, vol.Name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	clear(v.data)
	v.def.Target.Format = "raw"
	return nil
}

// checkStream refuses the stream flags dir refuses.
func checkStream(flags uint32, api string) error {
	if flags&^domain.StreamSparse != 0 {
		return domain.ErrUnsupportedFlags(flags&^domain.StreamSparse, api)
	}
	return nil
}

// UploadVol opens an upload of length bytes (0: to the end) at offset. As
// dir's, it writes as it goes, so that an aborted upload keeps what it
// wrote, and never past the volume's end.
func (m *MemoryBackend) UploadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeWriter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("UploadVol " + pool.Name + "/" + vol.Name)
	if err := checkStream(flags, "virStorageBackendVolUploadLocal"); err != nil {
		return nil, err
	}
	v, err := m.vol(pool, vol.Name)
	if err != nil {
		return nil, err
	}
	size := v.def.Capacity
	if offset > size {
		return nil, domain.Errorf(domain.KindInvalidArg, "offset %d is past the end of volume '%s' (capacity %d)", offset, vol.Target.Path, size)
	}
	w := &memWriter{m: m, pool: pool, name: vol.Name, path: vol.Target.Path, pos: offset, end: size}
	if length > 0 && length < size-offset {
		w.end, w.lengthBound = offset+length, true
	}
	return w, nil
}

type memWriter struct {
	m           *MemoryBackend
	pool        *domain.PoolDef
	name, path  string
	pos, end    uint64
	lengthBound bool
}

// overflow is dir's stream error for bytes past the end.
func (w *memWriter) overflow() error {
	e := domain.SystemError(28, nil, "cannot write to stream: upload goes past the capacity of volume '%s': No space left on device", w.path)
	if w.lengthBound {
		e = domain.SystemError(28, nil, "cannot write to stream: No space left on device")
	}
	e.Domain = domain.FromStreams
	return e
}

// Write stores what fits before the end and refuses the rest.
func (w *memWriter) Write(p []byte) (int, error) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	v, err := w.m.vol(w.pool, w.name)
	if err != nil {
		return 0, err
	}
	n := min(uint64(len(p)), w.end-w.pos)
	v.write(w.pos, p[:n])
	w.pos += n
	if n < uint64(len(p)) {
		return int(n), w.overflow()
	}
	return int(n), nil
}

// Hole makes length bytes read back as zeros.
func (w *memWriter) Hole(length int64) error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	if length < 0 || uint64(length) > w.end-w.pos {
		return w.overflow()
	}
	v, err := w.m.vol(w.pool, w.name)
	if err != nil {
		return err
	}
	if w.pos < uint64(len(v.data)) {
		clear(v.data[w.pos:min(w.pos+uint64(length), uint64(len(v.data)))])
	}
	w.pos += uint64(length)
	return nil
}

// Finish has nothing left to write.
func (w *memWriter) Finish(ctx context.Context) error { return nil }

// Abort keeps what was written, as dir and libvirt do.
func (w *memWriter) Abort() {}

// DownloadVol reads length bytes (0: to the end) from offset; an offset past
// the end gives an immediate end of file, as in dir.
func (m *MemoryBackend) DownloadVol(ctx context.Context, pool *domain.PoolDef, vol *domain.VolDef, offset, length uint64, flags uint32) (ports.VolumeReader, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.record("DownloadVol " + pool.Name + "/" + vol.Name)
	if err := checkStream(flags, "virStorageBackendVolDownloadLocal"); err != nil {
		return nil, err
	}
	v, err := m.vol(pool, vol.Name)
	if err != nil {
		return nil, err
	}
	end := v.def.Capacity
	if length > 0 && offset < end && length < end-offset {
		end = offset + length
	}
	pos := min(offset, end)
	// The written part is copied now; the rest is zeros to the end.
	data := v.data[min(pos, uint64(len(v.data))):min(end, uint64(len(v.data)))]
	return &memReader{data: bytes.NewReader(append([]byte(nil), data...)), zeros: end - pos - uint64(len(data))}, nil
}

type memReader struct {
	data  *bytes.Reader
	zeros uint64
}

// Next returns the next bytes, or io.EOF.
func (r *memReader) Next(buf []byte) (int, int64, error) {
	if r.data.Len() > 0 {
		n, err := r.data.Read(buf)
		return n, 0, err
	}
	if r.zeros == 0 {
		return 0, 0, io.EOF
	}
	n := min(uint64(len(buf)), r.zeros)
	clear(buf[:n])
	r.zeros -= n
	return int(n), 0, nil
}

// Close does nothing.
func (r *memReader) Close() error { return nil }
