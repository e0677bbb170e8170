package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// unknownFlag is a flag bit no storage API defines: every backend that
// checks its flags refuses it.
const unknownFlag uint32 = 1 << 30

// cleanupTimeout bounds the removal of a test's pool, which runs after the
// test, whatever its context did.
const cleanupTimeout = time.Minute

// env is one test's harness, backend and capabilities.
type env struct {
	t    *testing.T
	ctx  context.Context
	h    Harness
	b    ports.PoolBackend
	caps Capabilities
}

// newPool makes and validates a pool, removed when the test ends.
func (e *env) newPool(name string) *domain.PoolDef {
	e.t.Helper()
	def, err := e.h.MakePool(e.ctx, name)
	if err != nil {
		e.t.Fatalf("harness: making pool %s: %v", name, err)
	}
	if err := e.b.ValidatePool(def); err != nil {
		e.t.Fatalf("ValidatePool(%s) = %v", name, err)
	}
	e.t.Cleanup(func() {
		// Best effort: a failed test may have left the pool in any state,
		// and the harness's own cleanups run after this one.
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		_ = e.b.StopPool(ctx, def)
		if e.caps.Delete {
			_ = e.b.DeletePool(ctx, def, 0)
		}
	})
	return def
}

// started makes a pool, builds it where the type builds, and starts it.
func (e *env) started(name string) *domain.PoolDef {
	e.t.Helper()
	def := e.newPool(name)
	if err := e.b.BuildPool(e.ctx, def, e.caps.BuildFlags); err != nil {
		e.t.Fatalf("BuildPool(%s, %#x) = %v", name, e.caps.BuildFlags, err)
	}
	if err := e.b.StartPool(e.ctx, def); err != nil {
		e.t.Fatalf("StartPool(%s) = %v", name, err)
	}
	return def
}

// refresh lists a pool and checks what every listing owes the service:
// figures that hold together, and volumes with a name, key and path unique in
// the pool. It returns the figures and the volumes by name.
func (e *env) refresh(def *domain.PoolDef) (domain.PoolStats, map[string]*domain.VolDef) {
	e.t.Helper()
	stats, vols, err := e.b.RefreshPool(e.ctx, def)
	if err != nil {
		e.t.Fatalf("RefreshPool(%s) = %v", def.Name, err)
	}
	if stats.Allocation > stats.Capacity || stats.Available > stats.Capacity-stats.Allocation {
		e.t.Errorf("RefreshPool(%s): figures do not add up: capacity %d, allocation %d, available %d",
			def.Name, stats.Capacity, stats.Allocation, stats.Available)
	}
	byName := make(map[string]*domain.VolDef, len(vols))
	keys := make(map[string]string, len(vols))
	for _, v := range vols {
		switch {
		case v.Name == "" || v.Key == "" || v.Target.Path == "":
			e.t.Errorf("RefreshPool(%s) lists a volume without a name, key or path: %+v", def.Name, v)
		case byName[v.Name] != nil:
			e.t.Errorf("RefreshPool(%s) lists volume %q twice", def.Name, v.Name)
		case keys[v.Key] != "":
			e.t.Errorf("RefreshPool(%s): volumes %q and %q share the key %q", def.Name, keys[v.Key], v.Name, v.Key)
		}
		byName[v.Name] = v
		keys[v.Key] = v.Name
	}
	return stats, byName
}

// wantListed fails unless the pool lists name (want) or does not (!want).
func (e *env) wantListed(def *domain.PoolDef, name string, want bool, when string) *domain.VolDef {
	e.t.Helper()
	_, vols := e.refresh(def)
	v := vols[name]
	if (v != nil) != want {
		e.t.Fatalf("%s: RefreshPool lists %q: %v, want %v", when, name, v != nil, want)
	}
	return v
}

// volDef is a new volume as the service hands it to PrepareVol: the XML's
// name, capacity and allocation, unset permissions, the pool's default
// format.
func volDef(name string, capacity, allocation uint64) *domain.VolDef {
	return &domain.VolDef{Name: name, Capacity: capacity, HasCapacity: true, Allocation: allocation, HasAllocation: true,
		Target: domain.VolTarget{Perms: domain.UnsetPerms()}}
}

