package genroundtrip_test

import (
	"context"
	"errors"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/gen/keepalive"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/internal/genroundtrip"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name         string
		give         int32
		wantName     string
		wantAPI      string
		wantReadOnly bool
		wantStream   xdr.StreamDir
		wantAsync    bool
		wantArgs     bool
		wantRet      bool
		wantNil      bool
	}{
		{name: "lookup by name", give: 84, wantName: "REMOTE_PROC_STORAGE_POOL_LOOKUP_BY_NAME", wantAPI: "virStoragePoolLookupByName", wantReadOnly: true, wantArgs: true, wantRet: true},
		{name: "define xml", give: 77, wantName: "REMOTE_PROC_STORAGE_POOL_DEFINE_XML", wantAPI: "virStoragePoolDefineXML", wantArgs: true, wantRet: true},
		{name: "upload", give: 208, wantName: "REMOTE_PROC_STORAGE_VOL_UPLOAD", wantAPI: "virStorageVolUpload", wantStream: xdr.StreamUpload, wantArgs: true},
		{name: "download", give: 209, wantName: "REMOTE_PROC_STORAGE_VOL_DOWNLOAD", wantAPI: "virStorageVolDownload", wantStream: xdr.StreamDownload, wantArgs: true},
		{name: "event", give: 370, wantName: "REMOTE_PROC_STORAGE_POOL_EVENT_LIFECYCLE", wantAsync: true, wantArgs: true, wantReadOnly: false},
		{name: "negative", give: -1, wantNil: true},
		{name: "gap", give: 2000, wantNil: true},
		{name: "huge", give: 1 << 30, wantNil: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := remote.Lookup(tt.give)
			if tt.wantNil {
				if got != nil {
					t.Fatalf("Lookup(%d) = %+v, want nil", tt.give, got)
				}
				return
			}
			if got == nil {
				t.Fatalf("Lookup(%d) = nil", tt.give)
			}
			if got.Name != tt.wantName || (tt.wantAPI != "" && got.API != tt.wantAPI) || got.ReadOnly != tt.wantReadOnly ||
				got.Stream != tt.wantStream || got.Async != tt.wantAsync || (got.NewArgs != nil) != tt.wantArgs || (got.NewRet != nil) != tt.wantRet {
				t.Errorf("Lookup(%d) = %+v", tt.give, got)
			}
			if got.Program != remote.Program || got.Version != remote.ProtocolVersion || got.Proc != tt.give {
				t.Errorf("program/version/proc = %#x/%d/%d", got.Program, got.Version, got.Proc)
			}
		})
	}
}

func TestProceduresConsistent(t *testing.T) {
	tables := map[string]struct {
		procs  []xdr.ProcInfo
		lookup func(int32) *xdr.ProcInfo
	}{
		"remote":    {remote.Procedures, remote.Lookup},
		"admin":     {admin.Procedures, admin.Lookup},
		"keepalive": {keepalive.Procedures, keepalive.Lookup},
	}
	for name, tb := range tables {
		if len(tb.procs) == 0 {
			t.Errorf("%s: empty table", name)
		}
		for i := range tb.procs {
			p := &tb.procs[i]
			if tb.lookup(p.Proc) != p {
				t.Errorf("%s: Lookup(%d) is not Procedures[%d]", name, p.Proc, i)
			}
			if p.API == "" && !p.Async {
				t.Errorf("%s: %s has no @api", name, p.Name)
			}
			for _, mk := range []func() xdr.Message{p.NewArgs, p.NewRet} {
				if mk != nil && mk() == nil {
					t.Errorf("%s: %s constructor returned nil", name, p.Name)
				}
			}
		}
	}
	if p := keepalive.Lookup(int32(keepalive.ProcPing)); p == nil || !p.Async {
		t.Errorf("keepalive PING = %+v, want an async message", p)
	}
}

type fakeServer struct {
	remote.UnimplementedServer
	gotName   string
	gotStream xdr.Stream
}

