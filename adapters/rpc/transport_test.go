package rpc_test

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/adapters/rpc"
	"github.com/virtstoraged-go/virtstoraged/gen/admin"
	"github.com/virtstoraged-go/virtstoraged/gen/keepalive"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// rawPayload is an xdr.Message of fixed bytes, for payloads no generated type
// would produce.
type rawPayload []byte

func (p rawPayload) Encode(e *xdr.Encoder) error { e.EncodeRaw(p); return nil }
func (p rawPayload) Decode(*xdr.Decoder) error   { return nil }

func TestDispatchErrors(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	lookupProc := int32(remote.ProcStoragePoolLookupByName)
	tests := []struct {
		name       string
		giveSocket string // "rw" or "admin"
		giveOpen   bool
		giveHdr    hdr
		giveBody   xdr.Message
		wantCode   int32
		wantDomain int32
		wantMsg    string
	}{
		{name: "unknown program", giveHdr: callHdr(0x12345678, 1, 7),
			wantCode: 39, wantDomain: 7, wantMsg: "Cannot find program 305419896 version 1"},
		{name: "wrong version", giveHdr: hdr{Prog: remote.Program, Vers: 2, Proc: 1, Serial: 8},
			wantCode: 39, wantDomain: 7, wantMsg: "Cannot find program 536903814 version 2"},
		{name: "ping as call", giveHdr: callHdr(keepalive.Program, 1, 9),
			wantCode: 39, wantDomain: 7, wantMsg: "Cannot find program 1801807216 version 1"},
		{name: "remote on admin socket", giveSocket: "admin", giveHdr: callHdr(remote.Program, 66, 10),
			wantCode: 39, wantDomain: 7, wantMsg: "Cannot find program 536903814 version 1"},
		{name: "admin on rw socket", giveHdr: callHdr(admin.Program, 1, 11), giveBody: rawPayload(be32(0)),
			wantCode: 39, wantDomain: 7, wantMsg: "Cannot find program 110102160 version 1"},
		{name: "unknown procedure", giveHdr: callHdr(remote.Program, 9999, 12),
			wantCode: 39, wantDomain: 7, wantMsg: "unknown procedure: 9999"},
		{name: "event message number as call", giveOpen: true, giveHdr: callHdr(remote.Program, 370, 13),
			wantCode: 39, wantDomain: 7, wantMsg: "unknown procedure: 370"},
		{name: "bad status", giveHdr: hdr{Prog: remote.Program, Vers: 1, Proc: 66, Serial: 14, Status: virnet.MessageStatusError},
			wantCode: 39, wantDomain: 7, wantMsg: "Unexpected message status 1"},
		{name: "undecodable payload", giveOpen: true, giveHdr: callHdr(remote.Program, lookupProc, 15), giveBody: rawPayload(be32(16)),
			wantCode: 39, wantDomain: 7, wantMsg: "Unable to decode message payload"},
		{name: "oversized string", giveOpen: true, giveHdr: callHdr(remote.Program, lookupProc, 16), giveBody: rawPayload(be32(4194305)),
			wantCode: 39, wantDomain: 7, wantMsg: "Unable to decode message payload"},
		{name: "storage call before open", giveHdr: callHdr(remote.Program, lookupProc, 17), giveBody: &remote.StoragePoolLookupByNameArgs{Name: "x"},
			wantCode: 1, wantDomain: 7, wantMsg: "internal error: connection not open"},
		{name: "connect call before open", giveHdr: callHdr(remote.Program, int32(remote.ProcConnectGetType), 18),
			wantCode: 1, wantDomain: 7, wantMsg: "internal error: hypervisor connection not open"},
		{name: "feature before open", giveHdr: callHdr(remote.Program, int32(remote.ProcConnectSupportsFeature), 19),
			giveBody: &remote.ConnectSupportsFeatureArgs{Feature: 14},
			wantCode: 1, wantDomain: 7, wantMsg: "internal error: hypervisor connection not open"},
		{name: "maxnames negative", giveOpen: true, giveHdr: callHdr(remote.Program, int32(remote.ProcConnectListStoragePools), 20),
			giveBody: &remote.ConnectListStoragePoolsArgs{Maxnames: -1}, wantCode: 39, wantDomain: 7, wantMsg: "maxnames must be non-negative"},
		{name: "maxnames too big", giveOpen: true, giveHdr: callHdr(remote.Program, int32(remote.ProcConnectListStoragePools), 21),
			giveBody: &remote.ConnectListStoragePoolsArgs{Maxnames: 16385}, wantCode: 39, wantDomain: 7, wantMsg: "maxnames > REMOTE_STORAGE_POOL_LIST_MAX"},
		{name: "vol maxnames too big", giveOpen: true, giveHdr: callHdr(remote.Program, int32(remote.ProcStoragePoolListVolumes), 22),
			giveBody: &remote.StoragePoolListVolumesArgs{Maxnames: 16385}, wantCode: 39, wantDomain: 7, wantMsg: "maxnames > REMOTE_STORAGE_VOL_LIST_MAX"},
		{name: "unsupported connect api", giveOpen: true, giveHdr: callHdr(remote.Program, int32(remote.ProcConnectGetVersion), 23),
			wantCode: 3, wantDomain: 20, wantMsg: "this function is not supported by the connection driver: virConnectGetVersion"},
		{name: "unsupported hostname", giveOpen: true, giveHdr: callHdr(remote.Program, int32(remote.ProcConnectGetHostname), 24),
			wantCode: 3, wantDomain: 20, wantMsg: "this function is not supported by the connection driver: virConnectGetHostname"},
		{name: "pool not found", giveOpen: true, giveHdr: callHdr(remote.Program, lookupProc, 25), giveBody: &remote.StoragePoolLookupByNameArgs{Name: "nope"},
			wantCode: 49, wantDomain: 18, wantMsg: "Storage pool not found: no storage pool with matching name 'nope'"},
		{name: "unsupported flags", giveOpen: true, giveHdr: callHdr(remote.Program, int32(remote.ProcConnectListAllStoragePools), 26),
			giveBody: &remote.ConnectListAllStoragePoolsArgs{NeedResults: 1, Flags: 0x40000000},
			wantCode: 8, wantDomain: 18, wantMsg: "unsupported flags (0x40000000) in function storageConnectListAllStoragePools"},
		{name: "serial echoed", giveHdr: hdr{Prog: remote.Program, Vers: 1, Proc: 9999, Serial: 0xfffffff0},
			wantCode: 39, wantDomain: 7, wantMsg: "unknown procedure: 9999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := d.rw
			if tt.giveSocket == "admin" {
				path = d.adm
			}
			r := dialRaw(t, path)
			if tt.giveOpen {
				r.open(0)
			}
			r.send(tt.giveHdr, tt.giveBody)
			h, p := r.recv()
			wantHdr := tt.giveHdr
			wantHdr.Type, wantHdr.Status = virnet.MessageTypeReply, virnet.MessageStatusError
			if h != wantHdr {
				t.Errorf("header = %+v, want %+v", h, wantHdr)
			}
			e := decodeErr(t, p)
			if e.Code != tt.wantCode || e.Domain != tt.wantDomain || optStr(e.Message) != tt.wantMsg {
				t.Errorf("error = %d/%d %q, want %d/%d %q", e.Code, e.Domain, optStr(e.Message), tt.wantCode, tt.wantDomain, tt.wantMsg)
			}
			if e.Level != 2 || len(e.Dom) != 0 || len(e.Net) != 0 || len(e.Str3) != 0 {
				t.Errorf("error fields = %+v", e)
			}
			switch {
			case optStr(e.Str2) == "flags":
				// virReportInvalidArg: the function, the argument, and 0s.
				if !strings.HasSuffix(tt.wantMsg, " in function "+optStr(e.Str1)) || e.Int1 != 0 || e.Int2 != 0 {
					t.Errorf("invalid argument fields = %+v", e)
				}
			case e.Int2 != -1 || !strings.HasSuffix(optStr(e.Str1), "%s") || !strings.HasSuffix(tt.wantMsg, optStr(e.Str2)):
				t.Errorf("str1 %q str2 %q int2 %d do not make %q", optStr(e.Str1), optStr(e.Str2), e.Int2, tt.wantMsg)
			}
			// The connection stays usable after an error reply.
			r.call(int32(remote.ProcAuthList), 99, nil)
			if h, _ := r.recv(); h.Status != virnet.MessageStatusOk && tt.giveSocket != "admin" {
				t.Errorf("AUTH_LIST after the error failed: %+v", h)
			}
		})
	}
}