// volName is the name the suite's volume called name has in pool def: name
// itself, or what the harness's VolumeNamer says.
func (e *env) volName(def *domain.PoolDef, name string) string {
	if n, ok := e.h.(VolumeNamer); ok {
		return n.VolumeName(def, name)
	}
	return name
}

// volDef is volDef under the name the pool gives it.
func (e *env) volDef(def *domain.PoolDef, name string, capacity, allocation uint64) *domain.VolDef {
	return volDef(e.volName(def, name), capacity, allocation)
}

// create prepares, builds and re-reads a volume, as the service's
// VolCreateXML does.
func (e *env) create(def *domain.PoolDef, name string, capacity, allocation uint64) *domain.VolDef {
	e.t.Helper()
	vol := e.volDef(def, name, capacity, allocation)
	if err := e.b.PrepareVol(def, vol); err != nil {
		e.t.Fatalf("PrepareVol(%s) = %v", name, err)
	}
	if err := e.b.BuildVol(e.ctx, def, vol, 0); err != nil {
		e.t.Fatalf("BuildVol(%s) = %v", name, err)
	}
	if err := e.b.RefreshVol(e.ctx, def, vol); err != nil {
		e.t.Fatalf("RefreshVol(%s) after BuildVol = %v", name, err)
	}
	return vol
}

// someVolume returns a volume of the suite's size to work on: created
// (with its light allocation, or fully allocated with full) where the type
// creates volumes, made behind the backend's back otherwise.
func (e *env) someVolume(def *domain.PoolDef, name string, full bool) *domain.VolDef {
	e.t.Helper()
	size := e.caps.volumeSize()
	if e.caps.has(CreateVol) {
		alloc := e.caps.lightAllocation(size)
		if full && e.caps.Allocation != Thin {
			alloc = size
		}
		return e.create(def, name, size, alloc)
	}
	listed, err := e.h.AddVolume(e.ctx, def, name, size)
	if err != nil {
		e.t.Fatalf("harness: adding volume %s: %v", name, err)
	}
	return e.wantListed(def, listed, true, "after AddVolume")
}

// reread returns a fresh RefreshVol of a copy of vol.
func (e *env) reread(def *domain.PoolDef, vol *domain.VolDef) *domain.VolDef {
	e.t.Helper()
	v := vol.Clone()
	if err := e.b.RefreshVol(e.ctx, def, v); err != nil {
		e.t.Fatalf("RefreshVol(%s) = %v", vol.Name, err)
	}
	return v
}

// wantCapacity checks a capacity asked for want: at least that, rounded up
// to the type's granularity at most.
func (e *env) wantCapacity(what string, got, want uint64) {
	e.t.Helper()
	if got < want || got > e.caps.roundUp(want) {
		e.t.Errorf("%s: capacity %d, want %d (rounded up to %d at most)", what, got, want, e.caps.roundUp(want))
	}
}

// wantError checks that err is a domain error, of one of kinds when given.
func (e *env) wantError(err error, what string, kinds ...domain.Kind) {
	e.t.Helper()
	if err == nil {
		e.t.Errorf("%s: no error", what)
		return
	}
	var de *domain.Error
	if !errors.As(err, &de) {
		e.t.Errorf("%s: %v is a %T, not a *domain.Error: the client would see an internal error", what, err, err)
		return
	}
	if len(kinds) > 0 && !slices.Contains(kinds, de.Kind) {
		codes := make([]int32, len(kinds))
		for i, k := range kinds {
			codes[i] = k.Code()
		}
		e.t.Errorf("%s: libvirt code %d, want one of %v: %v", what, de.Kind.Code(), codes, err)
	}
}

// wantCancelled checks that err is the context's error.
func (e *env) wantCancelled(err error, what string) {
	e.t.Helper()
	if !errors.Is(err, context.Canceled) {
		e.t.Errorf("%s with a cancelled context = %v, want the context's error", what, err)
	}
}

// wantCheck checks CheckPool's answer.
func (e *env) wantCheck(def *domain.PoolDef, want bool, when string) {
	e.t.Helper()
	active, err := e.b.CheckPool(e.ctx, def)
	if err != nil {
		e.t.Errorf("CheckPool %s = %v; it answers, it does not fail, when the storage is missing", when, err)
		return
	}
	if active != want {
		e.t.Errorf("CheckPool %s = %v, want %v", when, active, want)
	}
}

