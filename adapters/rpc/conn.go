package rpc

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/ports"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// program is one RPC program as a connection serves it.
type program interface {
	// lookup returns the dispatch-table row of proc, nil when unknown.
	lookup(proc int32) *xdr.ProcInfo
	// check refuses a call before its arguments are decoded (connection not open,
	// read-only).
	check(info *xdr.ProcInfo) error
	dispatch(ctx context.Context, proc int32, dec *xdr.Decoder, st xdr.Stream) (xdr.Message, error)
	// scope picks the error domain of "not supported" replies.
	scope(info *xdr.ProcInfo) errorScope
}

// procConnectClose is CONNECT_CLOSE in both the remote and the admin program: the
// server replies, then hangs up (see awaitHangup).
const procConnectClose int32 = 2

// DefaultCloseLinger is how long a connection waits, after its CONNECT_CLOSE
// reply, for the client to hang up before the server closes it. libvirt's
// clients hang up within a millisecond of the reply; the bound is for those
// that wait for the server instead.
const DefaultCloseLinger = 2 * time.Second

// readBufKeep is the largest call buffer a connection's reader keeps between
// frames: calls carrying a 4 MiB string (the protocol's longest) are read
// without a buffer of their own each. Bigger calls (up to 32 MiB) get a buffer
// of their own, freed with them. Upload data never goes through it (see
// inflight.go).
const readBufKeep = 4<<20 + 64<<10

// readBufSize is the size of a connection's socket read buffer.
const readBufSize = 64 << 10

var errConnClosed = errors.New("rpc: connection closed")

// decoders are reused across calls because a Decoder carries a string arena: a fresh
// one per call would cost an arena chunk per call. Reuse is sound since arena bytes
// are never rewritten, so strings of earlier calls stay intact.
var decoders = sync.Pool{New: func() any { return xdr.NewDecoder(nil) }}

// conn is one client connection.
type conn struct {
	srv  *Server
	sv   *service
	nc   net.Conn
	kind ListenerKind
	id   uint64
	born time.Time
	log  *logrus.Entry

	// eventDrops counts events dropped since the client last kept up.
	eventDrops atomic.Int64

	pid, uid, gid int32
	credErr       error

	ctx    context.Context
	cancel context.CancelFunc

	requests  *gate     // max_client_requests
	callBytes *byteGate // bodies of unfinished calls
	chunks    *chunkSet // upload buffers
	out       outQueue

	lastRecv   atomic.Int64 // unix nanoseconds of the last received frame
	closeAfter atomic.Bool  // hang up after the next reply (admin closing its own client)
	// lingering is set once CONNECT_CLOSE is answered: the client is to hang
	// up, and nothing it sends is served any more.
	lingering   atomic.Bool
	lingerTimer atomic.Pointer[time.Timer]
	keepalive   atomic.Bool
	eventLimit  int

	remote *remoteProgram
	admin  *adminProgram

	mu      sync.Mutex
	streams map[uint32]*stream
	parked  []*stream // downloads at EOF waiting for the client's finish

	closeOnce sync.Once
	done      chan struct{}

	// The reader's state, handed from goroutine to goroutine when an inline
	// call runs long (see inline.go); only the current reader uses br.
	br         *bufio.Reader
	inlineSeq  atomic.Uint64
	inlineTok  atomic.Uint64 // the running inline call's token, 0 when none
	inlineSeen uint64        // the token the watchdog saw last tick; its own
}

func newConn(s *Server, sv *service, nc net.Conn, kind ListenerKind) *conn {
	c := &conn{
		srv:        s,
		sv:         sv,
		nc:         newRawIO(nc),
		kind:       kind,
		id:         s.nextClientID.Add(1),
		born:       s.cfg.Now(),
		streams:    map[uint32]*stream{},
		done:       make(chan struct{}),
		eventLimit: s.cfg.EventQueue,
	}
	c.pid, c.uid, c.gid, c.credErr = s.cfg.PeerCred(nc)
	// Every call of the connection carries its client, so that the jobs it
	// starts can be shown under it (virt-admin client-info).
	c.ctx, c.cancel = context.WithCancel(ports.WithCaller(s.ctx, ports.Caller{Server: sv.name, ClientID: c.id}))
	l := sv.getLimits()
	c.requests = newGate(l.MaxClientRequests, 0)
	c.callBytes = newByteGate(maxCallBytes)
	c.chunks = newChunkSet(s.chunks)
	c.out.wake = make(chan struct{}, 1)
	c.log = s.log.WithFields(logrus.Fields{"client_pid": c.pid, "client_id": c.id, "listener": kind.String()})
	if kind == ListenAdmin {
		c.admin = newAdminProgram(c)
	} else {
		c.remote = newRemoteProgram(c)
	}
	return c
}