func TestBadLengthWordClosesOnlyThatClient(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	bystander := d.client(t, d.rw, "storage:///system", 0)
	tests := []struct {
		name     string
		giveLen  uint32
		wantOpen bool
	}{
		{name: "one above the maximum", giveLen: 33554437},
		{name: "huge", giveLen: 0xffffffff},
		{name: "below header", giveLen: 27},
		{name: "zero", giveLen: 0},
		{name: "maximum is accepted", giveLen: 33554436, wantOpen: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := dialRaw(t, d.rw)
			r.write(be32(tt.giveLen))
			if tt.wantOpen {
				r.expectSilence(200 * time.Millisecond)
			} else {
				r.expectClosed()
			}
			if _, err := bystander.ConnectGetType(ctx5(t)); err != nil {
				t.Fatalf("bystander broken: %v", err)
			}
		})
	}
}

func TestClientVanishesMidMessage(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	for i := 0; i < 20; i++ {
		nc, err := net.Dial("unix", d.rw)
		if err != nil {
			t.Fatal(err)
		}
		// A 100-byte frame of which only the length word and part of the header arrive.
		nc.Write(append(be32(100), 0x20, 0, 0x80))
		nc.Close()
	}
	cl := d.client(t, d.rw, "storage:///system", 0)
	ret, err := cl.ConnectGetType(ctx5(t))
	if err != nil || ret.Type != "storage" {
		t.Fatalf("GET_TYPE = %v, %v", ret, err)
	}
	waitFor(t, func() bool { return countClients(t, d) == 1 })
}

