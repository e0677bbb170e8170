package service

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// volRef is a volume resolved from a handle, with copies of the definitions a
// backend call may use without locks, and the backend of the pool's
// definition.
type volRef struct {
	e    *entry
	v    *domain.Volume
	pdef *domain.PoolDef
	vdef *domain.VolDef
	b    ports.PoolBackend
}

// resolveVol finds a VOL handle's volume: by pool name and volume name, in a
// running pool. With acquire set it also takes the volume for a job.
func (s *Service) resolveVol(h domain.VolHandle, acquire func(v *domain.Volume) error) (volRef, error) {
	e, err := s.entryByName(h.Pool)
	if err != nil {
		return volRef{}, err
	}
	var r volRef
	err = e.view(func(p *domain.Pool) error {
		if err := p.CheckActive(); err != nil {
			return err
		}
		v, err := p.LookupVolume(h.Name)
		if err != nil {
			return err
		}
		if acquire != nil {
			if err := acquire(v); err != nil {
				return err
			}
		}
		r = volRef{e: e, v: v, pdef: p.Def(), vdef: v.Def.Clone(), b: s.backendOf(p.Def())}
		return nil
	})
	return r, err
}

func exclusive(v *domain.Volume) error { return v.AcquireExclusive() }
func shared(v *domain.Volume) error    { return v.AcquireShared() }

func (r volRef) releaseExclusive() {
	r.e.mu.Lock()
	r.v.ReleaseExclusive()
	r.e.mu.Unlock()
}

func (r volRef) releaseShared() {
	r.e.mu.Lock()
	r.v.ReleaseShared()
	r.e.mu.Unlock()
}

// store writes a refreshed definition back unless the volume is being built (its
// builder owns the figures then).
func (r volRef) store(def *domain.VolDef) {
	r.e.mu.Lock()
	if !r.v.Building() {
		r.v.Def = def
	}
	r.e.mu.Unlock()
}

// VolLookupByName finds a volume by name in a running pool.
func (s *Service) VolLookupByName(ctx context.Context, h domain.PoolHandle, name string) (domain.VolHandle, error) {
	e, err := s.resolve(h)
	if err != nil {
		return domain.VolHandle{}, err
	}
	var vh domain.VolHandle
	err = e.view(func(p *domain.Pool) error {
		if err := p.CheckActive(); err != nil {
			return err
		}
		v, err := p.LookupVolume(name)
		if err != nil {
			return err
		}
		vh = volHandle(p, v)
		return nil
	})
	return vh, err
}

// findVol searches the running pools for a volume.
func (s *Service) findVol(match func(p *domain.Pool) *domain.Volume) (domain.VolHandle, bool) {
	for _, e := range s.entries() {
		var vh domain.VolHandle
		found := false
		_ = e.view(func(p *domain.Pool) error {
			if !p.Active() {
				return nil
			}
			if v := match(p); v != nil {
				vh, found = volHandle(p, v), true
			}
			return nil
		})
		if found {
			return vh, true
		}
	}
	return domain.VolHandle{}, false
}

// VolLookupByKey finds a volume by key in the running pools.
func (s *Service) VolLookupByKey(ctx context.Context, key string) (domain.VolHandle, error) {
	if vh, ok := s.findVol(func(p *domain.Pool) *domain.Volume { return p.VolumeByKey(key) }); ok {
		return vh, nil
	}
	return domain.VolHandle{}, domain.ErrVolNotFoundKey(key)
}

// VolLookupByPath finds a volume by path (cleaned) in the running pools.
func (s *Service) VolLookupByPath(ctx context.Context, path string) (domain.VolHandle, error) {
	if vh, ok := s.findVol(func(p *domain.Pool) *domain.Volume { return p.VolumeByPath(path) }); ok {
		return vh, nil
	}
	return domain.VolHandle{}, domain.ErrVolNotFoundPath(path)
}

