package service

import (
	"cmp"
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// defaultProgressLogInterval is how often a long job logs its progress: often
// enough to follow in a log, rare enough that a job of minutes writes a
// handful of lines.
const defaultProgressLogInterval = 5 * time.Second

// job is one running volume job (domain.JobKind). Backends advance it
// through the context of their call (ports.ProgressOf); uploads and
// downloads are advanced by their stream wrappers.
type job struct {
	s         *Service
	id        uint64
	kind      domain.JobKind
	pool, vol string
	caller    ports.Caller
	hasCaller bool
	started   time.Time
	total     uint64
	done      atomic.Int64

	// Guarded by s.jobMu.
	timer *time.Timer
	ended bool
}

var _ ports.Progress = (*job)(nil)

// Advance adds n bytes done.
func (j *job) Advance(n int64) {
	if n > 0 {
		j.done.Add(n)
	}
}

// progress returns the bytes done, never more than the total: a backend may
// count what it writes twice (allocating, then copying into the allocation).
func (j *job) progress() uint64 {
	return min(uint64(max(j.done.Load(), 0)), j.total)
}

// beginJob registers a job on pool/vol that moves about total bytes, and
// returns the context to hand the backend, which carries the job as its
// progress. The caller ends the job exactly once with end.
func (s *Service) beginJob(ctx context.Context, kind domain.JobKind, pool, vol string, total uint64) (context.Context, *job) {
	j := &job{s: s, kind: kind, pool: pool, vol: vol, started: s.now(), total: total}
	j.caller, j.hasCaller = ports.CallerOf(ctx)
	s.jobMu.Lock()
	s.jobSeq++
	j.id = s.jobSeq
	s.running[j.id] = j
	s.totalsLocked(kind).Running++
	j.timer = time.AfterFunc(s.progressEvery(), j.logProgress)
	s.jobMu.Unlock()
	return ports.WithProgress(ctx, j), j
}

// end unregisters the job and counts it as finished, failed when err is set.
// Later calls do nothing.
func (j *job) end(err error) {
	s := j.s
	s.jobMu.Lock()
	if j.ended {
		s.jobMu.Unlock()
		return
	}
	j.ended = true
	j.timer.Stop()
	delete(s.running, j.id)
	t := s.totalsLocked(j.kind)
	t.Running--
	t.Finished++
	if err != nil {
		t.Failed++
	}
	done := j.progress()
	if err == nil {
		// A job that succeeded got through all of it, whatever the backend
		// could count on the way (an external program counts nothing).
		done = j.total
	}
	t.Bytes += done
	s.jobMu.Unlock()
	if took := s.now().Sub(j.started); took >= s.progressEvery() {
		log := j.logEntry(done).WithField("took", took.Round(time.Millisecond))
		if err != nil {
			log.WithError(err).Info("volume job failed")
		} else {
			log.Info("volume job finished")
		}
	}
}

// logProgress runs every progress interval while the job runs.
func (j *job) logProgress() {
	s := j.s
	s.jobMu.Lock()
	if j.ended {
		s.jobMu.Unlock()
		return
	}
	j.timer.Reset(s.progressEvery())
	s.jobMu.Unlock()
	j.logEntry(j.progress()).WithField("elapsed", s.now().Sub(j.started).Round(time.Second)).Info("volume job in progress")
}

func (j *job) logEntry(done uint64) *logrus.Entry {
	f := logrus.Fields{"job": j.kind.String(), "job_id": j.id, "vol": j.vol, "bytes_done": done, "bytes_total": j.total}
	if j.total > 0 {
		f["percent"] = done * 100 / j.total
	}
	return j.s.plog(j.pool).WithFields(f)
}

func (s *Service) totalsLocked(k domain.JobKind) *ports.JobTotals {
	t := s.totals[k]
	if t == nil {
		t = &ports.JobTotals{}
		s.totals[k] = t
	}
	return t
}

func (s *Service) progressEvery() time.Duration {
	if s.cfg.ProgressLogInterval > 0 {
		return s.cfg.ProgressLogInterval
	}
	return defaultProgressLogInterval
}

func (s *Service) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// Jobs returns the running volume jobs, oldest first, and the counts per kind.
func (s *Service) Jobs() ports.JobSnapshot {
	snap := ports.JobSnapshot{Totals: make(map[domain.JobKind]ports.JobTotals, len(domain.JobKinds))}
	s.jobMu.Lock()
	snap.Running = make([]ports.JobStatus, 0, len(s.running))
	for _, j := range s.running {
		snap.Running = append(snap.Running, ports.JobStatus{
			ID: j.id, Kind: j.kind, Pool: j.pool, Vol: j.vol,
			Caller: j.caller, HasCaller: j.hasCaller,
			Started: j.started, Done: j.progress(), Total: j.total,
		})
	}
	for _, k := range domain.JobKinds {
		if t := s.totals[k]; t != nil {
			snap.Totals[k] = *t
		} else {
			snap.Totals[k] = ports.JobTotals{}
		}
	}
	s.jobMu.Unlock()
	slices.SortFunc(snap.Running, func(a, b ports.JobStatus) int { return cmp.Compare(a.ID, b.ID) })
	return snap
}

// Pools returns every pool with the figures pool-info would report, sorted
// by name. Each pool's state lock is held only to copy a few fields; no
// lifecycle lock is taken, so a pool being started, built or refreshed
// answers with what it had.
func (s *Service) Pools() []ports.PoolStatus {
	es := s.entries()
	out := make([]ports.PoolStatus, 0, len(es))
	for _, e := range es {
		var st ports.PoolStatus
		if e.view(func(p *domain.Pool) error {
			info := p.Info()
			def := p.Def()
			st = ports.PoolStatus{Name: def.Name, UUID: def.UUID, Type: def.Type, State: info.State,
				Capacity: info.Capacity, Allocation: info.Allocation, Available: info.Available}
			if p.Active() {
				st.Volumes = len(p.Volumes())
			}
			return nil
		}) != nil {
			continue // undefined meanwhile
		}
		out = append(out, st)
	}
	return out
}