// countClients asks the admin program how many clients the main server has.
func countClients(t testing.TB, d *daemon) int {
	t.Helper()
	a := adminClient(t, d)
	ret, err := a.ServerListClients(ctx5(t), &admin.ServerListClientsArgs{Srv: admin.Server{Name: "virtstoraged"}, NeedResults: 1})
	if err != nil {
		t.Fatal(err)
	}
	a.Conn().Close()
	return int(ret.Ret)
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPingDuringSlowCall(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	r := dialRaw(t, d.rw)
	r.open(0)
	r.call(int32(remote.ProcStoragePoolLookupByName), 5, &remote.StoragePoolLookupByNameArgs{Name: "slow"})
	<-d.api.entered
	r.send(hdr{Prog: keepalive.Program, Vers: 1, Proc: int32(keepalive.ProcPing), Type: virnet.MessageTypeMessage}, nil)
	h, p := r.recv()
	want := hdr{Prog: keepalive.Program, Vers: 1, Proc: int32(keepalive.ProcPong), Type: virnet.MessageTypeMessage}
	if h != want || len(p) != 0 {
		t.Fatalf("got %+v (%d bytes), want PONG %+v", h, len(p), want)
	}
	d.api.releaseSlow()
	h, p = r.recv()
	if h.Serial != 5 || h.Status != virnet.MessageStatusOk {
		t.Fatalf("slow reply %+v", h)
	}
	var ret remote.StoragePoolLookupByNameRet
	decodeRet(t, p, &ret)
	if ret.Pool.Name != "slow" {
		t.Errorf("pool = %q", ret.Pool.Name)
	}
}

func TestPingBeforeOpen(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	for _, path := range []string{d.rw, d.ro, d.adm} {
		r := dialRaw(t, path)
		r.send(hdr{Prog: keepalive.Program, Vers: 1, Proc: int32(keepalive.ProcPing), Type: virnet.MessageTypeMessage}, nil)
		if h, _ := r.recv(); h.Proc != int32(keepalive.ProcPong) {
			t.Errorf("%s: got %+v, want PONG", path, h)
		}
	}
}

func TestRepliesOutOfOrder(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	r := dialRaw(t, d.rw)
	r.open(0)
	r.call(int32(remote.ProcStoragePoolLookupByName), 22, &remote.StoragePoolLookupByNameArgs{Name: "slow"})
	<-d.api.entered
	r.call(int32(remote.ProcConnectGetType), 23, nil)
	if h, _ := r.recv(); h.Serial != 23 {
		t.Fatalf("first reply serial %d, want 23", h.Serial)
	}
	d.api.releaseSlow()
	if h, _ := r.recv(); h.Serial != 22 {
		t.Fatalf("second reply serial %d, want 22", h.Serial)
	}
}

func TestIgnoredClientMessages(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	r := dialRaw(t, d.rw)
	r.open(0)
	r.send(hdr{Prog: remote.Program, Vers: 1, Proc: 3, Type: virnet.MessageTypeReply, Serial: 1}, nil)
	r.send(hdr{Prog: remote.Program, Vers: 1, Proc: 370, Type: virnet.MessageTypeMessage, Serial: 1}, nil)
	r.send(hdr{Prog: remote.Program, Vers: 1, Proc: 208, Type: virnet.MessageTypeStream, Serial: 77, Status: virnet.MessageStatusContinue}, rawPayload("data"))
	r.send(hdr{Prog: 0x1234, Vers: 1, Proc: 1, Type: virnet.MessageTypeMessage}, nil)
	r.send(hdr{Prog: keepalive.Program, Vers: 1, Proc: int32(keepalive.ProcPong), Type: virnet.MessageTypeMessage}, nil)
	r.expectSilence(200 * time.Millisecond)
	r.call(int32(remote.ProcConnectGetType), 2, nil)
	if h, _ := r.recv(); h.Serial != 2 || h.Status != virnet.MessageStatusOk {
		t.Fatalf("reply %+v", h)
	}
}

func TestManyIdleClients(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	for i := 0; i < 200; i++ {
		r := dialRaw(t, d.rw)
		if i%2 == 0 {
			r.open(0)
		}
	}
	cl := d.client(t, d.rw, "storage:///system", 0)
	ret, err := cl.ConnectListAllStoragePools(ctx5(t), &remote.ConnectListAllStoragePoolsArgs{NeedResults: 1})
	if err != nil || ret.Ret != 3 {
		t.Fatalf("list = %+v, %v", ret, err)
	}
	waitFor(t, func() bool { return countClients(t, d) == 201 })
}

func TestMaxClients(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, func(c *rpc.Config) { c.Limits.Main.MaxClients = 2 })
	a := dialRaw(t, d.rw)
	b := dialRaw(t, d.ro)
	a.open(0)
	b.open(0)
	c := dialRaw(t, d.rw)
	c.expectClosed()
	found := false
	for _, e := range d.logs.AllEntries() {
		if strings.Contains(e.Message, "too many clients") {
			found = true
		}
	}
	if !found {
		t.Error("no log line for the refused client")
	}
	// The admin server has its own limit.
	adm := adminClient(t, d)
	if _, err := adm.ConnectGetLibVersion(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	a.nc.Close()
	// Until the server has seen a hang up, a new client is still refused: it
	// may be closed before our call is written (EPIPE), so a write error
	// here only means "not yet", like a missing reply.
	waitFor(t, func() bool {
		r := dialRaw(t, d.rw)
		if _, err := r.nc.Write(frame(callHdr(remote.Program, int32(remote.ProcAuthList), 1), nil, nil)); err != nil {
			return false
		}
		_, _, err := r.tryRecv(time.Second)
		return err == nil
	})
}

func TestMaxClientRequestsStopsReading(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, func(c *rpc.Config) { c.Limits.Main.MaxClientRequests = 1 })
	r := dialRaw(t, d.rw)
	r.open(0)
	r.call(int32(remote.ProcStoragePoolLookupByName), 1, &remote.StoragePoolLookupByNameArgs{Name: "slow"})
	<-d.api.entered
	r.call(int32(remote.ProcConnectGetType), 2, nil)
	r.send(hdr{Prog: keepalive.Program, Vers: 1, Proc: int32(keepalive.ProcPing), Type: virnet.MessageTypeMessage}, nil)
	// The only slot is taken: the server must not read (so not answer) anything.
	r.expectSilence(300 * time.Millisecond)
	d.api.releaseSlow()
	got := map[int32]uint32{}
	for i := 0; i < 3; i++ {
		h, _ := r.recv()
		got[h.Proc] = h.Serial
	}
	if got[int32(remote.ProcStoragePoolLookupByName)] != 1 || got[int32(remote.ProcConnectGetType)] != 2 || len(got) != 3 {
		t.Errorf("replies = %v", got)
	}
}

