package rpcconn

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// Who reads the socket.
//
// A caller waiting for its reply reads the socket itself when nobody else
// does, handing every other frame on as it goes, and stops at its own reply.
// A client making one call after another thus never waits for a hand-off
// from a reader goroutine: on this kind of machine such a wake-up costs more
// than the rest of the call.
//
// Between calls, a background goroutine reads (events, keepalive PINGs,
// download data): once no caller has taken the role for a grace period, it
// takes it and keeps it until a caller waits. A caller that has to wait for
// it is answered through its channel, as before.
//
// A caller reading with a context that ends sets a read deadline in the past
// to get out of a blocked read. The frame reader keeps what it has read of a
// frame across such an interruption, and whoever reads next carries on.

// readerGrace is how long callers must leave the role alone before the
// background goroutine takes it.
const readerGrace = 2 * time.Millisecond

// aLongTimeAgo is a deadline that has passed: it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

func (cl *call) answer(err error) {
	cl.answered.Store(true)
	cl.done <- err
}

// await waits for the reply of serial, reading the socket when nobody else is.
func (c *Conn) await(ctx context.Context, serial uint32, cl *call) error {
	for {
		if cl.answered.Load() {
			return <-cl.done
		}
		c.mu.Lock()
		if c.err == nil && !c.reading {
			c.reading = true
			c.activity++
			c.mu.Unlock()
			if err := c.readFor(ctx, cl); err != nil {
				c.releaseRole()
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					c.forget(serial)
					return err
				}
				c.end(err)
				return <-cl.done
			}
			c.releaseRole()
			continue
		}
		free := c.roleFree
		c.waiters++
		c.wanted = true
		c.mu.Unlock()
		select {
		case err := <-cl.done:
			c.unwait()
			return err
		case <-free:
			c.unwait()
		case <-ctx.Done():
			c.unwait()
			// The reply, if it ever comes, is dropped by the reader.
			c.forget(serial)
			return ctx.Err()
		}
	}
}

func (c *Conn) unwait() {
	c.mu.Lock()
	c.waiters--
	c.mu.Unlock()
}

// readFor reads frames until cl is answered. It returns ctx's error when ctx
// ends first, or the error that broke the connection.
func (c *Conn) readFor(ctx context.Context, cl *call) error {
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	for !cl.answered.Load() {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := c.readOne()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Ours or a stale one from an earlier reader's context.
			_ = c.nc.SetReadDeadline(time.Time{})
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// releaseRole gives the reading role up: to a waiting caller if any, else
// straight to the background reader when a stream is open (its data must
// keep flowing), else to whoever comes next.
func (c *Conn) releaseRole() {
	c.mu.Lock()
	c.reading = false
	c.handOnLocked()
	if c.waiters == 0 && len(c.streams) > 0 {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	c.mu.Unlock()
}

// handOnLocked wakes the callers waiting for the role; c.mu is held.
func (c *Conn) handOnLocked() {
	if c.waiters > 0 && c.err == nil {
		close(c.roleFree)
		c.roleFree = make(chan struct{})
	}
}

// backgroundReader reads whenever callers leave the socket alone, and ends
// the connection when reading fails.
func (c *Conn) backgroundReader() {
	seen, kicked := ^uint64(0), false
	// One timer for the connection's life: the grace wait runs every couple
	// of milliseconds while calls flow, too often to allocate one each time.
	grace := time.NewTimer(readerGrace)
	defer grace.Stop()
	for {
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			return
		}
		if c.reading || (c.activity != seen && !kicked) {
			seen = c.activity
			c.mu.Unlock()
			grace.Reset(readerGrace)
			select {
			case <-c.kick:
				kicked = true
			case <-grace.C:
				kicked = false
			}
			continue
		}
		c.reading, kicked = true, false
		c.wanted = c.waiters > 0
		c.mu.Unlock()
		if err := c.readUntilWanted(); err != nil {
			c.mu.Lock()
			c.reading = false
			c.mu.Unlock()
			c.end(err)
			return
		}
		// A caller wanted the role: leave it to callers for a grace period
		// rather than take it back before the caller even woke up.
		seen = ^uint64(0)
	}
}

// readUntilWanted reads until a caller waits for the role, then releases it.
func (c *Conn) readUntilWanted() error {
	for {
		err := c.readOne()
		c.bgFrames.Add(1)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			_ = c.nc.SetReadDeadline(time.Time{})
		} else if err != nil {
			return err
		}
		c.mu.Lock()
		// wanted, not waiters: the caller this frame answered may have
		// stopped waiting already, and it is the one to hand over to.
		if c.wanted {
			c.wanted = false
			c.reading = false
			c.handOnLocked()
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
	}
}

// frameReader reads length-prefixed frames and, unlike xdr.ReadFrame, keeps
// a partly read frame across a failed read, so that a read interrupted by a
// deadline can be carried on by the next reader.
type frameReader struct {
	r    io.Reader
	lw   [xdr.LenWordSize]byte
	nlw  int    // bytes of the length word read
	buf  []byte // the frame body, len = its size once the length is known
	have int    // bytes of buf filled
}

func (f *frameReader) next() ([]byte, error) {
	for f.nlw < len(f.lw) {
		n, err := f.r.Read(f.lw[f.nlw:])
		f.nlw += n
		if err != nil && f.nlw < len(f.lw) {
			return nil, err
		}
		if f.nlw == len(f.lw) {
			body, err := xdr.FrameBody(f.lw, xdr.MaxFrameLen)
			if err != nil {
				return nil, err
			}
			if cap(f.buf) >= body {
				f.buf = f.buf[:body]
			} else {
				f.buf = make([]byte, body)
			}
			f.have = 0
		}
	}
	for f.have < len(f.buf) {
		n, err := f.r.Read(f.buf[f.have:])
		f.have += n
		if err != nil && f.have < len(f.buf) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	f.nlw = 0
	return f.buf, nil
}
