package service

import (
	"context"
	"errors"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// lifecycle is one lifecycle operation of a pool, in the shape all of them
// share; as in wild-workouts' UpdateHour, runLocked owns the locking and the
// closures make the change. With the pool's operation lock held, begin
// checks and marks the pool's state under its state lock; call runs the
// backend of the definition in use, holding no lock; settle records call's
// outcome under the state lock (clears the mark, makes the pool active);
// after finishes, holding no lock, what takes the registry or the disk (the
// status file, a stopped pool's removal). A success is then logged as done
// and announced as event.
type lifecycle struct {
	begin  func(p *domain.Pool) error
	call   func(ctx context.Context, b ports.PoolBackend, def *domain.PoolDef) error
	settle func(p *domain.Pool, err error)
	after  func(e *entry, def *domain.PoolDef, err error)
	// done is the log line of a success, "" for an operation that neither
	// logs nor announces one (it does what it needs in after).
	done  string
	event domain.PoolEvent
}

// run resolves a pool handle and runs op on the pool with its operation lock
// held, counted as a job for Shutdown.
func (s *Service) run(ctx context.Context, h domain.PoolHandle, op lifecycle) error {
	e, unlock, err := s.opsLocked(h)
	if err != nil {
		return err
	}
	defer unlock()
	defer s.track()()
	return s.runLocked(ctx, e, op)
}

// runLocked runs op on e, whose operation lock the caller holds.
func (s *Service) runLocked(ctx context.Context, e *entry, op lifecycle) error {
	var def *domain.PoolDef
	if err := e.view(func(p *domain.Pool) error {
		def = p.Def()
		return op.begin(p)
	}); err != nil {
		return err
	}
	err := op.call(ctx, s.backendOf(def), def)
	if op.settle != nil {
		e.mu.Lock()
		op.settle(e.pool, err)
		e.mu.Unlock()
	}
	if op.after != nil {
		op.after(e, def, err)
	}
	if err != nil {
		return err
	}
	if op.done != "" {
		s.plog(def.Name).Info(op.done)
		s.events.PoolLifecycle(def.Handle(), op.event, 0)
	}
	return nil
}

// begun is the begin of an operation on a pool its caller already marked.
func begun(*domain.Pool) error { return nil }

// activation carries a pool's refresh from the backend call, which reads it
// into a copy of the definition, to the pool object.
type activation struct {
	stats domain.PoolStats
	vols  []*domain.VolDef
	live  *domain.PoolDef
}

func (a *activation) refresh(ctx context.Context, b ports.PoolBackend, def *domain.PoolDef) error {
	a.live = def.Clone()
	var err error
	a.stats, a.vols, err = b.RefreshPool(ctx, a.live)
	return err
}

// finish makes a starting pool active with what refresh read, unless the
// start failed (err).
func (a *activation) finish(p *domain.Pool, err error) {
	if err == nil {
		p.FinishStart(a.stats, a.vols)
		p.UpdateLive(a.live)
	}
}

// start is libvirt's start sequence on an inactive pool: build if asked,
// start, refresh, write the status file, go active. A failure stops what was
// started and leaves the pool inactive (a transient one vanishes).
func (s *Service) start(build bool, buildFlags uint32) lifecycle {
	var a activation
	return lifecycle{
		begin: (*domain.Pool).BeginStart,
		call: func(ctx context.Context, b ports.PoolBackend, def *domain.PoolDef) error {
			if build {
				if err := b.BuildPool(ctx, def, buildFlags); err != nil {
					return err
				}
			}
			if err := b.StartPool(ctx, def); err != nil {
				return err
			}
			if err := a.refresh(ctx, b, def); err != nil {
				s.stopAfter(ctx, b, def, "stopping pool after failed refresh")
				s.deleteStatus(def.Name)
				return err
			}
			// Unlike libvirt, the status file is written after the first
			// refresh, so it carries this run's figures rather than the
			// previous run's.
			if err := s.saveStatus(a.live, &a.stats); err != nil {
				s.stopAfter(ctx, b, def, "stopping pool after failed status write")
				return err
			}
			return nil
		},
		settle: a.finish,
		after: func(e *entry, def *domain.PoolDef, err error) {
			if err != nil {
				s.stopAndMaybeRemove(e)
				s.plog(def.Name).WithError(err).Warn("pool start failed")
			}
		},
		done:  "pool started",
		event: domain.EventStarted,
	}
}

// stopAfter stops a pool whose start failed half way; its own failure is
// only logged, under what.
func (s *Service) stopAfter(ctx context.Context, b ports.PoolBackend, def *domain.PoolDef, what string) {
	if err := b.StopPool(ctx, def); err != nil {
		s.plog(def.Name).WithError(err).Warn(what)
	}
}

// refresh re-reads a running pool. A failure stops it, as in libvirt: the
// backend's stop, the status file and the pool object all go.
func (s *Service) refresh() lifecycle {
	var a activation
	var token uint64
	return lifecycle{
		begin: func(p *domain.Pool) error {
			if err := p.CheckActive(); err != nil {
				return err
			}
			token = p.BeginRefresh()
			return nil
		},
		call: func(ctx context.Context, b ports.PoolBackend, def *domain.PoolDef) error {
			err := a.refresh(ctx, b, def)
			if err != nil {
				log := s.plog(def.Name).WithError(err)
				log.Warn("pool refresh failed, stopping the pool")
				if serr := b.StopPool(ctx, def); serr != nil {
					log.WithField("stop_error", serr.Error()).Warn("stopping pool after failed refresh")
				}
				s.deleteStatus(def.Name)
			}
			return err
		},
		settle: func(p *domain.Pool, err error) {
			if err == nil {
				p.ApplyRefreshSince(token, a.stats, a.vols)
				p.UpdateLive(a.live)
			}
		},
		after: func(e *entry, def *domain.PoolDef, err error) {
			if err != nil {
				s.stopAndMaybeRemove(e)
				s.events.PoolLifecycle(def.Handle(), domain.EventStopped, 0)
				return
			}
			s.events.PoolRefreshed(def.Handle())
		},
	}
}

// errNotOnSystem is a revival's outcome for a pool its backend does not
// find active.
var errNotOnSystem = errors.New("service: pool not active on the system")

// revival brings back a pool read at daemon start when its backend reports
// it active on the system (CheckPool): it is refreshed and becomes active,
// or stays inactive (a transient one vanishes).
func (s *Service) revival() lifecycle {
	var a activation
	return lifecycle{
		begin: (*domain.Pool).BeginStart,
		call: func(ctx context.Context, b ports.PoolBackend, def *domain.PoolDef) error {
			log := s.plog(def.Name)
			active, err := b.CheckPool(ctx, def)
			if err != nil {
				log.WithError(err).Warn("checking pool state")
			}
			if err != nil || !active {
				return errNotOnSystem
			}
			err = a.refresh(ctx, b, def)
			if err == nil {
				err = s.saveStatus(a.live, &a.stats)
			}
			if err != nil {
				log.WithError(err).Warn("refreshing pool at start failed, leaving it inactive")
				s.stopAfter(ctx, b, def, "stopping pool")
			}
			return err
		},
		settle: a.finish,
		after: func(e *entry, def *domain.PoolDef, err error) {
			if err != nil {
				s.stopAndMaybeRemove(e)
				return
			}
			s.plog(def.Name).Info("pool is active")
		},
	}
}