// Call frames of the largest legal size are read and answered, whether the
// call runs on the reader (CONNECT_GET_TYPE) or on a goroutine of its own
// (STORAGE_POOL_REFRESH, which takes the reader's 32 MiB buffer instead of a
// copy); the bytes past the arguments are ignored, as the decoder does for any
// call. The connection goes on afterwards.
func TestMaximumSizeCalls(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	r := dialRaw(t, d.rw)
	r.open(0)
	r.call(int32(remote.ProcStoragePoolLookupByName), 9, &remote.StoragePoolLookupByNameArgs{Name: "images"})
	_, p := r.recv()
	var images remote.StoragePoolLookupByNameRet
	decodeRet(t, p, &images)
	pad := func(f []byte) []byte {
		f = append(f, make([]byte, xdr.MaxFrameLen-len(f))...)
		binary.BigEndian.PutUint32(f, xdr.MaxFrameLen)
		return f
	}
	frames := [][]byte{
		pad(frame(callHdr(remote.Program, int32(remote.ProcConnectGetType), 1), nil, nil)),
		pad(frame(callHdr(remote.Program, int32(remote.ProcStoragePoolRefresh), 2),
			&remote.StoragePoolRefreshArgs{Pool: images.Pool}, nil)),
	}
	written := make(chan error, 1)
	go func() {
		for _, f := range frames {
			if _, err := r.nc.Write(f); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	got := map[uint32]virnet.MessageStatus{}
	for range frames {
		h, p := r.recv()
		got[h.Serial] = h.Status
		if h.Status != virnet.MessageStatusOk {
			t.Errorf("call %d: %v", h.Serial, decodeErr(t, p))
		}
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("replies %v, want serials 1 and 2", got)
	}
	r.call(int32(remote.ProcConnectGetType), 3, nil)
	if h, _ := r.recv(); h.Serial != 3 || h.Status != virnet.MessageStatusOk {
		t.Errorf("after the maximum-size calls: %+v", h)
	}
}

func TestPriorityWorkers(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, func(c *rpc.Config) {
		c.Limits.Main.MaxWorkers = 1
		c.Limits.Main.MinWorkers = 1
		c.Limits.Main.PrioWorkers = 1
	})
	slowPool := remote.StoragePool{Name: "slow"}
	slowPool.UUID[15] = 3
	r := dialRaw(t, d.rw)
	r.open(0)
	// POOL_BUILD is not a priority call and takes the only ordinary worker.
	r.call(int32(remote.ProcStoragePoolBuild), 1, &remote.StoragePoolBuildArgs{Pool: slowPool})
	<-d.api.entered
	// A priority call still runs, on the reserved worker.
	r.call(int32(remote.ProcConnectGetType), 2, nil)
	if h, _ := r.recv(); h.Serial != 2 {
		t.Fatalf("priority call blocked: got serial %d", h.Serial)
	}
	// A new client can still connect and hang up, as with libvirt, whose
	// CONNECT_OPEN and CONNECT_CLOSE are priority calls too.
	other := dialRaw(t, d.rw)
	other.open(0)
	other.call(int32(remote.ProcConnectClose), 2, nil)
	if h, _, err := other.tryRecv(2 * time.Second); err != nil || h.Serial != 2 || h.Status != virnet.MessageStatusOk {
		t.Fatalf("CONNECT_CLOSE while the workers are busy: %+v %v", h, err)
	}
	if _, _, err := other.tryRecv(2 * time.Second); err == nil {
		t.Fatalf("the connection stayed open after CONNECT_CLOSE")
	}
	// An ordinary call waits for the worker.
	r.call(int32(remote.ProcStoragePoolRefresh), 3, &remote.StoragePoolRefreshArgs{Pool: remote.StoragePool{Name: "default", UUID: remote.UUID{15: 1}}})
	r.expectSilence(200 * time.Millisecond)
	d.api.releaseSlow()
	got := map[uint32]bool{}
	for i := 0; i < 2; i++ {
		h, _ := r.recv()
		got[h.Serial] = h.Status == virnet.MessageStatusOk
	}
	if !got[1] || !got[3] {
		t.Errorf("replies = %v", got)
	}
}

func TestKeepalive(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, func(c *rpc.Config) {
		c.Limits.Main.KeepaliveInterval = 150 * time.Millisecond
		c.Limits.Main.KeepaliveCount = 3
	})
	ping := hdr{Prog: keepalive.Program, Vers: 1, Proc: int32(keepalive.ProcPing), Type: virnet.MessageTypeMessage}
	pong := ping
	pong.Proc = int32(keepalive.ProcPong)

	t.Run("no pings without negotiation", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, d.rw)
		r.expectSilence(400 * time.Millisecond)
	})
	t.Run("unanswered pings close", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, d.rw)
		r.call(int32(remote.ProcConnectSupportsFeature), 1, &remote.ConnectSupportsFeatureArgs{Feature: 10})
		h, p := r.recv()
		var ret remote.ConnectSupportsFeatureRet
		decodeRet(t, p, &ret)
		if h.Status != virnet.MessageStatusOk || ret.Supported != 1 {
			t.Fatalf("feature 10 before open: %+v %+v", h, ret)
		}
		pings := 0
		start := time.Now()
		for {
			h, _, err := r.tryRecv(2 * time.Second)
			if err != nil {
				break
			}
			if h != ping {
				t.Fatalf("unexpected %+v", h)
			}
			pings++
		}
		if pings != 3 || time.Since(start) > 5*time.Second {
			t.Errorf("got %d pings in %v before close, want 3", pings, time.Since(start))
		}
	})
	t.Run("answered pings keep the connection", func(t *testing.T) {
		t.Parallel()
		r := dialRaw(t, d.rw)
		r.call(int32(remote.ProcConnectSupportsFeature), 1, &remote.ConnectSupportsFeatureArgs{Feature: 10})
		r.recv()
		deadline := time.Now().Add(time.Second)
		pings := 0
		for time.Now().Before(deadline) {
			h, _, err := r.tryRecv(time.Second)
			if err != nil {
				t.Fatalf("connection lost: %v", err)
			}
			if h == ping {
				pings++
				r.send(pong, nil)
			}
		}
		if pings < 2 {
			t.Errorf("only %d pings", pings)
		}
		r.call(int32(remote.ProcAuthList), 2, nil)
		for {
			h, _ := r.recv()
			if h.Serial == 2 && h.Type == virnet.MessageTypeReply {
				break
			}
		}
	})
}

