// Package service holds virtstoraged's use cases: it implements ports.StorageAPI
// over the pool objects of package domain, and reaches the system only through the
// driven ports (PoolBackend, XMLCodec, StateStore, EventSink).
//
// Locking. A short RWMutex guards the registry (which pools exist). Each pool has
// two locks: opMu serialises its lifecycle operations (start, build, stop, delete,
// refresh, undefine), which may run long backend calls, and mu guards its state
// and is only held for bookkeeping, never across a backend call. Volume jobs do not
// take opMu: they mark their volume busy under mu (domain.Volume), run the backend
// call without locks and release the mark, so refresh, info, lookups and other
// volumes' jobs go on meanwhile. cfgMu guards the config files (define, undefine,
// autostart, reload). Lock order: opMu, cfgMu, the registry, mu; nobody waits for
// opMu while holding any of the others.
package service

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

var (
	_ ports.StorageAPI   = (*Service)(nil)
	_ ports.StatusSource = (*Service)(nil)
)

// Config tunes the service.
type Config struct {
	// NoAutostart skips starting autostart pools in Start (tests, maintenance runs).
	NoAutostart bool
	// ProgressLogInterval is how often a running volume job logs its
	// progress, and how long a job must run to log its end; 0 means 5 s.
	ProgressLogInterval time.Duration
	// Now is the clock of job start times; nil means time.Now.
	Now func() time.Time
}

// Service implements the storage API.
type Service struct {
	cfg      Config
	backends map[domain.PoolType]ports.PoolBackend
	codec    ports.XMLCodec
	store    ports.StateStore
	events   ports.EventSink
	log      *logrus.Entry

	// cfgMu serialises the writers of pool configs and autostart links with
	// Reload, which reads them back.
	cfgMu sync.Mutex

	regMu  sync.RWMutex
	byUUID map[domain.UUID]*entry

	// A counter rather than a WaitGroup: calls keep arriving while Shutdown waits.
	jobMu   sync.Mutex
	jobs    int
	waiters []chan struct{}
	// The long volume jobs (jobs.go), also under jobMu.
	jobSeq  uint64
	running map[uint64]*job
	totals  map[domain.JobKind]*ports.JobTotals
}

// entry is one pool in the registry with its locks.
type entry struct {
	opMu sync.Mutex
	mu   sync.Mutex
	pool *domain.Pool
	gone bool // removed from the registry; guarded by mu
}

// New builds a service over the backends (one per pool type) and the other
// driven ports. Call Start before serving.
func New(cfg Config, backends []ports.PoolBackend, codec ports.XMLCodec, store ports.StateStore, events ports.EventSink, log *logrus.Entry) (*Service, error) {
	if codec == nil || store == nil || events == nil || log == nil {
		return nil, fmt.Errorf("service: codec, store, events and log are required")
	}
	s := &Service{
		cfg:      cfg,
		backends: make(map[domain.PoolType]ports.PoolBackend, len(backends)),
		codec:    codec,
		store:    store,
		events:   events,
		log:      log,
		byUUID:   make(map[domain.UUID]*entry),
		running:  make(map[uint64]*job),
		totals:   make(map[domain.JobKind]*ports.JobTotals),
	}
	for _, b := range backends {
		if _, dup := s.backends[b.Type()]; dup {
			return nil, fmt.Errorf("service: two backends for pool type %s", b.Type())
		}
		s.backends[b.Type()] = b
	}
	return s, nil
}

