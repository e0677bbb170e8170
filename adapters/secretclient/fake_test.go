package secretclient_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// fakeSecret is one secret the fake driver holds.
type fakeSecret struct {
	remote.Secret
	value    []byte
	hasValue bool
	private  bool
}

// fakeDriver is a secret driver speaking libvirt's protocol on a UNIX socket,
// with libvirt's answers (measured against libvirtd 9.0): enough of
// virtsecretd for the client's error paths, identity and reconnection,
// without root.
type fakeDriver struct {
	remote.UnimplementedServer

	path  string
	token string // the system token that unlocks private secrets

	mu       sync.Mutex
	secrets  []fakeSecret
	opens    int
	uris     []string
	idents   [][]remote.TypedParam
	elevated map[*fakeConn]bool
	ln       net.Listener
	conns    map[net.Conn]bool
}

type fakeConn struct {
	d  *fakeDriver
	nc net.Conn
}

func startFake(t *testing.T, secrets ...fakeSecret) *fakeDriver {
	t.Helper()
	d := &fakeDriver{path: filepath.Join(t.TempDir(), "virtsecretd-sock"), token: "0123456789abcdef0123456789abcdef",
		secrets: secrets, elevated: map[*fakeConn]bool{}, conns: map[net.Conn]bool{}}
	d.listen(t)
	t.Cleanup(d.stop)
	return d
}

func (d *fakeDriver) listen(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("unix", d.path)
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.ln = ln
	d.mu.Unlock()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			d.mu.Lock()
			d.conns[nc] = true
			d.mu.Unlock()
			go (&fakeConn{d: d, nc: nc}).serve()
		}
	}()
}

// stop closes the listener and every connection, as a daemon exiting.
func (d *fakeDriver) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ln != nil {
		d.ln.Close()
		d.ln = nil
	}
	for nc := range d.conns {
		nc.Close()
	}
	d.conns = map[net.Conn]bool{}
}

// restart is the daemon going away and coming back on the same socket.
func (d *fakeDriver) restart(t *testing.T) {
	d.stop()
	d.listen(t)
}

func (d *fakeDriver) counts() (opens int, idents [][]remote.TypedParam) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opens, append([][]remote.TypedParam(nil), d.idents...)
}

func (d *fakeDriver) openedURIs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.uris...)
}

func (c *fakeConn) serve() {
	defer c.nc.Close()
	srv := &fakeSession{fakeConn: c}
	for {
		body, err := xdr.ReadFrame(c.nc, nil, xdr.MaxFrameLen)
		if err != nil {
			return
		}
		dec := xdr.NewDecoder(body)
		var h virnet.MessageHeader
		if h.Decode(dec) != nil {
			return
		}
		ret, err := remote.Dispatch(context.Background(), srv, h.Proc, dec, nil)
		h.Type = virnet.MessageTypeReply
		e := xdr.NewEncoder(nil)
		off := xdr.StartFrame(e)
		if err != nil {
			h.Status = virnet.MessageStatusError
			_ = h.Encode(e)
			_ = wireError(err).Encode(e)
		} else {
			h.Status = virnet.MessageStatusOk
			_ = h.Encode(e)
			if ret != nil {
				_ = ret.Encode(e)
			}
		}
		_ = xdr.FinishFrame(e, off, xdr.MaxFrameLen)
		if _, err := c.nc.Write(e.Bytes()); err != nil {
			return
		}
	}
}

func wireError(err error) *virnet.Error {
	var de *domain.Error
	if !errors.As(err, &de) {
		de = domain.AsError(err)
	}
	msg := de.Error()
	return &virnet.Error{Code: de.Kind.Code(), Domain: de.ErrorDomain(), Message: virnet.OptString{msg}, Level: 2, Int1: -1, Int2: -1}
}

// fakeSession is the server side of one connection.
type fakeSession struct {
	remote.UnimplementedServer
	*fakeConn
}

func (s *fakeSession) AuthList(context.Context) (*remote.AuthListRet, error) {
	return &remote.AuthListRet{Types: []remote.AuthType{remote.AuthNone}}, nil
}

func (s *fakeSession) ConnectOpen(_ context.Context, a *remote.ConnectOpenArgs) error {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.opens++
	if len(a.Name) > 0 {
		s.d.uris = append(s.d.uris, a.Name[0])
	}
	return nil
}

func (s *fakeSession) ConnectClose(context.Context) error { return nil }

func (s *fakeSession) ConnectSetIdentity(_ context.Context, a *remote.ConnectSetIdentityArgs) error {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.idents = append(s.d.idents, a.Params)
	for _, p := range a.Params {
		if p.Field == "system.token" && p.Value.S == s.d.token {
			s.d.elevated[s.fakeConn] = true
		}
	}
	return nil
}

func (s *fakeSession) find(match func(fakeSecret) bool) (fakeSecret, bool) {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	for _, f := range s.d.secrets {
		if match(f) {
			return f, true
		}
	}
	return fakeSecret{}, false
}

func (s *fakeSession) SecretLookupByUUID(_ context.Context, a *remote.SecretLookupByUUIDArgs) (*remote.SecretLookupByUUIDRet, error) {
	f, ok := s.find(func(f fakeSecret) bool { return f.UUID == a.UUID })
	if !ok {
		return nil, domain.ErrNoSecret(domain.SecretByUUID(domain.UUID(a.UUID)))
	}
	return &remote.SecretLookupByUUIDRet{Secret: f.Secret}, nil
}

func (s *fakeSession) SecretLookupByUsage(_ context.Context, a *remote.SecretLookupByUsageArgs) (*remote.SecretLookupByUsageRet, error) {
	f, ok := s.find(func(f fakeSecret) bool { return f.UsageType == a.UsageType && f.UsageID == a.UsageID })
	if !ok {
		return nil, domain.ErrNoSecret(domain.SecretByUsage(a.UsageID))
	}
	return &remote.SecretLookupByUsageRet{Secret: f.Secret}, nil
}

func (s *fakeSession) SecretGetValue(_ context.Context, a *remote.SecretGetValueArgs) (*remote.SecretGetValueRet, error) {
	f, ok := s.find(func(f fakeSecret) bool { return f.UUID == a.Secret.UUID })
	if !ok {
		return nil, domain.ErrNoSecret(domain.SecretByUUID(domain.UUID(a.Secret.UUID)))
	}
	s.d.mu.Lock()
	elevated := s.d.elevated[s.fakeConn]
	s.d.mu.Unlock()
	if f.private && !elevated {
		return nil, &domain.Error{Kind: domain.KindInvalidSecret, Domain: domain.FromSecret, Detail: "secret is private"}
	}
	if !f.hasValue {
		return nil, &domain.Error{Kind: domain.KindNoSecret, Domain: domain.FromSecret,
			Detail: "secret '" + domain.UUID(f.UUID).String() + "' does not have a value"}
	}
	return &remote.SecretGetValueRet{Value: append([]byte(nil), f.value...)}, nil
}
