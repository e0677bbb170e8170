package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/ports"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// Connection feature numbers (virDrvFeature) CONNECT_SUPPORTS_FEATURE answers 1 to.
const (
	featureFDPassing           int32 = 8
	featureProgramKeepalive    int32 = 10
	featureRemoteEventCallback int32 = 14
	featureRemoteCloseCallback int32 = 15
)

// connectOpenReadOnly is VIR_CONNECT_RO.
const connectOpenReadOnly uint32 = 1

// downloadChunk is the payload size of download data packets. libvirtd sends
// 262120 bytes (VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX), but clients accept any
// size up to the 32 MiB message limit, and fewer, larger packets cost fewer
// system calls on both sides.
const downloadChunk = 1 << 20

// remoteProgram serves the REMOTE program for one connection: the connection
// state (open, read-only, URI) and every procedure, mapped to ports.StorageAPI.
type remoteProgram struct {
	remote.UnimplementedServer

	c   *conn
	api ports.StorageAPI

	// pendingAuth is set while the client must still authenticate (polkit).
	pendingAuth atomic.Bool

	mu       sync.Mutex
	opened   bool
	readonly bool
	uri      string
}

var _ remote.Server = (*remoteProgram)(nil)

func newRemoteProgram(c *conn) *remoteProgram {
	r := &remoteProgram{c: c, api: c.srv.api, readonly: c.kind == ListenRO}
	r.pendingAuth.Store(c.srv.authFor(c.kind) == AuthPolkit)
	return r
}

func (r *remoteProgram) lookup(proc int32) *xdr.ProcInfo { return remote.Lookup(proc) }

func (r *remoteProgram) dispatch(ctx context.Context, proc int32, dec *xdr.Decoder, st xdr.Stream) (xdr.Message, error) {
	return remote.Dispatch(ctx, r, proc, dec, st)
}

// isStorageProc tells the storage driver's procedures from the generic connect
// ones; libvirt words "not open" and "not supported" errors differently for each.
func isStorageProc(info *xdr.ProcInfo) bool {
	return strings.Contains(info.Name, "STORAGE")
}

// isSecretProc tells the secret driver's procedures, which the daemon only
// calls as a client of virtsecretd (and refuses as libvirtd's storage
// connection does, in the secret error domain).
func isSecretProc(info *xdr.ProcInfo) bool {
	return strings.Contains(info.Name, "SECRET")
}

func (r *remoteProgram) scope(info *xdr.ProcInfo) errorScope {
	switch {
	case isStorageProc(info):
		return scopeStorage
	case isSecretProc(info):
		return scopeSecret
	}
	return scopeConnect
}

func (r *remoteProgram) check(info *xdr.ProcInfo) error {
	if err := r.checkAuth(info); err != nil || authProc(info.Proc) {
		return err
	}
	switch remote.Procedure(info.Proc) {
	case remote.ProcConnectOpen, remote.ProcConnectClose, remote.ProcAuthList,
		remote.ProcConnectSupportsFeature, remote.ProcConnectSetIdentity:
		return nil
	}
	r.mu.Lock()
	opened, ro := r.opened, r.readonly
	r.mu.Unlock()
	if !opened {
		if isStorageProc(info) {
			return internalError(fromRPC, "connection not open")
		}
		return errHypervisorNotOpen
	}
	if ro && !info.ReadOnly {
		e := &domain.Error{Kind: domain.KindOperationDenied, Detail: "read only access prevents " + info.API, Op: info.API}
		if isSecretProc(info) {
			e.Domain = fromSecret
		}
		return e
	}
	return nil
}

var errHypervisorNotOpen = internalError(fromRPC, "hypervisor connection not open")

func (r *remoteProgram) isOpen() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opened
}

// ---------------------------------------------------------------- connect

// ConnectOpen accepts the storage driver's URI for the daemon's mode, with
// libvirt's errors for anything else.
func (r *remoteProgram) ConnectOpen(_ context.Context, args *remote.ConnectOpenArgs) error {
	name := ""
	if len(args.Name) > 0 {
		name = args.Name[0]
	}
	uri, err := r.resolveURI(name)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.opened {
		return internalError(fromRPC, "connection already open")
	}
	r.opened = true
	r.uri = uri
	if args.Flags&connectOpenReadOnly != 0 {
		r.readonly = true
	}
	r.c.log.WithField("uri", uri).WithField("readonly", r.readonly).Debug("rpc: connection opened")
	return nil
}

