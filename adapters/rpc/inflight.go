package rpc

import (
	"context"
	"sync"
	"time"

	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// What a connection may hold of what its client sent.
//
// Upload data never waits in a buffer the size of its packet (up to 32 MiB):
// the reader reads a STREAM packet's payload from the socket in chunks of
// uploadChunk bytes, straight into buffers of the connection's own, and queues
// them for the upload's writer, which gives each back once it is written.
// A connection has at most uploadChunks such buffers: when all are queued or
// being written, the reader stops reading the socket until one comes back, so
// a client sending faster than the volume takes the data waits on its own
// socket, not in the daemon's memory. The buffers are reused from chunk to
// chunk and go back to the server's small pool when the connection's last
// upload ends.
//
// Call arguments are bounded likewise: the bodies of the calls a connection
// has read and not yet finished add up to maxCallBytes at most, and the reader
// waits before reading a body that would go over. Frames whose body nobody
// needs (keepalive, data on a download, stream packets of unknown streams,
// messages of unknown types) are skipped through the read buffer without being
// stored.
const (
	// uploadChunk is the size of an upload buffer: one packet of libvirt's
	// own clients (virsh sends 262120 bytes of data a packet) fits in one.
	uploadChunk = 256 << 10
	// uploadChunks is how many upload buffers a connection may have.
	uploadChunks = 16
	// MaxUploadInFlight is the most upload data one connection holds in
	// memory at a time, whatever its packet size and however many uploads
	// it runs: 4 MiB.
	MaxUploadInFlight = uploadChunk * uploadChunks
	// maxCallBytes bounds the bodies of a connection's unfinished calls:
	// the largest one libvirt accepts, so that any single call fits.
	maxCallBytes = xdr.MaxFrameLen - xdr.MinFrameLen
)

// chunkSet is one connection's upload buffers. Only the connection's reader
// takes them; writers give them back.
type chunkSet struct {
	pool *chunkPool
	mu   sync.Mutex
	free [][]byte
	out  int // buffers taken and not given back
	// uploads is how many upload streams of the connection are registered:
	// buffers are kept for the connection only while there are some.
	uploads int
	back    chan struct{} // a buffer came back
}

func newChunkSet(pool *chunkPool) *chunkSet {
	return &chunkSet{pool: pool, back: make(chan struct{}, 1)}
}

// get returns a buffer of uploadChunk bytes, waiting while the connection has
// all of them out, until ctx ends.
func (cs *chunkSet) get(ctx context.Context) ([]byte, error) {
	for {
		cs.mu.Lock()
		if n := len(cs.free); n > 0 {
			b := cs.free[n-1]
			cs.free[n-1] = nil
			cs.free = cs.free[:n-1]
			cs.out++
			cs.mu.Unlock()
			return b, nil
		}
		if cs.out < uploadChunks {
			cs.out++
			cs.mu.Unlock()
			return cs.pool.get(), nil
		}
		cs.mu.Unlock()
		select {
		case <-cs.back:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// put gives a buffer back: to the connection while it has uploads, else to
// the server's pool.
func (cs *chunkSet) put(b []byte) {
	b = b[:cap(b)]
	cs.mu.Lock()
	cs.out--
	keep := cs.uploads > 0
	if keep {
		cs.free = append(cs.free, b)
	}
	cs.mu.Unlock()
	if !keep {
		cs.pool.put(b)
	}
	select {
	case cs.back <- struct{}{}:
	default:
	}
}

// beginUpload and endUpload bracket an upload stream of the connection; the
// end of the last one hands the connection's buffers to the server's pool.
func (cs *chunkSet) beginUpload() {
	cs.mu.Lock()
	cs.uploads++
	cs.mu.Unlock()
}

func (cs *chunkSet) endUpload() {
	cs.mu.Lock()
	cs.uploads--
	var free [][]byte
	if cs.uploads == 0 {
		free, cs.free = cs.free, nil
	}
	cs.mu.Unlock()
	for _, b := range free {
		cs.pool.put(b)
	}
}

// chunkPool keeps a few upload buffers between the uploads of all
// connections, so that a client uploading one volume after another does not
// allocate its buffers anew each time. It keeps at most one connection's
// worth: after a burst of uploads the rest is let go, and the relief gives it
// back to the system.
type chunkPool struct {
	free   chan []byte
	relief *relief
}

func newChunkPool(r *relief) *chunkPool {
	return &chunkPool{free: make(chan []byte, uploadChunks), relief: r}
}

func (p *chunkPool) get() []byte {
	select {
	case b := <-p.free:
		return b
	default:
		p.relief.churn()
		return make([]byte, uploadChunk)
	}
}

func (p *chunkPool) put(b []byte) {
	select {
	case p.free <- b:
	default:
		p.relief.churn()
	}
}

// byteGate is a budget of bytes with waiting: the reader takes a call body's
// size before reading it, and the call gives it back when done.
type byteGate struct {
	mu      sync.Mutex
	max     int
	used    int
	changed chan struct{}
}

func newByteGate(max int) *byteGate {
	return &byteGate{max: max, changed: make(chan struct{}, 1)}
}

// acquire takes n bytes of the budget (n <= max), waiting until they are
// free or ctx ends; the caller gives them back with release.
func (g *byteGate) acquire(ctx context.Context, n int) error {
	for {
		g.mu.Lock()
		if g.used+n <= g.max {
			g.used += n
			g.mu.Unlock()
			return nil
		}
		g.mu.Unlock()
		select {
		case <-g.changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (g *byteGate) release(n int) {
	g.mu.Lock()
	g.used -= n
	g.mu.Unlock()
	// Only the connection's reader waits, one at a time: a token is enough.
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// After a burst, memory the daemon no longer uses stays with it: the
// collector runs only when the program allocates (or every two minutes), and
// the runtime returns free memory to the system slowly, and only down to
// twice the heap the burst left live. An idle daemon would hold a burst's
// peak for minutes (measured: 86 MiB a minute after 20 clients' uploads,
// against 11 MiB before them). So the server notes every large buffer that
// comes or goes (upload buffers the pool could not give or keep, call bodies
// of a MiB or more, whose decoding, error text and reply are of their size
// too, call buffers of a MiB or more that a reader lets go) and, once none has
// for reliefQuiet, calls the daemon's ReleaseMemory (debug.FreeOSMemory: a
// collection, then every free page back to the system). The quiet period
// keeps it out of a burst, and a buffer noted after a release arms it again,
// so the last release comes after the burst's last buffer. Ordinary traffic
// (calls under a MiB, uploads served from the pool) never arms it.
const (
	reliefQuiet = time.Second
	// bigCallBody is the size from which a call body, or a reader's call
	// buffer let go, is large.
	bigCallBody = 1 << 20
)

type relief struct {
	release func()
	mu      sync.Mutex
	timer   *time.Timer
}

// churn notes that a large buffer was allocated or let go.
func (r *relief) churn() {
	if r == nil || r.release == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer == nil {
		r.timer = time.AfterFunc(reliefQuiet, r.release)
		return
	}
	r.timer.Reset(reliefQuiet)
}

// stop cancels a pending release (server shutdown).
func (r *relief) stop() {
	if r == nil {
		return
	}
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
}
