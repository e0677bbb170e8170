package rpc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// libvirt error numbers and domains the RPC layer produces itself.
const (
	codeInternal  int32 = 1
	codeNoSupport int32 = 3
	codeNoConnect int32 = 5
	codeRPC       int32 = 39

	fromNone    int32 = 0
	fromRPC     int32 = 7
	fromStorage int32 = 18
	fromDomain  int32 = 20
	fromSecret  int32 = 30
	fromAdmin   int32 = 62

	levelError int32 = 2
)

// wireError is an error whose remote_error fields are already decided: the
// dispatch-level errors of protocol.md §b/§d whose domain a domain.Error cannot
// express (domain 0 with code 1, for one).
type wireError struct {
	code, domain int32
	prefix       string // libvirt's message prefix, "" for "%s" errors
	detail       string
	// noFormat sends the message alone, with no format, detail or errno
	// (libvirt's reply to a failure that reported no error).
	noFormat bool
}

func (e *wireError) Error() string { return e.prefix + e.detail }

func rpcError(format string, args ...any) error {
	return &wireError{code: codeRPC, domain: fromRPC, detail: fmt.Sprintf(format, args...)}
}

func internalError(domain int32, format string, args ...any) error {
	return &wireError{code: codeInternal, domain: domain, prefix: "internal error: ", detail: fmt.Sprintf(format, args...)}
}

// errorFields are the remote_error fields a client reads, in libvirt's terms.
type errorFields struct {
	Code, Domain int32
	Message      string // full text, always present
	Str1         string // the format: prefix + "%s"
	Str2         string // the detail
	Int1         int32  // errno or -1
	Int2         int32  // -1, 0 for an invalid argument
	NoFormat     bool   // str1 and str2 NULL, int1 and int2 0
}

// errorScope says which libvirt error domain a "not supported" reply uses: the
// generic connect APIs report VIR_FROM_DOMAIN (what libvirtd's storage:///system
// answers for virConnectGetVersion), storage APIs VIR_FROM_STORAGE, admin APIs
// VIR_FROM_ADMIN, and the secret APIs, which the storage daemon does not
// serve, VIR_FROM_SECRET (as libvirtd's storage:///system connection).
type errorScope int

const (
	scopeStorage errorScope = iota
	scopeConnect
	scopeAdmin
	scopeSecret
)

// mapError is the one table from any error to the remote_error a client gets.
func mapError(err error, scope errorScope) errorFields {
	var (
		we *wireError
		de *domain.Error
		ue *xdr.UnsupportedError
		xe *xdr.DecodeError
	)
	switch {
	case errors.As(err, &we):
		f := fields(we.code, we.domain, we.prefix+"%s", we.detail, -1)
		f.NoFormat = we.noFormat
		return f
	case errors.As(err, &xe):
		return fields(codeRPC, fromRPC, "%s", "Unable to decode message payload", -1)
	case errors.As(err, &ue):
		dom := fromStorage
		switch scope {
		case scopeConnect:
			dom = fromDomain
		case scopeSecret:
			dom = fromSecret
		case scopeAdmin:
			dom = fromAdmin
		}
		return fields(codeNoSupport, dom, domain.KindNoSupport.Format(), ue.API, -1)
	case errors.As(err, &de):
		format := de.Kind.Format()
		if de.Bare {
			format = "%s"
		}
		errno := int32(-1)
		if de.Errno != 0 {
			errno = de.Errno
		}
		code := de.Kind.Code()
		if code == 0 {
			code = codeInternal
		}
		f := fields(code, de.ErrorDomain(), format, de.Detail, errno)
		if de.ArgName != "" {
			// virReportInvalidArg: str1 the function, str2 the argument.
			f.Str1, f.Str2, f.Int1, f.Int2 = de.Op, de.ArgName, 0, 0
		}
		return f
	default:
		dom := fromStorage
		if scope == scopeAdmin {
			dom = fromAdmin
		} else if scope == scopeConnect || scope == scopeSecret {
			dom = fromRPC
		}
		return fields(codeInternal, dom, domain.KindInternal.Format(), err.Error(), -1)
	}
}

// fields fills remote_error as virRaiseErrorFull does: str1 is the message's
// format (one %s), str2 what goes into it.
func fields(code, dom int32, format, detail string, int1 int32) errorFields {
	return errorFields{
		Code:    code,
		Domain:  dom,
		Message: strings.Replace(format, "%s", detail, 1),
		Str1:    format,
		Str2:    detail,
		Int1:    int1,
		Int2:    -1,
	}
}

// maxErrorText keeps an error reply encodable: a message above the 4 MiB string
// limit (a lookup of a 4 MiB name echoes the name) would make the whole reply
// undecodable for the client, so it is cut to fit, "..." included. libvirtd
// closes the connection there instead; shorter texts go out whole, as there.
const maxErrorText = virnet.MessageStringMax - len("...")

func truncate(s string) string {
	if len(s) > maxErrorText {
		return s[:maxErrorText] + "..."
	}
	return s
}

// wire fills libvirt's remote_error: message and str1/str2 always present
// (go-libvirt cannot decode a NULL message), dom, str3 and net NULL.
func (f errorFields) wire() *virnet.Error {
	if f.NoFormat {
		return &virnet.Error{Code: f.Code, Domain: f.Domain, Message: virnet.OptString{truncate(f.Message)}, Level: levelError}
	}
	return &virnet.Error{
		Code:    f.Code,
		Domain:  f.Domain,
		Message: virnet.OptString{truncate(f.Message)},
		Level:   levelError,
		Str1:    virnet.OptString{truncate(f.Str1)},
		Str2:    virnet.OptString{truncate(f.Str2)},
		Int1:    f.Int1,
		Int2:    f.Int2,
	}
}
