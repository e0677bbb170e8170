// Package rpcconn is a client connection speaking libvirt's RPC framing: concurrent calls
// matched to replies by serial, data streams, async messages and automatic keepalive
// PONGs. The generated typed clients (gen/remote, gen/admin) call through it, and so do
// our tests and benchmark tools.
package rpcconn

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/virtstoraged-go/virtstoraged/gen/keepalive"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// ErrClosed is returned by calls and streams after the connection closed or broke.
var ErrClosed = errors.New("rpcconn: connection closed")

// streamChunk is the payload size of the STREAM packets Send writes: libvirt's C client
// uses the same (VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX).
const streamChunk = virnet.MessageLegacyPayloadMax

// Conn is one client connection. It is safe for concurrent use.
type Conn struct {
	nc  net.Conn
	wmu sync.Mutex // one frame at a time on the socket

	mu      sync.Mutex
	serial  uint32
	pending map[uint32]*call
	streams map[uint32]*Stream
	onMsg   func(prog uint32, proc int32, body []byte)
	err     error // why the connection ended; set once

	// The reading role (reader.go): one goroutine at a time reads frames,
	// a caller waiting for its reply or the background reader.
	reading  bool
	waiters  int           // callers waiting that could take the role
	wanted   bool          // a caller waited, or was answered, since the background reader took the role
	roleFree chan struct{} // closed when the role is released to waiters
	kick     chan struct{} // hands the role to the background reader at once
	activity uint64        // counts callers taking the role
	fr       frameReader   // used by the role's holder only
	bgFrames atomic.Uint64 // frames the background reader read (tests)

	// scrub zeroes every frame once handled, and frames are read without a
	// read buffer (DialScrubbed).
	scrub bool

	endOnce sync.Once
	done    chan struct{}
}

type call struct {
	ret      xdr.Message
	done     chan error
	answered atomic.Bool // set before done is sent to
}

// Dial connects to the UNIX socket at path.
func Dial(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("rpcconn: %w", err)
	}
	if uc, ok := nc.(*net.UnixConn); ok {
		// Room for a few 256 KiB upload packets (the default is 208 KiB), so
		// that the sender need not wait for each one to be read.
		_ = uc.SetWriteBuffer(1 << 20)
	}
	return New(nc), nil
}

// DialScrubbed connects like Dial, for a connection that carries secrets: its
// frames are read straight into one frame buffer, with no read buffer in
// front, and each frame is zeroed as soon as it was handled. A secret value in
// a reply then stays only in the decoded reply (DecodeOpaque copies), which
// its caller zeroes after use. It is meant for a few small calls, not streams.
func DialScrubbed(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("rpcconn: %w", err)
	}
	return newConn(nc, true), nil
}

// New starts a Conn over nc; the Conn owns nc from now on.
func New(nc net.Conn) *Conn { return newConn(nc, false) }

func newConn(nc net.Conn, scrub bool) *Conn {
	c := &Conn{
		nc:       nc,
		pending:  map[uint32]*call{},
		streams:  map[uint32]*Stream{},
		roleFree: make(chan struct{}),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		scrub:    scrub,
	}
	// Buffered: a frame is then one read system call, not one for the length
	// word and one for the rest. Not when scrubbing: the buffer would keep a
	// copy of what the frame held.
	c.fr.r = nc
	if !scrub {
		c.fr.r = bufio.NewReaderSize(nc, 64<<10)
	}
	go c.backgroundReader()
	return c
}

// OnMessage sets the handler of async MESSAGE packets other than keepalive (events). It
// runs on the goroutine reading the socket (which may be one waiting for a call's
// reply), so it must not block and must not wait for a call on this Conn; body is only
// valid during the call.
func (c *Conn) OnMessage(fn func(prog uint32, proc int32, body []byte)) {
	c.mu.Lock()
	c.onMsg = fn
	c.mu.Unlock()
}

// Done is closed when the connection is closed or broken.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection; pending calls and streams fail with ErrClosed.
func (c *Conn) Close() error {
	err := c.nc.Close()
	c.end(ErrClosed)
	<-c.done
	return err
}

func (c *Conn) nextSerial() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.serial++
	return c.serial
}

// Call sends a CALL and waits for its REPLY. args and ret may be nil for void. An error
// reply is returned as *virnet.Error.
func (c *Conn) Call(ctx context.Context, prog, vers uint32, proc int32, args, ret xdr.Message) error {
	serial := c.nextSerial()
	return c.call(ctx, prog, vers, proc, serial, args, ret)
}