func (r *remoteProgram) resolveURI(name string) (string, error) {
	want := "/session"
	if r.c.srv.cfg.Privileged {
		want = "/system"
	}
	if name == "" {
		return "storage://" + want, nil
	}
	u, err := url.Parse(name)
	if err != nil || u.Scheme != "storage" {
		return "", &wireError{code: codeNoConnect, domain: fromNone, detail: "no connection driver available for " + name}
	}
	if u.Path != want {
		return "", &wireError{code: codeInternal, domain: fromNone, prefix: "internal error: ",
			detail: fmt.Sprintf("unexpected storage URI path '%s', try storage://%s", u.Path, want)}
	}
	return "storage://" + want, nil
}

// ConnectClose confirms; the connection hangs up once the reply is written.
func (r *remoteProgram) ConnectClose(context.Context) error { return nil }

// ConnectGetType names the driver.
func (r *remoteProgram) ConnectGetType(context.Context) (*remote.ConnectGetTypeRet, error) {
	return &remote.ConnectGetTypeRet{Type: "storage"}, nil
}

// ConnectGetURI returns the URI the connection was opened with.
func (r *remoteProgram) ConnectGetURI(context.Context) (*remote.ConnectGetURIRet, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &remote.ConnectGetURIRet{URI: r.uri}, nil
}

// ConnectGetLibVersion reports libvirt 9.0.0.
func (r *remoteProgram) ConnectGetLibVersion(context.Context) (*remote.ConnectGetLibVersionRet, error) {
	return &remote.ConnectGetLibVersionRet{LibVer: libVersion}, nil
}

// ConnectIsSecure is 1: UNIX sockets are local.
func (r *remoteProgram) ConnectIsSecure(context.Context) (*remote.ConnectIsSecureRet, error) {
	return &remote.ConnectIsSecureRet{Secure: 1}, nil
}

// ConnectSupportsFeature answers libvirtd's values; asking for keepalive starts
// the server's PINGs.
func (r *remoteProgram) ConnectSupportsFeature(_ context.Context, args *remote.ConnectSupportsFeatureArgs) (*remote.ConnectSupportsFeatureRet, error) {
	if args.Feature == featureProgramKeepalive {
		r.c.startKeepalive()
		return &remote.ConnectSupportsFeatureRet{Supported: 1}, nil
	}
	if !r.isOpen() {
		return nil, errHypervisorNotOpen
	}
	switch args.Feature {
	case featureFDPassing, featureRemoteEventCallback, featureRemoteCloseCallback:
		return &remote.ConnectSupportsFeatureRet{Supported: 1}, nil
	}
	return &remote.ConnectSupportsFeatureRet{Supported: 0}, nil
}

// ConnectRegisterCloseCallback is accepted; the storage driver never closes a
// connection on its own, so nothing is ever sent.
func (r *remoteProgram) ConnectRegisterCloseCallback(context.Context) error { return nil }

// ConnectUnregisterCloseCallback is accepted, repeatedly too.
func (r *remoteProgram) ConnectUnregisterCloseCallback(context.Context) error { return nil }

// ConnectSetIdentity is accepted: every client of a UNIX socket is trusted alike.
func (r *remoteProgram) ConnectSetIdentity(context.Context, *remote.ConnectSetIdentityArgs) error {
	return nil
}

// ConnectGetCapabilities returns the storage driver's capabilities XML.
func (r *remoteProgram) ConnectGetCapabilities(ctx context.Context) (*remote.ConnectGetCapabilitiesRet, error) {
	caps, err := r.api.Capabilities(ctx)
	if err != nil {
		return nil, err
	}
	return &remote.ConnectGetCapabilitiesRet{Capabilities: caps}, nil
}

// ConnectGetStoragePoolCapabilities returns the pool capabilities XML.
func (r *remoteProgram) ConnectGetStoragePoolCapabilities(ctx context.Context, args *remote.ConnectGetStoragePoolCapabilitiesArgs) (*remote.ConnectGetStoragePoolCapabilitiesRet, error) {
	caps, err := r.api.PoolCapabilities(ctx, args.Flags)
	if err != nil {
		return nil, err
	}
	return &remote.ConnectGetStoragePoolCapabilitiesRet{Capabilities: caps}, nil
}