// serve runs the connection until it ends: the reader here, the writer and the
// keepalive in their own goroutines.
func (c *conn) serve() {
	c.lastRecv.Store(time.Now().UnixNano())
	c.log.Debug("rpc: client connected")
	c.br = bufio.NewReaderSize(c.nc, readBufSize)
	go c.writeLoop()
	go func() {
		<-c.ctx.Done()
		c.close()
	}()
	c.readLoop()
}

// close hangs up: cancels the client's calls and streams, drops its event
// callbacks and frees its slot in the server. Safe to call from anywhere, any
// number of times.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		if t := c.lingerTimer.Load(); t != nil {
			t.Stop()
		}
		c.cancel()
		c.nc.Close()
		c.out.shutdown()
		c.mu.Lock()
		streams := make([]*stream, 0, len(c.streams))
		for _, st := range c.streams {
			streams = append(streams, st)
		}
		c.mu.Unlock()
		for _, st := range streams {
			st.hangup()
		}
		c.srv.removeClient(c)
		close(c.done)
		c.log.Debug("rpc: client disconnected")
	})
}

// readLoop reads frames until the connection ends, or until a call this
// goroutine runs inline outlasts its budget and another goroutine takes over
// the reading. The frame buffer is this goroutine's own: after a hand-off the
// inline call still uses it while the new reader reads.
func (c *conn) readLoop() {
	var buf []byte
	for {
		next := readStop
		h, n, err := c.readHeader()
		if err != nil {
			c.readFailed(err)
		} else {
			c.lastRecv.Store(time.Now().UnixNano())
			next = c.handle(h, n, &buf)
		}
		if cap(buf) > readBufKeep {
			c.srv.relief.churn()
			buf = nil
		}
		switch next {
		case readStop:
			if cap(buf) >= bigCallBody {
				c.srv.relief.churn()
			}
			c.close()
			return
		case readHandedOff:
			return
		}
	}
}

// readHeader reads a frame's length word and header, and returns the header
// and the length of the payload that follows.
func (c *conn) readHeader() (header, int, error) {
	var b [xdr.LenWordSize + xdr.HeaderSize]byte
	if _, err := io.ReadFull(c.br, b[:xdr.LenWordSize]); err != nil {
		return header{}, 0, err
	}
	body, err := xdr.FrameBody([xdr.LenWordSize]byte(b[:xdr.LenWordSize]), xdr.MaxFrameLen)
	if err != nil {
		return header{}, 0, err
	}
	if err := c.readFull(b[xdr.LenWordSize:]); err != nil {
		return header{}, 0, err
	}
	return parseHeader(b[xdr.LenWordSize:]), body - xdr.HeaderSize, nil
}

// readFull reads len(p) bytes of the frame being read; the connection ending
// before gives io.ErrUnexpectedEOF.
func (c *conn) readFull(p []byte) error {
	_, err := io.ReadFull(c.br, p)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// skip reads past n bytes of payload nobody needs, without storing them.
func (c *conn) skip(n int) readNext {
	if _, err := c.br.Discard(n); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		c.readFailed(err)
		return readStop
	}
	return readOn
}

// readFailed logs why reading the connection failed; the caller closes it.
func (c *conn) readFailed(err error) {
	var fe *xdr.FrameError
	switch {
	case errors.As(err, &fe):
		c.log.WithError(err).Warn("rpc: bad frame length, closing the connection")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), c.ctx.Err() != nil:
	default:
		c.log.WithError(err).Debug("rpc: read failed")
	}
}

// readNext tells the reader what to do after a frame.
type readNext int

const (
	readOn        readNext = iota
	readStop               // close the connection
	readHandedOff          // another goroutine reads now; this one is done
)