// CallStream sends the CALL of a stream procedure (VOL_UPLOAD, VOL_DOWNLOAD) and, once
// the server replied OK, returns the stream it opened.
func (c *Conn) CallStream(ctx context.Context, prog, vers uint32, proc int32, args xdr.Message) (*Stream, error) {
	serial := c.nextSerial()
	st := &Stream{c: c, prog: prog, vers: vers, proc: proc, serial: serial, in: make(chan packet, 64)}
	// Registered before the call goes out: data may follow the reply at once.
	c.mu.Lock()
	c.streams[serial] = st
	c.mu.Unlock()
	if err := c.call(ctx, prog, vers, proc, serial, args, nil); err != nil {
		c.dropStream(serial)
		return nil, err
	}
	return st, nil
}

func (c *Conn) call(ctx context.Context, prog, vers uint32, proc int32, serial uint32, args, ret xdr.Message) error {
	cl := &call{ret: ret, done: make(chan error, 1)}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return ErrClosed
	}
	c.pending[serial] = cl
	c.mu.Unlock()
	err := c.write(virnet.MessageHeader{
		Prog: prog, Vers: vers, Proc: proc, Type: virnet.MessageTypeCall, Serial: serial, Status: virnet.MessageStatusOk,
	}, args, nil)
	if err != nil {
		c.forget(serial)
		return err
	}
	return c.await(ctx, serial, cl)
}

func (c *Conn) forget(serial uint32) {
	c.mu.Lock()
	delete(c.pending, serial)
	c.mu.Unlock()
}

func (c *Conn) dropStream(serial uint32) {
	c.mu.Lock()
	delete(c.streams, serial)
	c.mu.Unlock()
}

// write sends one frame: hdr, then body (XDR) or raw bytes.
func (c *Conn) write(hdr virnet.MessageHeader, body xdr.Message, raw []byte) error {
	if body == nil && len(raw) > 0 {
		return c.writeData(hdr, raw)
	}
	e := xdr.NewEncoder(make([]byte, 0, xdr.MinFrameLen+len(raw)+64))
	off := xdr.StartFrame(e)
	if err := hdr.Encode(e); err != nil {
		return err
	}
	if body != nil {
		if err := body.Encode(e); err != nil {
			return fmt.Errorf("rpcconn: encode: %w", err)
		}
	}
	e.EncodeRaw(raw)
	if err := xdr.FinishFrame(e, off, xdr.MaxFrameLen); err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(e.Bytes())
	return c.writeErr(err)
}

// writeErr words a failed write: ErrClosed once the connection is gone.
func (c *Conn) writeErr(err error) error {
	if err == nil {
		return nil
	}
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	return fmt.Errorf("rpcconn: write: %w", err)
}

// writeData sends a STREAM packet: the header, then the caller's bytes as
// they are (one writev), so that an upload neither copies nor allocates its
// data per packet.
func (c *Conn) writeData(hdr virnet.MessageHeader, raw []byte) error {
	if len(raw) > xdr.MaxFrameLen-xdr.MinFrameLen {
		return fmt.Errorf("rpcconn: stream packet of %d bytes over the frame limit", len(raw))
	}
	var head [xdr.MinFrameLen]byte
	e := xdr.NewEncoder(head[:0])
	off := xdr.StartFrame(e)
	if err := hdr.Encode(e); err != nil {
		return err
	}
	b := e.Bytes()
	binary.BigEndian.PutUint32(b[off:], uint32(len(b)+len(raw)))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	bufs := net.Buffers{b, raw}
	_, err := bufs.WriteTo(c.nc)
	return c.writeErr(err)
}

// end closes the connection for good once: calls still waiting get
// ErrClosed, streams fail, Done is closed.
func (c *Conn) end(err error) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		pending, streams := c.pending, c.streams
		c.pending, c.streams = map[uint32]*call{}, map[uint32]*Stream{}
		close(c.roleFree)
		c.mu.Unlock()
		for _, cl := range pending {
			cl.answer(ErrClosed)
		}
		for _, st := range streams {
			st.fail(ErrClosed)
		}
		c.nc.Close()
		close(c.done)
	})
}

