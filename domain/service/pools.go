package service

import (
	"context"
	"errors"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// parseDef parses and validates a pool definition for define or create.
func (s *Service) parseDef(xml string, flags uint32) (*domain.PoolDef, error) {
	def, err := s.codec.ParsePool(xml, flags)
	if err != nil {
		return nil, err
	}
	if err := domain.ValidatePoolName(def.Name); err != nil {
		return nil, err
	}
	b, err := s.backendFor(def.Type)
	if err != nil {
		return nil, err
	}
	if err := b.ValidatePool(def); err != nil {
		return nil, err
	}
	if def.UUID.IsZero() {
		def.UUID = newUUID()
	}
	return def, nil
}

// checkAgainstOthersLocked applies the cross-pool rules; the caller holds regMu.
func (s *Service) checkAgainstOthersLocked(def *domain.PoolDef) error {
	defs := make([]*domain.PoolDef, 0, len(s.byUUID))
	for _, e := range s.byUUID {
		e.mu.Lock()
		defs = append(defs, e.pool.Def())
		e.mu.Unlock()
	}
	if err := domain.CheckPoolDuplicate(def, defs); err != nil {
		return err
	}
	return domain.CheckSourceConflict(def, defs)
}

// PoolDefineXML defines (or redefines) a persistent pool and saves its config.
func (s *Service) PoolDefineXML(ctx context.Context, xml string, flags uint32) (domain.PoolHandle, error) {
	if err := domain.CheckFlags(flags, domain.MaskPoolDefine, "storagePoolDefineXML"); err != nil {
		return domain.PoolHandle{}, err
	}
	if flags&domain.PoolDefineValidate != 0 {
		if err := s.codec.ValidatePool(ctx, xml); err != nil {
			return domain.PoolHandle{}, err
		}
	}
	def, err := s.parseDef(xml, flags)
	if err != nil {
		return domain.PoolHandle{}, err
	}
	cfg, err := s.codec.FormatPool(def, nil)
	if err != nil {
		return domain.PoolHandle{}, err
	}
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.regMu.Lock()
	if err := s.checkAgainstOthersLocked(def); err != nil {
		s.regMu.Unlock()
		return domain.PoolHandle{}, err
	}
	// The config is written under the registry lock so that two defines of one
	// name cannot interleave their files and their objects.
	if err := s.store.SaveConfig(def.Name, cfg); err != nil {
		s.regMu.Unlock()
		return domain.PoolHandle{}, err
	}
	if e := s.byUUID[def.UUID]; e != nil {
		e.mu.Lock()
		e.pool.Redefine(def)
		e.mu.Unlock()
	} else {
		s.byUUID[def.UUID] = &entry{pool: domain.NewPool(def, true)}
	}
	s.regMu.Unlock()
	s.plog(def.Name).Info("pool defined")
	s.events.PoolLifecycle(def.Handle(), domain.EventDefined, 0)
	return def.Handle(), nil
}

// PoolCreateXML creates and starts a transient pool (or starts a known inactive
// pool with a new live definition, as libvirt does for a matching name and UUID).
func (s *Service) PoolCreateXML(ctx context.Context, xml string, flags uint32) (domain.PoolHandle, error) {
	if err := domain.CheckFlags(flags, domain.MaskPoolCreate, "storagePoolCreateXML"); err != nil {
		return domain.PoolHandle{}, err
	}
	build, buildFlags, err := domain.CreateBuildFlags(flags)
	if err != nil {
		return domain.PoolHandle{}, err
	}
	def, err := s.parseDef(xml, 0)
	if err != nil {
		return domain.PoolHandle{}, err
	}
	s.regMu.Lock()
	if err := s.checkAgainstOthersLocked(def); err != nil {
		s.regMu.Unlock()
		return domain.PoolHandle{}, err
	}
	e := s.byUUID[def.UUID]
	if e != nil {
		e.mu.Lock()
		err := e.pool.BeginStart()
		if err == nil {
			e.pool.ReplaceLive(def)
		}
		e.mu.Unlock()
		s.regMu.Unlock()
		if err != nil {
			return domain.PoolHandle{}, err
		}
		e.opMu.Lock()
	} else {
		e = &entry{pool: domain.NewPool(def, false)}
		_ = e.pool.BeginStart()
		// Locked before it is visible, so no lifecycle call can overtake the start.
		e.opMu.Lock()
		s.byUUID[def.UUID] = e
		s.regMu.Unlock()
	}
	defer e.opMu.Unlock()
	defer s.track()()
	op := s.start(build, buildFlags)
	op.begin = begun // marked starting as it was registered
	if err := s.runLocked(ctx, e, op); err != nil {
		return domain.PoolHandle{}, err
	}
	return def.Handle(), nil
}

func (s *Service) saveStatus(def *domain.PoolDef, stats *domain.PoolStats) error {
	xml, err := s.codec.FormatPoolStatus(def, stats)
	if err != nil {
		return err
	}
	return s.store.SaveStatus(def.Name, xml)
}

func (s *Service) deleteStatus(name string) {
	if err := s.store.DeleteStatus(name); err != nil {
		s.plog(name).WithError(err).Warn("removing pool status file")
	}
}

// PoolCreate starts an inactive pool (virsh pool-start).
func (s *Service) PoolCreate(ctx context.Context, h domain.PoolHandle, flags uint32) error {
	if err := domain.CheckFlags(flags, domain.MaskPoolCreate, "storagePoolCreate"); err != nil {
		return err
	}
	build, buildFlags, err := domain.CreateBuildFlags(flags)
	if err != nil {
		return err
	}
	return s.run(ctx, h, s.start(build, buildFlags))
}

// opsLocked resolves a pool handle and takes the pool's operation lock, which
// serialises lifecycle calls (start, build, destroy, delete, undefine,
// refresh); the caller defers the returned unlock.
func (s *Service) opsLocked(h domain.PoolHandle) (*entry, func(), error) {
	e, err := s.resolve(h)
	if err != nil {
		return nil, nil, err
	}
	if err := e.lockOps(); err != nil {
		return nil, nil, err
	}
	return e, e.opMu.Unlock, nil
}

// PoolBuild builds an inactive pool's storage. The flags are the backend's
// to check, after the pool's state, as in libvirt (a pool type without a
// build step accepts any).
func (s *Service) PoolBuild(ctx context.Context, h domain.PoolHandle, flags uint32) error {
	return s.run(ctx, h, lifecycle{
		begin: (*domain.Pool).BeginStart,
		call: func(ctx context.Context, b ports.PoolBackend, def *domain.PoolDef) error {
			return b.BuildPool(ctx, def, flags)
		},
		settle: func(p *domain.Pool, _ error) { p.AbortStart() },
		done:   "pool built",
		event:  domain.EventCreated,
	})
}

// PoolDestroy stops a running pool; a transient pool vanishes.
func (s *Service) PoolDestroy(ctx context.Context, h domain.PoolHandle) error {
	return s.run(ctx, h, lifecycle{
		begin: (*domain.Pool).BeginStop,
		call: func(ctx context.Context, b ports.PoolBackend, def *domain.PoolDef) error {
			return b.StopPool(ctx, def)
		},
		settle: func(p *domain.Pool, err error) {
			if err != nil {
				p.AbortStop()
			}
		},
		after: func(e *entry, def *domain.PoolDef, err error) {
			if err == nil {
				s.deleteStatus(def.Name)
				s.stopAndMaybeRemove(e)
			}
		},
		done:  "pool destroyed",
		event: domain.EventStopped,
	})
}

// PoolDelete deletes an inactive pool's storage.
func (s *Service) PoolDelete(ctx context.Context, h domain.PoolHandle, flags uint32) error {
	return s.run(ctx, h, lifecycle{
		begin: (*domain.Pool).CheckInactive,
		call: func(ctx context.Context, b ports.PoolBackend, def *domain.PoolDef) error {
			return b.DeletePool(ctx, def, flags)
		},
		after: func(e *entry, def *domain.PoolDef, err error) {
			if err == nil {
				s.deleteStatus(def.Name)
			}
		},
		done:  "pool deleted",
		event: domain.EventDeleted,
	})
}

// PoolUndefine removes an inactive pool's config and autostart link.
func (s *Service) PoolUndefine(ctx context.Context, h domain.PoolHandle) error {
	e, unlock, err := s.opsLocked(h)
	if err != nil {
		return err
	}
	defer unlock()
	ph, err := s.undefine(e)
	if err != nil {
		return err
	}
	s.plog(ph.Name).Info("pool undefined")
	s.events.PoolLifecycle(ph, domain.EventUndefined, 0)
	return nil
}

// undefine drops e's config and e itself under the registry lock.
func (s *Service) undefine(e *entry) (domain.PoolHandle, error) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if err := e.lock(); err != nil {
		return domain.PoolHandle{}, err
	}
	defer e.mu.Unlock()
	p := e.pool
	if err := p.CheckUndefinable(); err != nil {
		return domain.PoolHandle{}, err
	}
	name := p.Name()
	if err := s.store.DeleteConfig(name); err != nil {
		return domain.PoolHandle{}, err
	}
	if err := s.store.SetAutostart(name, false); err != nil {
		s.plog(name).WithError(err).Warn("removing autostart link")
	}
	p.Undefine()
	s.removeLocked(e)
	return p.Handle(), nil
}