// ------------------------------------------------------------ conversions

func poolIn(p remote.StoragePool) domain.PoolHandle {
	return domain.PoolHandle{Name: p.Name, UUID: domain.UUID(p.UUID)}
}

func poolOut(h domain.PoolHandle) remote.StoragePool {
	return remote.StoragePool{Name: h.Name, UUID: remote.UUID(h.UUID)}
}

func volIn(v remote.StorageVol) domain.VolHandle {
	return domain.VolHandle{Pool: v.Pool, Name: v.Name, Key: v.Key}
}

func volOut(h domain.VolHandle) remote.StorageVol {
	return remote.StorageVol{Pool: h.Pool, Name: h.Name, Key: h.Key}
}

func boolInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// checkMaxnames applies libvirt's dispatch-level checks of the legacy list calls.
func checkMaxnames(maxnames int32, limitName string) error {
	if maxnames < 0 {
		return rpcError("maxnames must be non-negative")
	}
	if maxnames > remote.StoragePoolListMax {
		return rpcError("maxnames > %s", limitName)
	}
	return nil
}

// --------------------------------------------------------- pool listing

// ConnectNumOfStoragePools counts active pools.
func (r *remoteProgram) ConnectNumOfStoragePools(ctx context.Context) (*remote.ConnectNumOfStoragePoolsRet, error) {
	n, err := r.api.NumOfPools(ctx, true)
	if err != nil {
		return nil, err
	}
	return &remote.ConnectNumOfStoragePoolsRet{Num: int32(n)}, nil
}

// ConnectNumOfDefinedStoragePools counts inactive pools.
func (r *remoteProgram) ConnectNumOfDefinedStoragePools(ctx context.Context) (*remote.ConnectNumOfDefinedStoragePoolsRet, error) {
	n, err := r.api.NumOfPools(ctx, false)
	if err != nil {
		return nil, err
	}
	return &remote.ConnectNumOfDefinedStoragePoolsRet{Num: int32(n)}, nil
}

// ConnectListStoragePools names active pools.
func (r *remoteProgram) ConnectListStoragePools(ctx context.Context, args *remote.ConnectListStoragePoolsArgs) (*remote.ConnectListStoragePoolsRet, error) {
	if err := checkMaxnames(args.Maxnames, "REMOTE_STORAGE_POOL_LIST_MAX"); err != nil {
		return nil, err
	}
	names, err := r.api.ListPoolNames(ctx, true, int(args.Maxnames))
	if err != nil {
		return nil, err
	}
	return &remote.ConnectListStoragePoolsRet{Names: names}, nil
}

// ConnectListDefinedStoragePools names inactive pools.
func (r *remoteProgram) ConnectListDefinedStoragePools(ctx context.Context, args *remote.ConnectListDefinedStoragePoolsArgs) (*remote.ConnectListDefinedStoragePoolsRet, error) {
	if err := checkMaxnames(args.Maxnames, "REMOTE_STORAGE_POOL_LIST_MAX"); err != nil {
		return nil, err
	}
	names, err := r.api.ListPoolNames(ctx, false, int(args.Maxnames))
	if err != nil {
		return nil, err
	}
	return &remote.ConnectListDefinedStoragePoolsRet{Names: names}, nil
}

// ConnectListAllStoragePools lists pools matching the flags.
func (r *remoteProgram) ConnectListAllStoragePools(ctx context.Context, args *remote.ConnectListAllStoragePoolsArgs) (*remote.ConnectListAllStoragePoolsRet, error) {
	pools, err := r.api.ListAllPools(ctx, args.Flags)
	if err != nil {
		return nil, err
	}
	if len(pools) > remote.StoragePoolListMax {
		return nil, rpcError("Too many storage pools '%d' for limit '%d'", len(pools), remote.StoragePoolListMax)
	}
	ret := &remote.ConnectListAllStoragePoolsRet{Ret: uint32(len(pools))}
	if args.NeedResults != 0 {
		ret.Pools = make([]remote.StoragePool, len(pools))
		for i, p := range pools {
			ret.Pools[i] = poolOut(p)
		}
	}
	return ret, nil
}