// readOne reads one frame and hands it to whoever waits for it. Only the
// holder of the reading role calls it.
func (c *Conn) readOne() error {
	frame, err := c.fr.next()
	if err != nil {
		return err
	}
	kept := false
	if c.scrub {
		defer func() {
			if !kept {
				clear(frame)
			}
		}()
	}
	d := xdr.NewDecoder(frame)
	var hdr virnet.MessageHeader
	if err := hdr.Decode(d); err != nil {
		return err
	}
	switch hdr.Type {
	case virnet.MessageTypeReply, virnet.MessageTypeReplyWithFds:
		c.reply(hdr, d)
	case virnet.MessageTypeMessage:
		c.message(hdr, d)
	case virnet.MessageTypeStream, virnet.MessageTypeStreamHole:
		kept, err = c.stream(hdr, d, frame)
		if err != nil {
			return err
		}
		if kept {
			// The stream's reader owns frame now.
			c.fr.buf = getFrameBuf()
		}
	}
	return nil
}

func (c *Conn) reply(hdr virnet.MessageHeader, d *xdr.Decoder) {
	c.mu.Lock()
	cl := c.pending[hdr.Serial]
	delete(c.pending, hdr.Serial)
	if cl != nil {
		// Its caller is busy making calls, and may well have been answered
		// before it even began to wait: the background reader hands the role
		// back either way, so that the caller reads its next reply itself.
		c.wanted = true
	}
	c.mu.Unlock()
	if cl == nil {
		return // cancelled by its caller
	}
	if hdr.Type == virnet.MessageTypeReplyWithFds {
		// No storage procedure passes fds; skip the count so the body still decodes.
		if _, err := d.DecodeUint(); err != nil {
			cl.answer(err)
			return
		}
	}
	if hdr.Status != virnet.MessageStatusOk {
		cl.answer(decodeError(d))
		return
	}
	if cl.ret != nil {
		if err := cl.ret.Decode(d); err != nil {
			cl.answer(fmt.Errorf("rpcconn: decode reply of procedure %d: %w", hdr.Proc, err))
			return
		}
	}
	cl.answer(nil)
}

func decodeError(d *xdr.Decoder) error {
	e := new(virnet.Error)
	if err := e.Decode(d); err != nil {
		return fmt.Errorf("rpcconn: decode error reply: %w", err)
	}
	return e
}

func (c *Conn) message(hdr virnet.MessageHeader, d *xdr.Decoder) {
	if hdr.Prog == keepalive.Program {
		if keepalive.Procedure(hdr.Proc) == keepalive.ProcPing {
			// Answered from the reader so a connection busy with calls still looks alive.
			go c.write(virnet.MessageHeader{
				Prog: keepalive.Program, Vers: keepalive.ProtocolVersion, Proc: int32(keepalive.ProcPong),
				Type: virnet.MessageTypeMessage, Status: virnet.MessageStatusOk,
			}, nil, nil) //nolint:errcheck // a failed PONG surfaces as a broken connection
		}
		return
	}
	c.mu.Lock()
	fn := c.onMsg
	c.mu.Unlock()
	if fn != nil {
		fn(hdr.Prog, hdr.Proc, d.Rest())
	}
}

// stream hands a STREAM packet to its stream. A data packet keeps frame (its
// data points into it), and stream reports kept.
func (c *Conn) stream(hdr virnet.MessageHeader, d *xdr.Decoder, frame []byte) (kept bool, err error) {
	c.mu.Lock()
	st := c.streams[hdr.Serial]
	c.mu.Unlock()
	if st == nil {
		return false, nil // stream already finished or aborted
	}
	var p packet
	switch {
	case hdr.Type == virnet.MessageTypeStreamHole:
		var h virnet.StreamHole
		if err := h.Decode(d); err != nil {
			return false, err
		}
		p.hole = h.Length
	case hdr.Status == virnet.MessageStatusContinue:
		rest := d.Rest()
		if len(rest) == 0 {
			p.eof = true
		} else {
			p.data, p.frame, kept = rest, frame, true
		}
	case hdr.Status == virnet.MessageStatusOk:
		p.ok = true
		c.dropStream(hdr.Serial)
	default:
		p.err = decodeError(d)
		c.dropStream(hdr.Serial)
	}
	st.deliver(p)
	return kept, nil
}

// Frame buffers go from the reader to a download's consumer and, when it
// recycles them, back: a download then allocates nothing per packet.
var frameBufs = sync.Pool{New: func() any { return []byte(nil) }}

func getFrameBuf() []byte {
	return frameBufs.Get().([]byte)[:0]
}

func putFrameBuf(b []byte) {
	if cap(b) > 0 && cap(b) <= frameBufKeep {
		frameBufs.Put(b[:0])
	}
}

// frameBufKeep is the largest frame buffer worth keeping: a libvirt-sized
// stream packet, with room for the 4 MiB ones some clients use.
const frameBufKeep = 4<<20 + 64<<10

var _ io.Closer = (*Conn)(nil)