// handle acts on one received frame whose header is h and whose payload, n
// bytes, is still to be read: each kind of frame reads it where it goes. buf
// is the reader's call buffer.
func (c *conn) handle(h header, n int, buf *[]byte) readNext {
	if c.lingering.Load() {
		return c.skip(n) // read only to see the hang-up
	}
	switch h.typ {
	case typeMessage:
		if next := c.skip(n); next != readOn {
			return next
		}
		if h.prog == progKeepalive && h.vers == 1 && h.proc == keepalivePing {
			c.out.pushPong(c)
		}
		// PONGs only reset the silence timer; other messages from a client have no
		// meaning and libvirt drops them too.
		return readOn
	case typeCall:
		return c.handleCall(h, n, buf)
	case typeStream, typeStreamHole:
		return c.handleStream(h, n)
	case typeCallWithFDs:
		// The fds would follow as extra bytes we cannot resynchronise over, and no
		// storage procedure takes any.
		c.log.WithField("proc", h.proc).Warn("rpc: call with file descriptors refused, closing the connection")
		return readStop
	default:
		return c.skip(n)
	}
}

func (c *conn) programFor(prog, vers uint32) program {
	switch {
	case prog == progRemote && vers == 1 && c.remote != nil:
		return c.remote
	case prog == progAdmin && vers == 1 && c.admin != nil:
		return c.admin
	}
	return nil
}

// handleCall reads a call's n-byte payload into buf (or a buffer of its own,
// for a big call that cannot run inline) and starts it. The body's bytes are
// taken from the connection's budget before it is read, and given back once
// the call is done with it.
func (c *conn) handleCall(h header, n int, buf *[]byte) readNext {
	if err := c.callBytes.acquire(c.ctx, n); err != nil {
		return readStop
	}
	payload, err := xdr.ReadBody(c.br, *buf, n)
	if err != nil {
		c.callBytes.release(n)
		c.readFailed(err)
		return readStop
	}
	*buf = payload
	if n >= bigCallBody {
		c.srv.relief.churn()
	}
	next, async := c.startCall(h, payload, buf)
	if !async {
		c.callBytes.release(n)
	}
	return next
}

// startCall runs a call whose payload the reader has read into buf: on the
// reader itself when it is small and quick, else on a goroutine of its own
// (async), which then gives the payload's bytes back to the budget.
func (c *conn) startCall(h header, payload []byte, buf *[]byte) (next readNext, async bool) {
	release, err := c.requests.acquire(c.ctx, false)
	if err != nil {
		return readStop, false
	}
	prog := c.programFor(h.prog, h.vers)
	if prog == nil {
		c.replyError(h, rpcError("Cannot find program %d version %d", h.prog, h.vers), scopeStorage, release)
		return readOn, false
	}
	if h.status != statusOK {
		c.replyError(h, rpcError("Unexpected message status %d", h.status), scopeStorage, release)
		return readOn, false
	}
	info := prog.lookup(h.proc)
	if info == nil || info.Async {
		c.replyError(h, rpcError("unknown procedure: %d", h.proc), scopeStorage, release)
		return readOn, false
	}
	if inlineable(info) {
		if workerDone, ok := c.sv.workers.tryAcquire(true); ok {
			// payload is the reader's buffer: the call must be over, and nothing
			// may point into it, before the next frame is read.
			tok := c.beginInline()
			c.runCall(&call{prog: prog, info: info, h: h, args: payload, release: release, inline: true, workerDone: workerDone})
			if !c.endInline(tok) {
				return readHandedOff, false
			}
			return readOn, false
		}
	}
	args, own := payload, cap(payload) > readBufKeep
	if own {
		// The reader would not keep this buffer anyway: the call takes it
		// rather than a copy.
		*buf = nil
	} else {
		args = make([]byte, len(payload))
		copy(args, payload)
	}
	var st *stream
	if info.Stream != xdr.StreamNone {
		// Registered by the reader, before any later packet is read: a client
		// may send data right behind the call.
		st = c.openStream(h, info.Stream)
	}
	go func() {
		c.runCall(&call{prog: prog, info: info, h: h, args: args, st: st, release: release})
		c.callBytes.release(len(args))
		if own {
			c.srv.relief.churn()
		}
	}()
	return readOn, true
}

// call is one request as the reader hands it on: its program and
// dispatch-table row, its header and encoded arguments, the stream it opened
// (nil for most calls), and the request slot it holds, which release frees
// once the reply is on the wire.
type call struct {
	prog    program
	info    *xdr.ProcInfo
	h       header
	args    []byte
	st      *stream
	release func()
	// inline is a call the reader runs itself, with a worker slot it took
	// (workerDone): args is then the reader's buffer, and the reply is
	// written in place when nothing else is queued. Other calls take their
	// worker slot in runCall.
	inline     bool
	workerDone func()
}

