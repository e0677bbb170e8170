package protocoltest_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/gen/keepalive"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// procSpec is one row of protocol.md §d/§e as the dispatcher must see it.
type procSpec struct {
	api      string
	readOnly bool
	priority bool
	stream   xdr.StreamDir
	async    bool
	// hasArgs / hasRet: the procedure is not void in that direction.
	hasArgs, hasRet bool
}

// Columns of the §e table: RO, H, args, ret.
const (
	ro, rw     = true, false
	high, norm = true, false
	args, void = true, false
)

// storageProcs is protocol.md §e, procedure table.
var storageProcs = map[int32]procSpec{
	71:  {"virConnectNumOfStoragePools", ro, high, xdr.StreamNone, false, void, args},
	72:  {"virConnectListStoragePools", ro, high, xdr.StreamNone, false, args, args},
	73:  {"virConnectNumOfDefinedStoragePools", ro, high, xdr.StreamNone, false, void, args},
	74:  {"virConnectListDefinedStoragePools", ro, high, xdr.StreamNone, false, args, args},
	75:  {"virConnectFindStoragePoolSources", rw, norm, xdr.StreamNone, false, args, args},
	76:  {"virStoragePoolCreateXML", rw, norm, xdr.StreamNone, false, args, args},
	77:  {"virStoragePoolDefineXML", rw, high, xdr.StreamNone, false, args, args},
	78:  {"virStoragePoolCreate", rw, norm, xdr.StreamNone, false, args, void},
	79:  {"virStoragePoolBuild", rw, norm, xdr.StreamNone, false, args, void},
	80:  {"virStoragePoolDestroy", rw, high, xdr.StreamNone, false, args, void},
	81:  {"virStoragePoolDelete", rw, norm, xdr.StreamNone, false, args, void},
	82:  {"virStoragePoolUndefine", rw, high, xdr.StreamNone, false, args, void},
	83:  {"virStoragePoolRefresh", rw, norm, xdr.StreamNone, false, args, void},
	84:  {"virStoragePoolLookupByName", ro, high, xdr.StreamNone, false, args, args},
	85:  {"virStoragePoolLookupByUUID", ro, high, xdr.StreamNone, false, args, args},
	86:  {"virStoragePoolLookupByVolume", ro, high, xdr.StreamNone, false, args, args},
	87:  {"virStoragePoolGetInfo", ro, high, xdr.StreamNone, false, args, args},
	88:  {"virStoragePoolGetXMLDesc", ro, norm, xdr.StreamNone, false, args, args},
	89:  {"virStoragePoolGetAutostart", ro, high, xdr.StreamNone, false, args, args},
	90:  {"virStoragePoolSetAutostart", rw, high, xdr.StreamNone, false, args, void},
	91:  {"virStoragePoolNumOfVolumes", ro, high, xdr.StreamNone, false, args, args},
	92:  {"virStoragePoolListVolumes", ro, high, xdr.StreamNone, false, args, args},
	93:  {"virStorageVolCreateXML", rw, norm, xdr.StreamNone, false, args, args},
	94:  {"virStorageVolDelete", rw, norm, xdr.StreamNone, false, args, void},
	95:  {"virStorageVolLookupByName", ro, high, xdr.StreamNone, false, args, args},
	96:  {"virStorageVolLookupByKey", ro, high, xdr.StreamNone, false, args, args},
	97:  {"virStorageVolLookupByPath", ro, high, xdr.StreamNone, false, args, args},
	98:  {"virStorageVolGetInfo", ro, high, xdr.StreamNone, false, args, args},
	99:  {"virStorageVolGetXMLDesc", ro, high, xdr.StreamNone, false, args, args},
	100: {"virStorageVolGetPath", ro, high, xdr.StreamNone, false, args, args},
	125: {"virStorageVolCreateXMLFrom", rw, norm, xdr.StreamNone, false, args, args},
	154: {"virStoragePoolIsActive", ro, high, xdr.StreamNone, false, args, args},
	155: {"virStoragePoolIsPersistent", ro, high, xdr.StreamNone, false, args, args},
	165: {"virStorageVolWipe", rw, norm, xdr.StreamNone, false, args, void},
	208: {"virStorageVolUpload", rw, norm, xdr.StreamUpload, false, args, void},
	209: {"virStorageVolDownload", rw, norm, xdr.StreamDownload, false, args, void},
	259: {"virStorageVolWipePattern", rw, norm, xdr.StreamNone, false, args, void},
	260: {"virStorageVolResize", rw, norm, xdr.StreamNone, false, args, void},
	281: {"virConnectListAllStoragePools", ro, high, xdr.StreamNone, false, args, args},
	282: {"virStoragePoolListAllVolumes", ro, high, xdr.StreamNone, false, args, args},
	368: {"virConnectStoragePoolEventRegisterAny", ro, norm, xdr.StreamNone, false, args, args},
	369: {"virConnectStoragePoolEventDeregisterAny", ro, norm, xdr.StreamNone, false, args, void},
	370: {"", ro, norm, xdr.StreamNone, true, args, void},
	373: {"", ro, norm, xdr.StreamNone, true, args, void},
	378: {"virStorageVolGetInfoFlags", ro, high, xdr.StreamNone, false, args, args},
	391: {"virStoragePoolLookupByTargetPath", ro, high, xdr.StreamNone, false, args, args},
	403: {"virConnectGetStoragePoolCapabilities", ro, norm, xdr.StreamNone, false, args, args},
}