// ConnectFindStoragePoolSources probes for pool sources.
func (r *remoteProgram) ConnectFindStoragePoolSources(ctx context.Context, args *remote.ConnectFindStoragePoolSourcesArgs) (*remote.ConnectFindStoragePoolSourcesRet, error) {
	spec := ""
	if len(args.SrcSpec) > 0 {
		spec = args.SrcSpec[0]
	}
	xml, err := r.api.FindPoolSources(ctx, args.Type, spec, args.Flags)
	if err != nil {
		return nil, err
	}
	return &remote.ConnectFindStoragePoolSourcesRet{XML: xml}, nil
}

// ------------------------------------------------------ pool lifecycle

// StoragePoolCreateXML creates a transient pool.
func (r *remoteProgram) StoragePoolCreateXML(ctx context.Context, args *remote.StoragePoolCreateXMLArgs) (*remote.StoragePoolCreateXMLRet, error) {
	p, err := r.api.PoolCreateXML(ctx, args.XML, args.Flags)
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolCreateXMLRet{Pool: poolOut(p)}, nil
}

// StoragePoolDefineXML defines a persistent pool.
func (r *remoteProgram) StoragePoolDefineXML(ctx context.Context, args *remote.StoragePoolDefineXMLArgs) (*remote.StoragePoolDefineXMLRet, error) {
	p, err := r.api.PoolDefineXML(ctx, args.XML, args.Flags)
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolDefineXMLRet{Pool: poolOut(p)}, nil
}

// StoragePoolCreate starts a pool.
func (r *remoteProgram) StoragePoolCreate(ctx context.Context, args *remote.StoragePoolCreateArgs) error {
	return r.api.PoolCreate(ctx, poolIn(args.Pool), args.Flags)
}

// StoragePoolBuild builds a pool.
func (r *remoteProgram) StoragePoolBuild(ctx context.Context, args *remote.StoragePoolBuildArgs) error {
	return r.api.PoolBuild(ctx, poolIn(args.Pool), args.Flags)
}

// StoragePoolDestroy stops a pool.
func (r *remoteProgram) StoragePoolDestroy(ctx context.Context, args *remote.StoragePoolDestroyArgs) error {
	return r.api.PoolDestroy(ctx, poolIn(args.Pool))
}

// StoragePoolDelete deletes a pool's storage.
func (r *remoteProgram) StoragePoolDelete(ctx context.Context, args *remote.StoragePoolDeleteArgs) error {
	return r.api.PoolDelete(ctx, poolIn(args.Pool), args.Flags)
}

// StoragePoolUndefine forgets a pool.
func (r *remoteProgram) StoragePoolUndefine(ctx context.Context, args *remote.StoragePoolUndefineArgs) error {
	return r.api.PoolUndefine(ctx, poolIn(args.Pool))
}

// StoragePoolRefresh rescans a pool.
func (r *remoteProgram) StoragePoolRefresh(ctx context.Context, args *remote.StoragePoolRefreshArgs) error {
	return r.api.PoolRefresh(ctx, poolIn(args.Pool), args.Flags)
}

// --------------------------------------------------------- pool queries

// StoragePoolLookupByName finds a pool by name.
func (r *remoteProgram) StoragePoolLookupByName(ctx context.Context, args *remote.StoragePoolLookupByNameArgs) (*remote.StoragePoolLookupByNameRet, error) {
	p, err := r.api.PoolLookupByName(ctx, args.Name)
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolLookupByNameRet{Pool: poolOut(p)}, nil
}

// StoragePoolLookupByUUID finds a pool by UUID.
func (r *remoteProgram) StoragePoolLookupByUUID(ctx context.Context, args *remote.StoragePoolLookupByUUIDArgs) (*remote.StoragePoolLookupByUUIDRet, error) {
	p, err := r.api.PoolLookupByUUID(ctx, domain.UUID(args.UUID))
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolLookupByUUIDRet{Pool: poolOut(p)}, nil
}

// StoragePoolLookupByVolume finds a volume's pool.
func (r *remoteProgram) StoragePoolLookupByVolume(ctx context.Context, args *remote.StoragePoolLookupByVolumeArgs) (*remote.StoragePoolLookupByVolumeRet, error) {
	p, err := r.api.PoolLookupByVolume(ctx, volIn(args.Vol))
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolLookupByVolumeRet{Pool: poolOut(p)}, nil
}