// runCall serves one call in net/rpc's shape: check it, decode its
// arguments and run it, answer with its result or its error. What makes a
// small call cheap (run inline on the reader, no clock read or log fields
// unless someone looks, pooled decoders, the reply written in place) is in
// the helpers below.
func (c *conn) runCall(cl *call) {
	m := c.meter(cl.info)
	if err := cl.prog.check(cl.info); err != nil {
		if cl.inline {
			cl.workerDone()
		}
		c.failCall(cl, &m, err, "rpc: call refused")
		return
	}
	if !cl.inline && !c.takeWorker(cl) {
		return
	}
	ret, err := c.execute(cl)
	if err != nil {
		c.failCall(cl, &m, err, "rpc: call failed")
		return
	}
	c.reply(cl, &m, ret)
}

// meter times a call for its recorder (metrics) and the debug log. Reading
// the clock and building logrus fields cost more than a fast call itself,
// so it does either only when someone looks.
type meter struct {
	rec   ports.CallRecorder
	start time.Time
	debug bool
}

func (c *conn) meter(info *xdr.ProcInfo) meter {
	m := meter{rec: c.srv.recorder(info), debug: c.log.Logger.IsLevelEnabled(logrus.DebugLevel)}
	if m.debug || m.rec != nil {
		m.start = time.Now()
	}
	return m
}

// record tells the recorder, if any, that the call was answered.
func (m *meter) record(failed bool) {
	if m.rec != nil {
		m.rec.CallDone(time.Since(m.start), failed)
	}
}

// debugLog logs what became of the call at debug level, when enabled.
func (c *conn) debugLog(cl *call, m *meter, err error, msg string) {
	if !m.debug {
		return
	}
	l := c.callLog(cl).WithField("took", time.Since(m.start))
	if err != nil {
		l = l.WithError(err)
	}
	l.Debug(msg)
}

func (c *conn) callLog(cl *call) *logrus.Entry {
	return c.log.WithFields(logrus.Fields{"proc": cl.info.Name, "serial": cl.h.serial})
}

// takeWorker waits for a worker slot for a call on a goroutine of its own;
// false when the connection ended first, with the call dropped unanswered.
func (c *conn) takeWorker(cl *call) bool {
	done, err := c.sv.workers.acquire(c.ctx, cl.info.Priority)
	if err != nil {
		cl.discardStream()
		cl.release()
		return false
	}
	cl.workerDone = done
	return true
}

// execute decodes the call's arguments and runs it, then gives its worker
// slot back.
func (c *conn) execute(cl *call) (xdr.Message, error) {
	var xst xdr.Stream
	if cl.st != nil {
		xst = cl.st
	}
	dec := decoders.Get().(*xdr.Decoder)
	dec.Reset(cl.args)
	// Strings may point into args only when args is this call's own copy; the
	// reader's buffer is reused for the next frame.
	dec.SetAlias(!cl.inline)
	ret, err := cl.prog.dispatch(c.ctx, cl.h.proc, dec, xst)
	dec.Reset(nil)
	dec.SetAlias(false)
	decoders.Put(dec)
	cl.workerDone()
	if errors.Is(err, xdr.ErrUnknownProcedure) {
		err = rpcError("unknown procedure: %d", cl.h.proc)
	}
	return ret, err
}

// failCall answers a call with err; its stream, if any, is dropped.
func (c *conn) failCall(cl *call, m *meter, err error, msg string) {
	m.record(true)
	c.debugLog(cl, m, err, msg)
	cl.discardStream()
	c.replyError(cl.h, err, cl.prog.scope(cl.info), cl.release)
}

func (cl *call) discardStream() {
	if cl.st != nil {
		cl.st.discard()
	}
}

// reply answers a call with its result: an inline call's from the reader,
// others through the writer's queue.
func (c *conn) reply(cl *call, m *meter, ret xdr.Message) {
	c.debugLog(cl, m, nil, "rpc: call done")
	rh := cl.h
	rh.typ, rh.status = typeReply, statusOK
	frame, err := encodeMessage(rh, ret)
	m.record(err != nil)
	if err != nil {
		// A reply we cannot encode (a list over its bound) must still be answered.
		c.callLog(cl).WithError(err).Error("rpc: cannot encode reply")
		cl.discardStream()
		c.replyError(cl.h, internalError(fromRPC, "%v", err), cl.prog.scope(cl.info), cl.release)
		return
	}
	if cl.inline {
		c.sendInline(frame, cl.release)
		return
	}
	c.queueReply(cl.h, cl.st, frame, cl.release)
}

