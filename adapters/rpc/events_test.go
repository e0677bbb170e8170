package rpc_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/gen/remote"
	"github.com/virtstoraged-go/virtstoraged/gen/virnet"
)

func TestEventsToTwoConnections(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	a := dialRaw(t, d.rw)
	b := dialRaw(t, d.ro)
	a.open(0)
	b.open(0)

	register := func(r *raw, serial uint32, eventID int32, pool remote.OptStoragePool) int32 {
		t.Helper()
		r.call(int32(remote.ProcConnectStoragePoolEventRegisterAny), serial, &remote.ConnectStoragePoolEventRegisterAnyArgs{EventID: eventID, Pool: pool})
		h, p := r.recv()
		if h.Status != virnet.MessageStatusOk {
			t.Fatalf("register: %v", decodeErr(t, p))
		}
		var ret remote.ConnectStoragePoolEventRegisterAnyRet
		decodeRet(t, p, &ret)
		return ret.CallbackID
	}
	images := remote.StoragePool{Name: "images", UUID: remote.UUID{15: 2}}
	cbA := register(a, 1, 0, nil)
	cbB := register(b, 1, 0, nil)
	cbRefresh := register(b, 2, 1, remote.OptStoragePool{images})
	if cbA != 0 || cbB != 1 || cbRefresh != 2 {
		t.Fatalf("callback ids %d %d %d, want daemon-wide 0 1 2", cbA, cbB, cbRefresh)
	}

	d.hub.PoolLifecycle(domain.PoolHandle{Name: "images", UUID: domain.UUID{15: 2}}, domain.EventStopped, 0)
	for _, c := range []struct {
		r    *raw
		cbID int32
	}{{a, cbA}, {b, cbB}} {
		h, p := c.r.recv()
		want := hdr{Prog: remote.Program, Vers: 1, Proc: 370, Type: virnet.MessageTypeMessage, Serial: 1}
		if h != want {
			t.Fatalf("event header %+v, want %+v", h, want)
		}
		var msg remote.StoragePoolEventLifecycleMsg
		decodeRet(t, p, &msg)
		if msg.CallbackID != c.cbID || msg.Pool != images || msg.Event != 3 || msg.Detail != 0 {
			t.Errorf("lifecycle msg %+v", msg)
		}
	}

	// Refresh of another pool does not match the filter; of images it does.
	d.hub.PoolRefreshed(domain.PoolHandle{Name: "default", UUID: domain.UUID{15: 1}})
	d.hub.PoolRefreshed(domain.PoolHandle{Name: "images", UUID: domain.UUID{15: 2}})
	h, p := b.recv()
	var msg remote.StoragePoolEventRefreshMsg
	decodeRet(t, p, &msg)
	if h.Proc != 373 || h.Serial != 1 || msg.CallbackID != cbRefresh || msg.Pool != images {
		t.Errorf("refresh event %+v %+v", h, msg)
	}
	a.expectSilence(100 * time.Millisecond)

	// Events caused through the API reach the clients too.
	cl := d.client(t, d.rw, "storage:///system", 0)
	if err := cl.StoragePoolDestroy(ctx5(t), &remote.StoragePoolDestroyArgs{Pool: remote.StoragePool{Name: "default", UUID: remote.UUID{15: 1}}}); err != nil {
		t.Fatal(err)
	}
	if h, _ := a.recv(); h.Proc != 370 {
		t.Errorf("no lifecycle event after POOL_DESTROY: %+v", h)
	}

	// Deregistering someone else's callback fails; own works once.
	cases := []struct {
		name    string
		give    func()
		wantMsg string
	}{
		{"foreign callback", func() {
			a.call(int32(remote.ProcConnectStoragePoolEventDeregisterAny), 5, &remote.ConnectStoragePoolEventDeregisterAnyArgs{CallbackID: cbB})
		}, "internal error: storage pool event callback 1 not registered"},
		{"unknown callback", func() {
			a.call(int32(remote.ProcConnectStoragePoolEventDeregisterAny), 6, &remote.ConnectStoragePoolEventDeregisterAnyArgs{CallbackID: 42})
		}, "internal error: storage pool event callback 42 not registered"},
		{"bad event id", func() {
			a.call(int32(remote.ProcConnectStoragePoolEventRegisterAny), 7, &remote.ConnectStoragePoolEventRegisterAnyArgs{EventID: 7})
		}, "internal error: unsupported storage pool event ID 7"},
	}
	for _, c := range cases {
		c.give()
		h, p := a.recv()
		e := decodeErr(t, p)
		if h.Status != virnet.MessageStatusError || e.Code != 1 || e.Domain != 7 || optStr(e.Message) != c.wantMsg {
			t.Errorf("%s: %d/%d %q", c.name, e.Code, e.Domain, optStr(e.Message))
		}
	}
	a.call(int32(remote.ProcConnectStoragePoolEventDeregisterAny), 8, &remote.ConnectStoragePoolEventDeregisterAnyArgs{CallbackID: cbA})
	if h, _ := a.recv(); h.Status != virnet.MessageStatusOk {
		t.Errorf("deregister own callback failed")
	}
	d.hub.PoolLifecycle(domain.PoolHandle{Name: "images", UUID: domain.UUID{15: 2}}, domain.EventStarted, 0)
	a.expectSilence(100 * time.Millisecond)
	if h, _ := b.recv(); h.Proc != 370 {
		t.Errorf("b lost its callback: %+v", h)
	}

	// A closed connection's callbacks go away; the next id is still daemon-wide.
	b.nc.Close()
	waitFor(t, func() bool { return countClients(t, d) == 2 })
	c := dialRaw(t, d.rw)
	c.open(0)
	if id := register(c, 1, 0, nil); id != 3 {
		t.Errorf("next callback id %d, want 3", id)
	}
	d.hub.PoolLifecycle(domain.PoolHandle{Name: "images"}, domain.EventDefined, 0)
	if h, _ := c.recv(); h.Proc != 370 {
		t.Errorf("new callback missed the event")
	}
}

