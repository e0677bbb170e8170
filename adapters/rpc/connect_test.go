package rpc_test

import (
	"errors"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
)

func TestReadOnlyRefusals(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	modes := []struct {
		name      string
		givePath  func() string
		giveFlags uint32
	}{
		{name: "ro socket", givePath: func() string { return d.ro }},
		{name: "open flag", givePath: func() string { return d.rw }, giveFlags: 1},
	}
	var writers []remote.Procedure
	for _, p := range remote.Procedures {
		if !p.ReadOnly && !p.Async {
			writers = append(writers, remote.Procedure(p.Proc))
		}
	}
	// protocol.md's 18 storage writers, and the secret driver's GET_VALUE.
	if len(writers) != 19 {
		t.Fatalf("%d write procedures in the table, protocol.md lists 18 and GET_VALUE makes 19", len(writers))
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			r := dialRaw(t, m.givePath())
			r.open(m.giveFlags)
			for i, proc := range writers {
				info := remote.Lookup(int32(proc))
				// No arguments at all: the refusal must come before decoding.
				r.call(int32(proc), uint32(100+i), nil)
				h, p := r.recv()
				if h.Status != virnet.MessageStatusError {
					t.Errorf("%s: accepted on a read-only connection", info.Name)
					continue
				}
				e := decodeErr(t, p)
				want := "operation forbidden: read only access prevents " + info.API
				wantDomain := int32(18)
				if proc == remote.ProcSecretGetValue {
					wantDomain = 30
				}
				if e.Code != 29 || e.Domain != wantDomain || optStr(e.Message) != want || optStr(e.Str1) != "operation forbidden: %s" {
					t.Errorf("%s: %d/%d %q (str1 %q), want 29/%d %q", info.Name, e.Code, e.Domain, optStr(e.Message), optStr(e.Str1), wantDomain, want)
				}
			}
			// Readers and event registration stay allowed.
			r.call(int32(remote.ProcStoragePoolLookupByName), 1, &remote.StoragePoolLookupByNameArgs{Name: "default"})
			if h, p := r.recv(); h.Status != virnet.MessageStatusOk {
				t.Errorf("lookup refused: %v", decodeErr(t, p))
			}
			r.call(int32(remote.ProcConnectStoragePoolEventRegisterAny), 2, &remote.ConnectStoragePoolEventRegisterAnyArgs{EventID: 0})
			if h, p := r.recv(); h.Status != virnet.MessageStatusOk {
				t.Errorf("event register refused: %v", decodeErr(t, p))
			}
		})
	}
}

func TestConnectOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		giveName       remote.OptString
		givePrivileged bool
		wantCode       int32
		wantDomain     int32
		wantMsg        string
		wantURI        string
	}{
		{name: "system as root", giveName: remote.OptString{"storage:///system"}, givePrivileged: true, wantURI: "storage:///system"},
		{name: "null name", givePrivileged: true, wantURI: "storage:///system"},
		{name: "null name unprivileged", wantURI: "storage:///session"},
		{name: "session unprivileged", giveName: remote.OptString{"storage:///session"}, wantURI: "storage:///session"},
		{name: "session as root", giveName: remote.OptString{"storage:///session"}, givePrivileged: true,
			wantCode: 1, wantDomain: 0, wantMsg: "internal error: unexpected storage URI path '/session', try storage:///system"},
		{name: "system unprivileged", giveName: remote.OptString{"storage:///system"},
			wantCode: 1, wantDomain: 0, wantMsg: "internal error: unexpected storage URI path '/system', try storage:///session"},
		{name: "bogus scheme", giveName: remote.OptString{"bogus:///system"}, givePrivileged: true,
			wantCode: 5, wantDomain: 0, wantMsg: "no connection driver available for bogus:///system"},
		{name: "qemu", giveName: remote.OptString{"qemu:///system"}, givePrivileged: true,
			wantCode: 5, wantDomain: 0, wantMsg: "no connection driver available for qemu:///system"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := startDaemon(t, func(c *rpc.Config) { c.Privileged = tt.givePrivileged })
			cl := d.client(t, d.rw, "", 0)
			err := cl.ConnectOpen(ctx5(t), &remote.ConnectOpenArgs{Name: tt.giveName})
			if tt.wantMsg != "" {
				var e *virnet.Error
				if !errors.As(err, &e) || e.Code != tt.wantCode || e.Domain != tt.wantDomain || optStr(e.Message) != tt.wantMsg {
					t.Fatalf("err = %v (%+v), want %d/%d %q", err, e, tt.wantCode, tt.wantDomain, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ret, err := cl.ConnectGetURI(ctx5(t))
			if err != nil || ret.URI != tt.wantURI {
				t.Fatalf("GET_URI = %+v, %v, want %q", ret, err, tt.wantURI)
			}
			err = cl.ConnectOpen(ctx5(t), &remote.ConnectOpenArgs{Name: tt.giveName})
			var e *virnet.Error
			if !errors.As(err, &e) || e.Code != 1 || e.Domain != 7 || optStr(e.Message) != "internal error: connection already open" {
				t.Errorf("second open: %v", err)
			}
		})
	}
}

func TestConnectProcedures(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	cl := d.client(t, d.rw, "storage:///system", 0)
	ctx := ctx5(t)

	if r, err := cl.ConnectGetType(ctx); err != nil || r.Type != "storage" {
		t.Errorf("GET_TYPE = %+v, %v", r, err)
	}
	if r, err := cl.ConnectGetLibVersion(ctx); err != nil || r.LibVer != 9000000 {
		t.Errorf("GET_LIB_VERSION = %+v, %v", r, err)
	}
	if r, err := cl.ConnectIsSecure(ctx); err != nil || r.Secure != 1 {
		t.Errorf("IS_SECURE = %+v, %v", r, err)
	}
	if r, err := cl.AuthList(ctx); err != nil || len(r.Types) != 1 || r.Types[0] != 0 {
		t.Errorf("AUTH_LIST = %+v, %v", r, err)
	}
	if r, err := cl.ConnectGetCapabilities(ctx); err != nil || r.Capabilities != "<capabilities/>" {
		t.Errorf("GET_CAPABILITIES = %+v, %v", r, err)
	}
	if r, err := cl.ConnectGetStoragePoolCapabilities(ctx, &remote.ConnectGetStoragePoolCapabilitiesArgs{}); err != nil || r.Capabilities == "" {
		t.Errorf("GET_STORAGE_POOL_CAPABILITIES = %+v, %v", r, err)
	}
	for i := 0; i < 2; i++ {
		if err := cl.ConnectRegisterCloseCallback(ctx); err != nil {
			t.Errorf("REGISTER_CLOSE_CALLBACK: %v", err)
		}
		if err := cl.ConnectUnregisterCloseCallback(ctx); err != nil {
			t.Errorf("UNREGISTER_CLOSE_CALLBACK: %v", err)
		}
	}
	if err := cl.ConnectSetIdentity(ctx, &remote.ConnectSetIdentityArgs{}); err != nil {
		t.Errorf("SET_IDENTITY: %v", err)
	}
	features := []struct {
		give int32
		want int32
	}{{10, 1}, {14, 1}, {15, 1}, {8, 1}, {0, 0}, {9, 0}, {16, 0}, {99, 0}, {-1, 0}}
	for _, f := range features {
		r, err := cl.ConnectSupportsFeature(ctx, &remote.ConnectSupportsFeatureArgs{Feature: f.give})
		if err != nil || r.Supported != f.want {
			t.Errorf("SUPPORTS_FEATURE(%d) = %+v, %v, want %d", f.give, r, err, f.want)
		}
	}
	unsupported := []struct {
		name string
		call func() error
		api  string
	}{
		{"GET_VERSION", func() error { _, err := cl.ConnectGetVersion(ctx); return err }, "virConnectGetVersion"},
		{"GET_HOSTNAME", func() error { _, err := cl.ConnectGetHostname(ctx); return err }, "virConnectGetHostname"},
		{"NODE_GET_INFO", func() error { _, err := cl.NodeGetInfo(ctx); return err }, "virNodeGetInfo"},
		{"GET_SYSINFO", func() error { _, err := cl.ConnectGetSysinfo(ctx, &remote.ConnectGetSysinfoArgs{}); return err }, "virConnectGetSysinfo"},
		{"LIST_ALL_DOMAINS", func() error {
			_, err := cl.ConnectListAllDomains(ctx, &remote.ConnectListAllDomainsArgs{})
			return err
		}, "virConnectListAllDomains"},
	}
	for _, u := range unsupported {
		var e *virnet.Error
		err := u.call()
		if !errors.As(err, &e) || e.Code != 3 || e.Domain != 20 ||
			optStr(e.Message) != "this function is not supported by the connection driver: "+u.api {
			t.Errorf("%s: %v (%+v)", u.name, err, e)
		}
	}
}

func TestConnectCloseHangsUp(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	r := dialRaw(t, d.rw)
	r.open(0)
	r.call(int32(remote.ProcConnectClose), 3, nil)
	if h, _ := r.recv(); h.Serial != 3 || h.Status != virnet.MessageStatusOk {
		t.Fatalf("CONNECT_CLOSE reply %+v", h)
	}
	r.expectClosed()
}

func TestStorageProcedures(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	cl := d.client(t, d.rw, "storage:///system", 0)
	ctx := ctx5(t)

	all, err := cl.ConnectListAllStoragePools(ctx, &remote.ConnectListAllStoragePoolsArgs{NeedResults: 1})
	if err != nil || all.Ret != 3 || len(all.Pools) != 3 || all.Pools[0].Name != "default" {
		t.Fatalf("LIST_ALL = %+v, %v", all, err)
	}
	count, err := cl.ConnectListAllStoragePools(ctx, &remote.ConnectListAllStoragePoolsArgs{NeedResults: 0})
	if err != nil || count.Ret != 3 || len(count.Pools) != 0 {
		t.Fatalf("LIST_ALL count only = %+v, %v", count, err)
	}
	p, err := cl.StoragePoolLookupByName(ctx, &remote.StoragePoolLookupByNameArgs{Name: "images"})
	if err != nil {
		t.Fatal(err)
	}
	byUUID, err := cl.StoragePoolLookupByUUID(ctx, &remote.StoragePoolLookupByUUIDArgs{UUID: p.Pool.UUID})
	if err != nil || byUUID.Pool != p.Pool {
		t.Fatalf("LOOKUP_BY_UUID = %+v, %v", byUUID, err)
	}
	info, err := cl.StoragePoolGetInfo(ctx, &remote.StoragePoolGetInfoArgs{Pool: p.Pool})
	if err != nil || info.State != 2 || info.Capacity != 1<<30 {
		t.Fatalf("GET_INFO = %+v, %v", info, err)
	}
	if err := cl.StoragePoolSetAutostart(ctx, &remote.StoragePoolSetAutostartArgs{Pool: p.Pool, Autostart: 1}); err != nil {
		t.Fatal(err)
	}
	if a, err := cl.StoragePoolGetAutostart(ctx, &remote.StoragePoolGetAutostartArgs{Pool: p.Pool}); err != nil || a.Autostart != 1 {
		t.Fatalf("GET_AUTOSTART = %+v, %v", a, err)
	}
	names, err := cl.ConnectListStoragePools(ctx, &remote.ConnectListStoragePoolsArgs{Maxnames: 2})
	if err != nil || len(names.Names) != 2 {
		t.Fatalf("LIST_STORAGE_POOLS = %+v, %v", names, err)
	}
	vol, err := cl.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: p.Pool, XML: "new.img"})
	if err != nil || vol.Vol.Name != "new.img" || vol.Vol.Pool != "images" {
		t.Fatalf("VOL_CREATE_XML = %+v, %v", vol, err)
	}
	_, err = cl.StorageVolCreateXML(ctx, &remote.StorageVolCreateXMLArgs{Pool: p.Pool, XML: "new.img"})
	var e *virnet.Error
	if !errors.As(err, &e) || e.Code != 90 || e.Domain != 18 || optStr(e.Message) != "storage volume 'new.img' exists already" {
		t.Fatalf("duplicate VOL_CREATE_XML: %v", err)
	}
	vols, err := cl.StoragePoolListAllVolumes(ctx, &remote.StoragePoolListAllVolumesArgs{Pool: p.Pool, NeedResults: 1})
	if err != nil || vols.Ret != 2 || vols.Vols[1].Name != "new.img" {
		t.Fatalf("LIST_ALL_VOLUMES = %+v, %v", vols, err)
	}
	path, err := cl.StorageVolGetPath(ctx, &remote.StorageVolGetPathArgs{Vol: vol.Vol})
	if err != nil || path.Name != "/pools/images/new.img" {
		t.Fatalf("VOL_GET_PATH = %+v, %v", path, err)
	}
	if err := cl.StorageVolWipePattern(ctx, &remote.StorageVolWipePatternArgs{Vol: vol.Vol, Algorithm: 99}); !errors.As(err, &e) ||
		e.Code != 8 || optStr(e.Message) != "invalid argument: wiping algorithm 99 not supported" {
		t.Fatalf("VOL_WIPE_PATTERN 99: %v", err)
	}
	if err := cl.StorageVolDelete(ctx, &remote.StorageVolDeleteArgs{Vol: vol.Vol}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StorageVolGetInfo(ctx, &remote.StorageVolGetInfoArgs{Vol: vol.Vol}); !errors.As(err, &e) || e.Code != 50 {
		t.Fatalf("VOL_GET_INFO of deleted: %v", err)
	}
	if _, err := cl.ConnectFindStoragePoolSources(ctx, &remote.ConnectFindStoragePoolSourcesArgs{Type: "dir"}); !errors.As(err, &e) ||
		e.Code != 3 || e.Domain != 18 {
		t.Fatalf("FIND_STORAGE_POOL_SOURCES dir: %v", err)
	}
}