// needData skips the rest of a test that reads or writes volume data when
// the environment cannot.
func (e *env) needData() {
	e.t.Helper()
	if e.caps.NoData != "" {
		e.t.Skipf("declared by the harness: %s", e.caps.NoData)
	}
}

// upload writes data into vol at off through an upload stream.
func (e *env) upload(def *domain.PoolDef, vol *domain.VolDef, off uint64, data []byte) {
	e.t.Helper()
	w, err := e.b.UploadVol(e.ctx, def, vol, off, uint64(len(data)), 0)
	if err != nil {
		e.t.Fatalf("UploadVol(%s, %d) = %v", vol.Name, off, err)
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		e.t.Fatalf("upload into %s: Write = %v", vol.Name, err)
	}
	if err := w.Finish(e.ctx); err != nil {
		e.t.Fatalf("upload into %s: Finish = %v", vol.Name, err)
	}
}

// download reads vol from off for length bytes (0: to the end); holes of a
// sparse download come back as zeros.
func (e *env) download(def *domain.PoolDef, vol *domain.VolDef, off, length uint64, flags uint32) []byte {
	e.t.Helper()
	r, err := e.b.DownloadVol(e.ctx, def, vol, off, length, flags)
	if err != nil {
		e.t.Fatalf("DownloadVol(%s, %d, %d) = %v", vol.Name, off, length, err)
	}
	defer func() {
		if err := r.Close(); err != nil {
			e.t.Errorf("closing the download of %s: %v", vol.Name, err)
		}
	}()
	var out bytes.Buffer
	buf := make([]byte, 256<<10)
	for {
		n, hole, err := r.Next(buf)
		if errors.Is(err, io.EOF) {
			return out.Bytes()
		}
		if err != nil {
			e.t.Fatalf("download of %s: Next = %v", vol.Name, err)
		}
		if hole > 0 && flags&domain.StreamSparse == 0 {
			e.t.Fatalf("download of %s reports a hole without StreamSparse", vol.Name)
		}
		out.Write(buf[:n])
		out.Write(make([]byte, hole))
	}
}

// downloadSections reads a whole volume as the transport does when the
// reader offers sections (sendfile): where each section lies, then a pread
// of it. ok is false when the reader offers none.
func (e *env) downloadSections(def *domain.PoolDef, vol *domain.VolDef, flags uint32) (data []byte, ok bool) {
	e.t.Helper()
	r, err := e.b.DownloadVol(e.ctx, def, vol, 0, 0, flags)
	if err != nil {
		e.t.Fatalf("DownloadVol(%s) = %v", vol.Name, err)
	}
	defer r.Close()
	sr, ok := r.(ports.VolumeSectionReader)
	if !ok {
		return nil, false
	}
	var out bytes.Buffer
	for {
		sec, err := sr.NextSection(256 << 10)
		if errors.Is(err, io.EOF) {
			return out.Bytes(), true
		}
		if err != nil {
			e.t.Fatalf("download of %s: NextSection = %v", vol.Name, err)
		}
		buf := make([]byte, sec.Len)
		got, err := syscall.Pread(sec.FD, buf, sec.Offset)
		if err != nil {
			e.t.Fatalf("download of %s: reading the section at %d: %v", vol.Name, sec.Offset, sr.SectionError(err))
		}
		out.Write(buf[:got])
		out.Write(make([]byte, sec.Hole))
		if got < sec.Len {
			return out.Bytes(), true // the file shrank: the stream ends here
		}
	}
}

// pattern returns n bytes of a sequence that never holds a zero byte, so
// that data and holes cannot be mistaken.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+int(seed))%251 + 1
	}
	return b
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// firstDiff describes where two byte slices first differ.
func firstDiff(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d bytes, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("byte %d is %#x, want %#x", i, got[i], want[i])
		}
	}
	return "equal"
}

func cancelledContext(ctx context.Context) context.Context {
	c, cancel := context.WithCancel(ctx)
	cancel()
	return c
}
