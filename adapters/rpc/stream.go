package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// packetKind is what a client stream packet means.
type packetKind int

const (
	pktData   packetKind = iota // STREAM CONTINUE
	pktHole                     // STREAM_HOLE CONTINUE
	pktFinish                   // STREAM OK
	pktAbort                    // STREAM ERROR
)

type packet struct {
	kind packetKind
	// data is a chunk of a data packet, in one of the connection's upload
	// buffers (see inflight.go).
	data      []byte
	holeLen   int64
	holeFlags uint32
	release   func() // frees the client's request slot a control packet holds
}

// stream is the server side of the data stream a VOL_UPLOAD or VOL_DOWNLOAD opens;
// it implements xdr.Stream for the handler. What the client sends is queued here
// by the reader: data in chunks, each in one of the connection's upload buffers
// until the handler has written it (the back-pressure on data, see
// inflight.go), and holes, finish and abort each holding one of the client's
// request slots until the handler takes it (libvirt's back-pressure); packets
// the handler sends go out one at a time.
type stream struct {
	c      *conn
	h      header // proc and serial of the opening call
	dir    xdr.StreamDir
	sparse bool

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	queue    []packet
	wake     chan struct{}
	started  bool
	onStart  func() // runs once the call's OK reply is on the wire
	onCancel func() // runs instead when the reply could not be sent
	aborted  bool   // client sent STREAM ERROR
	eofSent  bool   // download: empty CONTINUE sent, waiting for the client's finish
	closed   bool   // no more packets go out
	gone     bool   // unregistered

	// held is the chunk the handler's last Recv returned: the handler's
	// until its next Recv or Close, which give it back.
	held []byte
}

func (c *conn) openStream(h header, dir xdr.StreamDir) *stream {
	st := &stream{c: c, h: h, dir: dir, wake: make(chan struct{}, 1)}
	st.ctx, st.cancel = context.WithCancel(c.ctx)
	if dir == xdr.StreamUpload {
		c.chunks.beginUpload()
	}
	c.mu.Lock()
	if old := c.streams[h.serial]; old != nil {
		// A client reusing a live stream's serial loses the old stream: packets
		// could not be told apart any more.
		defer old.hangup()
	}
	c.streams[h.serial] = st
	c.mu.Unlock()
	return st
}

func (c *conn) lookupStream(serial uint32) *stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[serial]
}

// start hands the stream its pump: run after the OK reply is written, cancel when
// the reply never made it (the handler must then release what it opened).
func (st *stream) start(run, cancel func()) {
	st.mu.Lock()
	st.onStart, st.onCancel = run, cancel
	st.mu.Unlock()
}

// setSparse records that the call asked for a sparse stream (holes allowed).
func (st *stream) setSparse(v bool) {
	st.mu.Lock()
	st.sparse = v
	st.mu.Unlock()
}

// replied is called by the connection once the call's OK reply was written (or
// failed to be).
func (st *stream) replied(werr error) {
	st.mu.Lock()
	run, cancel := st.onStart, st.onCancel
	st.started = true
	st.mu.Unlock()
	if werr != nil {
		if cancel != nil {
			cancel()
		}
		st.unregister()
		return
	}
	if run != nil {
		go run()
		return
	}
	st.unregister()
}

// discard forgets a stream whose call failed.
func (st *stream) discard() { st.unregister() }

func (st *stream) unregister() {
	st.mu.Lock()
	if st.gone {
		st.mu.Unlock()
		return
	}
	st.gone = true
	st.closed = true
	q := st.queue
	st.queue = nil
	st.mu.Unlock()
	st.cancel()
	c := st.c
	for _, p := range q {
		if p.release != nil {
			p.release()
		}
		if p.data != nil {
			c.chunks.put(p.data)
		}
	}
	if st.dir == xdr.StreamUpload {
		c.chunks.endUpload()
	}
	c.mu.Lock()
	if c.streams[st.h.serial] == st {
		delete(c.streams, st.h.serial)
	}
	c.mu.Unlock()
}