// StoragePoolLookupByTargetPath finds a pool by target path.
func (r *remoteProgram) StoragePoolLookupByTargetPath(ctx context.Context, args *remote.StoragePoolLookupByTargetPathArgs) (*remote.StoragePoolLookupByTargetPathRet, error) {
	p, err := r.api.PoolLookupByTargetPath(ctx, args.Path)
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolLookupByTargetPathRet{Pool: poolOut(p)}, nil
}

// StoragePoolGetInfo returns state and sizes.
func (r *remoteProgram) StoragePoolGetInfo(ctx context.Context, args *remote.StoragePoolGetInfoArgs) (*remote.StoragePoolGetInfoRet, error) {
	in, err := r.api.PoolGetInfo(ctx, poolIn(args.Pool))
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolGetInfoRet{State: uint32(in.State), Capacity: in.Capacity, Allocation: in.Allocation, Available: in.Available}, nil
}

// StoragePoolGetXMLDesc returns the pool XML.
func (r *remoteProgram) StoragePoolGetXMLDesc(ctx context.Context, args *remote.StoragePoolGetXMLDescArgs) (*remote.StoragePoolGetXMLDescRet, error) {
	xml, err := r.api.PoolGetXMLDesc(ctx, poolIn(args.Pool), args.Flags)
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolGetXMLDescRet{XML: xml}, nil
}

// StoragePoolGetAutostart reports autostart.
func (r *remoteProgram) StoragePoolGetAutostart(ctx context.Context, args *remote.StoragePoolGetAutostartArgs) (*remote.StoragePoolGetAutostartRet, error) {
	v, err := r.api.PoolGetAutostart(ctx, poolIn(args.Pool))
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolGetAutostartRet{Autostart: boolInt(v)}, nil
}

// StoragePoolSetAutostart sets autostart.
func (r *remoteProgram) StoragePoolSetAutostart(ctx context.Context, args *remote.StoragePoolSetAutostartArgs) error {
	return r.api.PoolSetAutostart(ctx, poolIn(args.Pool), args.Autostart != 0)
}

// StoragePoolIsActive reports whether the pool runs.
func (r *remoteProgram) StoragePoolIsActive(ctx context.Context, args *remote.StoragePoolIsActiveArgs) (*remote.StoragePoolIsActiveRet, error) {
	v, err := r.api.PoolIsActive(ctx, poolIn(args.Pool))
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolIsActiveRet{Active: boolInt(v)}, nil
}

// StoragePoolIsPersistent reports whether the pool is defined.
func (r *remoteProgram) StoragePoolIsPersistent(ctx context.Context, args *remote.StoragePoolIsPersistentArgs) (*remote.StoragePoolIsPersistentRet, error) {
	v, err := r.api.PoolIsPersistent(ctx, poolIn(args.Pool))
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolIsPersistentRet{Persistent: boolInt(v)}, nil
}

// StoragePoolNumOfVolumes counts volumes.
func (r *remoteProgram) StoragePoolNumOfVolumes(ctx context.Context, args *remote.StoragePoolNumOfVolumesArgs) (*remote.StoragePoolNumOfVolumesRet, error) {
	n, err := r.api.PoolNumOfVolumes(ctx, poolIn(args.Pool))
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolNumOfVolumesRet{Num: int32(n)}, nil
}

// StoragePoolListVolumes names volumes.
func (r *remoteProgram) StoragePoolListVolumes(ctx context.Context, args *remote.StoragePoolListVolumesArgs) (*remote.StoragePoolListVolumesRet, error) {
	if err := checkMaxnames(args.Maxnames, "REMOTE_STORAGE_VOL_LIST_MAX"); err != nil {
		return nil, err
	}
	names, err := r.api.PoolListVolumes(ctx, poolIn(args.Pool), int(args.Maxnames))
	if err != nil {
		return nil, err
	}
	return &remote.StoragePoolListVolumesRet{Names: names}, nil
}