// connectProcs is protocol.md §d: every connect-level procedure, all allowed read-only
// (priority is not part of the measured facts, so it is not checked for these).
var connectProcs = map[int32]procSpec{
	1:  {api: "virConnectOpen", readOnly: ro, hasArgs: args},
	2:  {api: "virConnectClose", readOnly: ro},
	3:  {api: "virConnectGetType", readOnly: ro, hasRet: args},
	4:  {api: "virConnectGetVersion", readOnly: ro, hasRet: args},
	5:  {api: "virConnectGetMaxVcpus", readOnly: ro, hasArgs: args, hasRet: args},
	6:  {api: "virNodeGetInfo", readOnly: ro, hasRet: args},
	7:  {api: "virConnectGetCapabilities", readOnly: ro, hasRet: args},
	51: {api: "virConnectNumOfDomains", readOnly: ro, hasRet: args},
	59: {api: "virConnectGetHostname", readOnly: ro, hasRet: args},
	60: {api: "virConnectSupportsFeature", readOnly: ro, hasArgs: args, hasRet: args},
	66: {readOnly: ro, hasRet: args},
	// The authentication procedures (not in protocol.md, measured against
	// libvirtd 9.0 with auth_unix_rw = "polkit"): callable on either socket
	// before authenticating; SASL always refused.
	67:  {readOnly: ro, hasRet: args},
	68:  {readOnly: ro, hasArgs: args, hasRet: args},
	69:  {readOnly: ro, hasArgs: args, hasRet: args},
	70:  {readOnly: ro, hasRet: args},
	102: {api: "virNodeGetFreeMemory", readOnly: ro, hasRet: args},
	110: {api: "virConnectGetURI", readOnly: ro, hasRet: args},
	149: {api: "virConnectIsSecure", readOnly: ro, hasRet: args},
	157: {api: "virConnectGetLibVersion", readOnly: ro, hasRet: args},
	203: {api: "virConnectGetSysinfo", readOnly: ro, hasArgs: args, hasRet: args},
	273: {api: "virConnectListAllDomains", readOnly: ro, hasArgs: args, hasRet: args},
	287: {api: "virConnectListAllSecrets", readOnly: ro, hasArgs: args, hasRet: args},
	360: {api: "virConnectRegisterCloseCallback", readOnly: ro},
	361: {api: "virConnectUnregisterCloseCallback", readOnly: ro},
	362: {readOnly: ro, async: true, hasArgs: args},
	419: {api: "virConnectSetIdentity", readOnly: ro, hasArgs: args},
}

