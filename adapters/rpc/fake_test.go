package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// memAPI is an in-memory ports.StorageAPI: pools by name, volumes as byte slices
// with recorded holes. Calls on the pool named "slow" block until release is closed.
type memAPI struct {
	mu      sync.Mutex
	pools   map[string]*memPool
	release chan struct{}
	relOnce sync.Once
	entered chan string // receives the pool name when a slow lookup starts
	uploads []*memWriter
	readers []*memReader
	events  ports.EventSink
	// files holds volumes served by a fileReader (sendfile downloads).
	files map[string]*fileReader
	// lookupCallers are the callers the lookups by name came from.
	lookupCallers []ports.Caller
	// slowWrites, when set, holds every Write to slow.img until it is closed.
	slowWrites chan struct{}
}

type memPool struct {
	h         domain.PoolHandle
	active    bool
	autostart bool
	vols      map[string][]byte
}

func newMemAPI() *memAPI {
	m := &memAPI{pools: map[string]*memPool{}, release: make(chan struct{}), entered: make(chan string, 16)}
	for i, name := range []string{"default", "images", "slow"} {
		var u domain.UUID
		u[15] = byte(i + 1)
		m.pools[name] = &memPool{h: domain.PoolHandle{Name: name, UUID: u}, active: true,
			vols: map[string][]byte{"disk.img": []byte("hello")}}
	}
	return m
}

// releaseSlow lets every blocked "slow" call go on.
func (m *memAPI) releaseSlow() { m.relOnce.Do(func() { close(m.release) }) }

// block waits for releaseSlow when the pool is the slow one.
func (m *memAPI) block(ctx context.Context, name string) error {
	if name != "slow" {
		return nil
	}
	m.entered <- name
	select {
	case <-m.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *memAPI) pool(h domain.PoolHandle) (*memPool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.pools {
		if p.h.UUID == h.UUID {
			return p, nil
		}
	}
	return nil, domain.ErrPoolNotFoundUUID(h.UUID)
}

func (m *memAPI) volPool(v domain.VolHandle) (*memPool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.pools[v.Pool]
	if p == nil {
		return nil, domain.ErrPoolNotFoundName(v.Pool)
	}
	if _, ok := p.vols[v.Name]; !ok {
		return nil, domain.Errorf(domain.KindNoStorageVol, "no storage vol with matching name '%s'", v.Name)
	}
	return p, nil
}

func (m *memAPI) NumOfPools(_ context.Context, active bool) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, p := range m.pools {
		if p.active == active {
			n++
		}
	}
	return n, nil
}

func (m *memAPI) ListPoolNames(_ context.Context, active bool, max int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, p := range m.pools {
		if p.active == active {
			out = append(out, p.h.Name)
		}
	}
	sort.Strings(out)
	if len(out) > max {
		out = out[:max]
	}
	return out, nil
}