// queueReply queues a reply for the writer. Once it is written, the request
// slot is freed, the call's stream learns it may send, and CONNECT_CLOSE
// (whose callers stop being served before the reply goes) hangs up.
func (c *conn) queueReply(h header, st *stream, frame []byte, release func()) {
	if h.proc == procConnectClose {
		c.stopServing()
	}
	c.out.push(c, outItem{buf: frame, done: func(werr error) {
		release()
		if st != nil {
			st.replied(werr)
		}
		switch {
		case werr != nil:
		case c.closeAfter.Load():
			c.close()
		case h.proc == procConnectClose:
			c.awaitHangup()
		}
	}})
}

// stopServing is CONNECT_CLOSE's first step, before its reply is queued: what
// the client sends from now on is read but not served, and it gets no more
// events.
func (c *conn) stopServing() {
	c.lingering.Store(true)
	c.srv.events.removeConn(c)
}

// awaitHangup ends a connection whose CONNECT_CLOSE reply was just written.
// A libvirt client hangs up as soon as it has the reply; if the server's
// hang-up reaches it first, its event loop reports "End of file while reading
// data: Input/output error" (virtqemud logs it for connections to a storage
// daemon). libvirt closes on its event loop's next pass and loses that race on
// about 0.5% of connections; closing right after the write lost it on 3-5%.
// So the connection is closed once the reader sees the client hang up, or
// after the linger for a client that waits for the server to do it.
func (c *conn) awaitHangup() {
	t := time.AfterFunc(c.srv.cfg.CloseLinger, c.close)
	c.lingerTimer.Store(t)
	select {
	case <-c.done:
		t.Stop() // closed meanwhile, maybe before the timer was stored
	default:
	}
}

// sendInline writes an inline call's reply from the reader itself when the
// writer has nothing queued, and queues it otherwise. Inline calls never carry
// a stream nor close the connection (CONNECT_CLOSE is never inlined),
// so their reply needs no completion beyond freeing the request slot.
func (c *conn) sendInline(frame []byte, release func()) {
	if !c.out.claim() {
		c.out.push(c, outItem{buf: frame, done: func(error) { release() }})
		return
	}
	_, err := c.nc.Write(frame)
	c.out.unclaim()
	release()
	if err != nil {
		if c.ctx.Err() == nil {
			c.log.WithError(err).Debug("rpc: write failed, closing the connection")
		}
		c.close()
	}
}

// replyError answers a call with status ERROR; release frees the request slot once
// the reply is on the wire.
func (c *conn) replyError(h header, err error, scope errorScope, release func()) {
	frame, eerr := encodeErrorFrame(h, typeReply, err, scope)
	if eerr != nil {
		c.log.WithError(eerr).Error("rpc: cannot encode error reply, closing the connection")
		release()
		c.close()
		return
	}
	c.out.push(c, outItem{buf: frame, done: func(error) { release() }})
}

func encodeErrorFrame(h header, typ int32, err error, scope errorScope) ([]byte, error) {
	h.typ, h.status = typ, statusError
	return encodeMessage(h, mapError(err, scope).wire())
}

// outItem is a frame waiting for the writer; done runs once it is written or the
// connection is gone.
type outItem struct {
	buf     []byte
	section fileSection // sent after buf when n > 0
	done    func(error)
	event   bool
}

// outQueue decouples workers from slow readers: a worker never blocks on a client's
// socket. Its length is bounded by the request slots (replies hold theirs until
// written), one packet per stream, one pending PONG, and the event limit.
type outQueue struct {
	mu     sync.Mutex
	items  []outItem
	events int
	pong   bool
	closed bool
	// writing is set while a frame is being written, by the writer or by a
	// reader answering inline: one writer at a time keeps frames whole.
	writing bool
	wake    chan struct{}
}

// claim gives the caller the socket for one write if nothing is queued or
// being written.
func (q *outQueue) claim() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.writing || q.closed || len(q.items) > 0 {
		return false
	}
	q.writing = true
	return true
}

