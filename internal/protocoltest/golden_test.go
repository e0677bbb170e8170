package protocoltest_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/gen/keepalive"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// lookupProc finds the dispatch row of a procedure in the program it belongs to.
func lookupProc(prog uint32, proc int32) *xdr.ProcInfo {
	switch prog {
	case progRemote:
		return remote.Lookup(proc)
	case progAdmin:
		return admin.Lookup(proc)
	case progKeepalive:
		return keepalive.Lookup(proc)
	}
	return nil
}

// bodyFor returns an empty value of the payload type a message with this header carries,
// or nil when the payload is empty (void procedures, keepalive, stream control packets).
func bodyFor(t testing.TB, h *virnet.MessageHeader) xdr.Message {
	t.Helper()
	typ, status := int32(h.Type), int32(h.Status)
	if status == statusError && (typ == typeReply || typ == typeStream) {
		return &virnet.Error{}
	}
	if typ == typeStreamHole {
		return &virnet.StreamHole{}
	}
	info := lookupProc(h.Prog, h.Proc)
	if info == nil {
		t.Fatalf("no procedure %d in program %#x", h.Proc, h.Prog)
	}
	newBody := info.NewArgs
	switch typ {
	case typeReply:
		newBody = info.NewRet
	case typeMessage:
		// The async body may be registered on either side; only one is set.
		if info.NewRet != nil {
			newBody = info.NewRet
		}
	case typeStream:
		return nil
	}
	if newBody == nil {
		return nil
	}
	return newBody()
}

// decodeFrame decodes a complete frame (length word included) into its header and body,
// failing the test unless every byte was consumed.
func decodeFrame(t testing.TB, frame []byte) (*virnet.MessageHeader, xdr.Message) {
	t.Helper()
	if len(frame) < 28 {
		t.Fatalf("frame of %d bytes is shorter than length word + header", len(frame))
	}
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame) {
		t.Fatalf("length word %d, frame has %d bytes", n, len(frame))
	}
	d := xdr.NewDecoder(frame[4:])
	h := &virnet.MessageHeader{}
	if err := h.Decode(d); err != nil {
		t.Fatalf("decode header: %v", err)
	}
	body := bodyFor(t, h)
	if body != nil {
		if err := body.Decode(d); err != nil {
			t.Fatalf("decode %T: %v", body, err)
		}
	}
	if d.Remaining() != 0 {
		t.Fatalf("%d bytes left after decoding %T", d.Remaining(), body)
	}
	return h, body
}

// encodeFrame is the inverse of decodeFrame.
func encodeFrame(t testing.TB, h *virnet.MessageHeader, body xdr.Message) []byte {
	t.Helper()
	e := xdr.NewEncoder(nil)
	off := xdr.StartFrame(e)
	if err := h.Encode(e); err != nil {
		t.Fatalf("encode header: %v", err)
	}
	if body != nil {
		if err := body.Encode(e); err != nil {
			t.Fatalf("encode %T: %v", body, err)
		}
	}
	if err := xdr.FinishFrame(e, off, xdr.MaxFrameLen); err != nil {
		t.Fatalf("finish frame: %v", err)
	}
	return e.Bytes()
}

type frameCase struct {
	name string
	// giveFrame is the complete message, length word included.
	giveFrame []byte
	// wantPayloadLen is the payload size libvirtd put on the wire ("len=" in the trace),
	// or -1 when the fixture is literal bytes from protocol.md.
	wantPayloadLen int
	wantHeader     hdr
	wantFields     map[string]any
	// wantReencoded is what our encoder must produce; nil means giveFrame itself.
	wantReencoded []byte
}

// Values recorded in shared/docs/traces and protocol.md.
const (
	errNoPoolMsg  = "Storage pool not found: no storage pool with matching name 'proto-nosuchpool'"
	errNoVolMsg   = "Storage volume not found: no storage vol with matching name 'nosuchvol'"
	errNoSupport  = "this function is not supported by the connection driver: "
	logFilters    = "1:*util.command* 1:*storage* 1:*conf.storage_conf* 1:*util.virstorage* "
	uploadVolKey  = "/srv/proto-err/proto-go-vol" // 27 bytes, the size the trace implies
	clientConnect = 1795487854                    // 2026-11-24 02:37:34 UTC
)

