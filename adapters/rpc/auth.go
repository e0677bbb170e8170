package rpc

import (
	"context"
	"fmt"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// AuthMode is how the clients of a socket authenticate (auth_unix_rw,
// auth_unix_ro).
type AuthMode int

const (
	// AuthNone lets every client that can open the socket in.
	AuthNone AuthMode = iota
	// AuthPolkit asks polkit about each client before it may do anything but
	// authenticate (root is let through at AUTH_LIST, as libvirt does).
	AuthPolkit
)

// String returns the config file's word for the mode.
func (m AuthMode) String() string {
	switch m {
	case AuthNone:
		return "none"
	case AuthPolkit:
		return "polkit"
	}
	return fmt.Sprintf("AuthMode(%d)", int(m))
}

// Authorizer asks polkit whether the process pid, running as uid, may do
// action (adapters/polkit). nil means yes; an error goes to the client as it
// is, so it carries libvirt's code and text ("authentication failed: access
// denied by policy").
type Authorizer interface {
	CheckAuthorization(ctx context.Context, action string, pid int32, uid uint32) error
}

// The polkit actions of libvirt's daemons: read-write and read-only use.
const (
	actionManage  = "org.libvirt.unix.manage"
	actionMonitor = "org.libvirt.unix.monitor"
)

var (
	// errAuthRequired answers any call but the authentication ones before the
	// client has authenticated. libvirt uses VIR_ERR_RPC rather than
	// VIR_ERR_AUTH_FAILED there, for clients older than that code.
	errAuthRequired = rpcError("authentication required")

	// errNoVirError is libvirt's answer when a procedure fails without saying
	// why (virNetMessageSaveError's fallback): what AUTH_POLKIT gets from a
	// client that has no polkit check to pass. (libvirtd sends instead any
	// error its worker thread still holds from an earlier call, when it has
	// one; the fallback is the deterministic part of that.)
	errNoVirError = &wireError{code: codeInternal, domain: fromRPC, detail: "Library function returned error but did not set virError", noFormat: true}

	// errSASLFailed is every SASL call's answer: the daemon serves no SASL.
	errSASLFailed = &domain.Error{Kind: domain.KindAuthFailed, Domain: fromRPC, Detail: "authentication failed"}
)

// authProc tells the procedures a client may call before it has
// authenticated.
func authProc(proc int32) bool {
	switch remote.Procedure(proc) {
	case remote.ProcAuthList, remote.ProcAuthSaslInit, remote.ProcAuthSaslStart,
		remote.ProcAuthSaslStep, remote.ProcAuthPolkit:
		return true
	}
	return false
}

// checkAuth refuses every call but the authentication ones while the client
// still has to authenticate; it runs before the arguments are decoded.
func (r *remoteProgram) checkAuth(info *xdr.ProcInfo) error {
	if authProc(info.Proc) || !r.authPending() {
		return nil
	}
	return errAuthRequired
}

func (r *remoteProgram) authPending() bool {
	return r.pendingAuth.Load()
}

// authenticated marks the client as through, once: it no longer counts among
// the server's unauthenticated clients.
func (r *remoteProgram) authenticated() {
	if r.pendingAuth.CompareAndSwap(true, false) {
		r.c.sv.unauth.Add(-1)
	}
}

// AuthList answers the authentication the client must go through: polkit
// where the socket asks for it, except for root, who is let through here so
// that a missing or broken polkit never locks root out (as libvirt does).
func (r *remoteProgram) AuthList(context.Context) (*remote.AuthListRet, error) {
	if r.authPending() && r.c.credErr == nil && r.c.uid == 0 {
		r.c.log.Infof("rpc: polkit bypassed for privileged client pid:%d,uid:0", r.c.pid)
		r.authenticated()
	}
	t := remote.AuthNone
	if r.authPending() {
		t = remote.AuthPolkit
	}
	return &remote.AuthListRet{Types: []remote.AuthType{t}}, nil
}

// AuthPolkit asks polkit whether the client's process may manage storage
// (org.libvirt.unix.manage), or only look at it on the read-only socket
// (org.libvirt.unix.monitor). A refusal leaves the client unauthenticated,
// free to try again.
func (r *remoteProgram) AuthPolkit(ctx context.Context) (*remote.AuthPolkitRet, error) {
	if !r.authPending() {
		r.c.log.Error("rpc: client tried invalid PolicyKit init request")
		return nil, errNoVirError
	}
	if r.c.credErr != nil {
		return nil, &domain.Error{Kind: domain.KindSystem, Domain: fromRPC, Detail: "Failed to get client socket identity: " + r.c.credErr.Error(), Err: r.c.credErr}
	}
	action := actionManage
	if r.c.kind == ListenRO {
		action = actionMonitor
	}
	log := r.c.log.WithField("action", action)
	log.Infof("rpc: checking PID %d running as %d", r.c.pid, r.c.uid)
	if err := r.c.srv.cfg.Polkit.CheckAuthorization(ctx, action, r.c.pid, uint32(r.c.uid)); err != nil {
		log.WithError(err).Infof("rpc: polkit refused action %s to pid %d, uid %d", action, r.c.pid, r.c.uid)
		return nil, err
	}
	log.Infof("rpc: policy allowed action %s from pid %d, uid %d", action, r.c.pid, r.c.uid)
	r.authenticated()
	return &remote.AuthPolkitRet{Complete: 1}, nil
}

// AuthSaslInit fails: SASL is not served (a config asking for it is refused
// at start), so no client ever has a SASL exchange to begin.
func (r *remoteProgram) AuthSaslInit(context.Context) (*remote.AuthSaslInitRet, error) {
	return nil, errSASLFailed
}

// AuthSaslStart fails as AuthSaslInit does.
func (r *remoteProgram) AuthSaslStart(context.Context, *remote.AuthSaslStartArgs) (*remote.AuthSaslStartRet, error) {
	return nil, errSASLFailed
}

// AuthSaslStep fails as AuthSaslInit does.
func (r *remoteProgram) AuthSaslStep(context.Context, *remote.AuthSaslStepArgs) (*remote.AuthSaslStepRet, error) {
	return nil, errSASLFailed
}

// authFor is the authentication of a listener's clients.
func (s *Server) authFor(kind ListenerKind) AuthMode {
	switch kind {
	case ListenRW:
		return s.cfg.AuthRW
	case ListenRO:
		return s.cfg.AuthRO
	}
	return AuthNone
}

// checkAuthConfig refuses a polkit socket without an Authorizer.
func checkAuthConfig(cfg Config) error {
	for _, m := range []AuthMode{cfg.AuthRW, cfg.AuthRO} {
		switch m {
		case AuthNone:
		case AuthPolkit:
			if cfg.Polkit == nil {
				return fmt.Errorf("rpc: polkit authentication without an Authorizer")
			}
		default:
			return fmt.Errorf("rpc: unknown authentication %v", m)
		}
	}
	return nil
}