// PoolRefresh re-reads a running pool; a failure stops it, as in libvirt.
func (s *Service) PoolRefresh(ctx context.Context, h domain.PoolHandle, flags uint32) error {
	if err := domain.CheckFlags(flags, domain.MaskPoolRefresh, "storagePoolRefresh"); err != nil {
		return err
	}
	return s.run(ctx, h, s.refresh())
}

// PoolGetInfo returns the pool's state and figures.
func (s *Service) PoolGetInfo(ctx context.Context, h domain.PoolHandle) (domain.PoolInfo, error) {
	return inspect(s, h, (*domain.Pool).Info)
}

// inspect resolves a pool handle and reads one thing of the pool under its
// state lock.
func inspect[T any](s *Service, h domain.PoolHandle, read func(p *domain.Pool) T) (T, error) {
	var v T
	e, err := s.resolve(h)
	if err != nil {
		return v, err
	}
	err = e.view(func(p *domain.Pool) error {
		v = read(p)
		return nil
	})
	return v, err
}

// PoolGetXMLDesc formats the live definition with its figures, or with
// XML_INACTIVE the definition the next start will use.
func (s *Service) PoolGetXMLDesc(ctx context.Context, h domain.PoolHandle, flags uint32) (string, error) {
	if err := domain.CheckFlags(flags, domain.MaskPoolXMLDesc, "storagePoolGetXMLDesc"); err != nil {
		return "", err
	}
	e, err := s.resolve(h)
	if err != nil {
		return "", err
	}
	var def *domain.PoolDef
	var stats *domain.PoolStats
	err = e.view(func(p *domain.Pool) error {
		def = p.Def()
		if flags&domain.PoolXMLInactive != 0 && p.InactiveDef() != def {
			// A pending definition (redefined while running) has never been
			// measured; without one, libvirt 9.0 formats the same live object
			// for --inactive too (figures and target permissions included).
			def = p.InactiveDef()
			return nil
		}
		if p.Active() {
			st := p.Stats()
			stats = &st
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return s.codec.FormatPool(def, stats)
}

// PoolGetAutostart reports the autostart flag.
func (s *Service) PoolGetAutostart(ctx context.Context, h domain.PoolHandle) (bool, error) {
	return inspect(s, h, (*domain.Pool).Autostart)
}

// PoolSetAutostart sets the autostart flag and its link.
func (s *Service) PoolSetAutostart(ctx context.Context, h domain.PoolHandle, autostart bool) error {
	e, err := s.resolve(h)
	if err != nil {
		return err
	}
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	return e.view(func(p *domain.Pool) error {
		if !p.Persistent() {
			return domain.ErrNoConfigFile()
		}
		if p.Autostart() == autostart {
			return nil
		}
		if err := s.store.SetAutostart(p.Name(), autostart); err != nil {
			return err
		}
		return p.SetAutostart(autostart)
	})
}

// PoolIsActive reports whether the pool runs.
func (s *Service) PoolIsActive(ctx context.Context, h domain.PoolHandle) (bool, error) {
	return inspect(s, h, (*domain.Pool).Active)
}

// PoolIsPersistent reports whether the pool has a config.
func (s *Service) PoolIsPersistent(ctx context.Context, h domain.PoolHandle) (bool, error) {
	return inspect(s, h, (*domain.Pool).Persistent)
}

// NumOfPools counts active (or inactive) pools.
func (s *Service) NumOfPools(ctx context.Context, active bool) (int, error) {
	names, err := s.ListPoolNames(ctx, active, -1)
	return len(names), err
}

// ListPoolNames lists up to max active (or inactive) pool names; max < 0 lists all.
func (s *Service) ListPoolNames(ctx context.Context, active bool, max int) ([]string, error) {
	var names []string
	for _, e := range s.entries() {
		if max >= 0 && len(names) >= max {
			break
		}
		_ = e.view(func(p *domain.Pool) error {
			if p.Active() == active {
				names = append(names, p.Name())
			}
			return nil
		})
	}
	return names, nil
}

// ListAllPools lists the pools passing the LIST_ALL filter flags.
func (s *Service) ListAllPools(ctx context.Context, flags uint32) ([]domain.PoolHandle, error) {
	if err := domain.CheckFlags(flags, domain.MaskListAllPools, "storageConnectListAllStoragePools"); err != nil {
		return nil, err
	}
	hs := []domain.PoolHandle{}
	for _, e := range s.entries() {
		_ = e.view(func(p *domain.Pool) error {
			if domain.MatchListFlags(flags, p.ListAttrs()) {
				hs = append(hs, p.Handle())
			}
			return nil
		})
	}
	return hs, nil
}

// PoolLookupByName finds a pool by name.
func (s *Service) PoolLookupByName(ctx context.Context, name string) (domain.PoolHandle, error) {
	e, err := s.entryByName(name)
	if err != nil {
		return domain.PoolHandle{}, err
	}
	return s.handleOf(e)
}

func (s *Service) handleOf(e *entry) (domain.PoolHandle, error) {
	var h domain.PoolHandle
	err := e.view(func(p *domain.Pool) error {
		h = p.Handle()
		return nil
	})
	return h, err
}

// PoolLookupByUUID finds a pool by UUID.
func (s *Service) PoolLookupByUUID(ctx context.Context, u domain.UUID) (domain.PoolHandle, error) {
	e := s.entryByUUID(u)
	if e == nil {
		return domain.PoolHandle{}, domain.ErrPoolNotFoundUUID(u)
	}
	return s.handleOf(e)
}

// PoolLookupByVolume finds the pool a volume handle names.
func (s *Service) PoolLookupByVolume(ctx context.Context, vol domain.VolHandle) (domain.PoolHandle, error) {
	return s.PoolLookupByName(ctx, vol.Pool)
}

// PoolLookupByTargetPath finds the running pool whose target is path.
func (s *Service) PoolLookupByTargetPath(ctx context.Context, path string) (domain.PoolHandle, error) {
	want := domain.CleanPath(path)
	for _, e := range s.entries() {
		var h domain.PoolHandle
		found := false
		_ = e.view(func(p *domain.Pool) error {
			if p.Active() && p.Def().Target.Path != "" && domain.CleanPath(p.Def().Target.Path) == want {
				h, found = p.Handle(), true
			}
			return nil
		})
		if found {
			return h, nil
		}
	}
	return domain.PoolHandle{}, domain.Errorf(domain.KindNoStoragePool, "no storage pool with matching target path '%s'", path)
}

// FindPoolSources discovers candidate sources of a pool type.
func (s *Service) FindPoolSources(ctx context.Context, poolType string, srcSpec string, flags uint32) (string, error) {
	t, ok := domain.ParsePoolType(poolType)
	if !ok {
		return "", domain.ErrUnknownPoolType(poolType)
	}
	b, ok := s.backends[t]
	if !ok {
		return "", domain.ErrNoSourceDiscovery(poolType)
	}
	discoveryErr := func(err error) error {
		var de *domain.Error
		if errors.As(err, &de) && de.Kind == domain.KindNoSupport {
			return domain.ErrNoSourceDiscovery(poolType)
		}
		return err
	}
	if flags != 0 {
		// libvirt leaves the flags to the backend, which refuses them before
		// it reads the source spec (ports.PoolBackend): asked with none, it
		// answers that error, or that it has no discovery at all.
		if _, err := b.FindPoolSources(ctx, nil, flags); err != nil {
			return "", discoveryErr(err)
		}
	}
	spec, err := s.codec.ParsePoolSource(t, srcSpec)
	if err != nil {
		return "", err
	}
	srcs, err := b.FindPoolSources(ctx, spec, flags)
	if err != nil {
		return "", discoveryErr(err)
	}
	return s.codec.FormatPoolSources(t, srcs)
}

// PoolCapabilities answers virConnectGetStoragePoolCapabilities.
func (s *Service) PoolCapabilities(ctx context.Context, flags uint32) (string, error) {
	if err := domain.CheckFlags(flags, domain.MaskPoolCaps, "storageConnectGetStoragePoolCapabilities"); err != nil {
		return "", err
	}
	return s.codec.FormatPoolCapabilities(s.types())
}

// Capabilities answers virConnectGetCapabilities for the storage driver.
func (s *Service) Capabilities(ctx context.Context) (string, error) {
	return s.codec.FormatCapabilities(s.types())
}

// PoolNumOfVolumes counts a running pool's volumes.
func (s *Service) PoolNumOfVolumes(ctx context.Context, h domain.PoolHandle) (int, error) {
	names, err := s.PoolListVolumes(ctx, h, -1)
	return len(names), err
}

// PoolListVolumes lists up to max volume names of a running pool (max < 0: all).
func (s *Service) PoolListVolumes(ctx context.Context, h domain.PoolHandle, max int) ([]string, error) {
	e, err := s.resolve(h)
	if err != nil {
		return nil, err
	}
	var names []string
	err = e.view(func(p *domain.Pool) error {
		if err := p.CheckActive(); err != nil {
			return err
		}
		for _, v := range p.Volumes() {
			if max >= 0 && len(names) >= max {
				break
			}
			names = append(names, v.Def.Name)
		}
		return nil
	})
	return names, err
}

// PoolListAllVolumes lists a running pool's volumes.
func (s *Service) PoolListAllVolumes(ctx context.Context, h domain.PoolHandle, flags uint32) ([]domain.VolHandle, error) {
	if err := domain.CheckFlags(flags, domain.MaskListAllVolumes, "storagePoolListAllVolumes"); err != nil {
		return nil, err
	}
	e, err := s.resolve(h)
	if err != nil {
		return nil, err
	}
	hs := []domain.VolHandle{}
	err = e.view(func(p *domain.Pool) error {
		if err := p.CheckActive(); err != nil {
			return err
		}
		for _, v := range p.Volumes() {
			hs = append(hs, volHandle(p, v))
		}
		return nil
	})
	return hs, err
}

func volHandle(p *domain.Pool, v *domain.Volume) domain.VolHandle {
	return domain.VolHandle{Pool: p.Name(), Name: v.Def.Name, Key: v.Def.Key}
}