func frameCases(t testing.TB) []frameCase {
	poolUUID := mustHex(t, "60b7c1f2 0a3d 4e5f 8a9b 0c1d2e3f4a5b")
	sixPools := []string{"sem-d1", "sem-disk", "sem-fs", "sem-vg", "p1", "proto-err"}
	listAll := &wire{}
	listAll.u32(uint32(len(sixPools)))
	for i, n := range sixPools {
		listAll.pool(n, uuidOf(byte(16*i)))
	}
	listAll.u32(uint32(len(sixPools)))

	goLibvirtOpen := func(disc uint32) []byte {
		return frame(hdr{progRemote, 1, 1, typeCall, 2, statusOK},
			(&wire{}).u32(disc).str("storage:///system").u32(0).b)
	}

	return []frameCase{
		{
			name: "protocol.md: CALL STORAGE_POOL_LOOKUP_BY_NAME(p1)",
			giveFrame: mustHex(t, `00000024 20008086 00000001 00000054 00000000 00000006 00000000 |
				00000002 70310000`),
			wantPayloadLen: -1,
			wantHeader:     hdr{progRemote, 1, 84, typeCall, 6, statusOK},
			wantFields:     map[string]any{"Name": "p1"},
		},
		{
			name: "protocol.md: REPLY STORAGE_POOL_LOOKUP_BY_NAME(p1)",
			giveFrame: append(mustHex(t, `00000034 20008086 00000001 00000054 00000001 00000006 00000000 |
				00000002 70310000`), poolUUID...),
			wantPayloadLen: -1,
			wantHeader:     hdr{progRemote, 1, 84, typeReply, 6, statusOK},
			wantFields:     map[string]any{"Pool.Name": "p1", "Pool.UUID": poolUUID},
		},
		{
			name:           "probe: REPLY AUTH_LIST = [NONE]",
			giveFrame:      frame(hdr{progRemote, 1, 66, typeReply, 4, statusOK}, mustHex(t, "00000001 00000000")),
			wantPayloadLen: 8,
			wantHeader:     hdr{progRemote, 1, 66, typeReply, 4, statusOK},
			wantFields:     map[string]any{"Types[0]": 0},
		},
		{
			name:           "probe: REPLY CONNECT_GET_TYPE with echoed serial 0xfffffff0",
			giveFrame:      frame(hdr{progRemote, 1, 3, typeReply, 0xfffffff0, statusOK}, mustHex(t, "00000007 73746f72 61676500")),
			wantPayloadLen: 12,
			wantHeader:     hdr{progRemote, 1, 3, typeReply, 0xfffffff0, statusOK},
			wantFields:     map[string]any{"Type": "storage"},
		},
		{
			name:           "probe: REPLY CONNECT_LIST_ALL_STORAGE_POOLS need_results=0",
			giveFrame:      frame(hdr{progRemote, 1, 281, typeReply, 12, statusOK}, mustHex(t, "00000000 00000003")),
			wantPayloadLen: 8,
			wantHeader:     hdr{progRemote, 1, 281, typeReply, 12, statusOK},
			wantFields:     map[string]any{"Pools": nil, "Ret": 3},
		},
		{
			name:           "probe: REPLY CONNECT_SUPPORTS_FEATURE(10)",
			giveFrame:      frame(hdr{progRemote, 1, 60, typeReply, 3, statusOK}, mustHex(t, "00000001")),
			wantPayloadLen: 4,
			wantHeader:     hdr{progRemote, 1, 60, typeReply, 3, statusOK},
			wantFields:     map[string]any{"Supported": 1},
		},
		{
			name:           "probe: REPLY CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY",
			giveFrame:      frame(hdr{progRemote, 1, 368, typeReply, 9, statusOK}, mustHex(t, "0000001b")),
			wantPayloadLen: 4,
			wantHeader:     hdr{progRemote, 1, 368, typeReply, 9, statusOK},
			wantFields:     map[string]any{"CallbackID": 27},
		},
		{
			name:           "void REPLY CONNECT_OPEN",
			giveFrame:      frame(hdr{progRemote, 1, 1, typeReply, 2, statusOK}, nil),
			wantPayloadLen: 0,
			wantHeader:     hdr{progRemote, 1, 1, typeReply, 2, statusOK},
		},
		{
			name: "trace 30: REPLY ERROR 49/18 no storage pool",
			giveFrame: frame(hdr{progRemote, 1, 84, typeReply, 6, statusError}, (&wire{}).libvirtErr(49, 18,
				errNoPoolMsg, "Storage pool not found: %s", errNoPoolMsg[len("Storage pool not found: "):], -1).b),
			wantPayloadLen: 220,
			wantHeader:     hdr{progRemote, 1, 84, typeReply, 6, statusError},
			wantFields: map[string]any{
				"Code": 49, "Domain": 18, "Message[0]": errNoPoolMsg, "Level": 2, "Dom": nil,
				"Str1[0]": "Storage pool not found: %s", "Str3": nil, "Int1": -1, "Int2": -1, "Net": nil,
			},
		},
		{
			name: "trace 31: REPLY ERROR 50/18 no storage vol",
			giveFrame: frame(hdr{progRemote, 1, 95, typeReply, 8, statusError}, (&wire{}).libvirtErr(50, 18,
				errNoVolMsg, "Storage volume not found: %s", errNoVolMsg[len("Storage volume not found: "):], -1).b),
			wantPayloadLen: 204,
			wantHeader:     hdr{progRemote, 1, 95, typeReply, 8, statusError},
			wantFields:     map[string]any{"Code": 50, "Domain": 18, "Message[0]": errNoVolMsg},
		},
		{
			name: "trace 61: REPLY ERROR 3/20 NODE_GET_INFO not supported",
			giveFrame: frame(hdr{progRemote, 1, 6, typeReply, 12, statusError}, (&wire{}).libvirtErr(3, 20,
				errNoSupport+"virNodeGetInfo", errNoSupport+"%s", "virNodeGetInfo", -1).b),
			wantPayloadLen: 204,
			wantHeader:     hdr{progRemote, 1, 6, typeReply, 12, statusError},
			wantFields:     map[string]any{"Code": 3, "Domain": 20, "Str2[0]": "virNodeGetInfo"},
		},
		{
			name: "probe: STREAM ERROR 38/38 ENOSPC during upload",
			giveFrame: frame(hdr{progRemote, 1, 208, typeStream, 4, statusError}, (&wire{}).libvirtErr(38, 38,
				"cannot write to stream: No space left on device", "%s",
				"cannot write to stream: No space left on device", 28).b),
			wantPayloadLen: -1,
			wantHeader:     hdr{progRemote, 1, 208, typeStream, 4, statusError},
			wantFields:     map[string]any{"Code": 38, "Domain": 38, "Int1": 28},
		},
		{
			name:           "trace 18: STREAM_HOLE 8085504",
			giveFrame:      frame(hdr{progRemote, 1, 208, typeStreamHole, 6, statusContinue}, mustHex(t, "00000000 007b6000 00000000")),
			wantPayloadLen: 12,
			wantHeader:     hdr{progRemote, 1, 208, typeStreamHole, 6, statusContinue},
			wantFields:     map[string]any{"Length": 8085504, "Flags": 0},
		},
		{
			name:           "trace 17: STREAM CONTINUE empty = download EOF",
			giveFrame:      frame(hdr{progRemote, 1, 209, typeStream, 7, statusContinue}, nil),
			wantPayloadLen: 0,
			wantHeader:     hdr{progRemote, 1, 209, typeStream, 7, statusContinue},
		},
		{
			name:           "trace 29: keepalive PING",
			giveFrame:      mustHex(t, "0000001c 6b656570 00000001 00000001 00000002 00000000 00000000"),
			wantPayloadLen: 0,
			wantHeader:     hdr{progKeepalive, 1, 1, typeMessage, 0, statusOK},
		},
		{
			name:           "trace 29: keepalive PONG",
			giveFrame:      frame(hdr{progKeepalive, 1, 2, typeMessage, 0, statusOK}, nil),
			wantPayloadLen: 0,
			wantHeader:     hdr{progKeepalive, 1, 2, typeMessage, 0, statusOK},
		},
		{
			name:           "trace 01: virsh CALL CONNECT_OPEN storage:///system",
			giveFrame:      frame(hdr{progRemote, 1, 1, typeCall, 2, statusOK}, (&wire{}).optStr("storage:///system").u32(0).b),
			wantPayloadLen: 32,
			wantHeader:     hdr{progRemote, 1, 1, typeCall, 2, statusOK},
			wantFields:     map[string]any{"Name[0]": "storage:///system", "Flags": 0},
		},
		{
			name:           "trace 50: virsh -r CALL CONNECT_OPEN flags=RO",
			giveFrame:      frame(hdr{progRemote, 1, 1, typeCall, 2, statusOK}, (&wire{}).optStr("storage:///system").u32(1).b),
			wantPayloadLen: 32,
			wantHeader:     hdr{progRemote, 1, 1, typeCall, 2, statusOK},
			wantFields:     map[string]any{"Name[0]": "storage:///system", "Flags": 1},
		},
		{
			// go-libvirt writes the pointer discriminant as 01 00 00 00; libvirt reads any
			// non-zero value as present, and we re-encode it canonically.
			name:           "trace 90: go-libvirt CALL CONNECT_OPEN with pointer 0x01000000",
			giveFrame:      goLibvirtOpen(0x01000000),
			wantPayloadLen: 32,
			wantHeader:     hdr{progRemote, 1, 1, typeCall, 2, statusOK},
			wantFields:     map[string]any{"Name[0]": "storage:///system", "Flags": 0},
			wantReencoded:  goLibvirtOpen(1),
		},
		{
			name:           "trace 01: CALL CONNECT_LIST_ALL_STORAGE_POOLS need=1 flags=ACTIVE|INACTIVE",
			giveFrame:      frame(hdr{progRemote, 1, 281, typeCall, 6, statusOK}, (&wire{}).i32(1).u32(3).b),
			wantPayloadLen: 8,
			wantHeader:     hdr{progRemote, 1, 281, typeCall, 6, statusOK},
			wantFields:     map[string]any{"NeedResults": 1, "Flags": 3},
		},
		{
			name:           "trace 60: REPLY CONNECT_LIST_ALL_STORAGE_POOLS, 6 pools",
			giveFrame:      frame(hdr{progRemote, 1, 281, typeReply, 4, statusOK}, listAll.b),
			wantPayloadLen: 176,
			wantHeader:     hdr{progRemote, 1, 281, typeReply, 4, statusOK},
			wantFields: map[string]any{
				"Pools[0].Name": "sem-d1", "Pools[4].Name": "p1", "Pools[5].Name": "proto-err",
				"Pools[5].UUID": uuidOf(80), "Ret": 6,
			},
		},
		{
			name: "trace 05: REPLY STORAGE_POOL_GET_INFO running dir pool",
			giveFrame: frame(hdr{progRemote, 1, 87, typeReply, 11, statusOK},
				(&wire{}).u32(2).u64(270553174016).u64(12233416704).u64(258319757312).b),
			wantPayloadLen: 28,
			wantHeader:     hdr{progRemote, 1, 87, typeReply, 11, statusOK},
			wantFields: map[string]any{
				"State": 2, "Capacity": uint64(270553174016), "Allocation": uint64(12233416704),
				"Available": uint64(258319757312),
			},
		},
		{
			name: "trace 10: REPLY STORAGE_VOL_GET_INFO qcow2 10 MiB",
			giveFrame: frame(hdr{progRemote, 1, 98, typeReply, 11, statusOK},
				(&wire{}).i32(0).u64(10485760).u64(200704).b),
			wantPayloadLen: 20,
			wantHeader:     hdr{progRemote, 1, 98, typeReply, 11, statusOK},
			wantFields:     map[string]any{"Type": 0, "Capacity": 10485760, "Allocation": 200704},
		},
		{
			name: "trace 90: CALL STORAGE_VOL_UPLOAD",
			giveFrame: frame(hdr{progRemote, 1, 208, typeCall, 6, statusOK},
				(&wire{}).vol("proto-err", "proto-go-vol", uploadVolKey).u64(0).u64(0).u32(0).b),
			wantPayloadLen: 84,
			wantHeader:     hdr{progRemote, 1, 208, typeCall, 6, statusOK},
			wantFields:     map[string]any{"Vol.Pool": "proto-err", "Vol.Name": "proto-go-vol", "Offset": 0, "Length": 0},
		},
		{
			name: "trace 21b: MESSAGE STORAGE_POOL_EVENT_LIFECYCLE started",
			giveFrame: frame(hdr{progRemote, 1, 370, typeMessage, 1, statusOK},
				(&wire{}).i32(0).pool("proto-dir1", poolUUID).i32(2).i32(0).b),
			wantPayloadLen: 44,
			wantHeader:     hdr{progRemote, 1, 370, typeMessage, 1, statusOK},
			wantFields:     map[string]any{"CallbackID": 0, "Pool.Name": "proto-dir1", "Event": 2, "Detail": 0},
		},
		{
			name: "trace 21c: MESSAGE STORAGE_POOL_EVENT_REFRESH",
			giveFrame: frame(hdr{progRemote, 1, 373, typeMessage, 1, statusOK},
				(&wire{}).i32(1).pool("proto-dir1", poolUUID).b),
			wantPayloadLen: 36,
			wantHeader:     hdr{progRemote, 1, 373, typeMessage, 1, statusOK},
			wantFields:     map[string]any{"CallbackID": 1, "Pool.UUID": poolUUID},
		},
		{
			name:           "trace 80: ADMIN REPLY CONNECT_GET_LIB_VERSION",
			giveFrame:      frame(hdr{progAdmin, 1, 3, typeReply, 1, statusOK}, (&wire{}).u64(9000000).b),
			wantPayloadLen: 8,
			wantHeader:     hdr{progAdmin, 1, 3, typeReply, 1, statusOK},
			wantFields:     map[string]any{"LibVer": 9000000},
		},
		{
			name: "trace 81: ADMIN REPLY CONNECT_LIST_SERVERS",
			giveFrame: frame(hdr{progAdmin, 1, 4, typeReply, 1, statusOK},
				(&wire{}).u32(2).str("libvirtd").str("admin").u32(2).b),
			wantPayloadLen: 32,
			wantHeader:     hdr{progAdmin, 1, 4, typeReply, 1, statusOK},
			wantFields:     map[string]any{"Servers[0].Name": "libvirtd", "Servers[1].Name": "admin", "Ret": 2},
		},
		{
			name: "trace 82: ADMIN REPLY SERVER_GET_THREADPOOL_PARAMETERS",
			giveFrame: frame(hdr{progAdmin, 1, 6, typeReply, 2, statusOK}, (&wire{}).u32(6).
				uintParam("minWorkers", 5).uintParam("maxWorkers", 20).uintParam("nWorkers", 11).
				uintParam("freeWorkers", 11).uintParam("prioWorkers", 5).uintParam("jobQueueDepth", 1).b),
			wantPayloadLen: 148,
			wantHeader:     hdr{progAdmin, 1, 6, typeReply, 2, statusOK},
			wantFields: map[string]any{
				"Params[0].Field": "minWorkers", "Params[0].Value.Ui": 5,
				"Params[5].Field": "jobQueueDepth", "Params[5].Value.Ui": 1,
			},
		},
		{
			name: "trace 83: ADMIN REPLY SERVER_LIST_CLIENTS",
			giveFrame: frame(hdr{progAdmin, 1, 8, typeReply, 2, statusOK}, (&wire{}).u32(1).
				str("libvirtd").u64(1359).i64(clientConnect).u32(0).u32(1).b),
			wantPayloadLen: 40,
			wantHeader:     hdr{progAdmin, 1, 8, typeReply, 2, statusOK},
			wantFields: map[string]any{
				"Clients[0].Srv.Name": "libvirtd", "Clients[0].ID": 1359,
				"Clients[0].Timestamp": clientConnect, "Clients[0].Transport": 0, "Ret": 1,
			},
		},
		{
			name: "trace 84: ADMIN REPLY CLIENT_GET_INFO (UNIX client)",
			giveFrame: frame(hdr{progAdmin, 1, 10, typeReply, 3, statusOK}, (&wire{}).u32(6).
				boolParam("readonly", 0).intParam("unix_user_id", 0).strParam("unix_user_name", "root").
				intParam("unix_group_id", 0).strParam("unix_group_name", "root").
				intParam("unix_process_id", 29723).b),
			wantPayloadLen: 168,
			wantHeader:     hdr{progAdmin, 1, 10, typeReply, 3, statusOK},
			wantFields: map[string]any{
				"Params[0].Value.B": 0, "Params[2].Value.S": "root", "Params[5].Value.I": 29723,
			},
		},
		{
			name: "trace 85: ADMIN REPLY SERVER_GET_CLIENT_LIMITS",
			giveFrame: frame(hdr{progAdmin, 1, 12, typeReply, 2, statusOK}, (&wire{}).u32(4).
				uintParam("nclients_max", 5000).uintParam("nclients", 9).
				uintParam("nclients_unauth_max", 20).uintParam("nclients_unauth", 0).b),
			wantPayloadLen: 108,
			wantHeader:     hdr{progAdmin, 1, 12, typeReply, 2, statusOK},
			wantFields:     map[string]any{"Params[0].Value.Ui": 5000, "Params[2].Field": "nclients_unauth_max"},
		},
		{
			name: "trace 87: ADMIN REPLY CONNECT_GET_LOGGING_FILTERS",
			giveFrame: frame(hdr{progAdmin, 1, 15, typeReply, 1, statusOK},
				(&wire{}).optStr(logFilters).u32(4).b),
			wantPayloadLen: 84,
			wantHeader:     hdr{progAdmin, 1, 15, typeReply, 1, statusOK},
			wantFields:     map[string]any{"Filters[0]": logFilters, "Nfilters": 4},
		},
	}
}

