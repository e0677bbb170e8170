package protocoltest_test

import (
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// TestLimitConstants pins the sizes of protocol.md §a and §i; several differ from old
// protocol texts (32 MiB messages, 16384-entry lists), so a regression is easy to make.
func TestLimitConstants(t *testing.T) {
	tests := []struct {
		name string
		give int64
		want int64
	}{
		{name: "VIR_NET_MESSAGE_MAX", give: virnet.MessageMax, want: 33554432},
		{name: "VIR_NET_MESSAGE_HEADER_MAX", give: virnet.MessageHeaderMax, want: 24},
		{name: "VIR_NET_MESSAGE_PAYLOAD_MAX", give: virnet.MessagePayloadMax, want: 33554408},
		{name: "VIR_NET_MESSAGE_LEN_MAX", give: virnet.MessageLenMax, want: 4},
		{name: "VIR_NET_MESSAGE_INITIAL", give: virnet.MessageInitial, want: 65536},
		{name: "VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX", give: virnet.MessageLegacyPayloadMax, want: 262120},
		{name: "VIR_NET_MESSAGE_STRING_MAX", give: virnet.MessageStringMax, want: 4194304},
		{name: "VIR_NET_MESSAGE_NUM_FDS_MAX", give: virnet.MessageNumFdsMax, want: 32},
		{name: "payload max = message max - header", give: virnet.MessagePayloadMax, want: virnet.MessageMax - virnet.MessageHeaderMax},
		{name: "runtime MaxFrameLen = message max + length word", give: xdr.MaxFrameLen, want: virnet.MessageMax + virnet.MessageLenMax},
		{name: "runtime HeaderSize", give: xdr.HeaderSize, want: virnet.MessageHeaderMax},
		{name: "REMOTE_PROGRAM", give: int64(remote.Program), want: 0x20008086},
		{name: "REMOTE_STRING_MAX", give: remote.StringMax, want: 4194304},
		{name: "REMOTE_STORAGE_POOL_LIST_MAX", give: remote.StoragePoolListMax, want: 16384},
		{name: "REMOTE_STORAGE_VOL_LIST_MAX", give: remote.StorageVolListMax, want: 16384},
		{name: "REMOTE_AUTH_TYPE_LIST_MAX", give: remote.AuthTypeListMax, want: 20},
		{name: "REMOTE_CONNECT_IDENTITY_PARAMS_MAX", give: remote.ConnectIdentityParamsMax, want: 20},
		{name: "ADMIN_PROGRAM", give: int64(admin.Program), want: 0x06900690},
		{name: "ADMIN_STRING_MAX", give: admin.StringMax, want: 4194304},
		{name: "ADMIN_SERVER_LIST_MAX", give: admin.ServerListMax, want: 16384},
		{name: "ADMIN_CLIENT_LIST_MAX", give: admin.ClientListMax, want: 16384},
		{name: "ADMIN_SERVER_THREADPOOL_PARAMETERS_MAX", give: admin.ServerThreadpoolParametersMax, want: 32},
		{name: "ADMIN_CLIENT_INFO_PARAMETERS_MAX", give: admin.ClientInfoParametersMax, want: 64},
		{name: "ADMIN_SERVER_CLIENT_LIMITS_MAX", give: admin.ServerClientLimitsMax, want: 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.give != tt.want {
				t.Errorf("got %d, want %d", tt.give, tt.want)
			}
		})
	}
}

// listOf returns an XDR array of n empty-named pools (20 bytes each) plus the ret count.
func listOf(n int) []byte {
	w := &wire{}
	w.u32(uint32(n))
	for i := 0; i < n; i++ {
		w.pool("", make([]byte, 16))
	}
	return w.u32(uint32(n)).b
}

// typedParams returns an XDR array of n UINT typed parameters.
func typedParams(n int) []byte {
	w := &wire{}
	w.u32(uint32(n))
	for i := 0; i < n; i++ {
		w.uintParam("p", uint32(i))
	}
	return w.b
}