// StoragePoolListAllVolumes lists volume handles.
func (r *remoteProgram) StoragePoolListAllVolumes(ctx context.Context, args *remote.StoragePoolListAllVolumesArgs) (*remote.StoragePoolListAllVolumesRet, error) {
	vols, err := r.api.PoolListAllVolumes(ctx, poolIn(args.Pool), args.Flags)
	if err != nil {
		return nil, err
	}
	if len(vols) > remote.StorageVolListMax {
		return nil, rpcError("Too many storage volumes '%d' for limit '%d'", len(vols), remote.StorageVolListMax)
	}
	ret := &remote.StoragePoolListAllVolumesRet{Ret: uint32(len(vols))}
	if args.NeedResults != 0 {
		ret.Vols = make([]remote.StorageVol, len(vols))
		for i, v := range vols {
			ret.Vols[i] = volOut(v)
		}
	}
	return ret, nil
}

// ------------------------------------------------------------- volumes

// StorageVolLookupByName finds a volume in a pool.
func (r *remoteProgram) StorageVolLookupByName(ctx context.Context, args *remote.StorageVolLookupByNameArgs) (*remote.StorageVolLookupByNameRet, error) {
	v, err := r.api.VolLookupByName(ctx, poolIn(args.Pool), args.Name)
	if err != nil {
		return nil, err
	}
	return &remote.StorageVolLookupByNameRet{Vol: volOut(v)}, nil
}

// StorageVolLookupByKey finds a volume by key.
func (r *remoteProgram) StorageVolLookupByKey(ctx context.Context, args *remote.StorageVolLookupByKeyArgs) (*remote.StorageVolLookupByKeyRet, error) {
	v, err := r.api.VolLookupByKey(ctx, args.Key)
	if err != nil {
		return nil, err
	}
	return &remote.StorageVolLookupByKeyRet{Vol: volOut(v)}, nil
}

// StorageVolLookupByPath finds a volume by path.
func (r *remoteProgram) StorageVolLookupByPath(ctx context.Context, args *remote.StorageVolLookupByPathArgs) (*remote.StorageVolLookupByPathRet, error) {
	v, err := r.api.VolLookupByPath(ctx, args.Path)
	if err != nil {
		return nil, err
	}
	return &remote.StorageVolLookupByPathRet{Vol: volOut(v)}, nil
}

// StorageVolCreateXML creates a volume.
func (r *remoteProgram) StorageVolCreateXML(ctx context.Context, args *remote.StorageVolCreateXMLArgs) (*remote.StorageVolCreateXMLRet, error) {
	v, err := r.api.VolCreateXML(ctx, poolIn(args.Pool), args.XML, args.Flags)
	if err != nil {
		return nil, err
	}
	return &remote.StorageVolCreateXMLRet{Vol: volOut(v)}, nil
}

// StorageVolCreateXMLFrom clones a volume.
func (r *remoteProgram) StorageVolCreateXMLFrom(ctx context.Context, args *remote.StorageVolCreateXMLFromArgs) (*remote.StorageVolCreateXMLFromRet, error) {
	v, err := r.api.VolCreateXMLFrom(ctx, poolIn(args.Pool), args.XML, volIn(args.Clonevol), args.Flags)
	if err != nil {
		return nil, err
	}
	return &remote.StorageVolCreateXMLFromRet{Vol: volOut(v)}, nil
}

// StorageVolDelete deletes a volume.
func (r *remoteProgram) StorageVolDelete(ctx context.Context, args *remote.StorageVolDeleteArgs) error {
	return r.api.VolDelete(ctx, volIn(args.Vol), args.Flags)
}

// StorageVolGetInfo returns type and sizes.
func (r *remoteProgram) StorageVolGetInfo(ctx context.Context, args *remote.StorageVolGetInfoArgs) (*remote.StorageVolGetInfoRet, error) {
	in, err := r.api.VolGetInfo(ctx, volIn(args.Vol), 0)
	if err != nil {
		return nil, err
	}
	return &remote.StorageVolGetInfoRet{Type: int32(in.Type), Capacity: in.Capacity, Allocation: in.Allocation}, nil
}

// StorageVolGetInfoFlags returns type and sizes, physical with flag 1.
func (r *remoteProgram) StorageVolGetInfoFlags(ctx context.Context, args *remote.StorageVolGetInfoFlagsArgs) (*remote.StorageVolGetInfoFlagsRet, error) {
	in, err := r.api.VolGetInfo(ctx, volIn(args.Vol), args.Flags)
	if err != nil {
		return nil, err
	}
	return &remote.StorageVolGetInfoFlagsRet{Type: int32(in.Type), Capacity: in.Capacity, Allocation: in.Allocation}, nil
}

