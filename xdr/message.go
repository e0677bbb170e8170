package xdr

import (
	"context"
	"errors"
	"fmt"
)

// Message is implemented by every generated struct, union and typedef.
type Message interface {
	Encode(*Encoder) error
	Decode(*Decoder) error
}

// StreamDir says whether a procedure opens a data stream after its reply, and which way.
type StreamDir uint8

const (
	// StreamNone marks an ordinary call.
	StreamNone StreamDir = iota
	// StreamUpload marks a procedure after whose reply the client sends data.
	StreamUpload
	// StreamDownload marks a procedure after whose reply the server sends data.
	StreamDownload
)

// String returns "none", "upload" or "download".
func (s StreamDir) String() string {
	switch s {
	case StreamNone:
		return "none"
	case StreamUpload:
		return "upload"
	case StreamDownload:
		return "download"
	}
	return fmt.Sprintf("StreamDir(%d)", uint8(s))
}

// ProcInfo is one row of a generated dispatch table, built from the annotations of the
// procedure's enum member in the .x file.
type ProcInfo struct {
	Program, Version uint32
	Proc             int32
	// Name is the .x enum member, e.g. "REMOTE_PROC_STORAGE_POOL_DEFINE_XML".
	Name string
	// API is the libvirt API name used in error texts (@api), e.g. "virStoragePoolDefineXML".
	API string
	// ReadOnly: allowed on a read-only connection (@readonly).
	ReadOnly bool
	// Priority: may run on a priority worker (@priority high).
	Priority bool
	// Async: a message the server sends on its own, never dispatched as a call (@message).
	Async bool
	// Stream is the direction of the data stream the call opens (@stream).
	Stream StreamDir
	// NewArgs and NewRet return empty argument and return values, nil when void. For
	// an async @message procedure NewArgs returns its body (<p>_<name>_msg) and NewRet
	// is nil.
	NewArgs, NewRet func() Message
}

// ErrUnknownProcedure is returned by a generated Dispatch for a procedure number the
// program does not define (or one that is only ever sent as an async message).
var ErrUnknownProcedure = errors.New("xdr: unknown procedure")

// ErrNoReply is returned by a generated Dispatch when a handler of a procedure that has
// a return value returned neither a value nor an error: there would be nothing to send.
var ErrNoReply = errors.New("xdr: handler returned neither a value nor an error")

// ErrStreamAborted is returned by Stream.Recv when the client aborted the stream or hung up.
var ErrStreamAborted = errors.New("xdr: stream aborted by the client")

// DecodeError reports that a call's arguments could not be decoded; the server answers it
// with libvirt's "Unable to decode message payload".
type DecodeError struct {
	Proc int32
	Err  error
}

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("xdr: unable to decode arguments of procedure %d: %v", e.Proc, e.Err)
}

// Unwrap returns the underlying decoder error.
func (e *DecodeError) Unwrap() error { return e.Err }

// UnsupportedError is what the generated UnimplementedServer returns; the RPC layer maps
// it to VIR_ERR_NO_SUPPORT.
type UnsupportedError struct {
	// API is the libvirt API name, e.g. "virConnectGetVersion".
	API string
}

// Error returns libvirt's exact text, which clients show to users.
func (e *UnsupportedError) Error() string {
	return "this function is not supported by the connection driver: " + e.API
}

// Stream is the server's side of the data stream opened by a @stream procedure. The RPC
// layer implements it; the generated Server interface passes it to the handler.
type Stream interface {
	// Recv blocks for the client's next upload data, or (nil, holeLen) for a hole
	// on a sparse stream. Data may be part of a packet (a server need not hold a
	// whole packet) and is only valid until the next Recv or Close. It returns
	// io.EOF when the client finished, ErrStreamAborted when it aborted or hung up.
	Recv(ctx context.Context) (data []byte, holeLen int64, err error)
	// Send sends download data.
	Send(ctx context.Context, data []byte) error
	// SendHole sends a download hole (sparse streams only).
	SendHole(ctx context.Context, length int64) error
	// Close ends the stream: nil confirms EOF/finish, non-nil sends an error packet.
	Close(err error)
}
