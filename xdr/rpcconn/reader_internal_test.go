package rpcconn

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// choppy hands out its data a few bytes at a time, with a deadline error
// between the pieces, as a socket read interrupted by deadlines does.
type choppy struct {
	data  []byte
	piece int
	fail  bool
}

func (c *choppy) Read(p []byte) (int, error) {
	if c.fail = !c.fail; c.fail {
		return 0, os.ErrDeadlineExceeded
	}
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.piece)], c.data)
	c.data = c.data[n:]
	return n, nil
}

func testFrame(body []byte) []byte {
	f := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	return append(f, body...)
}

func TestFrameReaderResumes(t *testing.T) {
	bodies := [][]byte{bytes.Repeat([]byte{1}, 24), bytes.Repeat([]byte{2}, 100), bytes.Repeat([]byte{3}, 31)}
	var stream []byte
	for _, b := range bodies {
		stream = append(stream, testFrame(b)...)
	}
	for _, piece := range []int{1, 3, 7, 1000} {
		fr := frameReader{r: &choppy{data: stream, piece: piece}}
		for i, want := range bodies {
			var got []byte
			for {
				b, err := fr.next()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				if err != nil {
					t.Fatalf("piece %d, frame %d: %v", piece, i, err)
				}
				got = b
				break
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("piece %d, frame %d: got %d bytes %v..., want %d bytes of %d", piece, i, len(got), got[:min(4, len(got))], len(want), want[0])
			}
		}
	}
}

func TestFrameReaderRejectsBadLength(t *testing.T) {
	for _, n := range []uint32{0, 27, 33554432 + 5} {
		fr := frameReader{r: bytes.NewReader(binary.BigEndian.AppendUint32(nil, n))}
		if _, err := fr.next(); err == nil {
			t.Errorf("length %d accepted", n)
		}
	}
}

func TestFrameReaderTruncated(t *testing.T) {
	fr := frameReader{r: bytes.NewReader(testFrame(make([]byte, 40))[:20])}
	if _, err := fr.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated frame: %v, want ErrUnexpectedEOF", err)
	}
}

// gen/remote imports this package, so its constants are spelled out here.
const (
	remoteProgram      = 0x20008086
	procConnectGetType = 3
)