func TestShutdownCancelsCalls(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	r := dialRaw(t, d.rw)
	r.open(0)
	r.call(int32(remote.ProcStoragePoolLookupByName), 1, &remote.StoragePoolLookupByNameArgs{Name: "slow"})
	<-d.api.entered
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a blocked call: %v", err)
	}
	r.expectClosed()
	if _, err := net.Dial("unix", d.rw); err == nil {
		t.Error("listener still accepting after Shutdown")
	}
}

func TestCallWithFDsClosesConnection(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	r := dialRaw(t, d.rw)
	r.open(0)
	h := callHdr(remote.Program, int32(remote.ProcConnectGetType), 2)
	h.Type = virnet.MessageTypeCallWithFds
	r.send(h, rawPayload(be32(1)))
	r.expectClosed()
}

func TestSetLimits(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	bad := rpc.DefaultLimits()
	bad.Main.MinWorkers = 50
	if err := d.srv.SetLimits(bad); err == nil {
		t.Error("min_workers above max_workers accepted")
	}
	l := rpc.DefaultLimits()
	l.Main.MaxClients = 1
	if err := d.srv.SetLimits(l); err != nil {
		t.Fatal(err)
	}
	a := dialRaw(t, d.rw)
	a.open(0)
	b := dialRaw(t, d.rw)
	b.expectClosed()
	lim, err := adminClient(t, d).ServerGetClientLimits(ctx5(t), &admin.ServerGetClientLimitsArgs{Srv: admin.Server{Name: "virtstoraged"}})
	if err != nil || params(lim.Params)["nclients_max"].Ui != 1 {
		t.Errorf("limits after SetLimits: %+v %v", lim, err)
	}
}

func TestNewServerValidates(t *testing.T) {
	t.Parallel()
	l := rpc.DefaultLimits()
	l.Admin.MaxClientRequests = 0
	if _, err := rpc.NewServer(rpc.Config{Limits: l}, newMemAPI(), nil, nil); err == nil {
		t.Error("nil logger accepted")
	}
	if _, err := rpc.NewServer(rpc.Config{Limits: l}, newMemAPI(), nil, logrusEntry()); err == nil {
		t.Error("max_client_requests 0 accepted")
	}
	if _, err := rpc.NewServer(rpc.Config{Limits: rpc.DefaultLimits()}, nil, nil, logrusEntry()); err == nil {
		t.Error("nil API accepted")
	}
}