func TestEventsNeverBlockOnSlowReaders(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	r := dialRaw(t, d.rw)
	r.open(0)
	r.call(int32(remote.ProcConnectStoragePoolEventRegisterAny), 1, &remote.ConnectStoragePoolEventRegisterAnyArgs{EventID: 0})
	r.recv()
	// The client never reads: publishing must still return promptly.
	done := make(chan struct{})
	go func() {
		for i := 0; i < 20000; i++ {
			d.hub.PoolLifecycle(domain.PoolHandle{Name: "images", UUID: domain.UUID{15: 2}}, domain.EventDefined, 0)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("event publishing blocked on a client that does not read")
	}
	// Another client is served meanwhile.
	cl := d.client(t, d.rw, "storage:///system", 0)
	if _, err := cl.ConnectGetType(ctx5(t)); err != nil {
		t.Fatal(err)
	}
	dropped := false
	for _, e := range d.logs.AllEntries() {
		if strings.HasPrefix(e.Message, "rpc: client event queue full or closed, event dropped") {
			dropped = true
		}
	}
	if !dropped {
		t.Error("no log line for dropped events")
	}
	// The writer drains some of the queue into the socket buffer (1 MiB, room
	// for thousands of events), so drops come in runs, as many as the
	// scheduling makes: what matters is one line per run, not one per event.
	// Every run but the last one ends with a line counting its drops.
	// Logging each drop would give far more openings than ends.
	runs, ends, counted := dropLines(t, d)
	if runs != ends && runs != ends+1 {
		t.Errorf("%d runs of drops logged, %d ends of runs (counting %d drops): want one line per run", runs, ends, counted)
	}
}

// dropLines counts the log lines that open a run of dropped events, those
// that end one, and the drops the latter count.
func dropLines(t *testing.T, d *daemon) (runs, ends, counted int) {
	t.Helper()
	for _, e := range d.logs.AllEntries() {
		var n int
		switch {
		case strings.HasPrefix(e.Message, "rpc: client event queue full or closed"):
			runs++
		case strings.HasPrefix(e.Message, "rpc: client reading events again after "):
			if _, err := fmt.Sscanf(e.Message, "rpc: client reading events again after %d were dropped", &n); err != nil {
				t.Fatalf("log line %q: %v", e.Message, err)
			}
			ends++
			counted += n
		}
	}
	return runs, ends, counted
}
