package ports

import (
	"context"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
)

// Observation ports: what the daemon tells monitoring (adapters/metrics) and
// the admin program about itself. Nothing here can change state: the
// observers only receive figures, and the status source only hands out
// copies.

// CallObserver is told about the RPC server's calls and clients. The RPC
// adapter calls it on every call, so its methods must be cheap and must never
// block.
type CallObserver interface {
	// Procedure returns the recorder of one procedure of a program ("remote",
	// "admin"); the RPC adapter asks once per procedure, when it starts, and
	// keeps the answer.
	Procedure(program, name string) CallRecorder
	// ClientConnected and ClientDisconnected follow the clients of a server
	// ("virtstoraged", "admin", as virt-admin names them).
	ClientConnected(server string)
	ClientDisconnected(server string)
}

// CallRecorder records the calls of one procedure.
type CallRecorder interface {
	// CallDone records a call answered after took; failed when the answer
	// was an error.
	CallDone(took time.Duration, failed bool)
}

// PoolStatus is one pool as the service holds it: the figures pool-info
// reports, without asking the system again.
type PoolStatus struct {
	Name  string
	UUID  domain.UUID
	Type  domain.PoolType
	State domain.PoolState
	// Capacity, Allocation and Available are zero for an inactive pool, as
	// in pool-info.
	Capacity, Allocation, Available uint64
	// Volumes is what pool-list-volumes would list (0 when inactive).
	Volumes int
}

// JobStatus is one running volume job.
type JobStatus struct {
	// ID numbers the jobs of one daemon run, from 1.
	ID   uint64
	Kind domain.JobKind
	Pool string
	Vol  string
	// Caller is who started the job, when it came through the RPC server.
	Caller    Caller
	HasCaller bool
	Started   time.Time
	// Done and Total are the job's progress in bytes. Done never exceeds
	// Total; it stays 0 while an external program (qemu-img, scrub) does
	// the work, since those tell nothing on the way.
	Done, Total uint64
}

// JobTotals are the running and finished jobs of one kind since the start.
type JobTotals struct {
	Running int
	// Finished counts the jobs that ended, Failed those of them that ended
	// in an error (a client's abort included).
	Finished, Failed uint64
	// Bytes is the data the finished jobs got through.
	Bytes uint64
}

// JobSnapshot is the service's jobs at one instant: the running ones and the
// counts per kind agree with each other.
type JobSnapshot struct {
	// Running are the running jobs, oldest first.
	Running []JobStatus
	// Totals has an entry for every kind of domain.JobKinds.
	Totals map[domain.JobKind]JobTotals
}

// StatusSource is the read-only view of the storage service that monitoring
// and the admin program read. Its methods copy what the service holds in
// memory under its short state locks: they never wait for a running
// operation nor ask the system.
type StatusSource interface {
	// Pools returns every pool, sorted by name.
	Pools() []PoolStatus
	// Jobs returns the volume jobs.
	Jobs() JobSnapshot
}

// Progress receives how far a long job got. Backends find it in the context
// of the call (ProgressOf) and report from their copy and write loops, so
// that no backend method needs another parameter.
type Progress interface {
	// Advance adds n bytes done. It is safe for concurrent use and cheap
	// (an atomic add).
	Advance(n int64)
}

// Caller identifies the client a call came from, as the admin program numbers
// clients (virt-admin srv-clients-list).
type Caller struct {
	Server   string
	ClientID uint64
}

type progressKey struct{}
type callerKey struct{}

// WithProgress returns a context whose ProgressOf is p.
func WithProgress(ctx context.Context, p Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// ProgressOf returns the Progress of ctx, or one that discards when there is
// none.
func ProgressOf(ctx context.Context) Progress {
	if p, ok := ctx.Value(progressKey{}).(Progress); ok && p != nil {
		return p
	}
	return noProgress{}
}

type noProgress struct{}

func (noProgress) Advance(int64) {}

// WithCaller returns a context that carries the calling client.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf returns the calling client of ctx, if it carries one.
func CallerOf(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
