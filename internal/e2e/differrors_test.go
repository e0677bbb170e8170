package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr/rpcconn"
)

// errEnv is what an error case works on, on one daemon: an active pool
// (e2ed, with r1.img and q1.qcow2), an inactive one whose directory was never
// made (e2ei), and handles of a pool and a volume that are gone.
type errEnv struct {
	c                *remote.Client
	base             string
	active, inactive remote.StoragePool
	stalePool        remote.StoragePool
	vol, qvol        remote.StorageVol
	staleVol         remote.StorageVol
}

// errCases are raw calls of the remote program, each expected to fail the
// same way on both daemons: the error's code, domain, errno (int1) and text.
// They cover the error paths of every storage procedure the daemon serves
// (order of the checks: flags, lookups, states) and the procedures it does
// not serve.
var errCases = []struct {
	name string
	call func(ctx context.Context, e errEnv) error
}{
	// pools: lookups and stale handles
	{"pool by unknown name", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: "nosuch"})
		return err
	}},
	{"pool by unknown uuid", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolLookupByUUID(ctx, &remote.StoragePoolLookupByUUIDArgs{UUID: e.stalePool.UUID})
		return err
	}},
	{"pool by unknown target path", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolLookupByTargetPath(ctx, &remote.StoragePoolLookupByTargetPathArgs{Path: e.base + "/nosuch"})
		return err
	}},
	{"pool by a volume that is gone", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolLookupByVolume(ctx, &remote.StoragePoolLookupByVolumeArgs{Vol: e.staleVol})
		return err
	}},
	{"info of an undefined pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolGetInfo(ctx, &remote.StoragePoolGetInfoArgs{Pool: e.stalePool})
		return err
	}},
	{"xml of an undefined pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolGetXMLDesc(ctx, &remote.StoragePoolGetXMLDescArgs{Pool: e.stalePool})
		return err
	}},
	{"start an undefined pool", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolCreate(ctx, &remote.StoragePoolCreateArgs{Pool: e.stalePool})
	}},
	{"build an undefined pool", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolBuild(ctx, &remote.StoragePoolBuildArgs{Pool: e.stalePool})
	}},
	{"destroy an undefined pool", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolDestroy(ctx, &remote.StoragePoolDestroyArgs{Pool: e.stalePool})
	}},
	{"delete an undefined pool", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolDelete(ctx, &remote.StoragePoolDeleteArgs{Pool: e.stalePool})
	}},
	{"undefine an undefined pool", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolUndefine(ctx, &remote.StoragePoolUndefineArgs{Pool: e.stalePool})
	}},
	{"refresh an undefined pool", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolRefresh(ctx, &remote.StoragePoolRefreshArgs{Pool: e.stalePool})
	}},
	{"autostart of an undefined pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolGetAutostart(ctx, &remote.StoragePoolGetAutostartArgs{Pool: e.stalePool})
		return err
	}},
	{"set autostart of an undefined pool", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolSetAutostart(ctx, &remote.StoragePoolSetAutostartArgs{Pool: e.stalePool, Autostart: 1})
	}},
	{"is-active of an undefined pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolIsActive(ctx, &remote.StoragePoolIsActiveArgs{Pool: e.stalePool})
		return err
	}},
	{"is-persistent of an undefined pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolIsPersistent(ctx, &remote.StoragePoolIsPersistentArgs{Pool: e.stalePool})
		return err
	}},
	{"volume count of an undefined pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolNumOfVolumes(ctx, &remote.StoragePoolNumOfVolumesArgs{Pool: e.stalePool})
		return err
	}},
	{"volume names of an undefined pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolListVolumes(ctx, &remote.StoragePoolListVolumesArgs{Pool: e.stalePool, Maxnames: 10})
		return err
	}},
	{"volumes of an undefined pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolListAllVolumes(ctx, &remote.StoragePoolListAllVolumesArgs{Pool: e.stalePool, NeedResults: 1})
		return err
	}},
	{"volume by name in an undefined pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: e.stalePool, Name: "r1.img"})
		return err
	}},
	{"create a volume in an undefined pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.stalePool, XML: "<volume><name>x</name><capacity>1</capacity></volume>"})
		return err
	}},

	// pool states and flags
	{"start a pool whose directory is missing", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolCreate(ctx, &remote.StoragePoolCreateArgs{Pool: e.inactive})
	}},
	{"start with an unknown flag", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolCreate(ctx, &remote.StoragePoolCreateArgs{Pool: e.inactive, Flags: 8})
	}},
	{"start an active pool", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolCreate(ctx, &remote.StoragePoolCreateArgs{Pool: e.active})
	}},
	{"build with an unknown and both overwrite flags", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolBuild(ctx, &remote.StoragePoolBuildArgs{Pool: e.inactive, Flags: 1 | 4 | 8})
	}},
	{"build with repair", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolBuild(ctx, &remote.StoragePoolBuildArgs{Pool: e.inactive, Flags: 1})
	}},
	{"build an active pool with both overwrite flags", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolBuild(ctx, &remote.StoragePoolBuildArgs{Pool: e.active, Flags: 4 | 8})
	}},
	{"build with overwrite", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolBuild(ctx, &remote.StoragePoolBuildArgs{Pool: e.inactive, Flags: 4})
	}},
	{"destroy an inactive pool", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolDestroy(ctx, &remote.StoragePoolDestroyArgs{Pool: e.inactive})
	}},
	{"delete an active pool", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolDelete(ctx, &remote.StoragePoolDeleteArgs{Pool: e.active})
	}},
	{"delete a pool whose directory is missing", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolDelete(ctx, &remote.StoragePoolDeleteArgs{Pool: e.inactive})
	}},
	{"delete with an unknown flag", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolDelete(ctx, &remote.StoragePoolDeleteArgs{Pool: e.inactive, Flags: 2})
	}},
	{"undefine an active pool", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolUndefine(ctx, &remote.StoragePoolUndefineArgs{Pool: e.active})
	}},
	{"refresh an inactive pool", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolRefresh(ctx, &remote.StoragePoolRefreshArgs{Pool: e.inactive})
	}},
	{"refresh with a flag", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolRefresh(ctx, &remote.StoragePoolRefreshArgs{Pool: e.active, Flags: 1})
	}},
	{"pool xml with an unknown flag", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolGetXMLDesc(ctx, &remote.StoragePoolGetXMLDescArgs{Pool: e.active, Flags: 2})
		return err
	}},
	{"volume count of an inactive pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolNumOfVolumes(ctx, &remote.StoragePoolNumOfVolumesArgs{Pool: e.inactive})
		return err
	}},
	{"volume names of an inactive pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolListVolumes(ctx, &remote.StoragePoolListVolumesArgs{Pool: e.inactive, Maxnames: 10})
		return err
	}},
	{"too many volume names", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolListVolumes(ctx, &remote.StoragePoolListVolumesArgs{Pool: e.active, Maxnames: 1 << 20})
		return err
	}},
	{"volumes of an inactive pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolListAllVolumes(ctx, &remote.StoragePoolListAllVolumesArgs{Pool: e.inactive, NeedResults: 1})
		return err
	}},
	{"volumes with a flag", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolListAllVolumes(ctx, &remote.StoragePoolListAllVolumesArgs{Pool: e.active, NeedResults: 1, Flags: 1})
		return err
	}},
	{"too many pool names", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectListStoragePools(ctx, &remote.ConnectListStoragePoolsArgs{Maxnames: 1 << 20})
		return err
	}},
	{"too many defined pool names", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectListDefinedStoragePools(ctx, &remote.ConnectListDefinedStoragePoolsArgs{Maxnames: 1 << 20})
		return err
	}},
	{"list all pools with an unknown flag", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectListAllStoragePools(ctx, &remote.ConnectListAllStoragePoolsArgs{NeedResults: 1, Flags: 1 << 30})
		return err
	}},
	{"transient pool autostart", func(ctx context.Context, e errEnv) error {
		return e.c.StoragePoolSetAutostart(ctx, &remote.StoragePoolSetAutostartArgs{Pool: e.inactive, Autostart: 1})
	}},
	{"define with an unknown flag", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolDefineXML(ctx, &remote.StoragePoolDefineXMLArgs{XML: "<pool/>", Flags: 2})
		return err
	}},
	{"define malformed xml", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolDefineXML(ctx, &remote.StoragePoolDefineXMLArgs{XML: "<pool type='dir'><name>x</name>"})
		return err
	}},
	{"define an unknown pool type", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolDefineXML(ctx, &remote.StoragePoolDefineXMLArgs{XML: "<pool type='nosuch'><name>e2ex</name></pool>"})
		return err
	}},
	{"define with a bad capacity unit", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolDefineXML(ctx, &remote.StoragePoolDefineXMLArgs{XML: "<pool type='dir'><name>e2ex</name><capacity unit='zz'>1</capacity><target><path>/x</path></target></pool>"})
		return err
	}},
	{"create with an unknown flag", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolCreateXML(ctx, &remote.StoragePoolCreateXMLArgs{XML: "<pool/>", Flags: 8})
		return err
	}},
	{"create with a defined pool's name", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolCreateXML(ctx, &remote.StoragePoolCreateXMLArgs{XML: "<pool type='dir'><name>e2ed</name><target><path>" + e.base + "/other</path></target></pool>"})
		return err
	}},
	{"create a pool whose directory is missing", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StoragePoolCreateXML(ctx, &remote.StoragePoolCreateXMLArgs{XML: "<pool type='dir'><name>e2ex</name><target><path>" + e.base + "/missing</path></target></pool>"})
		return err
	}},
	{"find sources of an unknown type", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectFindStoragePoolSources(ctx, &remote.ConnectFindStoragePoolSourcesArgs{Type: "nosuch"})
		return err
	}},
	{"find sources of dir", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectFindStoragePoolSources(ctx, &remote.ConnectFindStoragePoolSourcesArgs{Type: "dir"})
		return err
	}},
	{"find sources with a flag", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectFindStoragePoolSources(ctx, &remote.ConnectFindStoragePoolSourcesArgs{Type: "netfs", Flags: 1})
		return err
	}},
	{"find netfs sources without a host", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectFindStoragePoolSources(ctx, &remote.ConnectFindStoragePoolSourcesArgs{Type: "netfs"})
		return err
	}},
	{"pool capabilities with a flag", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectGetStoragePoolCapabilities(ctx, &remote.ConnectGetStoragePoolCapabilitiesArgs{Flags: 1})
		return err
	}},
	{"register an unknown event", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectStoragePoolEventRegisterAny(ctx, &remote.ConnectStoragePoolEventRegisterAnyArgs{EventID: 7})
		return err
	}},
	{"deregister an unknown callback", func(ctx context.Context, e errEnv) error {
		return e.c.ConnectStoragePoolEventDeregisterAny(ctx, &remote.ConnectStoragePoolEventDeregisterAnyArgs{CallbackID: 4242})
	}},

	// volumes
	{"vol by unknown name", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: e.active, Name: "nosuch"})
		return err
	}},
	{"vol by name in an inactive pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: e.inactive, Name: "x"})
		return err
	}},
	{"vol by unknown key", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolLookupByKey(ctx, &remote.StorageVolLookupByKeyArgs{Key: "nosuch"})
		return err
	}},
	{"vol by unknown path", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolLookupByPath(ctx, &remote.StorageVolLookupByPathArgs{Path: e.base + "/pd/nosuch"})
		return err
	}},
	{"vol by relative path", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolLookupByPath(ctx, &remote.StorageVolLookupByPathArgs{Path: "pd/r1.img"})
		return err
	}},
	{"info of a deleted vol", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolGetInfo(ctx, &remote.StorageVolGetInfoArgs{Vol: e.staleVol})
		return err
	}},
	{"info flags of a deleted vol", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolGetInfoFlags(ctx, &remote.StorageVolGetInfoFlagsArgs{Vol: e.staleVol})
		return err
	}},
	{"info with an unknown flag", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolGetInfoFlags(ctx, &remote.StorageVolGetInfoFlagsArgs{Vol: e.vol, Flags: 2})
		return err
	}},
	{"xml of a deleted vol", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolGetXMLDesc(ctx, &remote.StorageVolGetXMLDescArgs{Vol: e.staleVol})
		return err
	}},
	{"vol xml with a flag", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolGetXMLDesc(ctx, &remote.StorageVolGetXMLDescArgs{Vol: e.vol, Flags: 1})
		return err
	}},
	{"path of a deleted vol", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolGetPath(ctx, &remote.StorageVolGetPathArgs{Vol: e.staleVol})
		return err
	}},
	{"path of a vol in an undefined pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolGetPath(ctx, &remote.StorageVolGetPathArgs{Vol: remote.StorageVol{Pool: e.stalePool.Name, Name: "x", Key: "x"}})
		return err
	}},
	{"path of a vol in an inactive pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolGetPath(ctx, &remote.StorageVolGetPathArgs{Vol: remote.StorageVol{Pool: e.inactive.Name, Name: "x", Key: "x"}})
		return err
	}},
	{"delete a deleted vol", func(ctx context.Context, e errEnv) error {
		return e.c.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: e.staleVol})
	}},
	{"delete with an unknown flag", func(ctx context.Context, e errEnv) error {
		return e.c.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: e.vol, Flags: 4})
	}},
	{"wipe a deleted vol", func(ctx context.Context, e errEnv) error {
		return e.c.StorageVolWipe(ctx, &remote.StorageVolWipeArgs{Vol: e.staleVol})
	}},
	{"wipe with a flag", func(ctx context.Context, e errEnv) error {
		return e.c.StorageVolWipe(ctx, &remote.StorageVolWipeArgs{Vol: e.vol, Flags: 1})
	}},
	{"wipe with an unknown algorithm", func(ctx context.Context, e errEnv) error {
		return e.c.StorageVolWipePattern(ctx, &remote.StorageVolWipePatternArgs{Vol: e.vol, Algorithm: 99})
	}},
	{"wipe a deleted vol with an unknown algorithm", func(ctx context.Context, e errEnv) error {
		return e.c.StorageVolWipePattern(ctx, &remote.StorageVolWipePatternArgs{Vol: e.staleVol, Algorithm: 99})
	}},
	{"resize a deleted vol", func(ctx context.Context, e errEnv) error {
		return e.c.StorageVolResize(ctx, &remote.StorageVolResizeArgs{Vol: e.staleVol, Capacity: 1 << 30})
	}},
	{"resize with an unknown flag", func(ctx context.Context, e errEnv) error {
		return e.c.StorageVolResize(ctx, &remote.StorageVolResizeArgs{Vol: e.vol, Capacity: 1 << 30, Flags: 8})
	}},
	{"shrink without the flag", func(ctx context.Context, e errEnv) error {
		return e.c.StorageVolResize(ctx, &remote.StorageVolResizeArgs{Vol: e.vol, Capacity: 4096})
	}},
	{"shrink below zero by a delta", func(ctx context.Context, e errEnv) error {
		return e.c.StorageVolResize(ctx, &remote.StorageVolResizeArgs{Vol: e.vol, Capacity: 1 << 30, Flags: 2 | 4})
	}},
	{"preallocate a qcow2 resize", func(ctx context.Context, e errEnv) error {
		return e.c.StorageVolResize(ctx, &remote.StorageVolResizeArgs{Vol: e.qvol, Capacity: 2 << 20, Flags: 1})
	}},
	{"create a vol with an unknown flag", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.active, XML: "<volume/>", Flags: 8})
		return err
	}},
	{"create a vol from malformed xml", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.active, XML: "<volume><name>x</name>"})
		return err
	}},
	{"create a vol from the wrong root", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.active, XML: "<pool><name>x</name></pool>"})
		return err
	}},
	{"create a vol with a bad type", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.active, XML: "<volume type='nosuch'><name>x</name><capacity>1</capacity></volume>"})
		return err
	}},
	{"create a vol with a slash in its name", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.active, XML: "<volume><name>a/b</name><capacity>1</capacity></volume>"})
		return err
	}},
	{"create a vol named ..", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.active, XML: "<volume><name>..</name><capacity>1</capacity></volume>"})
		return err
	}},
	{"create a vol that exists", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.active, XML: "<volume><name>r1.img</name><capacity>1</capacity></volume>"})
		return err
	}},
	{"create a vol in an inactive pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.inactive, XML: "<volume><name>x</name><capacity>1</capacity></volume>"})
		return err
	}},
	{"create a vol with a bad compat", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.active, XML: "<volume><name>x</name><capacity>1</capacity><target><format type='qcow2'/><compat>x</compat></target></volume>"})
		return err
	}},
	{"create a vol with an unknown feature", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.active, XML: "<volume><name>x</name><capacity>1</capacity><target><format type='qcow2'/><features><nosuch/></features></target></volume>"})
		return err
	}},
	{"create a vol with a bad cluster size", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.active, XML: "<volume><name>x</name><capacity>1</capacity><target><format type='qcow2'/><clusterSize>abc</clusterSize></target></volume>"})
		return err
	}},
	{"create a vol with a bad mode", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.active, XML: "<volume><name>x</name><capacity>1</capacity><target><permissions><mode>999</mode></permissions></target></volume>"})
		return err
	}},
	{"create an encrypted vol", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: e.active, XML: "<volume><name>x</name><capacity>1</capacity><target><format type='raw'/><encryption format='luks'/></target></volume>"})
		return err
	}},
	{"clone of a deleted vol", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXMLFrom(ctx, &remote.StorageVolCreateXMLFromArgs{Pool: e.active, XML: "<volume><name>x</name><capacity>1</capacity></volume>", Clonevol: e.staleVol})
		return err
	}},
	{"clone onto an existing vol", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXMLFrom(ctx, &remote.StorageVolCreateXMLFromArgs{Pool: e.active, XML: "<volume><name>q1.qcow2</name><capacity>1</capacity></volume>", Clonevol: e.vol})
		return err
	}},
	{"clone with an unknown flag", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXMLFrom(ctx, &remote.StorageVolCreateXMLFromArgs{Pool: e.active, XML: "<volume/>", Clonevol: e.vol, Flags: 8})
		return err
	}},
	{"reflink clone of a qcow2", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXMLFrom(ctx, &remote.StorageVolCreateXMLFromArgs{Pool: e.active, XML: "<volume><name>x</name><capacity>1</capacity></volume>", Clonevol: e.qvol, Flags: 2})
		return err
	}},
	{"clone into an inactive pool", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolCreateXMLFrom(ctx, &remote.StorageVolCreateXMLFromArgs{Pool: e.inactive, XML: "<volume><name>x</name><capacity>1</capacity></volume>", Clonevol: e.vol})
		return err
	}},
	{"upload to a deleted vol", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolUpload(ctx, &remote.StorageVolUploadArgs{Vol: e.staleVol, Length: 1})
		return err
	}},
	{"upload with an unknown flag", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolUpload(ctx, &remote.StorageVolUploadArgs{Vol: e.vol, Length: 1, Flags: 2})
		return err
	}},
	// An upload past the end is refused here at once and accepted by
	// libvirtd, which then grows the file: a deliberate difference (README).
	{"download from a deleted vol", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolDownload(ctx, &remote.StorageVolDownloadArgs{Vol: e.staleVol, Length: 1})
		return err
	}},
	{"download past the end", func(ctx context.Context, e errEnv) error {
		_, err := e.c.StorageVolDownload(ctx, &remote.StorageVolDownloadArgs{Vol: e.vol, Offset: 1 << 40, Length: 1})
		return err
	}},

	// procedures of other drivers, which a storage daemon does not serve
	{"node info", func(ctx context.Context, e errEnv) error { _, err := e.c.NodeGetInfo(ctx); return err }},
	{"capabilities", func(ctx context.Context, e errEnv) error { _, err := e.c.ConnectGetCapabilities(ctx); return err }},
	{"number of domains", func(ctx context.Context, e errEnv) error { _, err := e.c.ConnectNumOfDomains(ctx); return err }},
	{"max vcpus", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectGetMaxVcpus(ctx, &remote.ConnectGetMaxVcpusArgs{})
		return err
	}},
	{"free memory", func(ctx context.Context, e errEnv) error { _, err := e.c.NodeGetFreeMemory(ctx); return err }},
	{"sysinfo", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectGetSysinfo(ctx, &remote.ConnectGetSysinfoArgs{})
		return err
	}},
	{"all domains", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectListAllDomains(ctx, &remote.ConnectListAllDomainsArgs{NeedResults: 1})
		return err
	}},
	{"all secrets", func(ctx context.Context, e errEnv) error {
		_, err := e.c.ConnectListAllSecrets(ctx, &remote.ConnectListAllSecretsArgs{NeedResults: 1})
		return err
	}},
}