// secretProcs are the secret driver's procedures the daemon calls as a client
// of virtsecretd/libvirtd (and answers "not supported" to when called): what
// libvirt's remote_protocol.x says of them.
var secretProcs = map[int32]procSpec{
	141: {"virSecretLookupByUUID", ro, high, xdr.StreamNone, false, args, args},
	145: {"virSecretGetValue", rw, high, xdr.StreamNone, false, args, args},
	147: {"virSecretLookupByUsage", ro, high, xdr.StreamNone, false, args, args},
}

// TestRemoteDispatchTable checks every generated row against protocol.md: read-only
// safety (a wrong "yes" would let a read-only client modify storage), stream direction,
// priority, async messages, void-ness and API names.
func TestRemoteDispatchTable(t *testing.T) {
	want := map[int32]procSpec{}
	for p, s := range storageProcs {
		want[p] = s
	}
	for p, s := range connectProcs {
		want[p] = s
	}
	for p, s := range secretProcs {
		want[p] = s
	}
	seen := map[int32]bool{}
	for i := range remote.Procedures {
		info := &remote.Procedures[i]
		seen[info.Proc] = true
		spec, ok := want[info.Proc]
		if !ok {
			t.Errorf("procedure %d (%s) is served but not in protocol.md §d/§e", info.Proc, info.Name)
			continue
		}
		t.Run(info.Name, func(t *testing.T) {
			if info.Program != progRemote || info.Version != 1 {
				t.Errorf("program %#x v%d, want %#x v1", info.Program, info.Version, progRemote)
			}
			if got := remote.Lookup(info.Proc); got != info {
				t.Errorf("Lookup(%d) = %p, want the table row %p", info.Proc, got, info)
			}
			// Messages are never dispatched, so read-only does not apply to them.
			if !info.Async && info.ReadOnly != spec.readOnly {
				t.Errorf("ReadOnly = %v, want %v", info.ReadOnly, spec.readOnly)
			}
			if info.Stream != spec.stream {
				t.Errorf("Stream = %v, want %v", info.Stream, spec.stream)
			}
			if info.Async != spec.async {
				t.Errorf("Async = %v, want %v", info.Async, spec.async)
			}
			if _, isStorage := storageProcs[info.Proc]; isStorage && info.Priority != spec.priority {
				t.Errorf("Priority = %v, want %v", info.Priority, spec.priority)
			}
			if info.Async && info.Priority {
				t.Errorf("async message marked priority")
			}
			if (info.NewArgs != nil) != spec.hasArgs {
				t.Errorf("has args = %v, want %v", info.NewArgs != nil, spec.hasArgs)
			}
			if (info.NewRet != nil) != spec.hasRet {
				t.Errorf("has ret = %v, want %v", info.NewRet != nil, spec.hasRet)
			}
			if !info.Async {
				if !strings.HasPrefix(info.API, "vir") {
					t.Errorf("API = %q, want a libvirt API name", info.API)
				}
				if spec.api != "" && info.API != spec.api {
					t.Errorf("API = %q, want %q", info.API, spec.api)
				}
			}
		})
	}
	var missing []int
	for p := range want {
		if !seen[p] {
			missing = append(missing, int(p))
		}
	}
	sort.Ints(missing)
	if len(missing) > 0 {
		t.Errorf("procedures of protocol.md missing from the table: %v", missing)
	}
}

// TestReadOnlyForbidden pins checklist item 10 of protocol.md independently of the big
// table: exactly these storage procedures are refused on a read-only connection,
// and of the secret ones GET_VALUE (virSecretGetValue checks the read-only flag).
func TestReadOnlyForbidden(t *testing.T) {
	forbidden := []int32{75, 76, 77, 78, 79, 80, 81, 82, 83, 90, 93, 94, 125, 145, 165, 208, 209, 259, 260}
	isForbidden := map[int32]bool{}
	for _, p := range forbidden {
		isForbidden[p] = true
		if info := remote.Lookup(p); info == nil || info.ReadOnly {
			t.Errorf("procedure %d must be refused on read-only connections", p)
		}
	}
	for i := range remote.Procedures {
		info := &remote.Procedures[i]
		if !isForbidden[info.Proc] && !info.ReadOnly && !info.Async {
			t.Errorf("procedure %d (%s) refused on read-only connections, protocol.md allows it", info.Proc, info.Name)
		}
	}
}