func (s *fakeServer) StoragePoolGetInfo(context.Context, *remote.StoragePoolGetInfoArgs) (*remote.StoragePoolGetInfoRet, error) {
	return nil, nil // a handler bug: Dispatch must not hand back a typed nil
}

func (s *fakeServer) StoragePoolLookupByName(_ context.Context, args *remote.StoragePoolLookupByNameArgs) (*remote.StoragePoolLookupByNameRet, error) {
	s.gotName = args.Name
	return &remote.StoragePoolLookupByNameRet{Pool: remote.StoragePool{Name: args.Name, UUID: remote.UUID{1}}}, nil
}

func (s *fakeServer) StorageVolUpload(_ context.Context, _ *remote.StorageVolUploadArgs, st xdr.Stream) error {
	s.gotStream = st
	return nil
}

type nopStream struct{ xdr.Stream }

func encodeArgs(t *testing.T, m xdr.Message) *xdr.Decoder {
	t.Helper()
	b, err := genroundtrip.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return xdr.NewDecoder(b)
}

func TestDispatch(t *testing.T) {
	ctx := context.Background()
	srv := &fakeServer{}

	ret, err := remote.Dispatch(ctx, srv, int32(remote.ProcStoragePoolLookupByName), encodeArgs(t, &remote.StoragePoolLookupByNameArgs{Name: "p1"}), nil)
	if err != nil || srv.gotName != "p1" {
		t.Fatalf("lookup: %v, server saw %q", err, srv.gotName)
	}
	if r, ok := ret.(*remote.StoragePoolLookupByNameRet); !ok || r.Pool.Name != "p1" {
		t.Errorf("lookup returned %#v", ret)
	}

	st := nopStream{}
	ret, err = remote.Dispatch(ctx, srv, int32(remote.ProcStorageVolUpload), encodeArgs(t, &remote.StorageVolUploadArgs{}), st)
	if err != nil || ret != nil || srv.gotStream != st {
		t.Errorf("upload: ret %v err %v stream %v", ret, err, srv.gotStream)
	}

	_, err = remote.Dispatch(ctx, srv, int32(remote.ProcStoragePoolLookupByName), xdr.NewDecoder([]byte{0, 0, 0, 9, 'a'}), nil)
	var de *xdr.DecodeError
	if !errors.As(err, &de) || de.Proc != 84 {
		t.Errorf("short args: %v, want *xdr.DecodeError for 84", err)
	}

	_, err = remote.Dispatch(ctx, srv, int32(remote.ProcStoragePoolDefineXML), encodeArgs(t, &remote.StoragePoolDefineXMLArgs{XML: "<pool/>"}), nil)
	var ue *xdr.UnsupportedError
	if !errors.As(err, &ue) || ue.API != "virStoragePoolDefineXML" {
		t.Errorf("unimplemented: %v, want UnsupportedError for virStoragePoolDefineXML", err)
	}

	ret, err = remote.Dispatch(ctx, srv, int32(remote.ProcStoragePoolGetInfo), encodeArgs(t, &remote.StoragePoolGetInfoArgs{}), nil)
	if !errors.Is(err, xdr.ErrNoReply) || ret != nil {
		t.Errorf("nil reply: %v, %v; want ErrNoReply", ret, err)
	}

	for _, proc := range []int32{-1, 9999, int32(remote.ProcStoragePoolEventLifecycle)} {
		if _, err := remote.Dispatch(ctx, srv, proc, xdr.NewDecoder(nil), nil); !errors.Is(err, xdr.ErrUnknownProcedure) {
			t.Errorf("proc %d: %v, want ErrUnknownProcedure", proc, err)
		}
	}
}

func TestProcedureString(t *testing.T) {
	if got := remote.ProcStorageVolCreateXMLFrom.String(); got != "REMOTE_PROC_STORAGE_VOL_CREATE_XML_FROM" {
		t.Errorf("String() = %q", got)
	}
	if got := remote.Procedure(99999).String(); got != "Procedure(99999)" {
		t.Errorf("String() of unknown = %q", got)
	}
}
