package bench

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr/rpcconn"
)

// libvirt error numbers the cleanup code tolerates (virerror.h).
const (
	errNoStoragePool = 49
	errNoStorageVol  = 50
)

// Flags of the storage API that the scenarios pass (libvirt-storage.h).
const (
	volDownloadSparseStream = 1 // VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM
	volWipeAlgZero          = 0 // VIR_STORAGE_VOL_WIPE_ALG_ZERO
)

// Session is one open libvirt connection to a storage daemon.
type Session struct {
	*remote.Client
	conn *rpcconn.Conn
}

// Open connects the way libvirt's remote driver does: AUTH_LIST (only "none" is
// supported), then CONNECT_OPEN with the URI's name.
func Open(ctx context.Context, ep Endpoint) (*Session, error) {
	conn, err := rpcconn.Dial(ctx, ep.Socket)
	if err != nil {
		return nil, fmt.Errorf("bench: connect %s: %w", ep.Socket, err)
	}
	s := &Session{Client: remote.NewClient(conn), conn: conn}
	auth, err := s.AuthList(ctx)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("bench: auth list on %s: %w", ep.Socket, err)
	}
	if len(auth.Types) > 0 && !slices.Contains(auth.Types, remote.AuthNone) {
		conn.Close()
		return nil, fmt.Errorf("bench: %s wants authentication %v, only none is supported", ep.Socket, auth.Types)
	}
	if err := s.ConnectOpen(ctx, &remote.ConnectOpenArgs{Name: remote.OptString{ep.Name}}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("bench: open %s on %s: %w", ep.Name, ep.Socket, err)
	}
	return s, nil
}

// Close sends CONNECT_CLOSE and hangs up.
func (s *Session) Close(ctx context.Context) error {
	err := s.ConnectClose(ctx)
	if cerr := s.conn.Close(); err == nil && cerr != nil && !errors.Is(cerr, rpcconn.ErrClosed) {
		err = cerr
	}
	return err
}

// isCode reports whether err is a libvirt error reply with libvirt error number code.
func isCode(err error, code int32) bool {
	var ve *virnet.Error
	return errors.As(err, &ve) && ve.Code == code
}

// dropPool stops and undefines pool name if it exists, as a previous run that died may
// have left it.
func (s *Session) dropPool(ctx context.Context, name string) error {
	r, err := s.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: name})
	if isCode(err, errNoStoragePool) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bench: lookup pool %s: %w", name, err)
	}
	p := r.Pool
	act, err := s.StoragePoolIsActive(ctx, &remote.StoragePoolIsActiveArgs{Pool: p})
	if err != nil {
		return fmt.Errorf("bench: pool %s: %w", name, err)
	}
	pers, err := s.StoragePoolIsPersistent(ctx, &remote.StoragePoolIsPersistentArgs{Pool: p})
	if err != nil {
		return fmt.Errorf("bench: pool %s: %w", name, err)
	}
	if act.Active != 0 {
		if err := s.StoragePoolDestroy(ctx, &remote.StoragePoolDestroyArgs{Pool: p}); err != nil {
			return fmt.Errorf("bench: destroy pool %s: %w", name, err)
		}
	}
	if pers.Persistent != 0 {
		if err := s.StoragePoolUndefine(ctx, &remote.StoragePoolUndefineArgs{Pool: p}); err != nil {
			return fmt.Errorf("bench: undefine pool %s: %w", name, err)
		}
	}
	return nil
}

// createPool starts a transient dir pool over path.
func (s *Session) createPool(ctx context.Context, name, path string) (remote.StoragePool, error) {
	r, err := s.StoragePoolCreateXML(ctx, &remote.StoragePoolCreateXMLArgs{XML: poolXML(name, path)})
	if err != nil {
		return remote.StoragePool{}, fmt.Errorf("bench: create pool %s: %w", name, err)
	}
	return r.Pool, nil
}

func (s *Session) createVol(ctx context.Context, p remote.StoragePool, xml string) (remote.StorageVol, error) {
	r, err := s.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: p, XML: xml})
	if err != nil {
		return remote.StorageVol{}, err
	}
	return r.Vol, nil
}

func (s *Session) lookupVol(ctx context.Context, p remote.StoragePool, name string) (remote.StorageVol, error) {
	r, err := s.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: p, Name: name})
	if err != nil {
		return remote.StorageVol{}, fmt.Errorf("bench: lookup volume %s/%s: %w", p.Name, name, err)
	}
	return r.Vol, nil
}

// deleteVol deletes name from p if it is there.
func (s *Session) deleteVol(ctx context.Context, p remote.StoragePool, name string) error {
	r, err := s.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: p, Name: name})
	if isCode(err, errNoStorageVol) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bench: lookup volume %s/%s: %w", p.Name, name, err)
	}
	if err := s.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: r.Vol}); err != nil {
		return fmt.Errorf("bench: delete volume %s/%s: %w", p.Name, name, err)
	}
	return nil
}

func poolXML(name, path string) string {
	return fmt.Sprintf("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>",
		xmlEscape(name), xmlEscape(path))
}

func volXML(name string, capacity, allocation int64, format string) string {
	return fmt.Sprintf("<volume><name>%s</name><capacity unit='bytes'>%d</capacity>"+
		"<allocation unit='bytes'>%d</allocation><target><format type='%s'/></target></volume>",
		xmlEscape(name), capacity, allocation, format)
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) //nolint:errcheck // a strings.Builder never fails
	return b.String()
}