// hangup ends the stream because the connection is gone.
func (st *stream) hangup() {
	st.cancel()
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// handleStream routes a client STREAM / STREAM_HOLE packet, whose payload of
// n bytes is still to be read, to its stream. Packets of unknown streams are
// dropped, as libvirt does.
func (c *conn) handleStream(h header, n int) readNext {
	st := c.lookupStream(h.serial)
	if st == nil || st.h.proc != h.proc || st.h.prog != h.prog {
		return c.skip(n)
	}
	var p packet
	switch {
	case h.typ == typeStreamHole && h.status == statusContinue:
		if n < 12 {
			c.log.WithField("serial", h.serial).Warn("rpc: short stream hole, closing the connection")
			return readStop
		}
		var b [12]byte
		if err := c.readFull(b[:]); err != nil {
			c.readFailed(err)
			return readStop
		}
		n -= len(b)
		p = packet{kind: pktHole, holeLen: int64(binary.BigEndian.Uint64(b[:])), holeFlags: binary.BigEndian.Uint32(b[8:])}
	case h.typ == typeStream && h.status == statusContinue:
		if st.dir == xdr.StreamDownload {
			// Data from the client on a download has no meaning.
			return c.skip(n)
		}
		return c.streamData(st, n)
	case h.typ == typeStream && h.status == statusOK:
		p = packet{kind: pktFinish}
	case h.typ == typeStream && h.status == statusError:
		p = packet{kind: pktAbort}
	default:
		return c.skip(n)
	}
	if next := c.skip(n); next != readOn {
		return next
	}
	if st.dir == xdr.StreamDownload {
		st.clientControl(p.kind)
		return readOn
	}
	release, err := c.requests.acquire(c.ctx, false)
	if err != nil {
		return readStop
	}
	p.release = release
	if !st.push(p) {
		release()
	}
	return readOn
}

// streamData reads an upload data packet's n-byte payload from the socket in
// chunks, each into one of the connection's upload buffers, and queues them
// for the stream's handler. When all the buffers are out, reading waits
// until the handler has written one. The rest of a packet whose stream has
// ended is skipped.
func (c *conn) streamData(st *stream, n int) readNext {
	for n > 0 {
		if !st.open() {
			return c.skip(n)
		}
		buf, err := c.chunks.get(c.ctx)
		if err != nil {
			return readStop
		}
		m := min(n, len(buf))
		if err := c.readFull(buf[:m]); err != nil {
			c.chunks.put(buf)
			c.readFailed(err)
			return readStop
		}
		// A client sending a big packet slowly is not silent: keepalive
		// must not cut it off before the packet ends.
		c.lastRecv.Store(time.Now().UnixNano())
		n -= m
		if !st.push(packet{kind: pktData, data: buf[:m]}) {
			c.chunks.put(buf)
		}
	}
	return readOn
}

// open reports whether the stream still takes packets.
func (st *stream) open() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return !st.gone && !st.closed
}

// push queues a packet for the handler; false when the stream takes no more.
func (st *stream) push(p packet) bool {
	st.mu.Lock()
	if st.gone || st.closed {
		st.mu.Unlock()
		return false
	}
	st.queue = append(st.queue, p)
	if p.kind == pktAbort {
		st.aborted = true
	}
	st.mu.Unlock()
	if p.kind == pktAbort {
		st.cancel()
	}
	select {
	case st.wake <- struct{}{}:
	default:
	}
	return true
}

func (st *stream) isSparse() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.sparse
}

// clientControl handles the client's finish or abort of a download.
func (st *stream) clientControl(k packetKind) {
	switch k {
	case pktFinish, pktAbort:
	default:
		return // data from the client on a download has no meaning
	}
	st.mu.Lock()
	if st.gone {
		st.mu.Unlock()
		return
	}
	if k == pktAbort {
		st.aborted = true
	}
	if st.eofSent || !st.started {
		// The pump is done (or never ran): confirm right here.
		st.closed = true
		st.mu.Unlock()
		st.sendStatus(statusOK, nil)
		st.unregister()
		return
	}
	// Still sending: the pump sees the cancelled context on its next Send and
	// confirms with STREAM OK from Close.
	st.aborted = true
	st.mu.Unlock()
	st.cancel()
}

// checkHole applies the checks of libvirt's virFDStreamSendHole to a hole a
// client sends. A length below zero would otherwise move the write position
// back over data already written (libvirt then truncates the file there).
// libvirt fails the stream on these too, though its error text is lost on
// the way ("Library function returned error but did not set virError").
func checkHole(p packet) error {
	const fn = "virFDStreamSendHole"
	if p.holeFlags != 0 {
		e := domain.ErrUnsupportedFlags(p.holeFlags, fn)
		e.Domain = domain.FromStreams
		return e
	}
	if p.holeLen <= 0 {
		e := domain.Errorf(domain.KindInvalidArg, "length in %s must be greater than zero", fn)
		e.Domain = domain.FromStreams
		return e
	}
	return nil
}

// giveBack returns the chunk the last Recv handed out.
func (st *stream) giveBack() {
	if st.held != nil {
		st.c.chunks.put(st.held)
		st.held = nil
	}
}

// Recv implements xdr.Stream for uploads. Data comes in chunks of at most
// uploadChunk bytes, a packet's data in order, and is valid until the next
// Recv or Close.
func (st *stream) Recv(ctx context.Context) ([]byte, int64, error) {
	st.giveBack()
	for {
		st.mu.Lock()
		if len(st.queue) > 0 {
			p := st.queue[0]
			st.queue[0] = packet{}
			st.queue = st.queue[1:]
			st.mu.Unlock()
			if p.release != nil {
				p.release()
			}
			switch p.kind {
			case pktData:
				st.held = p.data
				return p.data, 0, nil
			case pktHole:
				if !st.isSparse() {
					// libvirt drops a client that sends a hole on a non-sparse
					// stream. Checked here rather than by the reader: the
					// handler decides sparseness, possibly after the packet came.
					st.c.log.WithField("serial", st.h.serial).Warn("rpc: stream hole on a non-sparse stream, closing the connection")
					st.c.close()
					return nil, 0, xdr.ErrStreamAborted
				}
				if err := checkHole(p); err != nil {
					return nil, 0, err
				}
				return nil, p.holeLen, nil
			case pktFinish:
				return nil, 0, io.EOF
			default:
				return nil, 0, xdr.ErrStreamAborted
			}
		}
		closed := st.closed
		st.mu.Unlock()
		if closed {
			return nil, 0, xdr.ErrStreamAborted
		}
		select {
		case <-st.wake:
		case <-ctx.Done():
			return nil, 0, xdr.ErrStreamAborted
		case <-st.c.done:
			return nil, 0, xdr.ErrStreamAborted
		}
	}
}

