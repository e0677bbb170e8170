// Package domain is the pure model of virtstoraged: pool and volume definitions,
// states and transitions, names, the capacity ledger, errors and events. It imports
// the standard library only and does no I/O.
package domain

import (
	"errors"
	"fmt"
)

// Kind classifies an error the way libvirt's virErrorNumber does, so that one
// table in adapters/rpc can map it to a wire code. The values are part of our own
// contract: never renumber them, only append.
type Kind int

// Error kinds. Each maps to one libvirt virErrorNumber (see KindCode).
const (
	KindInternal             Kind = iota + 1 // VIR_ERR_INTERNAL_ERROR 1
	KindNoSupport                            // VIR_ERR_NO_SUPPORT 3
	KindInvalidArg                           // VIR_ERR_INVALID_ARG 8
	KindOperationFailed                      // VIR_ERR_OPERATION_FAILED 9
	KindXMLError                             // VIR_ERR_XML_ERROR 27
	KindOperationDenied                      // VIR_ERR_OPERATION_DENIED 29
	KindXMLDetail                            // VIR_ERR_XML_DETAIL 35
	KindSystem                               // VIR_ERR_SYSTEM_ERROR 38
	KindNoStoragePool                        // VIR_ERR_NO_STORAGE_POOL 49
	KindNoStorageVol                         // VIR_ERR_NO_STORAGE_VOL 50
	KindOperationInvalid                     // VIR_ERR_OPERATION_INVALID 55
	KindConfigUnsupported                    // VIR_ERR_CONFIG_UNSUPPORTED 67
	KindArgumentUnsupported                  // VIR_ERR_ARGUMENT_UNSUPPORTED 74
	KindStorageProbeFailed                   // VIR_ERR_STORAGE_PROBE_FAILED 75
	KindStoragePoolBuilt                     // VIR_ERR_STORAGE_POOL_BUILT 76
	KindOverflow                             // VIR_ERR_OVERFLOW 82
	KindOperationUnsupported                 // VIR_ERR_OPERATION_UNSUPPORTED 84
	KindStorageVolExist                      // VIR_ERR_STORAGE_VOL_EXIST 90
	KindNoServer                             // VIR_ERR_NO_SERVER 95
	KindNoClient                             // VIR_ERR_NO_CLIENT 96
	KindRPC                                  // VIR_ERR_RPC 39
	KindNoConnect                            // VIR_ERR_NO_CONNECT 5
	KindInvalidStream                        // VIR_ERR_INVALID_STREAM 73
	KindXMLInvalidSchema                     // VIR_ERR_XML_INVALID_SCHEMA 92
	KindNoSecret                             // VIR_ERR_NO_SECRET 66
	kindEnd
)

// kindCodes holds libvirt's virErrorNumber and the message prefix libvirt puts in
// front of the detail for each kind ("%s" kinds have none).
var kindCodes = map[Kind]struct {
	code   int32
	prefix string
}{
	KindInternal:             {1, "internal error: "},
	KindNoSupport:            {3, "this function is not supported by the connection driver: "},
	KindInvalidArg:           {8, "invalid argument: "},
	KindOperationFailed:      {9, "operation failed: "},
	KindXMLError:             {27, "XML error: "},
	KindOperationDenied:      {29, "operation forbidden: "},
	KindXMLDetail:            {35, ""},
	KindSystem:               {38, ""},
	KindNoStoragePool:        {49, "Storage pool not found: "},
	KindNoStorageVol:         {50, "Storage volume not found: "},
	KindOperationInvalid:     {55, "Requested operation is not valid: "},
	KindConfigUnsupported:    {67, "unsupported configuration: "},
	KindArgumentUnsupported:  {74, "argument unsupported: "},
	KindStorageProbeFailed:   {75, "Storage pool probe failed: "},
	KindStoragePoolBuilt:     {76, "Storage pool already built: "},
	KindOverflow:             {82, "numerical overflow: "},
	KindOperationUnsupported: {84, "Operation not supported: "},
	KindStorageVolExist:      {90, ""},
	KindNoServer:             {95, "Server not found: "},
	KindNoClient:             {96, "Client not found: "},
	KindRPC:                  {39, ""},
	KindNoConnect:            {5, ""},
	KindInvalidStream:        {73, "invalid stream pointer in "},
	KindXMLInvalidSchema:     {92, ""},
	KindNoSecret:             {66, "Secret not found: "},
}

// Code returns libvirt's virErrorNumber for the kind.
func (k Kind) Code() int32 { return kindCodes[k].code }

// Prefix returns the text libvirt prepends to the detail for this kind.
func (k Kind) Prefix() string { return kindCodes[k].prefix }

