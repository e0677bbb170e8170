// Package xdr is the Go runtime behind the code generated from xdr/*.x: XDR (RFC 4506)
// primitives, libvirt RPC framing, dispatch metadata and the errors generated code returns.
//
// The Encoder and Decoder keep the method shape of github.com/davecgh/go-xdr/xdr2
// (EncodeInt, DecodeString, ...) but are our own: go-xdr's Encoder writes every primitive
// through an io.Writer, so its scratch array escapes and each primitive allocates. Here the
// Encoder appends to a caller-owned []byte and the Decoder walks a []byte with explicit
// bounds, so a message whose buffer has capacity encodes with zero allocations and a
// hostile length word can never trigger a large allocation. Decode errors are still
// go-xdr's *xdr2.UnmarshalError, so callers can errors.As on one type whichever codec
// produced them.
//
// This package must not import gen/: the generated packages import it.
package xdr