// Send implements xdr.Stream for downloads: one data packet, written before it
// returns.
func (st *stream) Send(ctx context.Context, data []byte) error {
	h := st.h
	h.typ, h.status = typeStream, statusContinue
	frame, err := encodeRaw(h, data)
	if err != nil {
		return err
	}
	return st.send(ctx, frame)
}

// SendHole implements xdr.Stream for sparse downloads.
func (st *stream) SendHole(ctx context.Context, length int64) error {
	if !st.isSparse() {
		return errors.New("rpc: hole on a non-sparse stream")
	}
	h := st.h
	h.typ, h.status = typeStreamHole, statusContinue
	var b [12]byte
	binary.BigEndian.PutUint64(b[:], uint64(length))
	frame, err := encodeRaw(h, b[:])
	if err != nil {
		return err
	}
	return st.send(ctx, frame)
}

func (st *stream) send(ctx context.Context, frame []byte) error {
	return st.sendWith(ctx, func(ctx context.Context) error { return st.c.write(ctx, frame) })
}

func (st *stream) sendWith(ctx context.Context, write func(context.Context) error) error {
	st.mu.Lock()
	stop := st.aborted || st.closed
	st.mu.Unlock()
	if stop || st.ctx.Err() != nil {
		return xdr.ErrStreamAborted
	}
	if ctx != st.ctx { // the pumps pass the stream's own context: nothing to merge
		var cancel context.CancelFunc
		ctx, cancel = mergeCtx(ctx, st.ctx)
		defer cancel()
	}
	if err := write(ctx); err != nil {
		var fe *fileError
		if errors.As(err, &fe) {
			return err // the file's, not the stream's: see sendFileFrame
		}
		return xdr.ErrStreamAborted
	}
	return nil
}

// Close implements xdr.Stream. For an upload nil confirms the finish (STREAM OK);
// for a download nil sends the EOF packet and leaves the stream waiting for the
// client's finish, which some clients (go-libvirt) never send. A non-nil error
// sends STREAM ERROR, except after a client abort, which is confirmed with OK.
func (st *stream) Close(err error) {
	st.giveBack()
	st.mu.Lock()
	if st.gone || st.closed {
		st.mu.Unlock()
		st.unregister()
		return
	}
	aborted := st.aborted
	st.mu.Unlock()
	switch {
	case aborted:
		st.sendStatus(statusOK, nil)
	case err != nil && !errors.Is(err, xdr.ErrStreamAborted):
		st.sendStatus(statusError, err)
	case err != nil:
		// Aborted by a hang-up: nobody to tell.
	case st.dir == xdr.StreamDownload:
		h := st.h
		h.typ, h.status = typeStream, statusContinue
		frame, ferr := encodeRaw(h, nil)
		if ferr == nil && st.c.write(st.c.ctx, frame) == nil {
			st.mu.Lock()
			st.eofSent = true
			late := st.aborted
			st.mu.Unlock()
			if late {
				st.sendStatus(statusOK, nil)
				break
			}
			st.c.parkFinished(st)
			return
		}
	default:
		st.sendStatus(statusOK, nil)
	}
	st.unregister()
}

func (st *stream) sendStatus(status int32, err error) {
	h := st.h
	var frame []byte
	var ferr error
	if status == statusError {
		frame, ferr = encodeErrorFrame(h, typeStream, err, scopeStorage)
	} else {
		h.typ, h.status = typeStream, status
		frame, ferr = encodeMessage(h, nil)
	}
	if ferr != nil {
		st.c.log.WithError(ferr).Error("rpc: cannot encode stream status")
		return
	}
	st.mu.Lock()
	st.closed = true
	st.mu.Unlock()
	_ = st.c.write(st.c.ctx, frame)
}

// mergeCtx returns a context done when either a or b is.
func mergeCtx(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// maxParkedStreams bounds the downloads a connection keeps waiting for a finish
// that some clients (go-libvirt) never send; beyond it the oldest is forgotten, and
// a finish arriving for it later is ignored like any stray packet.
const maxParkedStreams = 16

func (c *conn) parkFinished(st *stream) {
	c.mu.Lock()
	c.parked = append(c.parked, st)
	var old *stream
	if len(c.parked) > maxParkedStreams {
		old = c.parked[0]
		c.parked[0] = nil
		c.parked = c.parked[1:]
	}
	c.mu.Unlock()
	if old != nil {
		old.unregister()
	}
}