// TestGoldenFrames decodes frames libvirt 9.0 puts on the wire and re-encodes them: the
// generated types must consume every byte, expose the recorded values and reproduce the
// bytes exactly (except for a non-canonical pointer discriminant, which becomes 1).
func TestGoldenFrames(t *testing.T) {
	for _, tt := range frameCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantPayloadLen >= 0 && len(tt.giveFrame)-28 != tt.wantPayloadLen {
				t.Fatalf("fixture payload is %d bytes, libvirtd sent %d: the fixture or the layout is wrong",
					len(tt.giveFrame)-28, tt.wantPayloadLen)
			}
			h, body := decodeFrame(t, tt.giveFrame)
			w := tt.wantHeader
			if h.Prog != w.prog || h.Vers != w.vers || h.Proc != w.proc || int32(h.Type) != w.typ ||
				h.Serial != w.serial || int32(h.Status) != w.status {
				t.Errorf("header = %+v, want %+v", *h, w)
			}
			if len(tt.wantFields) > 0 {
				if body == nil {
					t.Fatalf("no body decoded, want fields %v", tt.wantFields)
				}
				checkFields(t, body, tt.wantFields)
			}
			want := tt.wantReencoded
			if want == nil {
				want = tt.giveFrame
			}
			if got := encodeFrame(t, h, body); !bytes.Equal(got, want) {
				t.Errorf("re-encoded frame differs\n got %s\nwant %s", hex.EncodeToString(got), hex.EncodeToString(want))
			}
		})
	}
}