// newVol parses a volume definition for a running pool and checks its name.
func (s *Service) newVol(ctx context.Context, e *entry, xml string, flags uint32, exists func(string) error) (*domain.PoolDef, *domain.VolDef, error) {
	var pdef *domain.PoolDef
	if err := e.view(func(p *domain.Pool) error {
		pdef = p.Def()
		return p.CheckActive()
	}); err != nil {
		return nil, nil, err
	}
	if flags&domain.VolCreateValidate != 0 {
		if err := s.codec.ValidateVol(ctx, xml); err != nil {
			return nil, nil, err
		}
	}
	vdef, err := s.codec.ParseVol(xml, pdef, flags&domain.VolCreateValidate)
	if err != nil {
		return nil, nil, err
	}
	// The backend makes the key; one in the client's XML (virsh vol-clone
	// sends the source's) would collide with its owner's. libvirt drops it
	// too.
	vdef.Key = ""
	if err := domain.ValidateVolName(vdef.Name); err != nil {
		return nil, nil, err
	}
	if err := e.view(func(p *domain.Pool) error {
		if p.Volume(vdef.Name) != nil {
			return exists(vdef.Name)
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	return pdef, vdef, nil
}

// admit adds vdef to the pool as a building volume and reserves its initial
// allocation, re-checking the pool state (it may have changed since newVol).
func (s *Service) admit(e *entry, vdef *domain.VolDef, flags uint32, exists func(string) error) (*domain.Volume, *domain.Reservation, error) {
	var v *domain.Volume
	var res *domain.Reservation
	err := e.view(func(p *domain.Pool) error {
		if err := p.CheckActive(); err != nil {
			return err
		}
		if p.Volume(vdef.Name) != nil {
			return exists(vdef.Name)
		}
		var err error
		res, err = p.Ledger.ReserveVol(p.Name(), vdef.Name, domain.InitialAllocation(vdef, flags))
		if err != nil {
			return err
		}
		if v, err = p.AddBuilding(vdef); err != nil {
			res.Release()
			return err
		}
		return nil
	})
	return v, res, err
}

// cleanupTimeout bounds the bookkeeping that runs after a client may have gone.
const cleanupTimeout = 30 * time.Second

// finishCreate refreshes a built volume and makes it usable, or undoes it.
func (s *Service) finishCreate(ctx context.Context, e *entry, b ports.PoolBackend, pdef *domain.PoolDef, v *domain.Volume, res *domain.Reservation, bdef *domain.VolDef, buildErr error) (domain.VolHandle, error) {
	undo := func() {
		e.mu.Lock()
		e.pool.RemoveVolume(v)
		res.Release()
		e.mu.Unlock()
	}
	if buildErr != nil {
		undo()
		return domain.VolHandle{}, buildErr
	}
	// The volume exists now: reading its figures, or removing it when that
	// fails, must finish even if the client hung up meanwhile, or a volume would
	// be left on disk that the pool does not know of.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := b.RefreshVol(ctx, pdef, bdef); err != nil {
		if derr := b.DeleteVol(ctx, pdef, bdef, 0); derr != nil {
			s.plog(pdef.Name).WithField("vol", bdef.Name).WithError(derr).Warn("removing volume after failed refresh")
		}
		undo()
		return domain.VolHandle{}, err
	}
	e.mu.Lock()
	e.pool.VolumeCreated(v, bdef, res)
	e.mu.Unlock()
	s.plog(pdef.Name).WithField("vol", bdef.Name).Info("volume created")
	s.rereadLayout(ctx, e, false)
	return domain.VolHandle{Pool: pdef.Name, Name: bdef.Name, Key: bdef.Key}, nil
}

// volCreate is what tells the two volume creates apart.
type volCreate struct {
	// exists is the error for a name the pool already has.
	exists func(name string) error
	// shape checks or completes the parsed definition before the backend
	// prepares it; release, when not nil, runs once the create is over.
	shape func(vdef *domain.VolDef) (release func(), err error)
	// job is the kind of job the build is reported as, total its size in
	// bytes for the progress figures.
	job   domain.JobKind
	total func(vdef *domain.VolDef, flags uint32) uint64
	// build makes the volume with the pool's backend.
	build func(ctx context.Context, b ports.PoolBackend, pdef *domain.PoolDef, bdef *domain.VolDef, flags uint32) error
}

// createVol is the skeleton of both volume creates: parse, shape, prepare,
// admit (reserve the initial allocation), build, then refresh the new volume
// and charge the ledger, or undo it.
func (s *Service) createVol(ctx context.Context, h domain.PoolHandle, xml string, flags uint32, c volCreate) (domain.VolHandle, error) {
	e, err := s.resolve(h)
	if err != nil {
		return domain.VolHandle{}, err
	}
	defer s.track()()
	pdef, vdef, err := s.newVol(ctx, e, xml, flags, c.exists)
	if err != nil {
		return domain.VolHandle{}, err
	}
	// VALIDATE is done with: libvirt 9.0 hands it on to its volume parser and
	// backends, which refuse it, so that no volume could ever be created with
	// it; here a document that validates is created (README).
	flags &^= domain.VolCreateValidate
	release, err := c.shape(vdef)
	if err != nil {
		return domain.VolHandle{}, err
	}
	if release != nil {
		defer release()
	}
	b := s.backendOf(pdef)
	if err := b.PrepareVol(pdef, vdef); err != nil {
		return domain.VolHandle{}, err
	}
	v, res, err := s.admit(e, vdef, flags, c.exists)
	if err != nil {
		return domain.VolHandle{}, err
	}
	bdef := vdef.Clone()
	jctx, j := s.beginJob(ctx, c.job, pdef.Name, vdef.Name, c.total(vdef, flags))
	err = c.build(jctx, b, pdef, bdef, flags)
	vh, err := s.finishCreate(ctx, e, b, pdef, v, res, bdef, err)
	j.end(err)
	return vh, err
}

// rereadLayout re-reads a pool whose volumes are cut out of one shared
// layout (ports.LayoutSharingBackend) after a volume was created or deleted.
// After a create, as in libvirt, the pool's figures and free extents are
// taken, and the volumes that were there keep their definitions but for
// their allocation (an extended partition's is its logical partitions');
// after a delete (whole) the volumes are listed afresh, since the remaining
// partitions may have been renumbered. A failure is logged: the volume
// change itself is done, and the next refresh corrects the figures.
func (s *Service) rereadLayout(ctx context.Context, e *entry, whole bool) {
	var backend ports.PoolBackend
	_ = e.view(func(p *domain.Pool) error {
		backend = s.backendOf(p.Def())
		return nil
	})
	ls, ok := backend.(ports.LayoutSharingBackend)
	if !ok || !ls.VolumesShareLayout() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := e.lockOps(); err != nil {
		return
	}
	defer e.opMu.Unlock()
	var def *domain.PoolDef
	var token uint64
	if err := e.view(func(p *domain.Pool) error {
		if err := p.CheckActive(); err != nil {
			return err
		}
		def, token = p.Def(), p.BeginRefresh()
		return nil
	}); err != nil {
		return
	}
	live := def.Clone()
	stats, vols, err := backend.RefreshPool(ctx, live)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.pool.AbortRefresh()
		s.plog(def.Name).WithError(err).Warn("re-reading pool after a volume change")
		return
	}
	if !whole {
		for i, v := range vols {
			if old := e.pool.Volume(v.Name); old != nil && old.Def.Key == v.Key {
				d := old.Def.Clone()
				d.Allocation = v.Allocation
				vols[i] = d
			}
		}
	}
	e.pool.ApplyRefreshSince(token, stats, vols)
	e.pool.UpdateLive(live)
}

// VolCreateXML creates a volume: parse, prepare, admit (reserve capacity), build,
// refresh, charge the ledger.
func (s *Service) VolCreateXML(ctx context.Context, h domain.PoolHandle, xml string, flags uint32) (domain.VolHandle, error) {
	if err := domain.CheckFlags(flags, domain.MaskVolCreate, "storageVolCreateXML"); err != nil {
		return domain.VolHandle{}, err
	}
	return s.createVol(ctx, h, xml, flags, volCreate{
		exists: func(n string) error { return domain.ErrVolExists(n) },
		shape: func(vdef *domain.VolDef) (func(), error) {
			if !vdef.HasCapacity {
				// Only create-from may leave the capacity to its source volume.
				return nil, domain.Errorf(domain.KindXMLError, "missing capacity element")
			}
			return nil, nil
		},
		job: domain.JobBuild,
		total: func(vdef *domain.VolDef, flags uint32) uint64 {
			return domain.InitialAllocation(vdef, flags)
		},
		build: func(ctx context.Context, b ports.PoolBackend, pdef *domain.PoolDef, bdef *domain.VolDef, flags uint32) error {
			return b.BuildVol(ctx, pdef, bdef, flags)
		},
	})
}

// VolCreateXMLFrom creates a volume as a copy of another (possibly in another
// pool), which stays in use for reading until the copy is made.
func (s *Service) VolCreateXMLFrom(ctx context.Context, h domain.PoolHandle, xml string, src domain.VolHandle, flags uint32) (domain.VolHandle, error) {
	if err := domain.CheckFlags(flags, domain.MaskVolCreateFrom, "storageVolCreateXMLFrom"); err != nil {
		return domain.VolHandle{}, err
	}
	var sr volRef
	return s.createVol(ctx, h, xml, flags, volCreate{
		exists: func(n string) error { return domain.ErrVolNameInUse(n) },
		shape: func(vdef *domain.VolDef) (func(), error) {
			var err error
			if sr, err = s.resolveVol(src, shared); err != nil {
				return nil, err
			}
			// A copy is never smaller than its source; knowing the size here
			// lets the admission check reserve it.
			if !vdef.HasCapacity || vdef.Capacity < sr.vdef.Capacity {
				vdef.Capacity = sr.vdef.Capacity
				vdef.HasCapacity = true
				if !vdef.HasAllocation {
					vdef.Allocation = vdef.Capacity
				}
			}
			return sr.releaseShared, nil
		},
		job: domain.JobClone,
		// The copy reads the source up to its capacity at most.
		total: func(*domain.VolDef, uint32) uint64 { return sr.vdef.Capacity },
		build: func(ctx context.Context, b ports.PoolBackend, pdef *domain.PoolDef, bdef *domain.VolDef, flags uint32) error {
			return b.BuildVolFrom(ctx, pdef, bdef, sr.pdef, sr.vdef, flags)
		},
	})
}

// VolDelete deletes a volume that no job holds.
func (s *Service) VolDelete(ctx context.Context, h domain.VolHandle, flags uint32) error {
	r, err := s.resolveVol(h, exclusive)
	if err != nil {
		return err
	}
	defer s.track()()
	if err := r.b.DeleteVol(ctx, r.pdef, r.vdef, flags); err != nil {
		r.releaseExclusive()
		return err
	}
	r.e.mu.Lock()
	r.v.ReleaseExclusive()
	r.e.pool.VolumeDeleted(r.v)
	r.e.mu.Unlock()
	s.plog(h.Pool).WithField("vol", h.Name).Info("volume deleted")
	s.rereadLayout(ctx, r.e, true)
	return nil
}

// refreshed re-reads a volume's figures (libvirt re-stats on every info and XML
// call). A volume being built answers its current figures: polling the
// allocation of a building volume is how clients follow its progress.
func (s *Service) refreshed(ctx context.Context, h domain.VolHandle) (volRef, error) {
	r, err := s.resolveVol(h, nil)
	if err != nil {
		return r, err
	}
	r.e.mu.Lock()
	building := r.v.Building()
	r.e.mu.Unlock()
	if building {
		return r, nil
	}
	if err := r.b.RefreshVol(ctx, r.pdef, r.vdef); err != nil {
		if domain.KindOf(err) == domain.KindNoStorageVol {
			// The backend says the volume is gone (an LV removed behind our
			// back): forget it now, so that lists and lookups agree with this
			// answer instead of waiting for the next pool refresh.
			r.e.mu.Lock()
			if r.e.pool.Volume(h.Name) == r.v && !r.v.Busy() {
				r.e.pool.VolumeDeleted(r.v)
			}
			r.e.mu.Unlock()
		}
		return r, err
	}
	r.store(r.vdef.Clone())
	return r, nil
}

// VolGetInfo returns a volume's type and figures; GET_PHYSICAL puts the physical
// size in the allocation field.
func (s *Service) VolGetInfo(ctx context.Context, h domain.VolHandle, flags uint32) (domain.VolInfo, error) {
	if err := domain.CheckFlags(flags, domain.MaskVolGetInfo, "storageVolGetInfoFlags"); err != nil {
		return domain.VolInfo{}, err
	}
	r, err := s.refreshed(ctx, h)
	if err != nil {
		return domain.VolInfo{}, err
	}
	info := domain.VolInfo{Type: r.vdef.Type, Capacity: r.vdef.Capacity, Allocation: r.vdef.Allocation}
	if flags&domain.VolGetPhysical != 0 {
		info.Allocation = r.vdef.Physical
	}
	return info, nil
}

// VolGetXMLDesc formats a freshly re-read volume.
func (s *Service) VolGetXMLDesc(ctx context.Context, h domain.VolHandle, flags uint32) (string, error) {
	if err := domain.CheckFlags(flags, domain.MaskVolXMLDesc, "storageVolGetXMLDesc"); err != nil {
		return "", err
	}
	r, err := s.refreshed(ctx, h)
	if err != nil {
		return "", err
	}
	return s.codec.FormatVol(r.pdef, r.vdef)
}

// VolGetPath returns a volume's path.
func (s *Service) VolGetPath(ctx context.Context, h domain.VolHandle) (string, error) {
	r, err := s.resolveVol(h, nil)
	if err != nil {
		return "", err
	}
	return r.vdef.Target.Path, nil
}

// VolWipe wipes a volume with the given algorithm.
func (s *Service) VolWipe(ctx context.Context, h domain.VolHandle, algorithm domain.WipeAlgorithm, flags uint32) error {
	if err := domain.CheckFlags(flags, domain.MaskVolWipe, "storageVolWipePattern"); err != nil {
		return err
	}
	if !algorithm.Valid() {
		return domain.ErrWipeAlgorithm(algorithm)
	}
	r, err := s.resolveVol(h, exclusive)
	if err != nil {
		return err
	}
	defer s.track()()
	defer r.releaseExclusive()
	jctx, j := s.beginJob(ctx, domain.JobWipe, h.Pool, h.Name, r.vdef.Capacity)
	err = r.b.WipeVol(jctx, r.pdef, r.vdef, algorithm, flags)
	j.end(err)
	if err != nil {
		return err
	}
	// A wipe may change the format (a wiped qcow2 reads back as raw zeros).
	if err := r.b.RefreshVol(ctx, r.pdef, r.vdef); err != nil {
		return err
	}
	r.store(r.vdef.Clone())
	return nil
}

// VolResize changes a volume's capacity with libvirt's checks; --allocate is
// charged to the ledger (and refused when the pool cannot hold it).
func (s *Service) VolResize(ctx context.Context, h domain.VolHandle, capacity uint64, flags uint32) error {
	if err := domain.CheckFlags(flags, domain.MaskVolResize, "storageVolResize"); err != nil {
		return err
	}
	var plan domain.ResizePlan
	var res *domain.Reservation
	r, err := s.resolveVol(h, func(v *domain.Volume) error {
		if err := v.AcquireExclusive(); err != nil {
			return err
		}
		var err error
		if plan, err = domain.PlanResize(v.Def, capacity, flags); err != nil {
			v.ReleaseExclusive()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer s.track()()
	if plan.Delta > 0 {
		if err := r.e.view(func(p *domain.Pool) error {
			var err error
			res, err = p.Ledger.ReserveResize(plan.Delta)
			return err
		}); err != nil {
			r.releaseExclusive()
			return err
		}
	}
	if err := r.b.ResizeVol(ctx, r.pdef, r.vdef, plan.Capacity, plan.Flags); err != nil {
		r.e.mu.Lock()
		res.Release()
		r.v.ReleaseExclusive()
		r.e.mu.Unlock()
		return err
	}
	// Charge the pool with what the resize really allocated: --allocate on a
	// file, but also any growth of a thick LV or of a preallocated image. The
	// volume is re-read for that; the bookkeeping finishes even if the client
	// hung up meanwhile.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	d := r.vdef.Clone()
	d.Capacity = plan.Capacity
	if plan.Flags&domain.VolResizeAllocate != 0 {
		d.Allocation = plan.Capacity
	}
	if err := r.b.RefreshVol(rctx, r.pdef, d); err != nil {
		s.plog(h.Pool).WithField("vol", h.Name).WithError(err).Warn("cannot re-read volume after resize; figures are estimated")
	}
	r.e.mu.Lock()
	res.Release() // it only guarded admission; the ledger is charged below
	old := r.v.Def.Allocation
	if d.Allocation > old {
		r.e.pool.Ledger.Add(d.Allocation - old)
	} else {
		r.e.pool.Ledger.Remove(old - d.Allocation)
	}
	r.v.Def = d
	r.v.ReleaseExclusive()
	r.e.mu.Unlock()
	return nil
}

// validateRange refuses an offset/length pair whose end does not fit in 64 bits.
func validateRange(offset, length uint64) error {
	if offset+length < offset {
		return domain.Errorf(domain.KindInvalidArg, "offset %d + length %d overflows", offset, length)
	}
	return nil
}

// openStream is what both streams do before their backend opens them:
// check the flags and the range, take the volume (exclusively to write,
// shared to read), count the job and begin it as kind; open then opens the
// backend's end with the job's context, and a failure ends the job and gives
// the volume back. The stream's wrapper ends the job, releases the volume
// and calls done when the stream ends.
func openStream[T any](ctx context.Context, s *Service, h domain.VolHandle, offset, length uint64, flags uint32, api string, kind domain.JobKind, open func(ctx context.Context, r volRef) (T, error)) (stream T, r volRef, j *job, done func(), err error) {
	if err = domain.CheckFlags(flags, domain.MaskVolStream, api); err != nil {
		return stream, r, nil, nil, err
	}
	if err = validateRange(offset, length); err != nil {
		return stream, r, nil, nil, err
	}
	write := kind == domain.JobUpload
	acquire, release := shared, volRef.releaseShared
	if write {
		acquire, release = exclusive, volRef.releaseExclusive
	}
	if r, err = s.resolveVol(h, acquire); err != nil {
		return stream, r, nil, nil, err
	}
	size := max(r.vdef.Capacity, r.vdef.Physical)
	if write && offset > size {
		// Beyond libvirt, which silently makes a huge sparse file.
		release(r)
		return stream, volRef{}, nil, nil, domain.Errorf(domain.KindInvalidArg, "offset %d is beyond the end of volume '%s' (%d bytes)", offset, h.Name, size)
	}
	done = s.track()
	jctx, j := s.beginJob(ctx, kind, h.Pool, h.Name, domain.StreamTotal(offset, length, size))
	if stream, err = open(jctx, r); err != nil {
		j.end(err)
		release(r)
		done()
		return stream, volRef{}, nil, nil, err
	}
	return stream, r, j, done, nil
}

// VolUpload opens an upload into a volume, which stays busy until the writer is
// finished or aborted. Beyond libvirt, an offset past the end of the volume is
// refused instead of silently creating a huge sparse file.
func (s *Service) VolUpload(ctx context.Context, h domain.VolHandle, offset, length uint64, flags uint32) (ports.VolumeWriter, error) {
	w, r, j, done, err := openStream(ctx, s, h, offset, length, flags, "storageVolUpload", domain.JobUpload, func(ctx context.Context, r volRef) (ports.VolumeWriter, error) {
		return r.b.UploadVol(ctx, r.pdef, r.vdef, offset, length, flags)
	})
	if err != nil {
		return nil, err
	}
	return &uploadWriter{VolumeWriter: w, s: s, r: r, done: done, job: j}, nil
}

// uploadWriter keeps the volume busy until the upload ends, then re-reads the
// volume and announces the change with a refresh event (as libvirt does after an
// upload, but without re-reading the whole pool).
type uploadWriter struct {
	ports.VolumeWriter
	s    *Service
	r    volRef
	done func()
	job  *job
	once sync.Once
}

// errStreamAborted ends the job of a stream its client aborted or dropped.
var errStreamAborted = errors.New("stream aborted")

// Write stores data and counts it done.
func (w *uploadWriter) Write(p []byte) (int, error) {
	n, err := w.VolumeWriter.Write(p)
	w.job.Advance(int64(n))
	return n, err
}

// Hole skips length bytes and counts them done.
func (w *uploadWriter) Hole(length int64) error {
	err := w.VolumeWriter.Hole(length)
	if err == nil {
		w.job.Advance(length)
	}
	return err
}

// Finish completes the upload, re-reads the volume and releases it. Only the
// first of Finish and Abort reaches the backend.
func (w *uploadWriter) Finish(ctx context.Context) error {
	var err error
	w.once.Do(func() {
		defer w.done()
		err = w.VolumeWriter.Finish(ctx)
		w.job.end(err)
		if rerr := w.r.b.RefreshVol(ctx, w.r.pdef, w.r.vdef); rerr == nil {
			w.r.store(w.r.vdef.Clone())
		} else {
			w.s.plog(w.r.pdef.Name).WithField("vol", w.r.vdef.Name).WithError(rerr).Warn("re-reading volume after upload")
		}
		w.r.releaseExclusive()
		w.s.events.PoolRefreshed(w.r.pdef.Handle())
	})
	return err
}

// Abort discards the upload and releases the volume.
func (w *uploadWriter) Abort() {
	w.once.Do(func() {
		w.VolumeWriter.Abort()
		w.job.end(errStreamAborted)
		w.r.releaseExclusive()
		w.done()
	})
}

// VolDownload opens a download of a volume, which stays in use until the reader
// is closed.
func (s *Service) VolDownload(ctx context.Context, h domain.VolHandle, offset, length uint64, flags uint32) (ports.VolumeReader, error) {
	rd, r, j, done, err := openStream(ctx, s, h, offset, length, flags, "storageVolDownload", domain.JobDownload, func(ctx context.Context, r volRef) (ports.VolumeReader, error) {
		return r.b.DownloadVol(ctx, r.pdef, r.vdef, offset, length, flags)
	})
	if err != nil {
		return nil, err
	}
	d := &downloadReader{VolumeReader: rd, r: r, done: done, job: j}
	if sr, ok := rd.(ports.VolumeSectionReader); ok {
		return &sectionDownloadReader{downloadReader: d, sections: sr}, nil
	}
	return d, nil
}

// sectionDownloadReader keeps the backend's sendfile path visible through the
// wrapper, which would otherwise hide it.
type sectionDownloadReader struct {
	*downloadReader
	sections ports.VolumeSectionReader
}

func (d *sectionDownloadReader) NextSection(max int) (ports.FileSection, error) {
	sec, err := d.sections.NextSection(max)
	d.job.Advance(sec.Size())
	if err == io.EOF {
		d.eof.Store(true)
	}
	return sec, err
}

func (d *sectionDownloadReader) SectionError(err error) error { return d.sections.SectionError(err) }

// downloadReader keeps the volume in use until closed.
type downloadReader struct {
	ports.VolumeReader
	r    volRef
	done func()
	job  *job
	once sync.Once
	// eof is set once the reader reached the end: a download closed before
	// that was cut short by its client.
	eof atomic.Bool
}

// Next reads the next data or hole and counts it done.
func (d *downloadReader) Next(buf []byte) (int, int64, error) {
	n, hole, err := d.VolumeReader.Next(buf)
	d.job.Advance(int64(n) + hole)
	if err == io.EOF {
		d.eof.Store(true)
	}
	return n, hole, err
}

// Close ends the download and releases the volume; later calls do nothing.
func (d *downloadReader) Close() error {
	var err error
	d.once.Do(func() {
		err = d.VolumeReader.Close()
		jerr := err
		if jerr == nil && !d.eof.Load() {
			jerr = errStreamAborted
		}
		d.job.end(jerr)
		d.r.releaseShared()
		d.done()
	})
	return err
}