// errOutcome renders a call's result: every field of the libvirt error a
// client reads (code, domain, int1 (errno), int2, str1-3, message), or
// success.
func errOutcome(err error, base string) string {
	var we *virnet.Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &we):
		msg := ""
		if len(we.Message) > 0 {
			msg = normalize(we.Message[0], base, false)
		}
		str := func(s []string) string {
			if len(s) == 0 {
				return "NULL"
			}
			return normalize(s[0], base, false)
		}
		return fmt.Sprintf("code=%d domain=%d int1=%d int2=%d str1=%q str2=%q str3=%s %s",
			we.Code, we.Domain, we.Int1, we.Int2, str(we.Str1), str(we.Str2), str(we.Str3), msg)
	default:
		return "transport error: " + err.Error()
	}
}

// dialStorage opens storage:///system on the socket with the generated client.
func dialStorage(t *testing.T, sock string) *remote.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := rpcconn.Dial(ctx, sock)
	if err != nil {
		t.Fatalf("dial %s: %v", sock, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c := remote.NewClient(conn)
	if err := c.ConnectOpen(ctx, &remote.ConnectOpenArgs{Name: remote.OptString{"storage:///system"}}); err != nil {
		t.Fatalf("connect open on %s: %v", sock, err)
	}
	return c
}

// TestDifferentialErrors makes the same failing calls on both daemons and
// compares every field of the error a client reads.
func TestDifferentialErrors(t *testing.T) {
	t.Parallel() // StartAnchor serialises the libvirtd tests among themselves
	sides := bothDaemons(t, func(base string) [][]string {
		return [][]string{
			{"pool-define-as", "e2ed", "dir", "--target", base + "/pd"},
			{"pool-start", "e2ed", "--build"},
			{"vol-create-as", "e2ed", "r1.img", "1M"},
			{"vol-create-as", "e2ed", "q1.qcow2", "1M", "--format", "qcow2"},
			{"vol-create-as", "e2ed", "gone.img", "1M"},
			{"pool-define-as", "e2ei", "dir", "--target", base + "/pi"},
			{"pool-define-as", "e2eu", "dir", "--target", base + "/pu"},
		}
	})
	envs := make([]errEnv, 2)
	for i, s := range sides {
		c := dialStorage(t, s.sock)
		ctx := context.Background()
		e := errEnv{c: c, base: s.base}
		pool := func(name string) remote.StoragePool {
			ret, err := c.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: name})
			if err != nil {
				t.Fatalf("pool %s: %v", name, err)
			}
			return ret.Pool
		}
		vol := func(name string) remote.StorageVol {
			ret, err := c.StorageVolLookupByName(ctx, &remote.StorageVolLookupByNameArgs{Pool: e.active, Name: name})
			if err != nil {
				t.Fatalf("vol %s: %v", name, err)
			}
			return ret.Vol
		}
		e.active, e.inactive, e.stalePool = pool("e2ed"), pool("e2ei"), pool("e2eu")
		e.vol, e.qvol, e.staleVol = vol("r1.img"), vol("q1.qcow2"), vol("gone.img")
		ok(t, s.tg, "pool-undefine", "e2eu")
		ok(t, s.tg, "vol-delete", "gone.img", "--pool", "e2ed")
		if e.staleVol.Key != filepath.Join(s.base, "pd", "gone.img") {
			t.Fatalf("key of gone.img = %q", e.staleVol.Key)
		}
		envs[i] = e
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			var out [2]string
			for i, e := range envs {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				out[i] = errOutcome(c.call(ctx, e), e.base)
				cancel()
			}
			if out[0] != out[1] {
				t.Errorf("%s:\n libvirtd:      %s\n virtstoraged:  %s", c.name, clip(out[0]), clip(out[1]))
			}
			if strings.HasPrefix(out[0], "ok") {
				t.Logf("%s succeeds on libvirtd too", c.name)
			}
		})
	}
}