// StorageVolGetXMLDesc returns the volume XML.
func (r *remoteProgram) StorageVolGetXMLDesc(ctx context.Context, args *remote.StorageVolGetXMLDescArgs) (*remote.StorageVolGetXMLDescRet, error) {
	xml, err := r.api.VolGetXMLDesc(ctx, volIn(args.Vol), args.Flags)
	if err != nil {
		return nil, err
	}
	return &remote.StorageVolGetXMLDescRet{XML: xml}, nil
}

// StorageVolGetPath returns the volume path.
func (r *remoteProgram) StorageVolGetPath(ctx context.Context, args *remote.StorageVolGetPathArgs) (*remote.StorageVolGetPathRet, error) {
	p, err := r.api.VolGetPath(ctx, volIn(args.Vol))
	if err != nil {
		return nil, err
	}
	return &remote.StorageVolGetPathRet{Name: p}, nil
}

// StorageVolWipe zero-fills a volume.
func (r *remoteProgram) StorageVolWipe(ctx context.Context, args *remote.StorageVolWipeArgs) error {
	return r.api.VolWipe(ctx, volIn(args.Vol), domain.WipeZero, args.Flags)
}

// StorageVolWipePattern wipes with an algorithm.
func (r *remoteProgram) StorageVolWipePattern(ctx context.Context, args *remote.StorageVolWipePatternArgs) error {
	return r.api.VolWipe(ctx, volIn(args.Vol), domain.WipeAlgorithm(args.Algorithm), args.Flags)
}

// StorageVolResize changes a volume's capacity.
func (r *remoteProgram) StorageVolResize(ctx context.Context, args *remote.StorageVolResizeArgs) error {
	return r.api.VolResize(ctx, volIn(args.Vol), args.Capacity, args.Flags)
}

// -------------------------------------------------------------- streams

var errNotOurStream = errors.New("rpc: stream handler called without a connection stream")

// StorageVolUpload opens the upload, then feeds the stream's packets to the
// writer once the OK reply is out.
func (r *remoteProgram) StorageVolUpload(ctx context.Context, args *remote.StorageVolUploadArgs, st xdr.Stream) error {
	s, ok := st.(*stream)
	if !ok {
		return errNotOurStream
	}
	w, err := r.api.VolUpload(ctx, volIn(args.Vol), args.Offset, args.Length, args.Flags)
	if err != nil {
		return err
	}
	s.setSparse(args.Flags&domain.StreamSparse != 0)
	s.start(func() { pumpUpload(s, w) }, w.Abort)
	return nil
}

func pumpUpload(s *stream, w ports.VolumeWriter) {
	for {
		data, hole, err := s.Recv(s.ctx)
		switch {
		case errors.Is(err, io.EOF):
			ferr := w.Finish(s.c.ctx)
			if ferr != nil {
				s.c.log.WithError(ferr).WithField("serial", s.h.serial).Warn("rpc: upload finish failed")
			}
			s.Close(ferr)
			return
		case err != nil:
			w.Abort()
			s.Close(err)
			return
		case hole > 0:
			if herr := w.Hole(hole); herr != nil {
				w.Abort()
				s.Close(herr)
				return
			}
		case len(data) > 0:
			if _, werr := w.Write(data); werr != nil {
				w.Abort()
				s.Close(werr)
				return
			}
		}
	}
}

// StorageVolDownload opens the download, then sends the reader's data once the
// OK reply is out.
func (r *remoteProgram) StorageVolDownload(ctx context.Context, args *remote.StorageVolDownloadArgs, st xdr.Stream) error {
	s, ok := st.(*stream)
	if !ok {
		return errNotOurStream
	}
	rd, err := r.api.VolDownload(ctx, volIn(args.Vol), args.Offset, args.Length, args.Flags)
	if err != nil {
		return err
	}
	s.setSparse(args.Flags&domain.StreamSparse != 0)
	s.start(func() { pumpDownload(s, rd) }, func() { _ = rd.Close() })
	return nil
}

