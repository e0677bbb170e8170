package rpcconn

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
)

type packet struct {
	data  []byte
	frame []byte // the buffer data points into
	hole  int64
	eof   bool  // empty CONTINUE: end of download data
	ok    bool  // STREAM OK: the server confirmed finish or abort
	err   error // STREAM ERROR from the server, or ErrClosed
}

// Stream is the client side of the data stream a stream procedure opened. Send,
// SendHole, Finish and Abort may be called from one goroutine while another calls Recv.
// Incoming packets are buffered up to a limit; a download that is never read eventually
// stalls the connection's reader, as with libvirt's own client.
type Stream struct {
	c                *Conn
	prog, vers       uint32
	proc             int32
	serial           uint32
	in               chan packet
	closeOnce        sync.Once
	mu               sync.Mutex
	sawEOF, finished bool
	err              error
	last             []byte // frame buffer of the data Recv returned last
}

func (s *Stream) deliver(p packet) {
	s.in <- p
	if p.ok || p.err != nil {
		s.closeOnce.Do(func() { close(s.in) })
	}
}

// fail ends the stream without blocking: the buffer may be full of unread data. Only the
// reader goroutine calls it, after its last deliver.
func (s *Stream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.closeOnce.Do(func() { close(s.in) })
}

func (s *Stream) header(typ virnet.MessageType, status virnet.MessageStatus) virnet.MessageHeader {
	return virnet.MessageHeader{Prog: s.prog, Vers: s.vers, Proc: s.proc, Type: typ, Serial: s.serial, Status: status}
}

// Send uploads data, split into libvirt-sized STREAM packets.
func (s *Stream) Send(data []byte) error {
	for len(data) > 0 {
		n := min(len(data), streamChunk)
		if err := s.c.write(s.header(virnet.MessageTypeStream, virnet.MessageStatusContinue), nil, data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// SendHole uploads a hole of length bytes (sparse streams only).
func (s *Stream) SendHole(length int64) error {
	return s.c.write(s.header(virnet.MessageTypeStreamHole, virnet.MessageStatusContinue),
		&virnet.StreamHole{Length: length}, nil)
}

// Recv returns the next download packet: data, or (nil, hole) for a hole. It returns
// io.EOF at the end of the data, and the server's *virnet.Error if it failed the stream.
func (s *Stream) Recv() (data []byte, hole int64, err error) {
	s.mu.Lock()
	if s.sawEOF || s.err != nil {
		err := s.err
		s.mu.Unlock()
		if err == nil {
			err = io.EOF
		}
		return nil, 0, err
	}
	s.mu.Unlock()
	p, open := <-s.in
	switch {
	case !open:
		s.setEOF(nil)
		s.mu.Lock()
		err := s.err
		s.mu.Unlock()
		if err == nil {
			err = io.EOF
		}
		return nil, 0, err
	case p.ok:
		s.setEOF(nil)
		return nil, 0, io.EOF
	case p.err != nil:
		s.setEOF(p.err)
		return nil, 0, p.err
	case p.eof:
		s.setEOF(nil)
		return nil, 0, io.EOF
	}
	s.last = p.frame
	return p.data, p.hole, nil
}

// ReadAll receives the rest of a download and finishes the stream: the data
// with holes filled by zeros, as a non-sparse reader sees the volume. Errors of
// the stream and of its finish come back wrapped with which step failed.
func (s *Stream) ReadAll() ([]byte, error) {
	var all []byte
	for {
		data, hole, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return all, fmt.Errorf("download recv: %w", err)
		}
		if data == nil && hole > 0 {
			all = append(all, make([]byte, hole)...)
			continue
		}
		all = append(all, data...)
		s.Recycle()
	}
	if err := s.Finish(); err != nil {
		return all, fmt.Errorf("download finish: %w", err)
	}
	return all, nil
}

// Recycle gives back the buffer of the data the last Recv returned, which the
// caller must not use afterwards; the connection reuses it for a later
// packet. Calling it is optional (a caller that keeps the data does not), and
// it must not run concurrently with Recv.
func (s *Stream) Recycle() {
	if s.last != nil {
		putFrameBuf(s.last)
		s.last = nil
	}
}

func (s *Stream) setEOF(err error) {
	s.mu.Lock()
	s.sawEOF = true
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// Finish sends the client's STREAM OK and waits for the server's confirmation (nil) or
// error (*virnet.Error). Download data not read yet is discarded.
func (s *Stream) Finish() error {
	return s.end(virnet.MessageStatusOk)
}

// Abort sends an empty STREAM ERROR and waits for the server to confirm.
func (s *Stream) Abort() error {
	return s.end(virnet.MessageStatusError)
}

func (s *Stream) end(status virnet.MessageStatus) error {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return nil
	}
	s.finished = true
	pendingErr := s.err
	s.mu.Unlock()
	if pendingErr != nil {
		// The server already failed the stream; it will not answer a finish.
		return pendingErr
	}
	// Likewise when its error packet arrived but nobody called Recv.
	for drained := false; !drained; {
		select {
		case p, open := <-s.in:
			switch {
			case !open:
				return s.closedErr()
			case p.ok:
				return nil
			case p.err != nil:
				return p.err
			}
		default:
			drained = true
		}
	}
	if err := s.c.write(s.header(virnet.MessageTypeStream, status), nil, nil); err != nil {
		return err
	}
	for p := range s.in {
		switch {
		case p.ok:
			return nil
		case p.err != nil:
			return p.err
		}
	}
	return s.closedErr()
}

func (s *Stream) closedErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return ErrClosed
}
