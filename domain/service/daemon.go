package service

import (
	"context"
	"errors"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// Start brings back the pools of a previous run, in libvirt's daemon-start order:
// status files (pools that were running, transient ones included), then configs
// with their autostart flags; each pool the backend reports active on the system
// (CheckPool) is refreshed and becomes active, or stays inactive when the refresh
// fails (a transient one is dropped). Then autostart pools start. Unlike libvirt,
// which autostarts once per boot (its "autostarted" marker), we autostart at every
// daemon start, and we remove every status file left by a pool that did not come
// back, and write a fresh one for each pool that did.
func (s *Service) Start(ctx context.Context) error {
	statuses, err := s.store.LoadStatus()
	if err != nil {
		return err
	}
	configs, err := s.store.LoadConfigs()
	if err != nil {
		return err
	}
	hadStatus := make(map[string]bool, len(statuses))
	s.regMu.Lock()
	for _, st := range statuses {
		hadStatus[st.Name] = true
		def, err := s.codec.ParsePoolStatus(st.XML)
		if err != nil {
			s.plog(st.Name).WithError(err).Warn("ignoring unreadable pool status file")
			continue
		}
		s.loadLocked(def, false, false)
	}
	for _, c := range configs {
		if def := s.parseConfig(c); def != nil {
			s.loadLocked(def, true, c.Autostart)
		}
	}
	s.regMu.Unlock()

	for _, e := range s.entries() {
		s.revive(ctx, e)
	}
	s.autostart(ctx)
	for name := range hadStatus {
		active := false
		if e, err := s.entryByName(name); err == nil {
			_ = e.view(func(p *domain.Pool) error {
				active = p.Active()
				return nil
			})
		}
		if !active {
			s.deleteStatus(name)
		}
	}
	return ctx.Err()
}

// loadLocked registers a pool read at start. A config for a pool known from its
// status file makes it persistent; if the config differs, libvirt keeps it as the
// pending definition of the (possibly) running pool.
func (s *Service) loadLocked(def *domain.PoolDef, persistent, autostart bool) {
	log := s.plog(def.Name)
	if !s.loadable(def) {
		return
	}
	if e := s.byUUID[def.UUID]; e != nil {
		if !persistent {
			return
		}
		e.mu.Lock()
		if e.pool.Name() != def.Name {
			e.mu.Unlock()
			log.Warn("ignoring pool config whose uuid belongs to another pool")
			return
		}
		// The status file holds the live definition; the config waits as the
		// pending one and takes over when the pool stops.
		live := e.pool.Def()
		e.pool.Redefine(def)
		e.pool.ReplaceLive(live)
		_ = e.pool.SetAutostart(autostart)
		e.mu.Unlock()
		return
	}
	if other := s.byNameLocked(def.Name); other != nil {
		log.Warn("ignoring pool whose name is taken by another uuid")
		return
	}
	p := domain.NewPool(def, persistent)
	if persistent {
		_ = p.SetAutostart(autostart)
	}
	s.byUUID[def.UUID] = &entry{pool: p}
}

// parseConfig reads one stored pool config; nil means it is unusable (logged).
func (s *Service) parseConfig(c ports.StoredPool) *domain.PoolDef {
	def, err := s.codec.ParsePool(c.XML, 0)
	if err != nil {
		s.plog(c.Name).WithError(err).Warn("ignoring unreadable pool config")
		return nil
	}
	if def.Name != c.Name {
		s.plog(c.Name).WithField("xml_name", def.Name).Warn("ignoring pool config whose name does not match its file")
		return nil
	}
	return def
}

// loadable reports whether a pool read from disk can be served, logging why
// not: its name is invalid or its type not served.
func (s *Service) loadable(def *domain.PoolDef) bool {
	log := s.plog(def.Name)
	if err := domain.ValidatePoolName(def.Name); err != nil {
		log.WithError(err).Warn("ignoring pool with an invalid name")
		return false
	}
	if _, ok := s.backends[def.Type]; !ok {
		log.WithError(domain.ErrMissingBackend(def.Type)).Warn("ignoring pool")
		return false
	}
	return true
}

// autostart starts every autostart pool that is not running, unless the
// service was configured not to.
func (s *Service) autostart(ctx context.Context) {
	if s.cfg.NoAutostart {
		return
	}
	for _, e := range s.entries() {
		var auto bool
		var h domain.PoolHandle
		_ = e.view(func(p *domain.Pool) error {
			auto = p.Autostart() && !p.Active() && !p.Starting()
			h = p.Handle()
			return nil
		})
		if !auto || ctx.Err() != nil {
			continue
		}
		if err := s.PoolCreate(ctx, h, 0); err != nil {
			s.plog(h.Name).WithError(err).Warn("autostart failed")
		}
	}
}

// Reload is the storage driver's part of SIGHUP, as libvirt's
// storageStateReload: the pool configs and autostart links are read again. A
// new config defines an inactive pool; the config of a known pool becomes its
// persistent definition, which a running (or starting) pool keeps pending
// until it stops, so running pools and their jobs are left alone; the
// autostart flag follows the link. A pool whose config vanished stays defined,
// and unreadable configs, or ones that clash with another pool, are logged and
// skipped. Then every autostart pool that is not running is started, those
// stopped by hand included, as libvirt does. No lifecycle events are sent for
// what the files define. Status files are the daemon's own record of what runs
// and are not read again: libvirt reads them too, but only to refuse each pool
// as already active.
func (s *Service) Reload(ctx context.Context) error {
	// The files are read and applied under cfgMu, so that a define, undefine or
	// autostart change cannot come between the read and the apply and be
	// undone in memory by what was on disk a moment before.
	s.cfgMu.Lock()
	configs, err := s.store.LoadConfigs()
	if err != nil {
		s.cfgMu.Unlock()
		return err
	}
	s.regMu.Lock()
	for _, c := range configs {
		if def := s.parseConfig(c); def != nil {
			s.reloadLocked(def, c.Autostart)
		}
	}
	s.regMu.Unlock()
	s.cfgMu.Unlock()
	s.autostart(ctx)
	return ctx.Err()
}

// reloadLocked applies one pool config read by Reload; the caller holds regMu.
func (s *Service) reloadLocked(def *domain.PoolDef, autostart bool) {
	if !s.loadable(def) {
		return
	}
	if err := s.checkAgainstOthersLocked(def); err != nil {
		s.plog(def.Name).WithError(err).Warn("ignoring pool config")
		return
	}
	if e := s.byUUID[def.UUID]; e != nil {
		e.mu.Lock()
		e.pool.Redefine(def)
		_ = e.pool.SetAutostart(autostart)
		e.mu.Unlock()
		return
	}
	p := domain.NewPool(def, true)
	_ = p.SetAutostart(autostart)
	s.byUUID[def.UUID] = &entry{pool: p}
	s.plog(def.Name).Info("pool defined by its config file")
}

// revive asks the backend whether a loaded pool is active on the system and, if
// so, refreshes it and marks it active.
func (s *Service) revive(ctx context.Context, e *entry) {
	e.opMu.Lock()
	defer e.opMu.Unlock()
	_ = s.runLocked(ctx, e, s.revival())
}

// Shutdown waits for running jobs (volume builds, streams, pool operations)
// until ctx ends. Pools stay as they are on the system, as with libvirt.
func (s *Service) Shutdown(ctx context.Context) error {
	s.jobMu.Lock()
	if s.jobs == 0 {
		s.jobMu.Unlock()
		return nil
	}
	done := make(chan struct{})
	s.waiters = append(s.waiters, done)
	s.jobMu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.Join(errors.New("service: shutdown with jobs still running"), ctx.Err())
	}
}
