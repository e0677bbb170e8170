package service

import (
	"context"
	"sync"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// volRef is a volume resolved from a handle, with copies of the definitions a
// backend call may use without locks.
type volRef struct {
	e    *entry
	v    *domain.Volume
	pdef *domain.PoolDef
	vdef *domain.VolDef
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
		r = volRef{e: e, v: v, pdef: p.Def(), vdef: v.Def.Clone()}
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
func (s *Service) newVol(e *entry, xml string, flags uint32, exists func(string) error) (*domain.PoolDef, *domain.VolDef, error) {
	var pdef *domain.PoolDef
	if err := e.view(func(p *domain.Pool) error {
		pdef = p.Def()
		return p.CheckActive()
	}); err != nil {
		return nil, nil, err
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
func (s *Service) finishCreate(ctx context.Context, e *entry, pdef *domain.PoolDef, v *domain.Volume, res *domain.Reservation, bdef *domain.VolDef, buildErr error) (domain.VolHandle, error) {
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
	if err := e.backend.RefreshVol(ctx, pdef, bdef); err != nil {
		if derr := e.backend.DeleteVol(ctx, pdef, bdef, 0); derr != nil {
			s.plog(pdef.Name).WithField("vol", bdef.Name).WithError(derr).Warn("removing volume after failed refresh")
		}
		undo()
		return domain.VolHandle{}, err
	}
	e.mu.Lock()
	e.pool.VolumeCreated(v, bdef, res)
	e.mu.Unlock()
	s.plog(pdef.Name).WithField("vol", bdef.Name).Info("volume created")
	return domain.VolHandle{Pool: pdef.Name, Name: bdef.Name, Key: bdef.Key}, nil
}

// VolCreateXML creates a volume: parse, prepare, admit (reserve capacity), build,
// refresh, charge the ledger.
func (s *Service) VolCreateXML(ctx context.Context, h domain.PoolHandle, xml string, flags uint32) (domain.VolHandle, error) {
	if err := domain.CheckFlags(flags, domain.MaskVolCreate, "storageVolCreateXML"); err != nil {
		return domain.VolHandle{}, err
	}
	e, err := s.resolve(h)
	if err != nil {
		return domain.VolHandle{}, err
	}
	defer s.track()()
	exists := func(n string) error { return domain.ErrVolExists(n) }
	pdef, vdef, err := s.newVol(e, xml, flags, exists)
	if err != nil {
		return domain.VolHandle{}, err
	}
	if !vdef.HasCapacity {
		// Only create-from may leave the capacity to its source volume.
		return domain.VolHandle{}, domain.Errorf(domain.KindXMLError, "missing capacity element")
	}
	if err := e.backend.PrepareVol(pdef, vdef); err != nil {
		return domain.VolHandle{}, err
	}
	v, res, err := s.admit(e, vdef, flags, exists)
	if err != nil {
		return domain.VolHandle{}, err
	}
	bdef := vdef.Clone()
	err = e.backend.BuildVol(ctx, pdef, bdef, flags)
	return s.finishCreate(ctx, e, pdef, v, res, bdef, err)
}

// VolCreateXMLFrom creates a volume as a copy of another (possibly in another pool).
func (s *Service) VolCreateXMLFrom(ctx context.Context, h domain.PoolHandle, xml string, src domain.VolHandle, flags uint32) (domain.VolHandle, error) {
	if err := domain.CheckFlags(flags, domain.MaskVolCreateFrom, "storageVolCreateXMLFrom"); err != nil {
		return domain.VolHandle{}, err
	}
	e, err := s.resolve(h)
	if err != nil {
		return domain.VolHandle{}, err
	}
	defer s.track()()
	exists := func(n string) error { return domain.ErrVolNameInUse(n) }
	pdef, vdef, err := s.newVol(e, xml, flags, exists)
	if err != nil {
		return domain.VolHandle{}, err
	}
	sr, err := s.resolveVol(src, shared)
	if err != nil {
		return domain.VolHandle{}, err
	}
	defer sr.releaseShared()
	// A copy is never smaller than its source; knowing the size here lets the
	// admission check reserve it.
	if !vdef.HasCapacity || vdef.Capacity < sr.vdef.Capacity {
		vdef.Capacity = sr.vdef.Capacity
		vdef.HasCapacity = true
		if !vdef.HasAllocation {
			vdef.Allocation = vdef.Capacity
		}
	}
	if err := e.backend.PrepareVol(pdef, vdef); err != nil {
		return domain.VolHandle{}, err
	}
	v, res, err := s.admit(e, vdef, flags, exists)
	if err != nil {
		return domain.VolHandle{}, err
	}
	bdef := vdef.Clone()
	err = e.backend.BuildVolFrom(ctx, pdef, bdef, sr.pdef, sr.vdef, flags)
	return s.finishCreate(ctx, e, pdef, v, res, bdef, err)
}

// VolDelete deletes a volume that no job holds.
func (s *Service) VolDelete(ctx context.Context, h domain.VolHandle, flags uint32) error {
	r, err := s.resolveVol(h, exclusive)
	if err != nil {
		return err
	}
	defer s.track()()
	if err := r.e.backend.DeleteVol(ctx, r.pdef, r.vdef, flags); err != nil {
		r.releaseExclusive()
		return err
	}
	r.e.mu.Lock()
	r.v.ReleaseExclusive()
	r.e.pool.VolumeDeleted(r.v)
	r.e.mu.Unlock()
	s.plog(h.Pool).WithField("vol", h.Name).Info("volume deleted")
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
	if err := r.e.backend.RefreshVol(ctx, r.pdef, r.vdef); err != nil {
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
	if err := r.e.backend.WipeVol(ctx, r.pdef, r.vdef, algorithm, flags); err != nil {
		return err
	}
	// A wipe may change the format (a wiped qcow2 reads back as raw zeros).
	if err := r.e.backend.RefreshVol(ctx, r.pdef, r.vdef); err != nil {
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
	if err := r.e.backend.ResizeVol(ctx, r.pdef, r.vdef, plan.Capacity, plan.Flags); err != nil {
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
	if err := r.e.backend.RefreshVol(rctx, r.pdef, d); err != nil {
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

// VolUpload opens an upload into a volume, which stays busy until the writer is
// finished or aborted. Beyond libvirt, an offset past the end of the volume is
// refused instead of silently creating a huge sparse file.
func (s *Service) VolUpload(ctx context.Context, h domain.VolHandle, offset, length uint64, flags uint32) (ports.VolumeWriter, error) {
	if err := domain.CheckFlags(flags, domain.MaskVolStream, "storageVolUpload"); err != nil {
		return nil, err
	}
	if err := validateRange(offset, length); err != nil {
		return nil, err
	}
	r, err := s.resolveVol(h, exclusive)
	if err != nil {
		return nil, err
	}
	if size := max(r.vdef.Capacity, r.vdef.Physical); offset > size {
		r.releaseExclusive()
		return nil, domain.Errorf(domain.KindInvalidArg, "offset %d is beyond the end of volume '%s' (%d bytes)", offset, h.Name, size)
	}
	done := s.track()
	w, err := r.e.backend.UploadVol(ctx, r.pdef, r.vdef, offset, length, flags)
	if err != nil {
		r.releaseExclusive()
		done()
		return nil, err
	}
	return &uploadWriter{VolumeWriter: w, s: s, r: r, done: done}, nil
}

// uploadWriter keeps the volume busy until the upload ends, then re-reads the
// volume and announces the change with a refresh event (as libvirt does after an
// upload, but without re-reading the whole pool).
type uploadWriter struct {
	ports.VolumeWriter
	s    *Service
	r    volRef
	done func()
	once sync.Once
}

// Finish completes the upload, re-reads the volume and releases it. Only the
// first of Finish and Abort reaches the backend.
func (w *uploadWriter) Finish(ctx context.Context) error {
	var err error
	w.once.Do(func() {
		defer w.done()
		err = w.VolumeWriter.Finish(ctx)
		if rerr := w.r.e.backend.RefreshVol(ctx, w.r.pdef, w.r.vdef); rerr == nil {
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
		w.r.releaseExclusive()
		w.done()
	})
}

// VolDownload opens a download of a volume, which stays in use until the reader
// is closed.
func (s *Service) VolDownload(ctx context.Context, h domain.VolHandle, offset, length uint64, flags uint32) (ports.VolumeReader, error) {
	if err := domain.CheckFlags(flags, domain.MaskVolStream, "storageVolDownload"); err != nil {
		return nil, err
	}
	if err := validateRange(offset, length); err != nil {
		return nil, err
	}
	r, err := s.resolveVol(h, shared)
	if err != nil {
		return nil, err
	}
	done := s.track()
	rd, err := r.e.backend.DownloadVol(ctx, r.pdef, r.vdef, offset, length, flags)
	if err != nil {
		r.releaseShared()
		done()
		return nil, err
	}
	d := &downloadReader{VolumeReader: rd, r: r, done: done}
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

func (d *sectionDownloadReader) NextSection(max int) (int, int64, int, int64, error) {
	return d.sections.NextSection(max)
}

func (d *sectionDownloadReader) SectionError(err error) error { return d.sections.SectionError(err) }

// downloadReader keeps the volume in use until closed.
type downloadReader struct {
	ports.VolumeReader
	r    volRef
	done func()
	once sync.Once
}

// Close ends the download and releases the volume; later calls do nothing.
func (d *downloadReader) Close() error {
	var err error
	d.once.Do(func() {
		err = d.VolumeReader.Close()
		d.r.releaseShared()
		d.done()
	})
	return err
}