// types returns the served pool types in libvirt's order.
func (s *Service) types() []domain.PoolType {
	ts := make([]domain.PoolType, 0, len(s.backends))
	for t := range s.backends {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

func (s *Service) backendFor(t domain.PoolType) (ports.PoolBackend, error) {
	b, ok := s.backends[t]
	if !ok {
		return nil, domain.ErrMissingBackend(t)
	}
	return b, nil
}

// backendOf returns the backend of the definition in use, so that a pool
// redefined with another type while inactive runs the new type's backend
// from its next start, and a running one its own until it stops. Every
// definition in the registry names a served type: define and create check it
// (backendFor), the daemon's start and reloads skip the others (loadable).
func (s *Service) backendOf(def *domain.PoolDef) ports.PoolBackend { return s.backends[def.Type] }

// entries returns a snapshot of the registry sorted by pool name.
func (s *Service) entries() []*entry {
	s.regMu.RLock()
	es := make([]*entry, 0, len(s.byUUID))
	for _, e := range s.byUUID {
		es = append(es, e)
	}
	s.regMu.RUnlock()
	names := make(map[*entry]string, len(es))
	for _, e := range es {
		e.mu.Lock()
		names[e] = e.pool.Name()
		e.mu.Unlock()
	}
	slices.SortFunc(es, func(a, b *entry) int { return strings.Compare(names[a], names[b]) })
	return es
}

// byName finds a pool by name; the caller holds regMu.
func (s *Service) byNameLocked(name string) *entry {
	for _, e := range s.byUUID {
		e.mu.Lock()
		match := e.pool.Name() == name
		e.mu.Unlock()
		if match {
			return e
		}
	}
	return nil
}

func (s *Service) entryByName(name string) (*entry, error) {
	s.regMu.RLock()
	defer s.regMu.RUnlock()
	if e := s.byNameLocked(name); e != nil {
		return e, nil
	}
	return nil, domain.ErrPoolNotFoundName(name)
}

// entryByUUID finds a registered pool, nil when there is none.
func (s *Service) entryByUUID(u domain.UUID) *entry {
	s.regMu.RLock()
	defer s.regMu.RUnlock()
	return s.byUUID[u]
}

// resolve finds the pool of a POOL handle: by UUID, as libvirt does.
func (s *Service) resolve(h domain.PoolHandle) (*entry, error) {
	e := s.entryByUUID(h.UUID)
	if e == nil {
		return nil, domain.ErrPoolGone(h.UUID, h.Name)
	}
	return e, nil
}

// lock locks e's state, failing when the pool left the registry since it was found.
func (e *entry) lock() error {
	e.mu.Lock()
	if e.gone {
		def := e.pool.Def()
		e.mu.Unlock()
		return domain.ErrPoolGone(def.UUID, def.Name)
	}
	return nil
}

// lockOps takes e's lifecycle lock. A pool being started or built answers
// "starting up" at once, as libvirt does, instead of waiting for the start.
func (e *entry) lockOps() error {
	if err := e.view(func(p *domain.Pool) error {
		if p.Starting() {
			return domain.ErrPoolStarting(p.Name())
		}
		return nil
	}); err != nil {
		return err
	}
	e.opMu.Lock()
	return nil
}

// view runs fn on e's pool under its state lock.
func (e *entry) view(fn func(p *domain.Pool) error) error {
	if err := e.lock(); err != nil {
		return err
	}
	defer e.mu.Unlock()
	return fn(e.pool)
}

// removeLocked drops e from the registry; the caller holds regMu and e.mu.
func (s *Service) removeLocked(e *entry) {
	u := e.pool.Def().UUID
	if s.byUUID[u] == e {
		delete(s.byUUID, u)
	}
	e.gone = true
}

// stopAndMaybeRemove marks e stopped and drops it when it was transient.
func (s *Service) stopAndMaybeRemove(e *entry) {
	s.regMu.Lock()
	e.mu.Lock()
	if e.pool.Stop() {
		s.removeLocked(e)
	}
	e.mu.Unlock()
	s.regMu.Unlock()
}

// track counts a running job for Shutdown; the returned func ends it (once).
// ActiveJobs is the number of volume jobs and open streams in progress; the
// daemon's idle timeout waits for it to reach zero.
func (s *Service) ActiveJobs() int {
	s.jobMu.Lock()
	defer s.jobMu.Unlock()
	return s.jobs
}

func (s *Service) track() func() {
	s.jobMu.Lock()
	s.jobs++
	s.jobMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.jobMu.Lock()
			defer s.jobMu.Unlock()
			s.jobs--
			if s.jobs == 0 {
				for _, w := range s.waiters {
					close(w)
				}
				s.waiters = nil
			}
		})
	}
}

// newUUID returns a random (version 4) UUID for a definition that has none.
func newUUID() domain.UUID {
	var u domain.UUID
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails on Linux (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

func (s *Service) plog(name string) *logrus.Entry { return s.log.WithField("pool", name) }