// Kinds lists every defined kind, for exhaustive tests of mapping tables.
func Kinds() []Kind {
	ks := make([]Kind, 0, int(kindEnd)-1)
	for k := Kind(1); k < kindEnd; k++ {
		ks = append(ks, k)
	}
	return ks
}

// Error domains (virErrorDomain) used by the storage daemon.
const (
	FromNone    int32 = 0
	FromXML     int32 = 5
	FromRPC     int32 = 7
	FromStorage int32 = 18
	FromDomain  int32 = 20
	FromStreams int32 = 38
)

// Error is a domain error: a kind (the libvirt error number), the libvirt error
// domain, the detail text (the message without the kind's prefix), the libvirt API
// the failure belongs to and, for system errors, the errno.
type Error struct {
	Kind   Kind
	Domain int32  // virErrorDomain; 0 means FromStorage unless NoDomain is set
	Detail string // message without the kind prefix
	Op     string // libvirt API name, e.g. virStorageVolCreateXML (for logs)
	Errno  int32  // errno for system errors, 0 otherwise
	Err    error  // underlying cause, if any
	// Bare is set where libvirt prints the detail without the kind's prefix
	// (virCheckFlags: "unsupported flags (0x2) in function ...").
	Bare bool
	// NoDomain sends the error with domain 0 (VIR_FROM_NONE), as libvirt does for
	// its generic parsers ("unknown suffix", "value too large").
	NoDomain bool
}

// Error returns the full message exactly as libvirt prints it.
func (e *Error) Error() string {
	if e.Bare {
		return e.Detail
	}
	return e.Kind.Prefix() + e.Detail
}

// Unwrap exposes the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorDomain returns the libvirt error domain, defaulting to storage.
func (e *Error) ErrorDomain() int32 {
	if e.NoDomain {
		return FromNone
	}
	if e.Domain == 0 && e.Kind != KindNoConnect {
		return FromStorage
	}
	return e.Domain
}

// Errorf builds a storage-domain error of the given kind.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...)}
}

// SystemError builds a VIR_ERR_SYSTEM_ERROR error in libvirt's "<what>: <strerror>" form.
func SystemError(errno int32, cause error, format string, args ...any) *Error {
	detail := fmt.Sprintf(format, args...)
	if cause != nil {
		detail += ": " + cause.Error()
	}
	return &Error{Kind: KindSystem, Detail: detail, Errno: errno, Err: cause}
}

// KindOf returns the kind of err, or KindInternal when err is not a domain error.
func KindOf(err error) Kind {
	var de *Error
	if errors.As(err, &de) {
		return de.Kind
	}
	return KindInternal
}

// AsError converts any error into a domain error, wrapping foreign errors as
// internal errors so that every failure reaches the client with a code.
func AsError(err error) *Error {
	var de *Error
	if errors.As(err, &de) {
		return de
	}
	return &Error{Kind: KindInternal, Detail: err.Error(), Err: err}
}

// Common errors with libvirt's exact texts.

// ErrPoolNotFoundName is libvirt's error for an unknown pool name.
func ErrPoolNotFoundName(name string) *Error {
	return Errorf(KindNoStoragePool, "no storage pool with matching name '%s'", name)
}

// ErrPoolNotFoundUUID is libvirt's error for an unknown pool UUID.
func ErrPoolNotFoundUUID(u UUID) *Error {
	return Errorf(KindNoStoragePool, "no storage pool with matching uuid '%s'", u)
}

// ErrPoolNotActive is libvirt's error for an operation that needs a running pool.
func ErrPoolNotActive(name string) *Error {
	return Errorf(KindOperationInvalid, "storage pool '%s' is not active", name)
}

// ErrPoolActive is libvirt's error when starting or building a running pool.
func ErrPoolActive(name string) *Error {
	return Errorf(KindOperationInvalid, "storage pool '%s' is already active", name)
}

// ErrPoolStillActive is libvirt's error when deleting or undefining a running pool.
func ErrPoolStillActive(name string) *Error {
	return Errorf(KindOperationInvalid, "storage pool '%s' is still active", name)
}

// ErrUnsupportedFlags is libvirt's virCheckFlags error.
func ErrUnsupportedFlags(flags uint32, fn string) *Error {
	e := Errorf(KindInvalidArg, "unsupported flags (0x%x) in function %s", flags, fn)
	e.Bare = true
	return e
}

// ErrVolInUse is libvirt's error for a volume busy with a job.
func ErrVolInUse(name string) *Error {
	return Errorf(KindOperationInvalid, "volume '%s' is still in use.", name)
}

// ErrVolBuilding is libvirt's error for a volume still being created.
func ErrVolBuilding(name string) *Error {
	return Errorf(KindOperationInvalid, "volume '%s' is still being allocated.", name)
}
