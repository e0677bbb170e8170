package rpc

import (
	"encoding/binary"

	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// Message types and statuses of the libvirt RPC header (protocol.md §a).
const (
	typeCall         int32 = 0
	typeReply        int32 = 1
	typeMessage      int32 = 2
	typeStream       int32 = 3
	typeCallWithFDs  int32 = 4
	typeReplyWithFDs int32 = 5
	typeStreamHole   int32 = 6

	statusOK       int32 = 0
	statusError    int32 = 1
	statusContinue int32 = 2
)

// Program numbers this server speaks.
const (
	progRemote    uint32 = 0x20008086
	progKeepalive uint32 = 0x6b656570
	progAdmin     uint32 = 0x06900690

	keepalivePing int32 = 1
	keepalivePong int32 = 2
)

// header is the 24-byte message header that follows the length word.
type header struct {
	prog, vers uint32
	proc       int32
	typ        int32
	serial     uint32
	status     int32
}

func parseHeader(b []byte) header {
	return header{
		prog:   binary.BigEndian.Uint32(b[0:]),
		vers:   binary.BigEndian.Uint32(b[4:]),
		proc:   int32(binary.BigEndian.Uint32(b[8:])),
		typ:    int32(binary.BigEndian.Uint32(b[12:])),
		serial: binary.BigEndian.Uint32(b[16:]),
		status: int32(binary.BigEndian.Uint32(b[20:])),
	}
}

// startMessage appends the length placeholder and the header to buf and returns the
// encoder positioned at the payload; finishMessage patches the length.
func startMessage(buf []byte, h header) (*xdr.Encoder, int) {
	e := xdr.NewEncoder(buf)
	off := xdr.StartFrame(e)
	e.EncodeUint(h.prog)
	e.EncodeUint(h.vers)
	e.EncodeInt(h.proc)
	e.EncodeInt(h.typ)
	e.EncodeUint(h.serial)
	e.EncodeInt(h.status)
	return e, off
}

func finishMessage(e *xdr.Encoder, off int) ([]byte, error) {
	if err := xdr.FinishFrame(e, off, xdr.MaxFrameLen); err != nil {
		return nil, err
	}
	return e.Bytes(), nil
}

// encodeMessage builds a whole frame: header plus the XDR body (nil = empty).
func encodeMessage(h header, body xdr.Message) ([]byte, error) {
	e, off := startMessage(make([]byte, 0, 256), h)
	if body != nil {
		if err := body.Encode(e); err != nil {
			return nil, err
		}
	}
	return finishMessage(e, off)
}

// encodeRaw builds a frame whose payload is raw bytes (stream data).
func encodeRaw(h header, data []byte) ([]byte, error) {
	e, off := startMessage(make([]byte, 0, xdr.MinFrameLen+len(data)), h)
	e.EncodeRaw(data)
	return finishMessage(e, off)
}