// TestCallersReadTheirReplies checks that, once calls follow one another,
// callers read their own replies instead of waiting for the background
// reader to hand them over (which is what makes a lockstep client fast).
func TestCallersReadTheirReplies(t *testing.T) {
	a, b := net.Pipe()
	c := New(a)
	t.Cleanup(func() { c.Close() })
	go echoReplies(b)
	ctx := context.Background()
	for round := range 3 {
		// Idle: the background reader takes the role.
		time.Sleep(10 * readerGrace)
		before := c.bgFrames.Load()
		for range 200 {
			if err := c.Call(ctx, remoteProgram, 1, procConnectGetType, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		// The first reply after the idle spell comes through the background
		// reader, and one more each time the caller is descheduled for a
		// grace period (a loaded machine); without the hand-back it is all.
		if n := c.bgFrames.Load() - before; n > 100 {
			t.Errorf("round %d: the background reader read %d of 200 replies", round, n)
		}
	}
}

// echoReplies answers every CALL read from nc with an empty OK reply.
func echoReplies(nc net.Conn) {
	for {
		b, err := xdr.ReadFrame(nc, nil, xdr.MaxFrameLen)
		if err != nil {
			return
		}
		var h virnet.MessageHeader
		if h.Decode(xdr.NewDecoder(b)) != nil {
			return
		}
		h.Type, h.Status = virnet.MessageTypeReply, virnet.MessageStatusOk
		e := xdr.NewEncoder(nil)
		off := xdr.StartFrame(e)
		_ = h.Encode(e)
		_ = xdr.FinishFrame(e, off, xdr.MaxFrameLen)
		if _, err := nc.Write(e.Bytes()); err != nil {
			return
		}
	}
}

// TestStressCallsCancelsAndEvents runs many callers on one connection, some
// with contexts that end before their reply, against a server that answers
// out of order, splits frames into pieces and sends events in between. Every
// call that succeeds must get its own reply, and events must keep coming.
func TestStressCallsCancelsAndEvents(t *testing.T) {
	a, b := net.Pipe()
	c := New(a)
	t.Cleanup(func() { c.Close() })
	var events atomic.Int64
	c.OnMessage(func(prog uint32, proc int32, body []byte) { events.Add(1) })
	go choppyServer(b)

	const callers, calls = 8, 150
	var wg sync.WaitGroup
	var ok, cancelled atomic.Int64
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if (g+i)%5 == 0 {
					ctx, cancel = context.WithTimeout(context.Background(), time.Duration(i%3)*time.Millisecond)
				}
				token := uint32(g*calls + i + 1)
				var ret echo
				err := c.Call(ctx, remoteProgram, 1, procConnectGetType, &echo{token}, &ret)
				cancel()
				switch {
				case err == nil:
					ok.Add(1)
					if ret.v != token {
						t.Errorf("call %d got the reply of call %d", token, ret.v)
					}
				case errors.Is(err, context.DeadlineExceeded):
					cancelled.Add(1)
				default:
					t.Errorf("call: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() == 0 {
		t.Fatal("no call succeeded")
	}
	if events.Load() == 0 {
		t.Error("no event was delivered")
	}
	t.Logf("%d calls answered, %d cancelled, %d events", ok.Load(), cancelled.Load(), events.Load())
}

// echo is a one-word body: the token a call sends and its reply echoes.
type echo struct{ v uint32 }

func (m *echo) Encode(e *xdr.Encoder) error { e.EncodeUint(m.v); return nil }

func (m *echo) Decode(d *xdr.Decoder) error {
	v, err := d.DecodeUint()
	m.v = v
	return err
}

// choppyServer echoes each call's token, answering calls in pairs in reverse
// order (a lone call after a millisecond), writes every frame in three
// pieces, and sends an event after each batch.
func choppyServer(nc net.Conn) {
	type held struct {
		h     virnet.MessageHeader
		token uint32
	}
	in := make(chan held)
	go func() {
		defer close(in)
		for {
			b, err := xdr.ReadFrame(nc, nil, xdr.MaxFrameLen)
			if err != nil {
				return
			}
			d := xdr.NewDecoder(b)
			var m held
			if m.h.Decode(d) != nil {
				return
			}
			m.token, _ = d.DecodeUint()
			in <- m
		}
	}()
	frame := func(h virnet.MessageHeader, body *uint32) []byte {
		e := xdr.NewEncoder(nil)
		off := xdr.StartFrame(e)
		_ = h.Encode(e)
		if body != nil {
			e.EncodeUint(*body)
		}
		_ = xdr.FinishFrame(e, off, xdr.MaxFrameLen)
		return e.Bytes()
	}
	send := func(b []byte) bool {
		for _, piece := range [][]byte{b[:3], b[3:17], b[17:]} {
			if _, err := nc.Write(piece); err != nil {
				return false
			}
		}
		return true
	}
	var batch []held
	flush := func() bool {
		for i := len(batch) - 1; i >= 0; i-- {
			r := batch[i].h
			r.Type, r.Status = virnet.MessageTypeReply, virnet.MessageStatusOk
			if !send(frame(r, &batch[i].token)) {
				return false
			}
		}
		batch = batch[:0]
		return send(frame(virnet.MessageHeader{Prog: remoteProgram, Vers: 1, Proc: 370, Type: virnet.MessageTypeMessage}, nil))
	}
	for {
		var timeout <-chan time.Time
		if len(batch) > 0 {
			timeout = time.After(time.Millisecond)
		}
		select {
		case m, open := <-in:
			if !open {
				return
			}
			batch = append(batch, m)
			if len(batch) == 2 && !flush() {
				return
			}
		case <-timeout:
			if !flush() {
				return
			}
		}
	}
}

// opaqueRet is a reply body holding one variable-length opaque, as
// SECRET_GET_VALUE's.
type opaqueRet struct{ value []byte }

func (o *opaqueRet) Encode(e *xdr.Encoder) error { e.EncodeOpaque(o.value); return nil }
func (o *opaqueRet) Decode(d *xdr.Decoder) error {
	v, err := d.DecodeOpaque(1 << 16)
	o.value = v
	return err
}

// replyOpaque answers one CALL read from nc with value as an opaque body.
func replyOpaque(nc net.Conn, value []byte) {
	b, err := xdr.ReadFrame(nc, nil, xdr.MaxFrameLen)
	if err != nil {
		return
	}
	var h virnet.MessageHeader
	if h.Decode(xdr.NewDecoder(b)) != nil {
		return
	}
	h.Type, h.Status = virnet.MessageTypeReply, virnet.MessageStatusOk
	e := xdr.NewEncoder(nil)
	off := xdr.StartFrame(e)
	_ = h.Encode(e)
	e.EncodeOpaque(value)
	_ = xdr.FinishFrame(e, off, xdr.MaxFrameLen)
	_, _ = nc.Write(e.Bytes())
}

// TestScrubbedConnKeepsNoCopy: after a call on a scrubbing connection
// returns, the secret the reply carried is in the decoded reply only, not in
// the connection's frame buffer; a plain connection keeps it there (which is
// what the test would miss if the check were broken).
func TestScrubbedConnKeepsNoCopy(t *testing.T) {
	secret := []byte("correct horse battery staple")
	for _, scrub := range []bool{false, true} {
		a, b := net.Pipe()
		c := newConn(a, scrub)
		go replyOpaque(b, secret)
		var ret opaqueRet
		if err := c.Call(context.Background(), remoteProgram, 1, procConnectGetType, nil, &ret); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ret.value, secret) {
			t.Fatalf("scrub %v: decoded %q", scrub, ret.value)
		}
		// Nothing more arrives: the background reader, if it took the role,
		// waits on the length word and leaves the frame buffer alone.
		kept := bytes.Contains(c.fr.buf[:cap(c.fr.buf)], secret)
		if kept == scrub {
			t.Errorf("scrub %v: secret left in the frame buffer: %v", scrub, kept)
		}
		c.Close()
		b.Close()
	}
}