func pumpDownload(s *stream, rd ports.VolumeReader) {
	h := s.h
	h.typ, h.status = typeStream, statusContinue
	hdr, err := encodeRaw(h, nil)
	if err != nil {
		s.Close(err)
		return
	}
	var sender dataSender
	if sr, ok := rd.(ports.VolumeSectionReader); ok && s.c.canSendFiles() {
		sender = newSectionSender(s, sr, hdr)
	} else {
		sender = newBufferSender(s, rd, hdr)
	}
	for {
		hole, err := sender.send()
		if hole > 0 && err == nil {
			err = s.SendHole(s.ctx, hole)
		}
		if errors.Is(err, io.EOF) {
			err = nil
		} else if err == nil {
			continue
		}
		sender.close()
		select {
		case <-sender.idle():
			if cerr := rd.Close(); cerr != nil && err == nil {
				err = cerr
			}
		default:
			// The download was cut off while the writer still has a packet
			// of it: the volume stays in use until that is sent or dropped.
			idle := sender.idle()
			go func() {
				<-idle
				_ = rd.Close()
			}()
		}
		s.Close(err)
		return
	}
}

// dataSender sends a download's data packets.
type dataSender interface {
	// send sends the next data packet, if any, and returns the hole that
	// follows it, or io.EOF at the end.
	send() (hole int64, err error)
	// idle is closed once the writer no longer uses the volume's file.
	idle() <-chan struct{}
	close()
}

// bufferSender reads the data straight into one frame buffer behind a
// ready-made header: no copy and no allocation per packet. The buffer is free
// again once the send returns, because send waits until the frame is on the
// socket.
type bufferSender struct {
	s     *stream
	rd    ports.VolumeReader
	frame []byte
}

func newBufferSender(s *stream, rd ports.VolumeReader, hdr []byte) *bufferSender {
	frame := make([]byte, xdr.MinFrameLen+downloadChunk)
	copy(frame, hdr)
	return &bufferSender{s: s, rd: rd, frame: frame}
}

func (bs *bufferSender) send() (int64, error) {
	n, hole, err := bs.rd.Next(bs.frame[xdr.MinFrameLen:])
	if n > 0 {
		binary.BigEndian.PutUint32(bs.frame, uint32(xdr.MinFrameLen+n))
		if serr := bs.s.send(bs.s.ctx, bs.frame[:xdr.MinFrameLen+n]); serr != nil {
			return 0, serr
		}
	}
	return hole, err
}

// idle: the writer never holds the file, only the buffer, which the next
// download does not reuse.
func (bs *bufferSender) idle() <-chan struct{} { return closedChan }

func (bs *bufferSender) close() {}

var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// --------------------------------------------------------------- events

// ConnectStoragePoolEventRegisterAny subscribes the connection to pool events.
func (r *remoteProgram) ConnectStoragePoolEventRegisterAny(_ context.Context, args *remote.ConnectStoragePoolEventRegisterAnyArgs) (*remote.ConnectStoragePoolEventRegisterAnyRet, error) {
	var filter *domain.UUID
	if len(args.Pool) > 0 {
		u := domain.UUID(args.Pool[0].UUID)
		filter = &u
	}
	id, err := r.c.srv.events.register(r.c, args.EventID, filter)
	if err != nil {
		return nil, err
	}
	return &remote.ConnectStoragePoolEventRegisterAnyRet{CallbackID: id}, nil
}

// ConnectStoragePoolEventDeregisterAny cancels a subscription.
func (r *remoteProgram) ConnectStoragePoolEventDeregisterAny(_ context.Context, args *remote.ConnectStoragePoolEventDeregisterAnyArgs) error {
	return r.c.srv.events.deregister(r.c, args.CallbackID)
}

func encodeLifecycleEvent(cbID int32, pool domain.PoolHandle, event, detail int32) ([]byte, error) {
	return encodeMessage(eventHeader(procEventLifecycle), &remote.StoragePoolEventLifecycleMsg{
		CallbackID: cbID, Pool: poolOut(pool), Event: event, Detail: detail,
	})
}

func encodeRefreshEvent(cbID int32, pool domain.PoolHandle) ([]byte, error) {
	return encodeMessage(eventHeader(procEventRefresh), &remote.StoragePoolEventRefreshMsg{
		CallbackID: cbID, Pool: poolOut(pool),
	})
}

func eventHeader(proc int32) header {
	return header{prog: progRemote, vers: 1, proc: proc, typ: typeMessage, serial: eventSerial, status: statusOK}
}