// TestSecretProceduresNotServed: the daemon reads secrets as a client of
// libvirt's secret driver but does not serve the secret API, which it answers
// as libvirtd's storage:///system connection does (measured): "not supported"
// in the secret error domain, and GET_VALUE refused on a read-only connection
// before that, in the same domain.
func TestSecretProceduresNotServed(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	ctx := ctx5(t)
	cl := d.client(t, d.rw, "storage:///system", 0)
	secret := remote.Secret{UsageType: 1, UsageID: "/x"}
	calls := []struct {
		name string
		call func(cl *remote.Client) error
		api  string
	}{
		{"LOOKUP_BY_UUID", func(cl *remote.Client) error {
			_, err := cl.SecretLookupByUUID(ctx, &remote.SecretLookupByUUIDArgs{})
			return err
		}, "virSecretLookupByUUID"},
		{"LOOKUP_BY_USAGE", func(cl *remote.Client) error {
			_, err := cl.SecretLookupByUsage(ctx, &remote.SecretLookupByUsageArgs{UsageType: 1, UsageID: "/x"})
			return err
		}, "virSecretLookupByUsage"},
		{"GET_VALUE", func(cl *remote.Client) error {
			_, err := cl.SecretGetValue(ctx, &remote.SecretGetValueArgs{Secret: secret})
			return err
		}, "virSecretGetValue"},
		{"LIST_ALL_SECRETS", func(cl *remote.Client) error {
			_, err := cl.ConnectListAllSecrets(ctx, &remote.ConnectListAllSecretsArgs{NeedResults: 1})
			return err
		}, "virConnectListAllSecrets"},
	}
	for _, c := range calls {
		var e *virnet.Error
		err := c.call(cl)
		if !errors.As(err, &e) || e.Code != 3 || e.Domain != 30 ||
			optStr(e.Message) != "this function is not supported by the connection driver: "+c.api {
			t.Errorf("%s: %v (%+v)", c.name, err, e)
		}
	}
	ro := d.client(t, d.rw, "storage:///system", 1)
	var e *virnet.Error
	err := calls[2].call(ro)
	if !errors.As(err, &e) || e.Code != 29 || e.Domain != 30 ||
		optStr(e.Message) != "operation forbidden: read only access prevents virSecretGetValue" {
		t.Errorf("GET_VALUE read-only: %v (%+v)", err, e)
	}
}