func TestLookupUnknown(t *testing.T) {
	tests := []struct {
		name string
		give int32
	}{
		{name: "zero", give: 0},
		{name: "negative", give: -1},
		{name: "gap between defined numbers", give: 8},
		{name: "secret procedure not served", give: 139},
		{name: "beyond the last", give: 420},
		{name: "probe's 9999", give: 9999},
		{name: "max int32", give: 1<<31 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := remote.Lookup(tt.give); got != nil {
				t.Errorf("remote.Lookup(%d) = %s, want nil", tt.give, got.Name)
			}
			if got := admin.Lookup(tt.give); got != nil && tt.give > 19 {
				t.Errorf("admin.Lookup(%d) = %s, want nil", tt.give, got.Name)
			}
		})
	}
}

// adminAPIs is protocol.md §h with the virAdm* API names.
var adminAPIs = map[int32]string{
	1: "virAdmConnectOpen", 2: "virAdmConnectClose", 3: "virAdmConnectGetLibVersion",
	4: "virAdmConnectListServers", 5: "virAdmConnectLookupServer",
	6: "virAdmServerGetThreadPoolParameters", 7: "virAdmServerSetThreadPoolParameters",
	8: "virAdmServerListClients", 9: "virAdmServerLookupClient", 10: "virAdmClientGetInfo",
	11: "virAdmClientClose", 12: "virAdmServerGetClientLimits", 13: "virAdmServerSetClientLimits",
	14: "virAdmConnectGetLoggingOutputs", 15: "virAdmConnectGetLoggingFilters",
	16: "virAdmConnectSetLoggingOutputs", 17: "virAdmConnectSetLoggingFilters",
	18: "virAdmServerUpdateTlsFiles", 19: "virAdmConnectSetDaemonTimeout",
}

func TestAdminDispatchTable(t *testing.T) {
	if len(admin.Procedures) != len(adminAPIs) {
		t.Errorf("%d admin procedures, protocol.md §h has %d", len(admin.Procedures), len(adminAPIs))
	}
	for i := range admin.Procedures {
		info := &admin.Procedures[i]
		if info.Program != progAdmin || info.Version != 1 {
			t.Errorf("%s: program %#x v%d, want %#x v1", info.Name, info.Program, info.Version, progAdmin)
		}
		if want := adminAPIs[info.Proc]; info.API != want {
			t.Errorf("%s: API %q, want %q", info.Name, info.API, want)
		}
		// The admin socket is root-only and has no read-only mode.
		if !info.ReadOnly || info.Async || info.Stream != xdr.StreamNone {
			t.Errorf("%s: ReadOnly=%v Async=%v Stream=%v, want true false none",
				info.Name, info.ReadOnly, info.Async, info.Stream)
		}
		if admin.Lookup(info.Proc) != info {
			t.Errorf("admin.Lookup(%d) does not return its row", info.Proc)
		}
	}
}

func TestKeepaliveTable(t *testing.T) {
	for _, proc := range []int32{1, 2} {
		info := keepalive.Lookup(proc)
		if info == nil {
			t.Fatalf("keepalive.Lookup(%d) = nil", proc)
		}
		if info.Program != progKeepalive || !info.Async || info.NewArgs != nil || info.NewRet != nil {
			t.Errorf("keepalive %d: %+v, want an async void message of program %#x", proc, *info, progKeepalive)
		}
	}
	if len(keepalive.Procedures) != 2 {
		t.Errorf("%d keepalive procedures, want PING and PONG", len(keepalive.Procedures))
	}
}