// TestBounds checks that every bound libvirt enforces is enforced when decoding what a
// peer sent ("Unable to decode message payload") and that the limit itself still passes.
func TestBounds(t *testing.T) {
	longName := func(n int) []byte { return (&wire{}).str(strings.Repeat("a", n)).b }
	tests := []struct {
		name    string
		give    []byte
		mk      func() xdr.Message
		wantErr bool
	}{
		{name: "pool list at 16384", give: listOf(16384), mk: func() xdr.Message { return new(remote.ConnectListAllStoragePoolsRet) }},
		{name: "pool list at 16385", give: listOf(16385), mk: func() xdr.Message { return new(remote.ConnectListAllStoragePoolsRet) }, wantErr: true},
		{name: "name at REMOTE_STRING_MAX", give: longName(4194304), mk: func() xdr.Message { return new(remote.StoragePoolLookupByNameArgs) }},
		{name: "name one byte over", give: longName(4194305), mk: func() xdr.Message { return new(remote.StoragePoolLookupByNameArgs) }, wantErr: true},
		{name: "auth types at 20", give: append((&wire{}).u32(20).b, make([]byte, 80)...), mk: func() xdr.Message { return new(remote.AuthListRet) }},
		{name: "auth types at 21", give: append((&wire{}).u32(21).b, make([]byte, 84)...), mk: func() xdr.Message { return new(remote.AuthListRet) }, wantErr: true},
		{name: "identity params at 20", give: append(typedParams(20), 0, 0, 0, 0), mk: func() xdr.Message { return new(remote.ConnectSetIdentityArgs) }},
		{name: "identity params at 21", give: append(typedParams(21), 0, 0, 0, 0), mk: func() xdr.Message { return new(remote.ConnectSetIdentityArgs) }, wantErr: true},
		{name: "threadpool params at 32", give: typedParams(32), mk: func() xdr.Message { return new(admin.ServerGetThreadpoolParametersRet) }},
		{name: "threadpool params at 33", give: typedParams(33), mk: func() xdr.Message { return new(admin.ServerGetThreadpoolParametersRet) }, wantErr: true},
		{name: "client info params at 64", give: typedParams(64), mk: func() xdr.Message { return new(admin.ClientGetInfoRet) }},
		{name: "client info params at 65", give: typedParams(65), mk: func() xdr.Message { return new(admin.ClientGetInfoRet) }, wantErr: true},
		{name: "truncated args (probe: 2 bytes)", give: []byte{0, 0}, mk: func() xdr.Message { return new(remote.StoragePoolLookupByNameArgs) }, wantErr: true},
		{name: "string longer than the payload", give: (&wire{}).u32(100).str("ab").b, mk: func() xdr.Message { return new(remote.StoragePoolLookupByNameArgs) }, wantErr: true},
		{name: "huge array count, few bytes", give: (&wire{}).u32(0x7fffffff).b, mk: func() xdr.Message { return new(remote.StoragePoolListAllVolumesRet) }, wantErr: true},
		{name: "typed param type 0", give: (&wire{}).u32(1).str("f").i32(0).i32(0).u32(0).b, mk: func() xdr.Message { return new(remote.ConnectSetIdentityArgs) }, wantErr: true},
		{name: "typed param type 8", give: (&wire{}).u32(1).str("f").i32(8).i32(0).u32(0).b, mk: func() xdr.Message { return new(remote.ConnectSetIdentityArgs) }, wantErr: true},
		{name: "typed param DOUBLE", give: (&wire{}).u32(1).str("f").i32(5).u64(0x400921fb54442d18).u32(0).b, mk: func() xdr.Message { return new(remote.ConnectSetIdentityArgs) }},
		{name: "typed param LLONG", give: (&wire{}).u32(1).str("f").i32(3).i64(-5).b, mk: func() xdr.Message { return new(admin.ClientGetInfoRet) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.mk()
			err := m.Decode(xdr.NewDecoder(tt.give))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Decode error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// TestEncodeRefusesOversize: we must never put on the wire what libvirt would reject.
func TestEncodeRefusesOversize(t *testing.T) {
	tests := []struct {
		name    string
		give    xdr.Message
		wantErr bool
	}{
		{name: "16384 pools", give: &remote.ConnectListAllStoragePoolsRet{Pools: make([]remote.StoragePool, 16384)}},
		{name: "16385 pools", give: &remote.ConnectListAllStoragePoolsRet{Pools: make([]remote.StoragePool, 16385)}, wantErr: true},
		{name: "16385 volumes", give: &remote.StoragePoolListAllVolumesRet{Vols: make([]remote.StorageVol, 16385)}, wantErr: true},
		{name: "XML at REMOTE_STRING_MAX", give: &remote.StorageVolGetXMLDescRet{XML: strings.Repeat("x", 4194304)}},
		{name: "XML over REMOTE_STRING_MAX", give: &remote.StorageVolGetXMLDescRet{XML: strings.Repeat("x", 4194305)}, wantErr: true},
		{name: "error message over the string max", give: &virnet.Error{Message: virnet.OptString{strings.Repeat("x", 4194305)}}, wantErr: true},
		{name: "33 threadpool params", give: &admin.ServerGetThreadpoolParametersRet{Params: make([]admin.TypedParam, 33)}, wantErr: true},
		{name: "optional with two elements", give: &remote.ConnectOpenArgs{Name: remote.OptString{"a", "b"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Typed params need a valid discriminant; zero values have none.
			if r, ok := tt.give.(*admin.ServerGetThreadpoolParametersRet); ok {
				for i := range r.Params {
					r.Params[i].Value.Type = admin.TypedParamUint
				}
			}
			err := tt.give.Encode(xdr.NewEncoder(nil))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Encode error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// TestOptionalDiscriminant: libvirt reads any non-zero pointer discriminant as present
// (measured with 0x01000000 and 2), go-libvirt depends on it.
func TestOptionalDiscriminant(t *testing.T) {
	tests := []struct {
		name     string
		giveDisc uint32
		wantName []string
	}{
		{name: "absent", giveDisc: 0, wantName: nil},
		{name: "canonical", giveDisc: 1, wantName: []string{"storage:///system"}},
		{name: "two", giveDisc: 2, wantName: []string{"storage:///system"}},
		{name: "go-libvirt little-endian one", giveDisc: 0x01000000, wantName: []string{"storage:///system"}},
		{name: "all ones", giveDisc: 0xffffffff, wantName: []string{"storage:///system"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := (&wire{}).u32(tt.giveDisc)
			if tt.wantName != nil {
				w.str(tt.wantName[0])
			}
			var args remote.ConnectOpenArgs
			d := xdr.NewDecoder(w.u32(0).b)
			if err := args.Decode(d); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if d.Remaining() != 0 {
				t.Errorf("%d bytes left", d.Remaining())
			}
			if len(args.Name) != len(tt.wantName) || (len(args.Name) == 1 && args.Name[0] != tt.wantName[0]) {
				t.Errorf("Name = %q, want %q", args.Name, tt.wantName)
			}
		})
	}
}