func (m *memAPI) ListAllPools(_ context.Context, flags uint32) ([]domain.PoolHandle, error) {
	if flags&^0xfffff != 0 {
		return nil, domain.ErrUnsupportedFlags(flags, "storageConnectListAllStoragePools")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []domain.PoolHandle
	for _, p := range m.pools {
		out = append(out, p.h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m *memAPI) FindPoolSources(_ context.Context, poolType, _ string, _ uint32) (string, error) {
	if poolType == "dir" {
		return "", domain.Errorf(domain.KindNoSupport, "pool type '%s' does not support source discovery", poolType)
	}
	return "<sources>\n</sources>\n", nil
}

func (m *memAPI) PoolCapabilities(context.Context, uint32) (string, error) {
	return "<storagepoolCapabilities/>", nil
}

func (m *memAPI) Capabilities(context.Context) (string, error) { return "<capabilities/>", nil }

func (m *memAPI) PoolLookupByName(ctx context.Context, name string) (domain.PoolHandle, error) {
	if err := m.block(ctx, name); err != nil {
		return domain.PoolHandle{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := ports.CallerOf(ctx); ok {
		m.lookupCallers = append(m.lookupCallers, c)
	}
	p := m.pools[name]
	if p == nil {
		return domain.PoolHandle{}, domain.ErrPoolNotFoundName(name)
	}
	return p.h, nil
}

func (m *memAPI) PoolLookupByUUID(_ context.Context, u domain.UUID) (domain.PoolHandle, error) {
	p, err := m.pool(domain.PoolHandle{UUID: u})
	if err != nil {
		return domain.PoolHandle{}, err
	}
	return p.h, nil
}

func (m *memAPI) PoolLookupByVolume(_ context.Context, v domain.VolHandle) (domain.PoolHandle, error) {
	p, err := m.volPool(v)
	if err != nil {
		return domain.PoolHandle{}, err
	}
	return p.h, nil
}

func (m *memAPI) PoolLookupByTargetPath(_ context.Context, path string) (domain.PoolHandle, error) {
	return domain.PoolHandle{}, domain.Errorf(domain.KindNoStoragePool, "no storage pool with matching target path '%s'", path)
}

func (m *memAPI) PoolCreateXML(_ context.Context, xml string, _ uint32) (domain.PoolHandle, error) {
	return m.define(xml, true)
}

func (m *memAPI) PoolDefineXML(_ context.Context, xml string, _ uint32) (domain.PoolHandle, error) {
	return m.define(xml, false)
}

// define treats the XML as the pool name.
func (m *memAPI) define(name string, active bool) (domain.PoolHandle, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pools[name]; ok {
		return domain.PoolHandle{}, domain.Errorf(domain.KindOperationFailed, "pool '%s' already exists with uuid %s", name, p.h.UUID)
	}
	var u domain.UUID
	u[0] = byte(len(m.pools) + 1)
	copy(u[1:], name)
	p := &memPool{h: domain.PoolHandle{Name: name, UUID: u}, active: active, vols: map[string][]byte{}}
	m.pools[name] = p
	if m.events != nil {
		m.events.PoolLifecycle(p.h, domain.EventDefined, 0)
	}
	return p.h, nil
}

func (m *memAPI) setActive(h domain.PoolHandle, active bool, ev domain.PoolEvent) error {
	p, err := m.pool(h)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if p.active == active {
		m.mu.Unlock()
		if active {
			return domain.ErrPoolActive(p.h.Name)
		}
		return domain.ErrPoolNotActive(p.h.Name)
	}
	p.active = active
	m.mu.Unlock()
	if m.events != nil {
		m.events.PoolLifecycle(p.h, ev, 0)
	}
	return nil
}

func (m *memAPI) PoolCreate(_ context.Context, h domain.PoolHandle, _ uint32) error {
	return m.setActive(h, true, domain.EventStarted)
}

func (m *memAPI) PoolBuild(ctx context.Context, h domain.PoolHandle, _ uint32) error {
	if err := m.block(ctx, h.Name); err != nil {
		return err
	}
	_, err := m.pool(h)
	return err
}

func (m *memAPI) PoolDestroy(_ context.Context, h domain.PoolHandle) error {
	return m.setActive(h, false, domain.EventStopped)
}

func (m *memAPI) PoolDelete(_ context.Context, h domain.PoolHandle, _ uint32) error {
	_, err := m.pool(h)
	return err
}

func (m *memAPI) PoolUndefine(_ context.Context, h domain.PoolHandle) error {
	p, err := m.pool(h)
	if err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.pools, p.h.Name)
	m.mu.Unlock()
	return nil
}

func (m *memAPI) PoolRefresh(_ context.Context, h domain.PoolHandle, flags uint32) error {
	if flags != 0 {
		return domain.ErrUnsupportedFlags(flags, "storagePoolRefresh")
	}
	p, err := m.pool(h)
	if err != nil {
		return err
	}
	if m.events != nil {
		m.events.PoolRefreshed(p.h)
	}
	return nil
}

func (m *memAPI) PoolGetInfo(_ context.Context, h domain.PoolHandle) (domain.PoolInfo, error) {
	p, err := m.pool(h)
	if err != nil {
		return domain.PoolInfo{}, err
	}
	st := domain.PoolInactive
	if p.active {
		st = domain.PoolRunning
	}
	return domain.PoolInfo{State: st, Capacity: 1 << 30, Allocation: 1 << 20, Available: 1<<30 - 1<<20}, nil
}

func (m *memAPI) PoolGetXMLDesc(_ context.Context, h domain.PoolHandle, _ uint32) (string, error) {
	p, err := m.pool(h)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("<pool type='dir'><name>%s</name></pool>", p.h.Name), nil
}

func (m *memAPI) PoolGetAutostart(_ context.Context, h domain.PoolHandle) (bool, error) {
	p, err := m.pool(h)
	if err != nil {
		return false, err
	}
	return p.autostart, nil
}

func (m *memAPI) PoolSetAutostart(_ context.Context, h domain.PoolHandle, v bool) error {
	p, err := m.pool(h)
	if err != nil {
		return err
	}
	m.mu.Lock()
	p.autostart = v
	m.mu.Unlock()
	return nil
}

func (m *memAPI) PoolIsActive(_ context.Context, h domain.PoolHandle) (bool, error) {
	p, err := m.pool(h)
	if err != nil {
		return false, err
	}
	return p.active, nil
}

func (m *memAPI) PoolIsPersistent(_ context.Context, h domain.PoolHandle) (bool, error) {
	_, err := m.pool(h)
	return err == nil, err
}

func (m *memAPI) PoolNumOfVolumes(_ context.Context, h domain.PoolHandle) (int, error) {
	p, err := m.pool(h)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(p.vols), nil
}

func (m *memAPI) PoolListVolumes(_ context.Context, h domain.PoolHandle, max int) ([]string, error) {
	vols, err := m.PoolListAllVolumes(context.Background(), h, 0)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, v := range vols {
		out = append(out, v.Name)
	}
	if len(out) > max {
		out = out[:max]
	}
	return out, nil
}

func (m *memAPI) PoolListAllVolumes(_ context.Context, h domain.PoolHandle, _ uint32) ([]domain.VolHandle, error) {
	p, err := m.pool(h)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []domain.VolHandle
	for name := range p.vols {
		out = append(out, domain.VolHandle{Pool: p.h.Name, Name: name, Key: "/pools/" + p.h.Name + "/" + name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m *memAPI) VolLookupByName(_ context.Context, h domain.PoolHandle, name string) (domain.VolHandle, error) {
	p, err := m.pool(h)
	if err != nil {
		return domain.VolHandle{}, err
	}
	v := domain.VolHandle{Pool: p.h.Name, Name: name, Key: "/pools/" + p.h.Name + "/" + name}
	if _, err := m.volPool(v); err != nil {
		return domain.VolHandle{}, err
	}
	return v, nil
}

func (m *memAPI) VolLookupByKey(_ context.Context, key string) (domain.VolHandle, error) {
	return domain.VolHandle{}, domain.Errorf(domain.KindNoStorageVol, "no storage vol with matching key %s", key)
}

func (m *memAPI) VolLookupByPath(_ context.Context, path string) (domain.VolHandle, error) {
	return domain.VolHandle{}, domain.Errorf(domain.KindNoStorageVol, "no storage vol with matching path '%s'", path)
}

func (m *memAPI) VolCreateXML(_ context.Context, h domain.PoolHandle, xml string, _ uint32) (domain.VolHandle, error) {
	p, err := m.pool(h)
	if err != nil {
		return domain.VolHandle{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := p.vols[xml]; ok {
		return domain.VolHandle{}, domain.ErrVolExists(xml)
	}
	p.vols[xml] = nil
	return domain.VolHandle{Pool: p.h.Name, Name: xml, Key: "/pools/" + p.h.Name + "/" + xml}, nil
}

func (m *memAPI) VolCreateXMLFrom(ctx context.Context, h domain.PoolHandle, xml string, _ domain.VolHandle, flags uint32) (domain.VolHandle, error) {
	return m.VolCreateXML(ctx, h, xml, flags)
}

func (m *memAPI) VolDelete(_ context.Context, v domain.VolHandle, _ uint32) error {
	p, err := m.volPool(v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	delete(p.vols, v.Name)
	m.mu.Unlock()
	return nil
}

func (m *memAPI) VolGetInfo(_ context.Context, v domain.VolHandle, _ uint32) (domain.VolInfo, error) {
	p, err := m.volPool(v)
	if err != nil {
		return domain.VolInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := uint64(len(p.vols[v.Name]))
	return domain.VolInfo{Type: domain.VolFile, Capacity: n, Allocation: n}, nil
}

func (m *memAPI) VolGetXMLDesc(_ context.Context, v domain.VolHandle, _ uint32) (string, error) {
	if _, err := m.volPool(v); err != nil {
		return "", err
	}
	return "<volume><name>" + v.Name + "</name></volume>", nil
}

func (m *memAPI) VolGetPath(_ context.Context, v domain.VolHandle) (string, error) {
	if _, err := m.volPool(v); err != nil {
		return "", err
	}
	return "/pools/" + v.Pool + "/" + v.Name, nil
}

func (m *memAPI) VolWipe(_ context.Context, v domain.VolHandle, alg domain.WipeAlgorithm, _ uint32) error {
	if !alg.Valid() {
		return domain.Errorf(domain.KindInvalidArg, "wiping algorithm %d not supported", alg)
	}
	_, err := m.volPool(v)
	return err
}

func (m *memAPI) VolResize(_ context.Context, v domain.VolHandle, _ uint64, _ uint32) error {
	_, err := m.volPool(v)
	return err
}

// memWriter records what an upload wrote: data as bytes, holes as zeros, plus the
// sequence of operations.
type memWriter struct {
	mu       sync.Mutex
	data     []byte
	ops      []string
	limit    int             // Write fails with ENOSPC past this size when > 0
	discard  bool            // keep nothing, count the bytes (benchmarks)
	written  int64           // bytes written when discarding
	gate     <-chan struct{} // Write waits until it is closed, when set
	done     chan struct{}
	finished bool
	aborted  bool
	m        *memAPI
	vol      domain.VolHandle
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.gate != nil {
		<-w.gate
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.discard {
		w.written += int64(len(p))
		return len(p), nil
	}
	if w.limit > 0 && len(w.data)+len(p) > w.limit {
		return 0, domain.SystemError(28, fmt.Errorf("No space left on device"), "cannot write to stream")
	}
	w.data = append(w.data, p...)
	w.ops = append(w.ops, fmt.Sprintf("data %d", len(p)))
	return len(p), nil
}

func (w *memWriter) Hole(n int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.data = append(w.data, make([]byte, n)...)
	w.ops = append(w.ops, fmt.Sprintf("hole %d", n))
	return nil
}

func (w *memWriter) Finish(context.Context) error {
	w.mu.Lock()
	w.finished = true
	w.ops = append(w.ops, "finish")
	data := append([]byte(nil), w.data...)
	w.mu.Unlock()
	w.m.mu.Lock()
	if p := w.m.pools[w.vol.Pool]; p != nil {
		p.vols[w.vol.Name] = data
	}
	w.m.mu.Unlock()
	close(w.done)
	return nil
}

func (w *memWriter) Abort() {
	w.mu.Lock()
	w.aborted = true
	w.ops = append(w.ops, "abort")
	w.mu.Unlock()
	close(w.done)
}

func (w *memWriter) result() (ops []string, finished, aborted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.ops...), w.finished, w.aborted
}

func (w *memWriter) contents() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.data...)
}

func (m *memAPI) VolUpload(_ context.Context, v domain.VolHandle, _, _ uint64, _ uint32) (ports.VolumeWriter, error) {
	if _, err := m.volPool(v); err != nil {
		return nil, err
	}
	w := &memWriter{m: m, vol: v, done: make(chan struct{})}
	switch v.Name {
	case "full.img":
		w.limit = 10
	case "null.img":
		w.discard = true
	}
	m.mu.Lock()
	if v.Name == "slow.img" {
		w.gate = m.slowWrites
	}
	m.uploads = append(m.uploads, w)
	m.mu.Unlock()
	return w, nil
}

// holdWrites makes uploads to slow.img wait in Write until the returned
// func runs.
func (m *memAPI) holdWrites() (release func()) {
	ch := make(chan struct{})
	m.mu.Lock()
	m.slowWrites = ch
	m.mu.Unlock()
	return func() { close(ch) }
}

func (m *memAPI) lastUpload() *memWriter {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.uploads) == 0 {
		return nil
	}
	return m.uploads[len(m.uploads)-1]
}

// memReader replays a fixed sequence of segments: data (hole == 0) or holes.
type memReader struct {
	mu     sync.Mutex
	segs   []segment
	closed chan struct{}
}

type segment struct {
	data []byte
	hole int64
}

func (r *memReader) Next(buf []byte) (int, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.segs) == 0 {
		return 0, 0, io.EOF
	}
	s := &r.segs[0]
	if s.hole > 0 {
		h := s.hole
		r.segs = r.segs[1:]
		return 0, h, nil
	}
	n := copy(buf, s.data)
	s.data = s.data[n:]
	if len(s.data) == 0 {
		r.segs = r.segs[1:]
	}
	return n, 0, nil
}

func (r *memReader) Close() error {
	close(r.closed)
	return nil
}

// fileReader serves a download from a real file through NextSection, the
// sendfile path; Next must not be used. Its sections are those of memReader's
// segments; afterFirst runs once the first section is handed out.
type fileReader struct {
	mu         sync.Mutex
	f          *os.File
	sparse     bool
	segs       []fileSegment
	afterFirst func(f *os.File)
	handed     int
	closed     chan struct{}
}

type fileSegment struct {
	off, n int64
	hole   bool
}

var _ ports.VolumeSectionReader = (*fileReader)(nil)

func (r *fileReader) SectionError(err error) error {
	return domain.SystemError(0, err, "cannot read from '%s'", r.f.Name())
}

func (r *fileReader) Next([]byte) (int, int64, error) {
	return 0, 0, errors.New("fileReader: Next used where NextSection should be")
}

func (r *fileReader) NextSection(max int) (ports.FileSection, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.handed == 1 && r.afterFirst != nil {
		r.afterFirst(r.f)
	}
	if len(r.segs) == 0 {
		return ports.FileSection{}, io.EOF
	}
	s := &r.segs[0]
	if s.hole && r.sparse {
		r.segs = r.segs[1:]
		return ports.FileSection{Hole: s.n}, nil
	}
	off, n := s.off, min(int64(max), s.n)
	s.off, s.n = s.off+n, s.n-n
	if s.n == 0 {
		r.segs = r.segs[1:]
	}
	r.handed++
	return ports.FileSection{FD: int(r.f.Fd()), Offset: off, Len: int(n)}, nil
}

func (r *fileReader) Close() error {
	close(r.closed)
	return r.f.Close()
}

// setFileVol serves images/name from a file of the segments' layout: data
// segments filled with content, holes left as holes.
func (m *memAPI) setFileVol(t *testing.T, name string, content []byte, segs []fileSegment, afterFirst func(*os.File)) *fileReader {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, s := range segs {
		if !s.hole {
			if _, err := f.WriteAt(content[s.off:s.off+s.n], s.off); err != nil {
				t.Fatal(err)
			}
		}
		size = max(size, s.off+s.n)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	r := &fileReader{f: f, segs: segs, afterFirst: afterFirst, closed: make(chan struct{})}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.files == nil {
		m.files = map[string]*fileReader{}
	}
	m.files[name] = r
	m.pools["images"].vols[name] = nil
	return r
}

func (m *memAPI) VolDownload(_ context.Context, v domain.VolHandle, _, _ uint64, flags uint32) (ports.VolumeReader, error) {
	p, err := m.volPool(v)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	fr := m.files[v.Name]
	m.mu.Unlock()
	if fr != nil {
		fr.sparse = flags&domain.StreamSparse != 0
		return fr, nil
	}
	m.mu.Lock()
	data := p.vols[v.Name] // never modified in place: uploads replace the slice
	m.mu.Unlock()
	r := &memReader{closed: make(chan struct{})}
	switch {
	case v.Name == "sparse.img" && flags&domain.StreamSparse != 0:
		r.segs = []segment{{data: data}, {hole: 8192}, {data: data}, {hole: 4096}}
	case v.Name == "sparse.img":
		r.segs = []segment{{data: data}, {data: make([]byte, 8192)}, {data: data}, {data: make([]byte, 4096)}}
	default:
		r.segs = []segment{{data: data}}
	}
	m.mu.Lock()
	m.readers = append(m.readers, r)
	m.mu.Unlock()
	return r, nil
}

var _ ports.StorageAPI = (*memAPI)(nil)

func (m *memAPI) setVol(pool, name string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pools[pool].vols[name] = data
}

func (m *memAPI) lastReader() *memReader {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.readers) == 0 {
		return nil
	}
	return m.readers[len(m.readers)-1]
}