// unclaim ends a write and hands the writer anything queued meanwhile.
func (q *outQueue) unclaim() {
	q.mu.Lock()
	q.writing = false
	pending := len(q.items) > 0
	q.mu.Unlock()
	if pending {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

func (q *outQueue) push(c *conn, it outItem) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		if it.done != nil {
			it.done(errConnClosed)
		}
		return false
	}
	if it.event {
		if q.events >= c.eventLimit {
			q.mu.Unlock()
			return false
		}
		q.events++
	}
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

var pongFrame = mustFrame(header{prog: progKeepalive, vers: 1, proc: keepalivePong, typ: typeMessage})
var pingFrame = mustFrame(header{prog: progKeepalive, vers: 1, proc: keepalivePing, typ: typeMessage})

func mustFrame(h header) []byte {
	b, err := encodeMessage(h, nil)
	if err != nil {
		panic(err) // a 28-byte constant frame cannot fail to encode
	}
	return b
}

// pushPong queues a PONG unless one is already waiting: a client flooding PINGs
// without reading must not grow the queue.
func (q *outQueue) pushPong(c *conn) {
	q.mu.Lock()
	if q.pong || q.closed {
		q.mu.Unlock()
		return
	}
	q.pong = true
	q.mu.Unlock()
	q.push(c, outItem{buf: pongFrame, done: func(error) {
		q.mu.Lock()
		q.pong = false
		q.mu.Unlock()
	}})
}

func (q *outQueue) pop() (outItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 || q.writing {
		return outItem{}, false
	}
	q.writing = true
	it := q.items[0]
	q.items[0] = outItem{}
	q.items = q.items[1:]
	if it.event {
		q.events--
	}
	return it, true
}

func (q *outQueue) shutdown() {
	q.mu.Lock()
	q.closed = true
	items := q.items
	q.items = nil
	q.mu.Unlock()
	for _, it := range items {
		if it.done != nil {
			it.done(errConnClosed)
		}
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (c *conn) writeLoop() {
	for {
		it, ok := c.out.pop()
		if !ok {
			select {
			case <-c.out.wake:
				continue
			case <-c.done:
				c.out.shutdown()
				return
			}
		}
		_, err := c.nc.Write(it.buf)
		result := err
		if err == nil && it.section.n > 0 {
			result, err = c.writeFileBody(it.section)
			if err != nil {
				result = err
			}
		}
		c.out.unclaim()
		if it.done != nil {
			it.done(result)
		}
		if err != nil {
			if c.ctx.Err() == nil {
				c.log.WithError(err).Debug("rpc: write failed, closing the connection")
			}
			c.close()
			c.out.shutdown()
			return
		}
	}
}

// write queues frame and waits until it is on the wire: the one-outstanding-packet
// rule of streams.
func (c *conn) write(ctx context.Context, frame []byte) error {
	return c.writeItem(ctx, outItem{buf: frame}, nil)
}

// writeItem queues it and waits until it is on the wire or ctx ends;
// release, if any, runs once the writer is done with the item, or at once if
// the connection is gone.
func (c *conn) writeItem(ctx context.Context, it outItem, release func()) error {
	ch := make(chan error, 1)
	it.done = func(err error) {
		if release != nil {
			release()
		}
		ch <- err
	}
	if !c.out.push(c, it) {
		return errConnClosed
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendEvent queues an event frame without waiting; it reports false when the
// client's event queue is full or the client is gone.
func (c *conn) sendEvent(frame []byte) bool {
	return c.out.push(c, outItem{buf: frame, event: true})
}

// startKeepalive begins server PINGs after the client asked for keepalive
// (SUPPORTS_FEATURE 10).
func (c *conn) startKeepalive() {
	if c.keepalive.Swap(true) {
		return
	}
	l := c.sv.getLimits()
	if l.KeepaliveInterval <= 0 || l.KeepaliveCount < 0 {
		return
	}
	go c.keepaliveLoop(l.KeepaliveInterval, l.KeepaliveCount)
}

func (c *conn) keepaliveLoop(interval time.Duration, count int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	sent := 0
	var lastPing int64
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		recv := c.lastRecv.Load()
		if recv > lastPing {
			// Any packet since our last PING answers it (libvirt resets its
			// countdown on every received packet).
			sent = 0
		}
		silence := time.Since(time.Unix(0, recv))
		if silence < interval {
			continue
		}
		if sent >= count {
			c.log.WithField("silence", silence.Round(time.Millisecond)).Warn("rpc: keepalive timeout, closing the connection")
			c.close()
			return
		}
		sent++
		lastPing = time.Now().UnixNano()
		c.out.push(c, outItem{buf: pingFrame})
	}
}
